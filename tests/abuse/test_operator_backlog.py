"""Issue 11, defect 2: an operator connecting to a backlog of more unacknowledged escalations than
its send queue holds (4,096) was disconnected, every time, so nobody saw any of them.

~4,200 escalations are made quickly (many connections pipelining red-flag messages, limits lifted
with the new flags); then two operators connect, one reading fast and one slowly: each receives
every escalation exactly once, oldest first, stays connected, and a new escalation made after the
backlog reaches both live. Bounded: the whole test takes well under 60 s.

Run: /usr/bin/python3 tests/abuse/test_operator_backlog.py --server build/chat-server
"""

import asyncio
import json
import time
import unittest

import abuse_common as ab
from abuse_common import harness

ESCALATIONS = 4200        # more than the old per-operator queue of 4,096 frames
CONNECTIONS = 8
BATCH = 150               # starts (then messages) pipelined per round trip on one connection
DEADLINE = 55.0           # the whole test, seconds


class OperatorBacklogTest(unittest.IsolatedAsyncioTestCase):

    async def asyncSetUp(self):
        self.t0 = time.monotonic()
        self.server = ab.AbuseServer(*ab.lift(), env={"CHAT_OPERATOR_TOKEN": ab.OPERATOR_TOKEN})
        self.addCleanup(self.server.cleanup)
        self.server.start()

    def remaining(self) -> float:
        left = DEADLINE - (time.monotonic() - self.t0)
        if left <= 0:
            self.fail(f"the test ran past its {DEADLINE} s bound")
        return left

    async def make_escalations(self, client: harness.Client, count: int) -> list[str]:
        """`count` new conversations on `client`, each escalated by its first message."""
        made: list[str] = []
        for _ in range(count // BATCH + 1):
            n = min(BATCH, count - len(made))
            if n <= 0:
                break
            await client.send_batch([{"type": "start"}] * n)
            ids = []
            for _ in range(n):
                started = await client.recv_type("started", timeout=min(harness.TIMEOUT * 3, self.remaining()))
                ids.append(started["conversation"])
            await client.send_batch({"type": "message", "conversation": cid, "text": ab.BREATH_TEXT, "ref": cid}
                                    for cid in ids)
            got, _ = await harness.collect_replies(client, ids, timeout=min(harness.TIMEOUT * 3, self.remaining()))
            for cid in ids:
                r = got[cid]
                self.assertEqual(r["type"], "reply", f"the red-flag message was not answered: {r}")
                self.assertIs(r["escalated"], True, r)
                self.assertEqual(r["urgency"], "emergency", r)
            made += ids
        return made

    async def read_backlog(self, op: harness.Client, want: set[str], slow: bool) -> list[dict]:
        events: list[dict] = []
        seen_conversations: set[str] = set()
        seen_ids: set[int] = set()
        for _ in range(len(want)):
            try:
                ev = await op.recv(timeout=min(harness.TIMEOUT, self.remaining()))
            except harness.ConnectionClosed as e:
                self.fail(f"operator disconnected after {len(events)} of {len(want)} escalations "
                          f"(close code {op.ws.close_code}): {e!r}")
            self.assertEqual(ev["type"], "escalation", ev)
            self.assertNotIn(ev["id"], seen_ids, f"escalation {ev['id']} sent twice")
            self.assertNotIn(ev["conversation"], seen_conversations, f"conversation sent twice: {ev}")
            self.assertIn(ev["conversation"], want, f"an escalation nobody made: {ev}")
            self.assertEqual(ev["text"], ab.BREATH_TEXT, ev)
            self.assertEqual(ev["level"], "emergency", ev)
            seen_ids.add(ev["id"])
            seen_conversations.add(ev["conversation"])
            events.append(ev)
            if slow and len(events) % 16 == 0:
                await asyncio.sleep(0.002)  # a slow reader: the server must wait for it, not drop it
        self.assertEqual(seen_conversations, want)
        ids = [ev["id"] for ev in events]
        self.assertEqual(ids, sorted(ids), "the backlog must come oldest first")
        return events

    async def test_backlog_longer_than_the_old_queue(self):
        clients = [await harness.open_client(self.server) for _ in range(CONNECTIONS)]
        try:
            per = [ESCALATIONS // CONNECTIONS + (1 if i < ESCALATIONS % CONNECTIONS else 0)
                   for i in range(CONNECTIONS)]
            made_lists = await asyncio.gather(*(self.make_escalations(c, n) for c, n in zip(clients, per)))
            made = {cid for lst in made_lists for cid in lst}
            self.assertEqual(len(made), ESCALATIONS)
            built = time.monotonic() - self.t0

            # A fast operator (reads everything the socket brings) and a slow one (small read
            # queue, pauses): both get the whole backlog, once each.
            fast = await ab.open_operator(self.server)
            slow = await ab.open_operator(self.server, max_queue=4)
            try:
                await asyncio.gather(self.read_backlog(fast, made, slow=False),
                                     self.read_backlog(slow, made, slow=True))
                self.assertTrue(fast.ws.open and slow.ws.open, "an operator was disconnected")

                # A new escalation reaches both live, and it is the next frame each gets (no
                # duplicate of the backlog was still on its way).
                live = await harness.open_client(self.server)
                try:
                    r = await live.message(ab.EMERGENCY_TEXT)
                    self.assertIs(r["escalated"], True, r)
                    for op in (fast, slow):
                        ev = await op.recv(timeout=min(harness.TIMEOUT, self.remaining()))
                        self.assertEqual(ev["type"], "escalation", ev)
                        self.assertEqual(ev["conversation"], r["conversation"], ev)
                        self.assertEqual(ev["text"], ab.EMERGENCY_TEXT, ev)
                finally:
                    await live.close()
                # An acknowledgement still works on the long-backlog connection.
                await fast.send({"type": "ack", "id": ev["id"]})
                for op in (fast, slow):
                    acked = await op.recv(timeout=min(harness.TIMEOUT, self.remaining()))
                    self.assertEqual((acked["type"], acked["id"]), ("acked", ev["id"]), acked)
            finally:
                await fast.close()
                await slow.close()
            print(f"\n  {ESCALATIONS} escalations made in {built:.1f} s, whole test "
                  f"{time.monotonic() - self.t0:.1f} s", flush=True)
        finally:
            for c in clients:
                await c.close()
        self.assertTrue(self.server.alive())
        await asyncio.to_thread(self.server.stop_and_check)


if __name__ == "__main__":
    harness.main()
