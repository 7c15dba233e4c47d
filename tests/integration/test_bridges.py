"""Bridge connections (issue 15, server side): a client that authenticates its upgrade on
/v1/chat with `Authorization: Bearer <token>`, the token one of `--bridge-tokens FILE` (`name
token` lines, mode 600), carries many people's conversations: its limits are per conversation
(--bridge-rate, --bridge-burst) and it may hold many conversations
(--max-conversations-per-bridge-connection). A wrong token is refused with 401; without the
header a client is anonymous, with today's limits. A tokens file others may read is refused.

Run: /usr/bin/python3 tests/integration/test_bridges.py --server build/chat-server
"""

import os
import secrets
import tempfile
import unittest
from pathlib import Path

import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import websockets  # noqa: E402

import harness  # noqa: E402
from harness import Client, InvalidStatusCode, Server  # noqa: E402

SLACK_TOKEN = secrets.token_hex(32)
DISCORD_TOKEN = secrets.token_hex(32)
PAIN = "My upper back hurts after my workout yesterday"


def write_tokens(folder: Path, text: str, mode: int = 0o600) -> Path:
    path = folder / "bridges"
    path.write_text(text)
    path.chmod(mode)
    return path


async def open_bridge(server: Server, token: str | None) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    ws = await websockets.connect(f"ws://127.0.0.1:{server.port}/v1/chat", extra_headers=headers,
                                  **harness.connect_kwargs())
    return Client(ws)


class BridgeTestCase(unittest.IsolatedAsyncioTestCase):
    def setUp(self):
        self.folder = Path(tempfile.mkdtemp(prefix="backcheck-bridges-"))
        self.addCleanup(lambda: __import__("shutil").rmtree(self.folder, ignore_errors=True))
        self.tokens = write_tokens(self.folder, f"# bridges of this test\nslack {SLACK_TOKEN}\n\ndiscord {DISCORD_TOKEN}  # the other\n")

    def make_server(self, *args) -> Server:
        server = Server("--bridge-tokens", str(self.tokens), *args)
        self.addCleanup(server.cleanup)
        return server.start()

    async def bridge(self, server, token=SLACK_TOKEN) -> Client:
        client = await open_bridge(server, token)
        self.addAsyncCleanup(client.close)
        return client


class AuthenticationTest(BridgeTestCase):
    async def test_a_known_token_connects_a_wrong_one_gets_401_and_none_is_anonymous(self):
        server = self.make_server()
        for token in (SLACK_TOKEN, DISCORD_TOKEN, None):
            client = await self.bridge(server, token)
            started = await client.start()
            reply = await client.message(PAIN, started["conversation"])
            harness.check_reply(reply)
        for wrong in (SLACK_TOKEN[:-1] + ("0" if SLACK_TOKEN[-1] != "0" else "1"), "", SLACK_TOKEN + "x"):
            with self.assertRaises(InvalidStatusCode) as refused:
                await open_bridge(server, wrong)
            self.assertEqual(refused.exception.status_code, 401, wrong)

    async def test_a_bearer_token_is_refused_by_a_server_without_bridges(self):
        server = Server()
        self.addCleanup(server.cleanup)
        server.start()
        with self.assertRaises(InvalidStatusCode) as refused:
            await open_bridge(server, SLACK_TOKEN)
        self.assertEqual(refused.exception.status_code, 401)

    def test_a_tokens_file_others_may_read_is_refused_at_start_up(self):
        write_tokens(self.folder, f"slack {SLACK_TOKEN}\n", mode=0o644)
        server = Server("--bridge-tokens", str(self.tokens))
        self.addCleanup(server.cleanup)
        code, stderr = server.start_expect_failure()
        self.assertEqual(code, 2, stderr)
        self.assertIn("chmod 600", stderr)
        self.assertIn(str(self.tokens), stderr)

    def test_a_malformed_tokens_file_is_refused_naming_its_line(self):
        for text, line, what in ((f"slack {SLACK_TOKEN}\nshort abc\n", 2, "shorter than 32"),
                                 (f"slack {SLACK_TOKEN}\nslack {DISCORD_TOKEN}\n", 2, "named twice"),
                                 (f"# none\nslack\n", 2, "expected 'name token'")):
            write_tokens(self.folder, text)
            server = Server("--bridge-tokens", str(self.tokens))
            self.addCleanup(server.cleanup)
            code, stderr = server.start_expect_failure()
            self.assertEqual(code, 2, stderr)
            self.assertIn(f"{self.tokens}:{line}:", stderr)
            self.assertIn(what, stderr)
            self.assertNotIn(DISCORD_TOKEN, stderr)  # a secret is never echoed


class LimitsTest(BridgeTestCase):
    async def test_a_bridge_holds_more_conversations_than_an_anonymous_connection(self):
        server = self.make_server("--max-conversations-per-connection", "4")
        anonymous = await self.bridge(server, None)
        for _ in range(4):
            await anonymous.start()
        await anonymous.send({"type": "start"})
        await anonymous.expect_error("too_many_conversations")
        bridge = await self.bridge(server)
        ids = [(await bridge.start())["conversation"] for _ in range(12)]
        self.assertEqual(len(set(ids)), 12)
        for i, cid in enumerate(ids):
            reply = await bridge.message(PAIN, cid, ref=f"m{i}")
            self.assertEqual(reply["conversation"], cid)

    async def test_rates_are_per_conversation_on_a_bridge_and_per_connection_otherwise(self):
        # 3 messages at once in each of 8 conversations: 24 in a burst. Per conversation that is
        # within a burst of 4; per connection (burst 6) it is not.
        server = self.make_server("--bridge-burst", "4", "--bridge-rate", "0.01",
                                  "--rate", "0.01", "--burst", "30", "--ip-burst", "1000")
        bridge = await self.bridge(server)
        ids = [(await bridge.start())["conversation"] for _ in range(8)]
        refs = [f"{cid}-{k}" for cid in ids for k in range(3)]
        await bridge.send_batch([{"type": "message", "conversation": r.rsplit("-", 1)[0], "text": PAIN, "ref": r}
                                 for r in refs])
        got, _ = await harness.collect_replies(bridge, refs)
        self.assertEqual({r: got[r]["type"] for r in refs}, {r: "reply" for r in refs})
        # One conversation past its own burst of 4 is limited, while another still answers.
        more = [f"{ids[0]}-x{k}" for k in range(3)]
        await bridge.send_batch([{"type": "message", "conversation": ids[0], "text": PAIN, "ref": r} for r in more]
                                + [{"type": "message", "conversation": ids[1], "text": PAIN, "ref": "other"}])
        got, _ = await harness.collect_replies(bridge, more + ["other"])
        self.assertIn("rate_limited", [got[r].get("code") for r in more])
        self.assertEqual(got["other"]["type"], "reply")

    async def test_an_anonymous_connection_keeps_its_per_connection_rate(self):
        server = self.make_server("--rate", "0.01", "--burst", "6", "--ip-burst", "1000")
        anonymous = await self.bridge(server, None)
        ids = [(await anonymous.start())["conversation"] for _ in range(3)]
        refs = [f"{cid}-{k}" for cid in ids for k in range(3)]
        await anonymous.send_batch([{"type": "message", "conversation": r.rsplit("-", 1)[0], "text": PAIN, "ref": r}
                                    for r in refs])
        got, _ = await harness.collect_replies(anonymous, refs)
        self.assertIn("rate_limited", [got[r].get("code") for r in refs])


if __name__ == "__main__":
    harness.main()
