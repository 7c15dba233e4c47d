"""Strict per-conversation ordering: bursts on one socket, and one conversation fed from two sockets.

Run: /usr/bin/python3 tests/integration/test_ordering.py --server build/chat-server
"""

import asyncio

import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import harness  # noqa: E402
from harness import LEVELS, ServerTestCase, collect_replies

# A mix of texts, including ones that move the conversation through screening and escalation,
# so that ordering mistakes also show up as impossible state sequences.
TEXTS = ["hi", "What is DOMS?", "Should I use ice or heat?", "thanks a lot", "What can you do?",
         "Which muscles are usually involved?"]


class OrderingTest(ServerTestCase):
    # Limits out of the way: these tests are about ordering. (--max-queued-frames is raised because
    # the server may read a whole burst before its first write completes; see
    # test_errors_and_limits.py BurstWithDefaultLimitsTest for a burst against the default.)
    server_args = ("--rate", "100000", "--burst", "100000",
                   "--max-conversations-per-connection", "100", "--max-queued-frames", "100000")

    def check_in_order(self, replies, refs, conversation):
        self.assertEqual([r["type"] for r in replies], ["reply"] * len(replies),
                         [r for r in replies if r["type"] != "reply"][:3])
        self.assertEqual([r.get("ref") for r in replies], refs, "replies out of order")
        self.assertEqual([r["seq"] for r in replies], list(range(1, len(refs) + 1)))
        for r in replies:
            harness.check_reply(r)
            self.assertEqual(r["conversation"], conversation)
        levels = [LEVELS.index(r["urgency"]) for r in replies]
        self.assertEqual(levels, sorted(levels), "urgency went down: messages handled out of order")

    async def test_burst_of_100_in_order(self):
        async with self.connect() as c:
            cid = (await c.start())["conversation"]
            refs = [str(i) for i in range(100)]
            texts = []
            for i, ref in enumerate(refs):
                text = TEXTS[i % len(TEXTS)]
                if i == 50:
                    text = "I'm short of breath"
                texts.append(text)
                await c.send({"type": "message", "conversation": cid, "text": text, "ref": ref})
            replies = [await c.recv() for _ in refs]
            self.check_in_order(replies, refs, cid)
            self.assertEqual(replies[49]["urgency"], "none")
            self.assertEqual((replies[50]["urgency"], replies[50]["escalated"]), ("emergency", True))
            self.assertEqual(replies[99]["urgency"], "emergency")
            # The history records the same order; it comes in pages (--max-history-turns, 50 by
            # default), the earlier ones by history_before.
        async with self.connect() as c:
            started = await c.start(resume=cid)
            self.assertTrue(started["history_more"])
            history = started["history"]
            while started["history_more"]:
                await c.send({"type": "start", "resume": cid, "history_before": history[0]["seq"]})
                started = await c.recv_type("started")
                history = started["history"] + history
            users = [t for t in history if t["role"] == "user"]
            self.assertEqual([t["text"] for t in users], texts)
            self.assertEqual([t["seq"] for t in users], list(range(1, 101)))

    async def test_burst_of_100_in_one_socket_write(self):
        # All 100 frames reach the server in one TCP segment train, so it reads them back to back.
        async with self.connect() as c:
            cid = (await c.start())["conversation"]
            refs = [str(i) for i in range(100)]
            await c.send_batch({"type": "message", "conversation": cid,
                                "text": TEXTS[i % len(TEXTS)], "ref": ref} for i, ref in enumerate(refs))
            replies = [await c.recv() for _ in refs]
            self.check_in_order(replies, refs, cid)

    async def test_burst_of_100_without_conversation_field(self):
        # The first message starts the conversation; every later one must go to that same one.
        async with self.connect() as c:
            refs = [str(i) for i in range(100)]
            for ref in refs:
                await c.send({"type": "message", "text": TEXTS[int(ref) % len(TEXTS)], "ref": ref})
            started = await c.recv_type("started")
            replies = [await c.recv() for _ in refs]
            self.check_in_order(replies, refs, started["conversation"])

    async def test_screening_flow_in_a_burst(self):
        # describe_pain, no, no, no must end in advising only if handled in order.
        async with self.connect() as c:
            cid = (await c.start())["conversation"]
            texts = ["My upper back is sore after rows yesterday", "no", "nope", "no"]
            for i, t in enumerate(texts):
                await c.send({"type": "message", "conversation": cid, "text": t, "ref": str(i)})
            replies = [await c.recv() for _ in texts]
            self.check_in_order(replies, [str(i) for i in range(4)], cid)
            self.assertEqual([r["state"] for r in replies],
                             ["screening", "screening", "screening", "advising"])

    async def test_two_connections_same_conversation(self):
        async with self.connect() as a, self.connect() as b:
            cid = (await a.start())["conversation"]
            n = 60
            refs_a = [f"a{i}" for i in range(n)]
            refs_b = [f"b{i}" for i in range(n)]

            async def send_all(client, refs):
                for i, ref in enumerate(refs):
                    await client.send({"type": "message", "conversation": cid,
                                       "text": TEXTS[i % len(TEXTS)], "ref": ref})

            await asyncio.gather(send_all(a, refs_a), send_all(b, refs_b))
            (got_a, _), (got_b, _) = await asyncio.gather(collect_replies(a, refs_a),
                                                           collect_replies(b, refs_b))
            for got in (got_a, got_b):
                for ref, r in got.items():
                    self.assertEqual(r["type"], "reply", r)
                    self.assertEqual(r["conversation"], cid)
            seqs_a = [got_a[r]["seq"] for r in refs_a]
            seqs_b = [got_b[r]["seq"] for r in refs_b]
            # Gapless 1..2n, no duplicates across the two connections.
            self.assertEqual(sorted(seqs_a + seqs_b), list(range(1, 2 * n + 1)))
            # Each connection's messages were handled in the order that connection sent them.
            self.assertEqual(seqs_a, sorted(seqs_a))
            self.assertEqual(seqs_b, sorted(seqs_b))

    async def test_many_conversations_interleaved_on_one_socket(self):
        async with self.connect() as c:
            convs = [(await c.start())["conversation"] for _ in range(10)]
            refs = {conv: [] for conv in convs}
            for i in range(30):
                for j, conv in enumerate(convs):
                    ref = f"{j}:{i}"
                    refs[conv].append(ref)
                    await c.send({"type": "message", "conversation": conv,
                                  "text": TEXTS[(i + j) % len(TEXTS)], "ref": ref})
            all_refs = [r for conv in convs for r in refs[conv]]
            got, frames = await collect_replies(c, all_refs)
            self.assertEqual(len(frames), len(all_refs))
            for conv in convs:
                self.check_in_order([got[r] for r in refs[conv]], refs[conv], conv)
            # Within one conversation the frames also arrive in order on the socket.
            for conv in convs:
                arrival = [f["ref"] for f in frames if f.get("conversation") == conv]
                self.assertEqual(arrival, refs[conv])


if __name__ == "__main__":
    harness.main()
