"""Operator endpoint (SPEC sections 5-6): WebSocket at /v1/operator with
`Authorization: Bearer <token>`, the token taken from CHAT_OPERATOR_TOKEN in the server's
environment (without it the endpoint is off: 404; a missing or wrong token: 401).

On connect an operator receives every unacknowledged escalation, oldest first, then new ones
live, each {type:"escalation", id, conversation, level, flags, text, at}; {type:"ack", id} is
answered to every connected operator with {type:"acked", id, conversation, by} once durable, and an acked
escalation is never sent again, also after a restart. Escalations are stored before the reply
announcing them leaves, so one raised just before kill -9 still reaches an operator afterwards.

No test waits for "nothing happens": to show that no event came (or that a backlog is complete)
a test raises a fresh escalation as a marker and checks that it is the next frame.

Run: /usr/bin/python3 tests/integration/test_operators.py --server build/chat-server
"""

import asyncio
import datetime
import os
import re
import signal
import time
import unittest

import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import websockets  # noqa: E402

import harness  # noqa: E402
from harness import Client, InvalidStatusCode, Server  # noqa: E402

TOKEN = "op-" + os.urandom(16).hex()
PAIN = "My upper back hurts after my workout yesterday"
ISO_UTC_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z")
OPERATOR_LEVELS = {"see_doctor", "urgent", "emergency"}
URGENT_FLAGS = ["arm_radiation", "numbness", "tingling", "weakness"]


def parse_at(at: str) -> float:
    """ISO-8601 UTC 'YYYY-MM-DDTHH:MM:SS[.fff]Z' -> POSIX seconds."""
    base = datetime.datetime.strptime(at[:19], "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    frac = at[19:-1]
    return base + (float("0" + frac) if frac else 0.0)


def check_escalation(f: dict) -> None:
    assert f.get("type") == "escalation", f"expected an escalation frame, got {f}"
    assert isinstance(f.get("id"), int) and not isinstance(f.get("id"), bool), f"id not an integer: {f}"
    conv = f.get("conversation")
    assert isinstance(conv, str) and harness.CONVERSATION_ID_RE.fullmatch(conv), f"bad conversation: {f}"
    assert f.get("level") in OPERATOR_LEVELS, f"bad level: {f}"
    assert isinstance(f.get("flags"), list) and f["flags"] \
        and all(isinstance(x, str) for x in f["flags"]), f"bad flags: {f}"
    assert isinstance(f.get("text"), str) and f["text"], f"bad text: {f}"
    at = f.get("at")
    assert isinstance(at, str) and ISO_UTC_RE.fullmatch(at), \
        f"'at' is not an ISO-8601 UTC timestamp ending in Z: {f}"


async def open_operator(server: Server, token: str | None = TOKEN, header: str | None = None) -> Client:
    """Connect to /v1/operator; `header` overrides the whole Authorization value."""
    headers = {}
    if header is not None:
        headers["Authorization"] = header
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    ws = await websockets.connect(f"ws://127.0.0.1:{server.port}/v1/operator",
                                  extra_headers=headers, **harness.connect_kwargs())
    return Client(ws)


class OperatorTestCase(unittest.IsolatedAsyncioTestCase):
    """A fresh server (and data dir) per test, so each test knows every escalation there is."""

    def make_server(self, *args, token: str | None = TOKEN, **kw) -> Server:
        env = {"CHAT_OPERATOR_TOKEN": token}  # None: removed from the environment
        server = Server(*args, env=env, **kw)
        self.addCleanup(server.cleanup)
        return server.start()

    async def operator(self, server, **kw) -> Client:
        op = await open_operator(server, **kw)
        self.addAsyncCleanup(op.close)
        return op

    async def chat(self, server) -> Client:
        c = await harness.open_client(server)
        self.addAsyncCleanup(c.close)
        return c

    async def stop_async(self, server: Server, sig=signal.SIGTERM) -> None:
        code = await asyncio.to_thread(server.stop, sig, harness.SHUTDOWN_TIMEOUT + 1)
        self.assertEqual(code, 0, f"exit status {code}\n{server.stderr_tail()}")

    def kill9(self, server: Server) -> None:
        self.assertEqual(server.kill9(), -signal.SIGKILL)

    async def escalate(self, client: Client, texts, cid=None) -> tuple[str, dict, float, float]:
        """Play `texts` in a (new, unless `cid`) conversation; the last one must escalate.
        Returns (conversation, escalating reply, time before it was sent, time after)."""
        if cid is None:
            cid = (await client.start())["conversation"]
        for t in texts[:-1]:
            r = await client.message(t, conversation=cid)
            self.assertIs(r["escalated"], False, f"{t!r} escalated already: {r}")
        t0 = time.time()
        r = await client.message(texts[-1], conversation=cid)
        t1 = time.time()
        self.assertIs(r["escalated"], True, f"{texts[-1]!r} did not escalate: {r}")
        return cid, r, t0, t1

    async def recv_escalation(self, op: Client) -> dict:
        f = await op.recv()
        check_escalation(f)
        return f

    def assert_event(self, ev: dict, cid: str, level: str, flags, text: str) -> None:
        self.assertEqual(ev["conversation"], cid, ev)
        self.assertEqual(ev["level"], level, ev)
        self.assertEqual(sorted(ev["flags"]), sorted(flags), ev)
        self.assertEqual(ev["text"], text, ev)


class AccessTest(OperatorTestCase):

    async def test_endpoint_off_without_token_variable(self):
        server = self.make_server(token=None)
        for kw in ({"token": "anything"}, {"token": None}, {"header": "Bearer "}):
            with self.subTest(**kw):
                with self.assertRaises(InvalidStatusCode) as cm:
                    await open_operator(server, **kw)
                self.assertEqual(cm.exception.status_code, 404)
        # Chat still works, escalations included.
        c = await self.chat(server)
        await self.escalate(c, ["I have chest pain"])
        await self.stop_async(server)

    async def test_missing_or_wrong_token_is_401(self):
        server = self.make_server()
        cases = {
            "missing": {"token": None},
            "wrong": {"token": "op-" + os.urandom(16).hex()},
            "prefix": {"token": TOKEN[:-1]},
            "longer": {"token": TOKEN + "x"},
            "case": {"header": f"Bearer {TOKEN.upper()}"},
            "no scheme": {"header": TOKEN},
            "basic": {"header": f"Basic {TOKEN}"},
            "empty bearer": {"header": "Bearer "},
        }
        for name, kw in cases.items():
            with self.subTest(name):
                with self.assertRaises(InvalidStatusCode) as cm:
                    await open_operator(server, **kw)
                self.assertEqual(cm.exception.status_code, 401)
        # The chat endpoint ignores operator credentials; the right token works.
        op = await self.operator(server)
        c = await self.chat(server)
        cid, _, _, _ = await self.escalate(c, ["I have chest pain"])
        ev = await self.recv_escalation(op)
        self.assertEqual(ev["conversation"], cid)
        await self.stop_async(server)


class EventsTest(OperatorTestCase):

    async def test_escalation_fields(self):
        server = self.make_server()
        op = await self.operator(server)
        c = await self.chat(server)

        # Urgent: a "yes" to the screening question affirms the four arm flags.
        cid, r, t0, t1 = await self.escalate(c, [PAIN, "yes"])
        self.assertEqual(r["urgency"], "urgent")
        ev1 = await self.recv_escalation(op)
        self.assert_event(ev1, cid, "urgent", URGENT_FLAGS, "yes")
        self.assertEqual(sorted(ev1["flags"]), sorted(r["red_flags"]))
        at = parse_at(ev1["at"])
        self.assertLessEqual(t0 - 2, at, f"'at' {ev1['at']} is before the message was sent")
        self.assertLessEqual(at, t1 + 2, f"'at' {ev1['at']} is after the reply arrived")

        # The same conversation rising to emergency is a second escalation.
        _, r, _, _ = await self.escalate(c, ["I'm short of breath"], cid=cid)
        ev2 = await self.recv_escalation(op)
        self.assert_event(ev2, cid, "emergency", ["shortness_of_breath"], "I'm short of breath")
        self.assertNotEqual(ev2["id"], ev1["id"])

        # Messages that neither raise the level nor name a new flag produce no event, even
        # repeating a flag.
        for t in ["What is DOMS?", "I'm short of breath"]:
            r = await c.message(t, conversation=cid)
            self.assertIs(r["escalated"], False, r)
            self.assertEqual(r["urgency"], "emergency")
        # A new flag at the level the conversation has is an event (operators must hear of it),
        # though the reply does not say escalated (the level did not rise).
        r = await c.message("I have chest pain", conversation=cid)
        self.assertIs(r["escalated"], False, r)
        ev_new = await self.recv_escalation(op)
        self.assert_event(ev_new, cid, "emergency", ["chest_pain"], "I have chest pain")
        r = await c.message("I have chest pain", conversation=cid)  # not new any more: no event

        # Over HTTP too; the next event is this one (none came for the messages above).
        t0 = time.time()
        r = await asyncio.to_thread(harness.post_json, server, "/v1/messages",
                                    {"text": "I have chest pain"})
        t1 = time.time()
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertIs(body["escalated"], True, body)
        ev3 = await self.recv_escalation(op)
        self.assert_event(ev3, body["conversation"], "emergency", ["chest_pain"], "I have chest pain")
        self.assertLessEqual(t0 - 2, parse_at(ev3["at"]))
        self.assertLessEqual(parse_at(ev3["at"]), t1 + 2)
        self.assertEqual(len({ev1["id"], ev2["id"], ev_new["id"], ev3["id"]}), 4)
        await self.stop_async(server)

    async def test_events_match_escalated_replies(self):
        """Whatever the detector decides, there is one event per reply that escalated or affirmed
        a flag the conversation did not have, and none for any other reply, in order."""
        server = self.make_server()
        op = await self.operator(server)
        c = await self.chat(server)
        script = ["hi", "My friend is short of breath", "I don't have any chest pain", PAIN, "no",
                  "What if I get tingling?", "I have chest pain", "I have chest pain", "thanks"]
        cid = (await c.start())["conversation"]
        expected = []
        affirmed = set()
        for t in script:
            r = await c.message(t, conversation=cid)
            if r["escalated"] or set(r["red_flags"]) - affirmed:
                expected.append((t, r))
            affirmed |= set(r["red_flags"])
        marker_cid, _, _, _ = await self.escalate(c, ["I'm short of breath"])
        for t, r in expected:
            ev = await self.recv_escalation(op)
            self.assert_event(ev, cid, r["urgency"], r["red_flags"], t)
        ev = await self.recv_escalation(op)
        self.assertEqual((ev["conversation"], ev["text"]), (marker_cid, "I'm short of breath"),
                         f"an event came for a reply that did not escalate: {ev}")
        await self.stop_async(server)

    async def test_two_operators_both_receive_live_events(self):
        server = self.make_server()
        ops = [await self.operator(server) for _ in range(3)]
        c = await self.chat(server)
        cid1, _, _, _ = await self.escalate(c, ["I have chest pain"])
        cid2, _, _, _ = await self.escalate(c, [PAIN, "yes"])
        got = [[await self.recv_escalation(op) for _ in range(2)] for op in ops]
        self.assertEqual(got[0], got[1])
        self.assertEqual(got[0], got[2])
        self.assert_event(got[0][0], cid1, "emergency", ["chest_pain"], "I have chest pain")
        self.assert_event(got[0][1], cid2, "urgent", URGENT_FLAGS, "yes")
        await self.stop_async(server)

    async def test_operator_connecting_during_a_stream_gets_each_event_once(self):
        """Escalations keep coming from ten connections while two more operators connect: the
        backlog and the live events together hold every escalation exactly once."""
        server = self.make_server(threads=4)
        op0 = await self.operator(server)
        chats = [await self.chat(server) for _ in range(10)]
        replies_seen = 0
        half = asyncio.Event()

        async def produce(c):
            nonlocal replies_seen
            cids = []
            for _ in range(5):
                cid, _, _, _ = await self.escalate(c, ["I have chest pain"])
                cids.append(cid)
                replies_seen += 1
                if replies_seen == 20:
                    half.set()
            return cids

        async def late_operators():
            await half.wait()
            return [await self.operator(server) for _ in range(2)]

        *produced, late = await asyncio.gather(*(produce(c) for c in chats), late_operators())
        marker, _, _, _ = await self.escalate(chats[0], ["I'm short of breath"])
        all_cids = {cid for cids in produced for cid in cids}
        self.assertEqual(len(all_cids), 50)

        async def until_marker(op):
            events = []
            while True:
                ev = await self.recv_escalation(op)
                if ev["conversation"] == marker:
                    return events
                events.append(ev)

        for name, op in [("op0", op0), ("late op1", late[0]), ("late op2", late[1])]:
            with self.subTest(name):
                events = await until_marker(op)
                ids = [e["id"] for e in events]
                self.assertEqual(len(ids), len(set(ids)), f"{name} got an escalation twice")
                self.assertEqual(sorted(e["conversation"] for e in events), sorted(all_cids),
                                 f"{name} did not get every escalation exactly once")
        await self.stop_async(server)

    async def test_backlog_oldest_first_then_live(self):
        server = self.make_server()
        c1 = await self.chat(server)
        c2 = await self.chat(server)
        # Three escalations with no operator connected, from two connections.
        a, _, _, _ = await self.escalate(c1, ["I have chest pain"])
        b, _, _, _ = await self.escalate(c2, [PAIN, "yes"])
        _, _, _, _ = await self.escalate(c1, ["I'm short of breath"], cid=b)
        want = [(a, "emergency", ["chest_pain"], "I have chest pain"),
                (b, "urgent", URGENT_FLAGS, "yes"),
                (b, "emergency", ["shortness_of_breath"], "I'm short of breath")]
        op1 = await self.operator(server)
        backlog1 = [await self.recv_escalation(op1) for _ in want]
        for ev, w in zip(backlog1, want):
            self.assert_event(ev, *w)
        # Another operator gets the same backlog (nothing was acknowledged).
        op2 = await self.operator(server)
        backlog2 = [await self.recv_escalation(op2) for _ in want]
        self.assertEqual(backlog2, backlog1)
        # Then live events, after the backlog and nothing else before them.
        d, _, _, _ = await self.escalate(c2, ["I'm short of breath"])
        for op in (op1, op2):
            ev = await self.recv_escalation(op)
            self.assert_event(ev, d, "emergency", ["shortness_of_breath"], "I'm short of breath")
        await self.stop_async(server)


class AckTest(OperatorTestCase):

    async def recv_acked(self, op: Client, id_: int) -> None:
        f = await op.recv()
        self.assertEqual((f["type"], f["id"], f["by"]), ("acked", id_, "operator"), f)  # CHAT_OPERATOR_TOKEN: unnamed
        self.assertIsInstance(f["conversation"], str)

    async def test_ack_goes_to_all_and_survives_restart(self):
        server = self.make_server()
        op1 = await self.operator(server)
        op2 = await self.operator(server)
        c = await self.chat(server)
        a, _, _, _ = await self.escalate(c, ["I have chest pain"])
        b, _, _, _ = await self.escalate(c, [PAIN, "yes"])
        e1 = [await self.recv_escalation(op1) for _ in range(2)]
        self.assertEqual([await self.recv_escalation(op2) for _ in range(2)], e1)
        self.assertEqual([e["conversation"] for e in e1], [a, b])

        await op1.send({"type": "ack", "id": e1[0]["id"]})
        await self.recv_acked(op1, e1[0]["id"])
        await self.recv_acked(op2, e1[0]["id"])
        # The person's connection is told that someone has seen it (a notice, for that conversation only).
        notice = await c.recv_type("notice")
        self.assertEqual((notice["conversation"], notice["notice"]), (a, "escalation_acknowledged"))
        self.assertNotIn("key", notice)

        # An operator connecting now gets only the unacknowledged one, then live events.
        op3 = await self.operator(server)
        ev = await self.recv_escalation(op3)
        self.assertEqual(ev, e1[1])
        m, _, _, _ = await self.escalate(c, ["I'm short of breath"])
        marker = [await self.recv_escalation(op) for op in (op1, op2, op3)]
        self.assertEqual(marker[0], marker[1])
        self.assertEqual(marker[0], marker[2])
        self.assert_event(marker[0], m, "emergency", ["shortness_of_breath"], "I'm short of breath")
        await op3.close()
        await op2.close()
        await op1.close()
        await c.close()

        # kill -9 right away: the ack was confirmed, so it must be durable.
        self.kill9(server)
        server.restart()
        op4 = await self.operator(server)
        backlog = [await self.recv_escalation(op4) for _ in range(2)]
        self.assertEqual(backlog, [e1[1], marker[0]],
                         "after a restart: every unacknowledged escalation, the acked one not")
        c = await self.chat(server)
        n, _, _, _ = await self.escalate(c, ["I have chest pain"])
        ev = await self.recv_escalation(op4)
        self.assert_event(ev, n, "emergency", ["chest_pain"], "I have chest pain")
        self.assertNotIn(ev["id"], {e1[0]["id"], e1[1]["id"], marker[0]["id"]},
                         "an escalation id was reused after the restart")

        # Acks after the restart, then a clean restart: nothing left.
        for e in backlog + [ev]:
            await op4.send({"type": "ack", "id": e["id"]})
            await self.recv_acked(op4, e["id"])
        await op4.close()
        await c.close()
        await self.stop_async(server)
        server.restart()
        op5 = await self.operator(server)
        c = await self.chat(server)
        last, _, _, _ = await self.escalate(c, [PAIN, "yes"])
        ev = await self.recv_escalation(op5)
        self.assert_event(ev, last, "urgent", URGENT_FLAGS, "yes")
        await self.stop_async(server)

    async def test_escalation_just_before_kill9_reaches_operator_after_restart(self):
        server = self.make_server()
        op = await self.operator(server)
        c = await self.chat(server)
        a, _, _, _ = await self.escalate(c, [PAIN, "yes"])
        live = await self.recv_escalation(op)
        self.assert_event(live, a, "urgent", URGENT_FLAGS, "yes")
        # No operator sees the next one before the kill, necessarily: kill on the reply.
        b, r, _, _ = await self.escalate(c, ["I have chest pain"])
        self.kill9(server)
        await op.close()
        await c.close()

        server.restart()
        op2 = await self.operator(server)
        backlog = [await self.recv_escalation(op2) for _ in range(2)]
        self.assertEqual(backlog[0], live, "the same escalation, same id and fields, after restart")
        self.assert_event(backlog[1], b, "emergency", ["chest_pain"], "I have chest pain")
        # The conversation itself is escalated too.
        c = await self.chat(server)
        started = await c.start(resume=b)
        self.assertEqual(started["urgency"], "emergency")
        await self.stop_async(server)

    async def test_ack_errors_and_malformed_frames_keep_the_connection(self):
        server = self.make_server()
        op = await self.operator(server)
        other = await self.operator(server)
        c = await self.chat(server)
        cases = [
            ("not json", "bad_json"),
            ("{", "bad_json"),
            ("[1, 2]", "bad_json"),
            ("", "bad_json"),
            ({"id": 1}, "bad_request"),
            ({"type": 5}, "bad_request"),
            ({"type": "ack"}, "bad_request"),
            ({"type": "ack", "id": "1"}, "bad_request"),
            ({"type": "ack", "id": None}, "bad_request"),
            ({"type": "ack", "id": 1.5}, "bad_request"),
            ({"type": "ack", "id": 987654321}, "bad_request"),  # unknown id
            ({"type": "ack", "id": -1}, "bad_request"),
            ({"type": "dance"}, "unknown_type"),
            ({"type": "ACK", "id": 1}, "unknown_type"),
            ({"type": "message", "text": "hi"}, "unknown_type"),  # chat frames are not operator frames
        ]
        for frame, code in cases:
            with self.subTest(frame=frame):
                await op.send(frame)
                await op.expect_error(code)
        # Still usable: receives a live event and acks it.
        a, _, _, _ = await self.escalate(c, ["I have chest pain"])
        ev = await self.recv_escalation(op)
        self.assert_event(ev, a, "emergency", ["chest_pain"], "I have chest pain")
        self.assertEqual(await self.recv_escalation(other), ev)
        await op.send({"type": "ack", "id": ev["id"]})
        await self.recv_acked(op, ev["id"])
        await self.recv_acked(other, ev["id"])
        # The errors went only to the operator that sent the bad frames: the other one got the
        # event and the acked as its first two frames. An unknown id is still rejected.
        await op.send({"type": "ack", "id": ev["id"] + 1000000})
        await op.expect_error("bad_request")
        self.assertTrue(server.alive())
        await self.stop_async(server)


if __name__ == "__main__":
    harness.main()
