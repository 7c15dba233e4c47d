"""Handoff (issue 16 item 3): an operator claims a conversation, joins it (the assistant stops
answering: the person's messages go to the operator as user_message, the person gets `received`),
writes to the person (operator_message), and leaves (the assistant answers again). The red-flag
layer runs on every message during the handoff: a new flag still escalates at once, with the
guidance. The person is told of the claim (a notice) and of the join and leave (handoff frames);
the history keeps the operator's turns (role operator), also after a restart.

Run: /usr/bin/python3 tests/integration/test_handoff.py --server build/chat-server
"""

import json
import time
import unittest

import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import websockets  # noqa: E402

import harness  # noqa: E402
from harness import Client, Server  # noqa: E402
from test_operator_accounts import AccountsTestCase  # noqa: E402

PAIN = "My upper back hurts after my workout yesterday"


class HandoffTest(AccountsTestCase):
    """Operators alice and bob (AccountsTestCase), one server for each test."""

    def setUp(self):
        super().setUp()
        self.server = self.make_server()

    async def operator(self, token) -> Client:
        ws = await websockets.connect(f"ws://127.0.0.1:{self.server.port}/v1/operator",
                                      extra_headers={"Authorization": f"Bearer {token}"}, **harness.connect_kwargs())
        client = Client(ws)
        self.addAsyncCleanup(client.close)
        return client

    async def person(self) -> Client:
        client = await harness.open_client(self.server)
        self.addAsyncCleanup(client.close)
        return client

    async def test_claim_join_write_leave_with_the_safety_layer_on(self):
        self.started_ms = time.time() * 1000
        person = await self.person()
        cid = (await person.start())["conversation"]
        first = await person.message(PAIN, conversation=cid)
        self.assertTrue(first["text"])
        alice, bob = await self.operator(self.alice), await self.operator(self.bob)

        await alice.send({"type": "claim", "conversation": cid})
        for op in (alice, bob):
            claimed = await op.recv_type("claimed")
            self.assertEqual((claimed["conversation"], claimed["operator"]), (cid, "alice"))
        notice = await person.recv_type("notice")
        self.assertEqual((notice["conversation"], notice["notice"]), (cid, "escalation_claimed"))

        await alice.send({"type": "join", "conversation": cid})
        for op in (alice, bob):
            self.assertEqual((await op.recv_type("joined"))["operator"], "alice")
        handoff = await person.recv_type("handoff")
        self.assertEqual((handoff["event"], handoff["operator"]), ("joined", "alice"))
        # A reloaded page learns who is with the person from `started`.
        reloaded = await self.person()
        self.assertEqual((await reloaded.start(resume=cid)).get("operator"), "alice")
        await reloaded.close()

        # The person's answer goes to Alice; the assistant says nothing.
        await person.send({"type": "message", "conversation": cid, "text": "no", "ref": "r1"})
        received = await person.recv_type("received")
        self.assertEqual((received["conversation"], received["seq"], received["ref"]), (cid, 2, "r1"))
        message = await alice.recv_type("user_message")
        self.assertEqual((message["conversation"], message["text"], message["seq"]), (cid, "no", 2))
        self.assertFalse(message["escalated"])

        await alice.send({"type": "say", "conversation": cid, "text": "Hi, I am Alice from the clinic."})
        said = await alice.recv_type("said")
        self.assertEqual(said["seq"], 3)
        written = await person.recv_type("operator_message")
        self.assertEqual((written["text"], written["operator"], written["seq"]),
                         ("Hi, I am Alice from the clinic.", "alice", 3))

        # Bob cannot take over nor write while Alice is in.
        await bob.send({"type": "join", "conversation": cid})
        self.assertIn("alice", (await bob.expect_error("bad_request"))["message"])
        await bob.send({"type": "say", "conversation": cid, "text": "hello"})
        await bob.expect_error("bad_request")

        # A red flag during the handoff is answered at once, and escalates.
        urgent = await person.message("I have chest pain", conversation=cid)
        self.assertTrue(urgent["escalated"])
        self.assertEqual(urgent["urgency"], "emergency")
        self.assertTrue(urgent["text"])
        frames = {f["type"]: f for f in [await alice.recv(), await alice.recv()]}  # either order
        self.assertEqual(set(frames), {"user_message", "escalation"})
        self.assertTrue(frames["user_message"]["escalated"])
        self.assertEqual(frames["user_message"]["urgency"], "emergency")
        self.assertEqual(frames["escalation"]["conversation"], cid)
        # Another emergency flag: the level cannot rise, yet it is a new escalation, and the
        # person gets the guidance at once.
        again = await person.message("I am coughing up blood", conversation=cid)
        self.assertEqual((again["escalated"], again["urgency"], again["red_flags"]), (False, "emergency", ["coughing_blood"]))
        self.assertTrue(again["text"])
        frames = {f["type"]: f for f in [await alice.recv(), await alice.recv()]}
        self.assertEqual(set(frames), {"user_message", "escalation"})
        self.assertEqual((frames["escalation"]["flags"], frames["escalation"]["level"]), (["coughing_blood"], "emergency"))
        self.assertTrue(frames["user_message"]["escalated"], "the operator is told the message escalated")

        await alice.send({"type": "leave", "conversation": cid})
        self.assertEqual((await alice.recv_type("left"))["operator"], "alice")
        self.assertEqual((await person.recv_type("handoff"))["event"], "left")
        after = await person.message("what should I do now?", conversation=cid)
        self.assertTrue(after["text"], "the assistant answers again")

        # The history keeps who said what, also after a restart.
        # Bob acknowledges the escalations, with a note on the first.
        for note in ("Alice phoned them; ambulance on the way", ""):
            ack = {"type": "ack", "id": (await bob.recv_type("escalation"))["id"]}
            await bob.send({**ack, "note": note} if note else ack)
        acked = 0
        while acked < 2:  # after Alice's `left`, which Bob hears of too
            frame = await bob.recv()
            self.assertIn(frame["type"], ("left", "acked"), frame)
            acked += frame["type"] == "acked"

        expected = [("user", 1, None), ("assistant", 1, None), ("user", 2, None), ("operator", 3, "alice"),
                    ("user", 4, None), ("assistant", 4, None), ("user", 5, None), ("assistant", 5, None),
                    ("user", 6, None), ("assistant", 6, None)]
        # Every operator's action, in order, with who, when and after which turn (the audit).
        audited = [("claim", "alice", 1, ""), ("join", "alice", 1, ""), ("say", "alice", 3, ""),
                   ("leave", "alice", 5, ""), ("ack", "bob", 6, "Alice phoned them; ambulance on the way"),
                   ("ack", "bob", 6, "")]
        for restart in (False, True):
            with self.subTest(restart=restart):
                if restart:
                    self.server.stop_and_check()
                    self.server.restart()
                other = await self.person()
                started = await other.start(resume=cid)
                got = [(e["role"], e["seq"], e.get("operator")) for e in started["history"]]
                self.assertEqual(got, expected)
                r = harness.http_request(self.server, "GET", f"/v1/operator/conversations/{cid}",
                                         headers={"Authorization": f"Bearer {self.bob}"})
                self.assertEqual(r.status, 200, r)
                actions = json.loads(r.body)["actions"]
                self.assertEqual([(a["action"], a["operator"], a["seq"], a.get("note", "")) for a in actions], audited)
                self.assertTrue(all(self.started_ms <= a["at"] <= time.time() * 1000 for a in actions), actions)
                self.assertEqual(len({a["escalation"] for a in actions if a["action"] == "ack"}), 2)

    async def test_the_answers_to_an_operator_echo_its_ref_and_what_every_operator_hears_carries_none(self):
        person = await self.person()
        cid = (await person.start())["conversation"]
        await person.message("I have a fever", conversation=cid)  # an escalation, for the ack below
        alice, bob = await self.operator(self.alice), await self.operator(self.bob)
        escalation = await alice.recv_type("escalation")
        self.assertEqual((await bob.recv_type("escalation"))["id"], escalation["id"])

        await bob.send({"type": "join", "conversation": cid, "ref": "bob-1"})
        for op in (alice, bob):
            joined = await op.recv_type("joined")
            self.assertEqual((joined["conversation"], joined["operator"]), (cid, "bob"))
            self.assertNotIn("ref", joined, "a broadcast carries nobody's ref, not even the sender's")

        # Two of Alice's actions in flight at once; the second is refused (Bob has joined): the
        # error names that one, by its ref, and its conversation.
        await alice.send_batch([{"type": "claim", "conversation": cid, "ref": "alice-1"},
                                {"type": "join", "conversation": cid, "ref": "alice-2"}])
        frames = {f["type"]: f for f in [await alice.recv(), await alice.recv()]}
        self.assertEqual(set(frames), {"claimed", "error"}, frames)
        error = frames["error"]
        self.assertEqual((error["code"], error["ref"], error["conversation"]), ("bad_request", "alice-2", cid), error)
        self.assertIn("bob", error["message"])
        self.assertNotIn("ref", frames["claimed"])
        claimed = await bob.recv_type("claimed")
        self.assertEqual(claimed["operator"], "alice")
        self.assertNotIn("ref", claimed, "Bob is not told Alice's ref")

        # `said` goes to the writer alone, with its ref and the text written.
        await bob.send({"type": "say", "conversation": cid, "text": "Hello, Bob here.", "ref": "bob-2"})
        said = await bob.recv_type("said")
        self.assertEqual({k: said.get(k) for k in ("conversation", "operator", "text", "ref")},
                         {"conversation": cid, "operator": "bob", "text": "Hello, Bob here.", "ref": "bob-2"})
        written = await person.recv()
        while written["type"] != "operator_message":  # the join's notice and handoff come first
            self.assertIn(written["type"], ("notice", "handoff"), written)
            written = await person.recv()
        self.assertEqual((written["text"], written["seq"]), ("Hello, Bob here.", said["seq"]))
        await bob.send({"type": "say", "conversation": cid, "text": "No ref this time."})
        said = await bob.recv_type("said")
        self.assertEqual(said["text"], "No ref this time.")
        self.assertNotIn("ref", said)

        # A malformed frame keeps its ref (and the conversation it named); an ack of no open
        # escalation keeps its ref, and names no conversation (none is known); a bad ref is
        # itself a bad_request, with nothing echoed.
        await alice.send({"type": "say", "conversation": cid, "text": " ", "ref": "alice-3"})
        error = await alice.expect_error("bad_request", ref="alice-3")
        self.assertEqual(error["conversation"], cid)
        await alice.send({"type": "ack", "id": escalation["id"] + 1000, "ref": "alice-4"})
        error = await alice.expect_error("bad_request", ref="alice-4")
        self.assertNotIn("conversation", error)
        for ref in (7, "r" * 257, {"a": 1}):
            with self.subTest(ref=ref):
                await alice.send({"type": "claim", "conversation": cid, "ref": ref})
                self.assertIn("ref", (await alice.expect_error("bad_request", ref=None))["message"])
        await alice.send({"type": "ack", "id": escalation["id"], "ref": "alice-5"})
        for op in (alice, bob):
            acked = await op.recv_type("acked")
            self.assertEqual(acked["id"], escalation["id"])
            self.assertNotIn("ref", acked)

    async def test_a_frame_for_an_unknown_conversation_or_a_malformed_one_is_an_error(self):
        alice = await self.operator(self.alice)
        await alice.send({"type": "join", "conversation": "A" * 22})
        await alice.expect_error("unknown_conversation")
        for frame in ({"type": "join"}, {"type": "say", "conversation": "x"}, {"type": "say", "conversation": "x", "text": " "},
                      {"type": "leave", "conversation": 7}, {"type": "wave", "conversation": "x"}):
            with self.subTest(frame=frame):
                await alice.send(frame)
                error = await alice.recv_type("error")
                self.assertIn(error["code"], ("bad_request", "unknown_type"))


class EmergencyNumberTest(unittest.IsolatedAsyncioTestCase):
    """--emergency-number: `started` carries it, so the widget's emergency banner can offer the call."""

    async def test_started_carries_the_number_only_when_it_is_set(self):
        for args, expected in ((("--emergency-number", "112"), "112"), ((), None)):
            with self.subTest(args=args):
                server = Server(*args)
                self.addCleanup(server.cleanup)
                server.start()
                client = await harness.open_client(server)
                started = await client.start()
                self.assertEqual(started.get("emergency_number"), expected)
                self.assertNotIn("operator", started)
                await client.close()
                server.stop_and_check()

    def test_a_number_that_is_not_one_is_refused(self):
        for number in ("call 112", "1-1-2", "", "11+2"):
            with self.subTest(number=number):
                server = Server("--emergency-number", number)
                self.addCleanup(server.cleanup)
                code, err = server.start_expect_failure()
                self.assertNotEqual(code, 0)
                self.assertIn("emergency-number", err)


if __name__ == "__main__":
    harness.main()
