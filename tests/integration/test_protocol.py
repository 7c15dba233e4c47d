"""Protocol v1 over WebSocket: every message type and field, multiplexing, resume, cross-socket use.

Run: /usr/bin/python3 tests/integration/test_protocol.py --server build/chat-server
"""

import asyncio

import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import harness  # noqa: E402
from harness import ServerTestCase, collect_replies

PAIN = "My upper back hurts after my workout yesterday"


class ProtocolTest(ServerTestCase):
    # Generous rate limits: these tests are about the protocol, not the limits.
    server_args = ("--rate", "1000", "--burst", "1000")

    # -- start ------------------------------------------------------------------------------

    async def test_start_new_conversation(self):
        async with self.connect() as c:
            started = await c.start()
            self.assertEqual(started["resumed"], False)
            self.assertEqual(started["history"], [])
            self.assertEqual(started["state"], "welcome")
            self.assertEqual(started["urgency"], "none")

    async def test_conversation_ids_are_unique_and_unguessable(self):
        ids = set()
        for _ in range(4):
            async with self.connect() as c:
                for _ in range(8):
                    started = await c.start()
                    ids.add(started["conversation"])
        self.assertEqual(len(ids), 32, "every start must yield a new conversation id")
        for cid in ids:
            # >= 128 bits: 22+ base64url characters or 32+ hex digits.
            if all(ch in "0123456789abcdefABCDEF" for ch in cid):
                self.assertGreaterEqual(len(cid), 32, cid)
            else:
                self.assertGreaterEqual(len(cid), 22, cid)

    # -- message ----------------------------------------------------------------------------

    async def test_message_without_conversation_starts_one(self):
        async with self.connect() as c:
            await c.send({"type": "message", "text": "hi", "ref": "first"})
            started = await c.recv_type("started")
            harness.check_started(started)
            self.assertFalse(started["resumed"])
            self.assertEqual(started["history"], [])
            reply = await c.recv_type("reply")
            harness.check_reply(reply)
            self.assertEqual(reply["conversation"], started["conversation"])
            self.assertEqual(reply["seq"], 1)
            self.assertEqual(reply["ref"], "first")
            self.assertEqual(reply["intent"], "greeting")
            self.assertEqual(reply["state"], "welcome")
            self.assertEqual(reply["urgency"], "none")
            self.assertEqual(reply["red_flags"], [])
            self.assertIs(reply["escalated"], False)
            self.assertTrue(reply["quick_replies"], "a greeting offers quick replies")
            # The connection now has exactly one conversation: omitting the field goes to it.
            reply2 = await c.message("What is DOMS?")
            self.assertEqual(reply2["conversation"], started["conversation"])
            self.assertEqual(reply2["seq"], 2)

    async def test_reply_fields_and_seq(self):
        async with self.connect() as c:
            cid = (await c.start())["conversation"]
            r1 = await c.message("hi", conversation=cid, ref="a")
            self.assertEqual((r1["seq"], r1["ref"], r1["intent"]), (1, "a", "greeting"))
            r2 = await c.message("What is DOMS?", conversation=cid, ref="b")
            self.assertEqual((r2["seq"], r2["ref"], r2["intent"]), (2, "b", "doms"))
            self.assertTrue(r2["sources"], "a knowledge answer cites its sources")
            for s in r2["sources"]:
                self.assertTrue(s["section"] and s["quote"], s)
            self.assertRegex(r2["text"].lower(), r"24 to 72|24.72")
            r3 = await c.message("thanks a lot", conversation=cid)
            self.assertEqual(r3["seq"], 3)
            self.assertNotIn("ref", r3, "ref is echoed only when the message had one")

    async def test_ref_is_echoed_verbatim(self):
        async with self.connect() as c:
            cid = (await c.start())["conversation"]
            for i, ref in enumerate(["", "x" * 256, "ünïcödé ✓ 🙂", "with \"quotes\" and \\ and \n"]):
                r = await c.message("hi", conversation=cid, ref=ref)
                self.assertEqual(r["ref"], ref)
                self.assertEqual(r["seq"], i + 1)

    async def test_unicode_text(self):
        async with self.connect() as c:
            cid = (await c.start())["conversation"]
            r = await c.message("Hi 👋 — my “upper back” hurts 🙁", conversation=cid)
            self.assertEqual(r["seq"], 1)

    async def test_screening_then_yes_escalates(self):
        async with self.connect() as c:
            cid = (await c.start())["conversation"]
            r1 = await c.message(PAIN, conversation=cid)
            self.assertEqual(r1["intent"], "describe_pain")
            self.assertEqual(r1["state"], "screening")
            self.assertEqual(r1["urgency"], "none")
            self.assertIs(r1["escalated"], False)
            r2 = await c.message("yes", conversation=cid)
            self.assertEqual(r2["state"], "escalated")
            self.assertEqual(r2["urgency"], "urgent")
            self.assertIs(r2["escalated"], True)
            self.assertTrue(r2["red_flags"], "a yes to a screening question affirms its flags")
            # Urgency never goes down; only the message that raised it is `escalated`.
            r3 = await c.message("What is DOMS?", conversation=cid)
            self.assertEqual(r3["intent"], "doms")
            self.assertEqual(r3["state"], "escalated")
            self.assertEqual(r3["urgency"], "urgent")
            self.assertIs(r3["escalated"], False)
            self.assertEqual(r3["red_flags"], [])

    async def test_emergency_red_flag(self):
        async with self.connect() as c:
            r = await c.message("I'm short of breath", ref="sob")
            self.assertEqual(r["seq"], 1)
            self.assertEqual(r["urgency"], "emergency")
            self.assertEqual(r["red_flags"], ["shortness_of_breath"])
            self.assertIs(r["escalated"], True)
            self.assertRegex(r["text"].lower(), "emergency")

    # -- end --------------------------------------------------------------------------------

    async def test_end(self):
        async with self.connect() as c:
            cid = (await c.start())["conversation"]
            await c.message("hi", conversation=cid)
            await c.send({"type": "end", "conversation": cid})
            ended = await c.recv_type("ended")
            self.assertEqual(ended["conversation"], cid)
            # The connection stays usable.
            cid2 = (await c.start())["conversation"]
            self.assertNotEqual(cid2, cid)
            r = await c.message("hi", conversation=cid2)
            self.assertEqual(r["seq"], 1)

    # -- multiplexing -----------------------------------------------------------------------

    async def test_multiplexing_conversations_on_one_socket(self):
        async with self.connect() as c:
            a = (await c.start())["conversation"]
            b = (await c.start())["conversation"]
            d = (await c.start())["conversation"]
            self.assertEqual(len({a, b, d}), 3)
            # Interleave without waiting; replies for different conversations may come in any order.
            plan = [(a, PAIN, "a1"), (b, "hi", "b1"), (d, "I'm short of breath", "d1"),
                    (a, "yes", "a2"), (b, "What is DOMS?", "b2"), (d, "What is DOMS?", "d2")]
            for conv, text, ref in plan:
                await c.send({"type": "message", "conversation": conv, "text": text, "ref": ref})
            got, frames = await collect_replies(c, [ref for _, _, ref in plan])
            self.assertEqual(len(frames), len(plan), f"unexpected extra frames: {frames}")
            for conv, _, ref in plan:
                self.assertEqual(got[ref]["type"], "reply", got[ref])
                harness.check_reply(got[ref])
                self.assertEqual(got[ref]["conversation"], conv, got[ref])
            self.assertEqual([got["a1"]["seq"], got["a2"]["seq"]], [1, 2])
            self.assertEqual([got["b1"]["seq"], got["b2"]["seq"]], [1, 2])
            self.assertEqual([got["d1"]["seq"], got["d2"]["seq"]], [1, 2])
            # Each conversation keeps its own state.
            self.assertEqual(got["a1"]["state"], "screening")
            self.assertEqual((got["a2"]["state"], got["a2"]["urgency"]), ("escalated", "urgent"))
            self.assertEqual(got["b1"]["intent"], "greeting")
            self.assertEqual((got["b2"]["intent"], got["b2"]["urgency"]), ("doms", "none"))
            self.assertNotEqual(got["b2"]["state"], "escalated")
            self.assertEqual(got["d1"]["urgency"], "emergency")
            self.assertEqual((got["d2"]["urgency"], got["d2"]["state"]), ("emergency", "escalated"))
            # Several conversations: a message must name one.
            await c.send({"type": "message", "text": "hi", "ref": "which"})
            await c.expect_error("bad_request", ref="which")
            r = await c.message("thanks", conversation=b)
            self.assertEqual(r["seq"], 3)

    async def test_conversation_usable_from_another_connection(self):
        async with self.connect() as c1, self.connect() as c2:
            cid = (await c1.start())["conversation"]
            r1 = await c1.message(PAIN, conversation=cid)
            r2 = await c2.message("yes", conversation=cid, ref="other-socket")
            self.assertEqual(r2["seq"], r1["seq"] + 1)
            self.assertEqual(r2["state"], "escalated")
            self.assertEqual(r2["urgency"], "urgent")
            r3 = await c1.message("What is DOMS?", conversation=cid)
            self.assertEqual(r3["seq"], 3)
            self.assertEqual(r3["urgency"], "urgent")

    # -- resume -----------------------------------------------------------------------------

    async def test_resume_after_reconnect(self):
        texts = [PAIN, "no"]
        async with self.connect() as c:
            cid = (await c.start())["conversation"]
            replies = [await c.message(t, conversation=cid) for t in texts]
        self.assertEqual(replies[-1]["state"], "screening")
        async with self.connect() as c:
            started = await c.start(resume=cid)
            self.assertEqual(started["conversation"], cid)
            self.assertIs(started["resumed"], True)
            self.assertEqual(started["state"], replies[-1]["state"])
            self.assertEqual(started["urgency"], replies[-1]["urgency"])
            expected = []
            for t, r in zip(texts, replies):
                expected.append({"role": "user", "text": t, "seq": r["seq"]})
                expected.append({"role": "assistant", "text": r["text"], "seq": r["seq"]})
            got = [{k: turn.get(k) for k in ("role", "text", "seq")} for turn in started["history"]]
            self.assertEqual(got, expected)
            # The resumed conversation continues where it was: next seq, screening goes on.
            r = await c.message("nope", conversation=cid)
            self.assertEqual(r["seq"], 3)
            self.assertEqual(r["state"], "screening")
            # With exactly one conversation on this socket, the field may be omitted.
            r = await c.message("no")
            self.assertEqual((r["conversation"], r["seq"], r["state"]), (cid, 4, "advising"))

    async def escalated_conversation(self):
        """A conversation escalated at the urgent level (pain, then yes to the arm question), its
        socket closed; returns its id."""
        async with self.connect() as c:
            cid = (await c.start())["conversation"]
            await c.message(PAIN, conversation=cid)
            r = await c.message("yes", conversation=cid)
            self.assertEqual(r["urgency"], "urgent")
        return cid

    async def test_resume_keeps_escalation(self):
        cid = await self.escalated_conversation()
        async with self.connect() as c:
            started = await c.start(resume=cid)
            self.assertIs(started["resumed"], True)
            self.assertEqual((started["state"], started["urgency"]), ("escalated", "urgent"))
            self.assertEqual([t["role"] for t in started["history"]], ["user", "assistant"] * 2)
            self.assertEqual([t["seq"] for t in started["history"]], [1, 1, 2, 2])
            r = await c.message("I'm short of breath", conversation=cid)
            self.assertEqual((r["seq"], r["urgency"], r["escalated"]), (3, "emergency", True))

    async def test_resume_while_other_socket_open(self):
        async with self.connect() as c1, self.connect() as c2:
            cid = (await c1.start())["conversation"]
            r1 = await c1.message("hi", conversation=cid)
            started = await c2.start(resume=cid)
            self.assertIs(started["resumed"], True)
            self.assertEqual(len(started["history"]), 2)
            self.assertEqual(started["history"][1]["text"], r1["text"])
            r2 = await c2.message("What is DOMS?", conversation=cid)
            self.assertEqual(r2["seq"], 2)

    async def test_resume_conversation_started_implicitly(self):
        async with self.connect() as c:
            await c.send({"type": "message", "text": "hi"})
            cid = (await c.recv_type("started"))["conversation"]
            await c.recv_type("reply")
        async with self.connect() as c:
            started = await c.start(resume=cid)
            self.assertEqual([(t["role"], t["seq"]) for t in started["history"]],
                             [("user", 1), ("assistant", 1)])
            self.assertEqual(started["history"][0]["text"], "hi")

    # -- welcome and banners (SPEC 6.1: content in one place) --------------------------------

    def assertWelcomeFromKb(self, started):
        text, quick_replies = harness.kb_welcome()
        self.assertIn("welcome", started, f"a new conversation's started carries the welcome: {started}")
        self.assertEqual(started["welcome"]["text"], text, "welcome text is flow.jsonc's greeting")
        self.assertTrue(started["welcome"]["quick_replies"], "the welcome offers quick replies")
        self.assertEqual(started["welcome"]["quick_replies"], quick_replies,
                         "welcome quick replies are flow.jsonc's 'welcome' list")

    def assertBannersFromKb(self, started):
        expected = harness.kb_banners()
        self.assertTrue(expected, "red_flags.jsonc guidance has levels above none")
        self.assertEqual(started["banners"], expected, "banners are red_flags.jsonc's guidance banners")
        for level in expected:
            self.assertTrue(started["banners"][level].strip(), f"empty banner for {level}")

    async def test_new_conversation_started_carries_the_welcome_and_banners(self):
        async with self.connect() as c:
            started = await c.start()
            self.assertIs(started["resumed"], False)
            self.assertWelcomeFromKb(started)
            self.assertBannersFromKb(started)

    async def test_implicitly_started_conversation_carries_the_welcome(self):
        async with self.connect() as c:
            await c.send({"type": "message", "text": "hi"})
            started = await c.recv_type("started")
            harness.check_started(started)
            self.assertWelcomeFromKb(started)
            self.assertBannersFromKb(started)
            await c.recv_type("reply")

    async def test_resumed_started_has_banners_but_no_welcome(self):
        cid = await self.escalated_conversation()
        async with self.connect() as c:
            started = await c.start(resume=cid)
            self.assertIs(started["resumed"], True)
            self.assertNotIn("welcome", started, "a resumed conversation shows its history, not the welcome")
            self.assertBannersFromKb(started)
            # The banner a client keeps on screen for this conversation's level.
            self.assertTrue(started["banners"][started["urgency"]].strip())

    # -- protocol edge cases ----------------------------------------------------------------

    async def test_many_conversations_many_sockets_concurrently(self):
        async def one_socket(k: int):
            async with self.connect() as c:
                convs = [(await c.start())["conversation"] for _ in range(3)]
                refs = []
                for i in range(10):
                    for j, conv in enumerate(convs):
                        ref = f"{k}-{j}-{i}"
                        refs.append(ref)
                        await c.send({"type": "message", "conversation": conv, "text": "hi", "ref": ref})
                got, _ = await collect_replies(c, refs)
                for j, conv in enumerate(convs):
                    seqs = [got[f"{k}-{j}-{i}"]["seq"] for i in range(10)]
                    self.assertEqual(seqs, list(range(1, 11)), f"socket {k} conversation {j}")
                    for i in range(10):
                        self.assertEqual(got[f"{k}-{j}-{i}"]["conversation"], conv)

        await asyncio.gather(*(one_socket(k) for k in range(6)))


if __name__ == "__main__":
    harness.main()
