"""Issue 11, defect 3: when the disk is full, a person writing "I can't breathe and I have chest
pain" got a closed socket (1011) and nothing else: no guidance, and the escalation was lost.

With --data-dir on a small tmpfs filled to the last byte, that message must get `error`
`store_unavailable` carrying the safety guidance (non-empty text, urgency emergency), the
connection stays open, /healthz is 503, and a resume shows no turn the client did not see as a
reply. The same on POST (503, guidance in the body) and for the first message of a fresh
connection (one answer, with the guidance). Once the disk has room again /healthz returns to 200 by itself, the escalation (kept in
memory and retried) reaches an operator, every reply the client saw is in the resumed history,
and after a restart on the same folder the urgency is still emergency (it never goes down).

Mounting needs root (CAP_SYS_ADMIN); otherwise the test is skipped. The tmpfs is always unmounted.

Run: /usr/bin/python3 tests/abuse/test_full_disk.py --server build/chat-server
"""

import asyncio
import errno
import os
import subprocess
import tempfile
import unittest

import abuse_common as ab
from abuse_common import harness

MARKER = "qzxvwkp"  # a made-up word: nothing a person writes may appear on stderr
RED_FLAG = f"{ab.EMERGENCY_TEXT} {MARKER}"
NEW_POSTS = 10  # POSTs without a conversation while the disk is full


def fill(path: str) -> int:
    """Write `path` until the file system is full; return the bytes written."""
    written = 0
    with open(path, "wb", buffering=0) as f:
        for chunk in (1 << 16, 1 << 12, 1 << 9, 1 << 6, 1):
            block = b"\0" * chunk
            for _ in range((64 << 20) // chunk):  # bounded: far more than the tmpfs holds
                try:
                    written += f.write(block)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    return written


class FullDiskTest(unittest.IsolatedAsyncioTestCase):

    def mount_small_tmpfs(self) -> str:
        if os.geteuid() != 0:
            self.skipTest("needs root to mount a small tmpfs as a full disk (running as uid "
                          f"{os.geteuid()})")
        mnt = tempfile.mkdtemp(prefix="backcheck-fulldisk-")
        self.addCleanup(os.rmdir, mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", mnt],
                           capture_output=True, text=True, timeout=harness.TIMEOUT)
        if r.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs here: {r.stderr.strip()}")
        self.addCleanup(self.unmount, mnt)
        return mnt

    @staticmethod
    def unmount(mnt: str) -> None:
        r = subprocess.run(["umount", mnt], capture_output=True, timeout=harness.TIMEOUT)
        if r.returncode != 0:  # still busy: detach it now, it goes once the last file closes
            subprocess.run(["umount", "-l", mnt], capture_output=True, timeout=harness.TIMEOUT)

    def healthz(self, server) -> int:
        return harness.http_request(server, "GET", "/healthz").status

    async def test_full_disk(self):
        mnt = self.mount_small_tmpfs()
        data = os.path.join(mnt, "data")
        server = ab.AbuseServer(*ab.lift(), data_dir=data, create_data_dir=False,
                                env={"CHAT_OPERATOR_TOKEN": ab.OPERATOR_TOKEN})
        self.addCleanup(server.cleanup)  # runs before the unmount (cleanups are last in, first out)
        server.start()
        op = await ab.open_operator(server)
        self.addAsyncCleanup(op.close)
        c = await harness.open_client(server)
        self.addAsyncCleanup(c.close)

        # A conversation with a few turns, all durable.
        cid = (await c.start())["conversation"]
        seen = []  # (user text, reply) of every reply the client received
        for text in ["hi", "My upper back hurts after rows yesterday", "What is DOMS?"]:
            seen.append((text, await c.message(text, conversation=cid)))
        self.assertEqual(self.healthz(server), 200)

        filler = os.path.join(mnt, "filler")
        self.addCleanup(lambda: os.path.exists(filler) and os.unlink(filler))
        self.assertGreater(fill(filler), 0)

        # The red-flag message cannot be made durable: the guidance comes anyway.
        await c.send({"type": "message", "conversation": cid, "text": RED_FLAG, "ref": "rf"})
        try:
            frame = await c.recv()
        except harness.ConnectionClosed:
            self.fail(f"the server closed the connection (code {c.ws.close_code}) instead of answering "
                      f"store_unavailable with the guidance")
        self.assertEqual(frame["type"], "error",
                         f"a full disk cannot have stored this turn, yet it was answered as one: {frame}")
        self.assertEqual(frame["code"], "store_unavailable", frame)
        self.assertEqual(frame.get("ref"), "rf", frame)
        ab.check_guidance(self, frame, "emergency", ab.EMERGENCY_FLAGS)
        self.assertTrue(c.ws.open, "the connection must stay open after store_unavailable")
        self.assertEqual(self.healthz(server), 503, "/healthz must say 503 while the store is failing")

        # A resume (another connection, as a reconnecting client) shows only the turns whose
        # replies the client saw; the urgency the guidance announced does not go down.
        async with harness.connect(server) as c2:
            resumed = await c2.start(resume=cid)
            self.assertEqual(self.turns(resumed), self.expected(seen),
                             "the resume shows a turn the client never saw as a reply")
            self.assertEqual(resumed["urgency"], "emergency",
                             "the person was told it is an emergency: urgency never goes down")
        # POST to this conversation: 503 store_unavailable with the guidance.
        r = harness.post_json(server, "/v1/messages", {"conversation": cid, "text": RED_FLAG})
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json().get("code"), "store_unavailable", r)
        ab.check_guidance(self, r.json(), "emergency", ab.EMERGENCY_FLAGS)
        # Still answering on the same connection, with the disk still full: again no reply
        # claims a turn was stored.
        await c.send({"type": "message", "conversation": cid, "text": "What is DOMS?", "ref": "still"})
        frame = await c.recv()
        self.assertEqual((frame["type"], frame.get("code")), ("error", "store_unavailable"), frame)

        # Room again: the server notices by itself (it probes about every second).
        os.unlink(filler)
        await ab.poll_until(lambda: self.healthz(server) == 200, 10, "/healthz back to 200 after the disk has room",
                            interval=0.1)
        # The escalation, kept in memory and retried, reaches the operator (with those of the
        # refused new conversations, if the server keeps them: they are what a person wrote).
        ev = await self.escalation_of(op, cid)
        self.assertEqual(ev["level"], "emergency", ev)
        self.assertEqual(ev["text"], RED_FLAG, ev)
        self.assertTrue(ab.EMERGENCY_FLAGS <= set(ev["flags"]), ev)

        # The conversation goes on; every reply the client saw is in the resumed history.
        r = await c.message("thanks", conversation=cid)
        self.assertEqual(r["urgency"], "emergency", r)
        self.assertEqual(r["seq"], seen[-1][1]["seq"] + 1, f"failed turns must not use a seq: {r}")
        seen.append(("thanks", r))
        async with harness.connect(server) as c2:
            resumed = await c2.start(resume=cid)
            self.assertEqual(self.turns(resumed), self.expected(seen))
            self.assertEqual(resumed["urgency"], "emergency")

        # After a restart on the same folder: still emergency, same history.
        await c.close()
        await op.close()
        self.assertEqual(await asyncio.to_thread(server.stop), 0, server.stderr_tail())
        stderr = server.stderr_path.read_text("utf-8", "replace")
        self.assertNotIn(MARKER, stderr, "what the person wrote appeared on stderr")
        server.restart()
        async with harness.connect(server) as c3:
            resumed = await c3.start(resume=cid)
            self.assertEqual(resumed["urgency"], "emergency", "urgency went down across a restart")
            self.assertEqual(self.turns(resumed), self.expected(seen))
        op2 = await ab.open_operator(server)
        try:
            self.assertEqual(await self.escalation_of(op2, cid), ev, "the escalation is durable and unacknowledged")
            await op2.send({"type": "ack", "id": ev["id"]})
            for _ in range(NEW_POSTS + 5):  # the rest of the backlog may come first
                f = await op2.recv()
                if f["type"] != "escalation":
                    break
            self.assertEqual((f["type"], f["id"]), ("acked", ev["id"]), f)
        finally:
            await op2.close()
        self.assertEqual(await asyncio.to_thread(server.stop), 0, server.stderr_tail())

    async def test_new_conversations_on_a_full_disk(self):
        # A first message would start a conversation first, which cannot be stored either: one
        # answer, store_unavailable, and it carries the guidance.
        mnt = self.mount_small_tmpfs()
        server = ab.AbuseServer(*ab.lift(), data_dir=os.path.join(mnt, "data"), create_data_dir=False)
        self.addCleanup(server.cleanup)
        server.start()
        self.assertEqual(self.healthz(server), 200)
        filler = os.path.join(mnt, "filler")
        self.addCleanup(lambda: os.path.exists(filler) and os.unlink(filler))
        self.assertGreater(fill(filler), 0)
        # POST without a conversation, several times: whether the failed creation is undone
        # before or after the message looks the new conversation up depends on timing; the answer
        # must never be unknown_conversation for an id the client never named.
        for i in range(NEW_POSTS):
            r = harness.post_json(server, "/v1/messages", {"text": RED_FLAG})
            self.assertEqual(r.status, 503, f"POST #{i} without a conversation on a full disk: {r}")
            self.assertEqual(r.json().get("code"), "store_unavailable", r)
            ab.check_guidance(self, r.json(), "emergency", ab.EMERGENCY_FLAGS)
        # The first message of a fresh WebSocket; a marker frame right after shows that nothing
        # else answers it.
        async with harness.connect(server) as c:
            await c.send({"type": "message", "text": RED_FLAG, "ref": "fresh"})
            await c.send({"type": "bogus", "ref": "marker"})
            first = await c.recv()
            self.assertEqual((first["type"], first.get("code"), first.get("ref")),
                             ("error", "store_unavailable", "fresh"), first)
            ab.check_guidance(self, first, "emergency", ab.EMERGENCY_FLAGS)
            after = await c.recv()
            self.assertEqual(after.get("ref"), "marker", f"a second answer to one message: {after}")
            # An explicit start is refused the same way, and the connection stays usable.
            await c.send({"type": "start", "ref": "s"})
            self.assertEqual((await c.expect_error("store_unavailable", ref="s"))["ref"], "s")
        os.unlink(filler)
        await ab.poll_until(lambda: self.healthz(server) == 200, 10, "/healthz back to 200", interval=0.1)
        async with harness.connect(server) as c:
            self.assertEqual((await c.message("hi"))["seq"], 1)
        self.assertEqual(await asyncio.to_thread(server.stop), 0, server.stderr_tail())

    async def escalation_of(self, op: harness.Client, cid: str) -> dict:
        """The next escalation for `cid`; those before it must be of the other red-flag messages."""
        for _ in range(NEW_POSTS + 5):
            ev = await op.recv(timeout=10)
            self.assertEqual(ev["type"], "escalation", ev)
            if ev["conversation"] == cid:
                return ev
            self.assertEqual(ev["text"], RED_FLAG, ev)
        self.fail(f"no escalation for {cid} among the first {NEW_POSTS + 5} operator frames")

    @staticmethod
    def turns(started: dict) -> list:
        return [(t["role"], t["text"], t["seq"]) for t in started["history"]]

    @staticmethod
    def expected(seen) -> list:
        out = []
        for text, reply in seen:
            out += [("user", text, reply["seq"]), ("assistant", reply["text"], reply["seq"])]
        return out


if __name__ == "__main__":
    harness.main()
