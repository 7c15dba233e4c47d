"""Issue 11, defect 5: memory a client can make the server hold.

A resume answered with the whole history, queued up to --max-queued-frames (64) times for a
client that never reads, let one socket pin 64 copies of a long history: tens of MiB per socket.
Now `started.history` holds at most --max-history-turns turns (`history_more` says there are
earlier ones, `history_before` pages back) and the frames waiting for one client are bounded in
bytes by --max-queued-bytes.

The RSS bound: a client that does not read makes the server hold at most --max-queued-bytes plus
the frame that crossed it plus the one being written (each at most one page of history), so
CLIENTS such clients add at most CLIENTS x (QUEUED + 2 x page) to the server's RSS; 16 MiB on top
is allowance for the allocator's arenas and fragmentation (one per I/O thread) and the per-socket
read buffers. The old behaviour (64 whole histories per client) exceeds it several times over.

Run: /usr/bin/python3 tests/abuse/test_memory_bounds.py --server build/chat-server
"""

import asyncio
import json
import select
import socket
import time
import unittest

import abuse_common as ab
from abuse_common import harness

TURNS = 120          # turns in the long conversation
PAGE = 50            # --max-history-turns
TEXT_CHARS = 2000    # per user message (the default --max-text-chars)
QUEUED = 256 * 1024  # --max-queued-bytes
CLIENTS = 4          # clients that send resumes and never read
RESUMES = 200_000    # at most, per client (the server stops reading long before; the kernel's
                     # socket buffers take a few MiB of them)
SLACK_KIB = 16 * 1024


def user_text(i: int) -> str:
    head = f"turn {i}: my upper back is sore after rows and pull-downs, "
    return (head + "lorem ipsum dolor sit amet " * 100)[:TEXT_CHARS]


class MemoryBoundsTest(unittest.IsolatedAsyncioTestCase):

    async def asyncSetUp(self):
        self.server = ab.AbuseServer("--max-history-turns", str(PAGE), "--max-queued-bytes", str(QUEUED),
                                     "--send-timeout", "60", *ab.lift())
        self.addCleanup(self.server.cleanup)
        self.server.start()
        # The long conversation, pipelined.
        async with harness.connect(self.server) as c:
            self.cid = (await c.start())["conversation"]
            refs = [str(i) for i in range(1, TURNS + 1)]
            await c.send_batch({"type": "message", "conversation": self.cid, "text": user_text(int(r)), "ref": r}
                               for r in refs)
            got, _ = await harness.collect_replies(c, refs, timeout=30)
            self.sent = {}
            for r in refs:
                self.assertEqual(got[r]["type"], "reply", got[r])
                self.assertEqual(got[r]["seq"], int(r))
                self.sent[int(r)] = (user_text(int(r)), got[r]["text"])

    def check_page(self, started: dict, first: int, last: int, more: bool) -> None:
        entries = [(t["seq"], t["role"], t["text"]) for t in started["history"]]
        want = []
        for seq in range(first, last + 1):
            want += [(seq, "user", self.sent[seq][0]), (seq, "assistant", self.sent[seq][1])]
        self.assertEqual(entries, want, f"history page should be turns {first}..{last}")
        self.assertIs(started.get("history_more"), more, {k: v for k, v in started.items() if k != "history"})

    async def test_history_is_bounded_and_pages_back(self):
        async with harness.connect(self.server) as c:
            started = await c.start(resume=self.cid)
            self.assertLessEqual(len(started["history"]), 2 * PAGE)
            self.check_page(started, TURNS - PAGE + 1, TURNS, True)
            # Page back to the first turn: no gap, no duplicate.
            seen = [(t["seq"], t["role"]) for t in started["history"]]
            before = started["history"][0]["seq"]
            for _ in range(TURNS):  # bounded; 3 pages here
                await c.send({"type": "start", "resume": self.cid, "history_before": before})
                page = await c.recv_type("started")
                harness.check_started(page)
                self.assertLessEqual(len(page["history"]), 2 * PAGE)
                self.assertTrue(page["history"], f"an empty page before seq {before}")
                self.assertLess(page["history"][-1]["seq"], before)
                seen = [(t["seq"], t["role"]) for t in page["history"]] + seen
                before = page["history"][0]["seq"]
                if not page["history_more"]:
                    break
            self.assertEqual(seen, [(s, r) for s in range(1, TURNS + 1) for r in ("user", "assistant")])
            # Exact pages: the last PAGE turns before history_before.
            await c.send({"type": "start", "resume": self.cid, "history_before": 71})
            self.check_page(await c.recv_type("started"), 21, 70, True)
            await c.send({"type": "start", "resume": self.cid, "history_before": 21})
            self.check_page(await c.recv_type("started"), 1, 20, False)
            # A short conversation: everything, and nothing more.
            short = (await c.start())["conversation"]
            self.assertIs((await c.start())["history_more"], False)
            await c.message("hi", conversation=short)
            again = await c.start(resume=short)
            self.assertEqual(len(again["history"]), 2)
            self.assertIs(again["history_more"], False)

    def open_non_reader(self) -> socket.socket:
        conn = ab.raw_websocket(self.server.port)
        sock = conn.sock
        self.assertEqual(conn.buf, b"")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * 1024)
        sock.setblocking(False)
        self.addCleanup(sock.close)
        return sock

    def flood(self, sock: socket.socket, frame: bytes, deadline: float) -> int:
        """Write resume frames until the server stops reading (the socket stays unwritable for
        a second: the kernel's buffers are full too), RESUMES frames, or the deadline; return
        how many were written."""
        blob = frame * 500
        pending = memoryview(b"")
        sent_bytes = 0
        while sent_bytes < RESUMES * len(frame) and time.monotonic() < deadline:
            if not pending:
                pending = memoryview(blob)
            _, writable, _ = select.select([], [sock], [], 1.0)
            if not writable:
                break  # the server has stopped reading from this client
            try:
                n = sock.send(pending)
            except BlockingIOError:
                continue
            pending = pending[n:]
            sent_bytes += n
        return sent_bytes // len(frame)

    async def test_non_reading_clients_do_not_grow_memory(self):
        pid = self.server.proc.pid
        # Warm up: one whole resume round trip, so the baseline includes a page's frame.
        async with harness.connect(self.server) as c:
            warm = await c.start(resume=self.cid)
        baseline = ab.rss_kib(pid)
        page_bytes = len(json.dumps(warm, ensure_ascii=False).encode()) + 1024  # one started frame
        frame = ab.ws_frame(0x1, json.dumps({"type": "start", "resume": self.cid}).encode())
        socks = [self.open_non_reader() for _ in range(CLIENTS)]
        deadline = time.monotonic() + 20
        written = await asyncio.gather(*(asyncio.to_thread(self.flood, s, frame, deadline) for s in socks))
        peak = baseline
        for _ in range(10):  # a second of samples while they hold their queues
            peak = max(peak, ab.rss_kib(pid))
            await asyncio.sleep(0.1)
        growth = peak - baseline
        bound = (CLIENTS * (QUEUED + 2 * page_bytes)) // 1024 + SLACK_KIB
        print(f"\n  resumes written per client {written}; RSS {baseline} KiB -> peak {peak} KiB "
              f"(+{growth} KiB, bound {bound} KiB)", flush=True)
        self.assertLessEqual(growth, bound, f"RSS grew by {growth} KiB for {CLIENTS} clients that never read")
        self.assertTrue(self.server.alive())
        # The server still serves others meanwhile.
        async with harness.connect(self.server) as c:
            self.assertEqual((await c.message("hi"))["seq"], 1)
        # A non-reader that starts reading gets whole, valid frames.
        s = socks[0]
        s.setblocking(True)
        s.settimeout(harness.TIMEOUT)
        data = b""
        messages = []
        for _ in range(10000):  # until one whole message (it may come in fragments)
            frames, _ = ab.parse_ws_frames(data)
            messages = ab.ws_messages(frames)
            if messages:
                break
            chunk = s.recv(1 << 16)
            self.assertTrue(chunk, "the server closed a client that started reading")
            data += chunk
        opcode, payload = messages[0]
        self.assertEqual(opcode, 0x1)
        started = json.loads(payload)
        harness.check_started(started)
        self.assertEqual(started["conversation"], self.cid)
        for s in socks:
            s.close()
        await asyncio.to_thread(self.server.stop_and_check)


if __name__ == "__main__":
    harness.main()
