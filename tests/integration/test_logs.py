"""Logs without what people write (issue 17 item 3): the server logs events on stderr, one JSON
object a line ({"ts", "level", "event", ...typed fields}), and never a person's text, an operator's
text or note, a conversation's id or history, at any level but `--log-level trace` (documented as
unsafe for production: it logs frames).

For each level (the default, info, debug, warn) one server is driven through what people and
operators do: a question, a red flag that escalates, a message over --max-text-chars, a burst over
--burst, an operator's claim, join, say, leave and an ack with a note, each carrying a unique
marker. The marker, the conversation id and the operator's token must appear nowhere on stderr;
every line must be a JSON object with ts/level/event at or above the level; the expected events
must be there (the escalation with its id, level and flags; the rate-limit hit naming the limit;
each operator action with the operator's name). At trace the marker is logged (which shows the
search would find it).

Run: /usr/bin/python3 tests/integration/test_logs.py --server build/chat-server
"""

import asyncio
import json
import re
import secrets
import unittest

import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import websockets  # noqa: E402

import harness  # noqa: E402
from harness import Client, Server  # noqa: E402
from test_operator_accounts import AccountsTestCase  # noqa: E402

LEVELS = ["trace", "debug", "info", "warn", "error"]
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class LogPrivacyTest(AccountsTestCase):
    async def operator(self, server, token) -> Client:
        ws = await websockets.connect(f"ws://127.0.0.1:{server.port}/v1/operator",
                                      extra_headers={"Authorization": f"Bearer {token}"}, **harness.connect_kwargs())
        client = Client(ws)
        self.addAsyncCleanup(client.close)
        return client

    async def drive(self, level: str | None) -> tuple[str, list[dict], dict]:
        """Runs one server at `level` (None: the default) through everything; returns its stderr,
        its lines parsed, and what the test saw (marker, conversation id, escalation)."""
        marker = "Zq" + secrets.token_hex(8)  # unique: found only where this run's text went
        args = ["--burst", "8", "--rate", "0.5", "--max-text-chars", "300"]
        if level is not None:
            args += ["--log-level", level]
        server = self.make_server(*args)
        alice = await self.operator(server, self.alice)

        person = await harness.open_client(server)
        self.addAsyncCleanup(person.close)
        cid = (await person.start())["conversation"]
        r = await person.message(f"My upper back hurts after rowing {marker}", conversation=cid)
        self.assertTrue(r["text"])
        r = await person.message(f"I have chest pain and my left arm is numb {marker}", conversation=cid)
        self.assertTrue(r["escalated"], r)
        await person.send({"type": "message", "conversation": cid, "text": (marker + " ") * 40})
        await person.expect_error("text_too_long")
        event = await alice.recv_type("escalation")
        self.assertEqual(event["conversation"], cid)

        # A burst over --burst on a connection of its own: some messages are refused.
        burst = await harness.open_client(server)
        self.addAsyncCleanup(burst.close)
        await burst.send_batch([{"type": "message", "text": f"burst {i} {marker}"} for i in range(20)])
        codes = []
        for _ in range(40):
            f = await burst.recv()
            if f["type"] == "error":
                codes.append(f["code"])
            if codes.count("rate_limited") >= 3:
                break
        self.assertIn("rate_limited", codes)

        # The operator takes the conversation over, writes, leaves and acknowledges with a note.
        await alice.send({"type": "claim", "conversation": cid})
        await self.until(alice, "claimed")
        await alice.send({"type": "join", "conversation": cid})
        await self.until(alice, "joined")
        await person.send({"type": "message", "conversation": cid, "text": f"thank you {marker}"})
        await self.until(person, "received")
        await self.until(alice, "user_message")
        await alice.send({"type": "say", "conversation": cid, "text": f"I am Alice from the clinic {marker}"})
        await self.until(alice, "said")
        await alice.send({"type": "leave", "conversation": cid})
        await self.until(alice, "left")
        await alice.send({"type": "ack", "id": event["id"], "note": f"called them back {marker}"})
        await self.until(alice, "acked")
        await person.close()
        await burst.close()
        await alice.close()
        await asyncio.sleep(0.2)  # the closes reach the server before it stops
        self.assertEqual(await asyncio.to_thread(server.stop), 0, server.stderr_tail())
        stderr = server.stderr_path.read_bytes().decode("utf-8", "replace")
        lines = []
        for n, line in enumerate(stderr.splitlines(), 1):
            try:
                obj = json.loads(line, object_pairs_hook=self.no_duplicate_keys)
            except ValueError:
                self.fail(f"stderr line {n} is not one JSON object: {line!r}")
            self.assertIsInstance(obj, dict, line)
            for key in ("ts", "level", "event"):
                self.assertIn(key, obj, f"line {n} has no {key!r}: {line}")
            self.assertRegex(obj["ts"], TS)
            self.assertIn(obj["level"], LEVELS, line)
            self.assertGreaterEqual(LEVELS.index(obj["level"]), LEVELS.index(level or "info"),
                                    f"a line below --log-level {level}: {line}")
            lines.append(obj)
        return stderr, lines, {"marker": marker, "conversation": cid, "escalation": event}

    @staticmethod
    def no_duplicate_keys(pairs):
        keys = [k for k, _ in pairs]
        if len(keys) != len(set(keys)):
            raise ValueError(f"duplicate keys in {keys}")
        return dict(pairs)

    async def until(self, client: Client, type_: str) -> dict:
        """The next frame of `type_`, past the others (notices, handoff frames, escalations)."""
        for _ in range(50):
            f = await client.recv()
            if f["type"] == type_:
                return f
        self.fail(f"no {type_!r} frame")

    def events(self, lines, name, **fields) -> list[dict]:
        return [o for o in lines if o["event"] == name and all(o.get(k) == v for k, v in fields.items())]

    def assert_private(self, stderr: str, seen: dict) -> None:
        for what, secret in (("what people wrote", seen["marker"]), ("a conversation id", seen["conversation"]),
                             ("an operator's token", self.alice)):
            self.assertNotIn(secret, stderr, f"{what} reached the log:\n{stderr[:3000]}")

    async def test_info_and_the_default_log_events_but_no_text(self):
        for level in (None, "info"):
            with self.subTest(level=level):
                stderr, lines, seen = await self.drive(level)
                self.assert_private(stderr, seen)
                event = seen["escalation"]
                escalations = self.events(lines, "escalation", id=event["id"])
                self.assertEqual(len(escalations), 1, stderr)
                self.assertEqual(escalations[0]["urgency"], event["level"])
                self.assertEqual(escalations[0]["flags"], event["flags"])
                self.assertTrue(self.events(lines, "limit_hit", code="rate_limited", limit="rate"), stderr)
                self.assertTrue(self.events(lines, "limit_hit", code="text_too_long", limit="max_text_chars"), stderr)
                for action in ("claim", "join", "say", "leave"):
                    self.assertTrue(self.events(lines, "operator_action", action=action, operator="alice"),
                                    f"no {action} by alice:\n{stderr}")
                self.assertTrue(self.events(lines, "escalation_acknowledged", id=event["id"], operator="alice"))
                self.assertTrue(self.events(lines, "operator_connected", operator="alice"))
                listening = self.events(lines, "listening")
                self.assertEqual(len(listening), 1, stderr)
                self.assertRegex(listening[0]["address"], r"^http://127\.0\.0\.1:\d+$")
                self.assertTrue(self.events(lines, "starting"), stderr)
                self.assertTrue(self.events(lines, "shutting_down", signal="SIGTERM"), stderr)
                self.assertEqual(lines[-1]["event"], "stopped", stderr)
                self.assertFalse(self.events(lines, "connection_opened"), "connections are logged at debug")

    async def test_debug_adds_connections_and_still_no_text(self):
        stderr, lines, seen = await self.drive("debug")
        self.assert_private(stderr, seen)
        self.assertGreaterEqual(len(self.events(lines, "connection_opened", kind="chat")), 2, stderr)
        closed = self.events(lines, "connection_closed", kind="chat")
        self.assertGreaterEqual(len(closed), 2, stderr)
        self.assertTrue(all(c["cause"] in ("client_closed", "connection_lost", "shutdown") for c in closed), closed)
        self.assertTrue(any(c["limited"] > 0 for c in closed), closed)  # the burst's
        self.assertTrue(self.events(lines, "message_to_operator", operator="alice"), stderr)
        self.assertTrue(self.events(lines, "escalation", id=seen["escalation"]["id"]), stderr)

    async def test_warn_keeps_the_limit_hits_only(self):
        stderr, lines, seen = await self.drive("warn")
        self.assert_private(stderr, seen)
        self.assertTrue(self.events(lines, "limit_hit", code="rate_limited"), stderr)
        self.assertFalse(self.events(lines, "escalation"), stderr)

    async def test_trace_logs_frames_and_says_it_is_unsafe(self):
        stderr, lines, seen = await self.drive("trace")
        self.assertIn(seen["marker"], stderr, "trace logs the frames")
        self.assertTrue(self.events(lines, "frame_received"), stderr[:2000])
        warning = self.events(lines, "trace_logging")
        self.assertTrue(warning and "production" in warning[0]["warning"], stderr[:2000])


class StartUpLogTest(unittest.TestCase):
    def test_a_bad_log_level_is_refused(self):
        server = Server("--log-level", "verbose")
        self.addCleanup(server.cleanup)
        code, err = server.start_expect_failure()
        self.assertNotEqual(code, 0)
        self.assertIn("--log-level", err)


if __name__ == "__main__":
    harness.main()
