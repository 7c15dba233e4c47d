"""Bridge connections (issue 15, server side): a client that authenticates its upgrade on
/v1/chat with `Authorization: Bearer <token>`, the token one of `--bridge-tokens FILE` (`name
token` lines, mode 600), carries many people's conversations: its limits are per conversation
(--bridge-rate, --bridge-burst) and it may hold many conversations
(--max-conversations-per-bridge-connection). A wrong token is refused with 401; without the
header a client is anonymous, with today's limits. A tokens file others may read is refused.

Run: /usr/bin/python3 tests/integration/test_bridges.py --server build/chat-server
"""

import json
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

    def make_server(self, *args, env: dict | None = None) -> Server:
        server = Server("--bridge-tokens", str(self.tokens), *args, env=env)
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


async def keyed(client: Client, key: str, text: str, **extra) -> tuple[dict | None, dict]:
    """A keyed message: its `started` (when the key was new; else None) and its reply."""
    await client.send({"type": "message", "key": key, "text": text, **extra})
    first = await client.recv()
    started = None
    if first["type"] == "started":
        harness.check_started(first)
        started, first = first, await client.recv()
    assert first["type"] == "reply", first
    harness.check_reply(first)
    return started, first


class KeysTest(BridgeTestCase):
    """Keyed conversations: (bridge, key) names one conversation, durably, for that bridge only."""

    async def test_a_new_key_starts_a_conversation_and_the_same_key_continues_it(self):
        server = self.make_server()
        bridge = await self.bridge(server)
        started, reply = await keyed(bridge, "slack:T01:D02", PAIN)
        self.assertIsNotNone(started, "a new key's first message starts its conversation")
        self.assertEqual(started["key"], "slack:T01:D02")
        self.assertFalse(started["resumed"])
        self.assertIn("welcome", started)
        self.assertEqual(reply["key"], "slack:T01:D02")
        self.assertEqual(reply["conversation"], started["conversation"])
        self.assertEqual(reply["state"], "screening")
        # The same key again, on another connection of the same bridge: the same conversation,
        # no new `started`, the screening goes on.
        other = await self.bridge(server)
        started2, reply2 = await keyed(other, "slack:T01:D02", "no")
        self.assertIsNone(started2)
        self.assertEqual(reply2["conversation"], reply["conversation"])
        self.assertEqual(reply2["seq"], 2)

    async def test_a_key_survives_a_restart_of_the_server(self):
        server = self.make_server()
        bridge = await self.bridge(server)
        _, first = await keyed(bridge, "discord:dm:42", PAIN)
        await bridge.close()
        server.stop_and_check()
        server.restart()
        bridge = await self.bridge(server)
        started, reply = await keyed(bridge, "discord:dm:42", "no")
        self.assertIsNone(started, "after a restart the key finds its conversation: nothing new is started")
        self.assertEqual(reply["conversation"], first["conversation"])
        self.assertEqual(reply["seq"], 2)
        # An explicit keyed start resumes it, with its history.
        await bridge.send({"type": "start", "key": "discord:dm:42"})
        resumed = await bridge.recv_type("started")
        self.assertTrue(resumed["resumed"])
        self.assertEqual(resumed["key"], "discord:dm:42")
        self.assertEqual([t["seq"] for t in resumed["history"]], [1, 1, 2, 2])

    async def test_a_key_of_one_bridge_is_another_conversation_for_another_and_refused_anonymously(self):
        server = self.make_server()
        slack = await self.bridge(server, SLACK_TOKEN)
        discord = await self.bridge(server, DISCORD_TOKEN)
        _, a = await keyed(slack, "shared:key", PAIN)
        started, b = await keyed(discord, "shared:key", PAIN)
        self.assertIsNotNone(started, "the other bridge's key is new to this one")
        self.assertNotEqual(a["conversation"], b["conversation"])
        self.assertEqual(b["seq"], 1)
        anonymous = await self.bridge(server, None)
        await anonymous.send({"type": "message", "key": "shared:key", "text": "I can't breathe", "ref": "k"})
        error = await anonymous.expect_error("bad_request", ref="k")
        self.assertIn("guidance", error, "a refused message that reports a red flag still gets the guidance")
        await anonymous.send({"type": "start", "key": "shared:key"})
        await anonymous.expect_error("bad_request")

    async def test_end_by_key_and_malformed_keys(self):
        server = self.make_server()
        bridge = await self.bridge(server)
        _, reply = await keyed(bridge, "k1", PAIN)
        await bridge.send({"type": "end", "key": "k1"})
        ended = await bridge.recv_type("ended")
        self.assertEqual((ended["conversation"], ended["key"]), (reply["conversation"], "k1"))
        for frame in ({"type": "message", "key": "x" * 201, "text": PAIN},
                      {"type": "message", "key": "", "text": PAIN},
                      {"type": "message", "key": 5, "text": PAIN},
                      {"type": "message", "key": "k1", "conversation": reply["conversation"], "text": PAIN},
                      {"type": "start", "key": "k1", "resume": reply["conversation"]},
                      {"type": "end"}):
            await bridge.send(frame)
            await bridge.expect_error("bad_request")


class IdempotencyTest(BridgeTestCase):
    """A repeated message id is answered with the stored reply; the engine does not run twice."""

    async def test_a_repeated_id_gets_the_stored_reply_and_makes_no_turn(self):
        server = self.make_server()
        bridge = await self.bridge(server)
        _, first = await keyed(bridge, "slack:T1:D1", PAIN, id="Ev01")
        self.assertEqual(first["id"], "Ev01")
        self.assertNotIn("duplicate", first)
        _, again = await keyed(bridge, "slack:T1:D1", PAIN, id="Ev01", ref="retry")
        self.assertTrue(again["duplicate"])
        self.assertEqual(again["ref"], "retry")
        self.assertEqual((again["seq"], again["text"], again["state"]), (first["seq"], first["text"], first["state"]))
        # "yes" twice with one id: one answer to the screening question, not two.
        _, yes = await keyed(bridge, "slack:T1:D1", "yes, my fingers are numb", id="Ev02")
        _, yes_again = await keyed(bridge, "slack:T1:D1", "yes, my fingers are numb", id="Ev02")
        self.assertTrue(yes_again["duplicate"])
        self.assertEqual(yes_again["seq"], yes["seq"])
        _, nxt = await keyed(bridge, "slack:T1:D1", "what should I do?", id="Ev03")
        self.assertEqual(nxt["seq"], yes["seq"] + 1, "the duplicates made no turn")
        # Also across a restart, and for an anonymous connection's conversation by id.
        await bridge.close()
        server.stop_and_check()
        server.restart()
        bridge = await self.bridge(server)
        _, after = await keyed(bridge, "slack:T1:D1", "yes, my fingers are numb", id="Ev02")
        self.assertTrue(after["duplicate"])
        self.assertEqual(after["seq"], yes["seq"])
        anonymous = await self.bridge(server, None)
        started = await anonymous.start()
        one = await anonymous.message(PAIN, started["conversation"], id="a1")
        two = await anonymous.message(PAIN, started["conversation"], id="a1")
        self.assertTrue(two.get("duplicate"))
        self.assertEqual(two["seq"], one["seq"])
        metrics = harness.parse_metrics(harness.http_request(server, "GET", "/metrics").body.decode())
        self.assertEqual(harness.metric_value(metrics, "backcheck_messages_duplicate_total"), 2)

    def test_post_with_an_idempotency_key_answers_a_retry_with_the_first_reply(self):
        server = self.make_server()

        def post(body, key=None):
            headers = {"Content-Type": "application/json"}
            if key is not None:
                headers["Idempotency-Key"] = key
            response = harness.http_request(server, "POST", "/v1/messages", json.dumps(body), headers)
            return response, json.loads(response.body)

        _, first = post({"text": PAIN})
        conversation = first["conversation"]
        r1, yes = post({"conversation": conversation, "text": "yes, my fingers are numb"}, "req-7")
        self.assertEqual(r1.status, 200)
        self.assertNotIn("duplicate", yes)
        r2, again = post({"conversation": conversation, "text": "yes, my fingers are numb"}, "req-7")
        self.assertEqual(r2.status, 200)
        self.assertTrue(again["duplicate"])
        self.assertEqual(r2.headers.get("Idempotent-Replayed"), "true")
        self.assertEqual((again["seq"], again["text"]), (yes["seq"], yes["text"]))
        _, nxt = post({"conversation": conversation, "text": "what should I do?"}, "req-8")
        self.assertEqual(nxt["seq"], yes["seq"] + 1, "the retry made no turn")
        # Without a conversation a retry would start another one: refused, and nothing is started.
        r3, refused = post({"text": PAIN}, "req-9")
        self.assertEqual((r3.status, refused["code"]), (400, "bad_request"))
        self.assertIn("Idempotency-Key", refused["message"])
        r4, too_long = post({"conversation": conversation, "text": PAIN}, "k" * 129)
        self.assertEqual((r4.status, too_long["code"]), (400, "bad_request"))

    async def test_an_id_too_long_is_refused(self):
        server = self.make_server()
        bridge = await self.bridge(server)
        await bridge.send({"type": "message", "key": "k", "text": PAIN, "id": "i" * 129})
        error = await bridge.expect_error("bad_request")
        self.assertIn("'id'", error["message"])


class NoticeTest(BridgeTestCase):
    """An operator's acknowledgement reaches the connection holding the conversation as a notice."""

    async def test_an_ack_is_pushed_to_the_bridge_with_the_key_and_not_to_other_conversations(self):
        operator_token = secrets.token_hex(16)
        server = self.make_server(env={"CHAT_OPERATOR_TOKEN": operator_token})
        bridge = await self.bridge(server)
        _, urgent = await keyed(bridge, "slack:T1:D7", "my upper back hurts and my left arm is numb and weak")
        self.assertTrue(urgent["escalated"], urgent)
        _, calm = await keyed(bridge, "slack:T1:D8", PAIN)
        other = await self.bridge(server, DISCORD_TOKEN)
        await keyed(other, "discord:dm:1", PAIN)
        ws = await websockets.connect(f"ws://127.0.0.1:{server.port}/v1/operator",
                                      extra_headers={"Authorization": f"Bearer {operator_token}"},
                                      **harness.connect_kwargs())
        operator = Client(ws)
        self.addAsyncCleanup(operator.close)
        event = await operator.recv_type("escalation")
        self.assertEqual(event["conversation"], urgent["conversation"])
        await operator.send({"type": "ack", "id": event["id"]})
        notice = await bridge.recv_type("notice")
        self.assertEqual((notice["conversation"], notice["key"], notice["notice"]),
                         (urgent["conversation"], "slack:T1:D7", "escalation_acknowledged"))
        self.assertTrue(notice["text"].strip())
        # The next frames on both bridges answer their own messages: no second notice, none for others.
        _, reply = await keyed(bridge, "slack:T1:D8", "thanks")
        self.assertEqual(reply["conversation"], calm["conversation"])
        _, reply = await keyed(other, "discord:dm:1", "thanks")
        self.assertEqual(reply["type"], "reply")
        metrics = harness.parse_metrics(harness.http_request(server, "GET", "/metrics").body.decode())
        self.assertEqual(harness.metric_value(metrics, "backcheck_notices_total", outcome="sent"), 1)


if __name__ == "__main__":
    harness.main()
