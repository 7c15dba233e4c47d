"""Issue 11: running out of file descriptors.

- The server raises its descriptor soft limit to the hard limit at start-up (a default soft
  limit of 1,024 would cap it far below --max-connections).
- When accept fails with EMFILE the server backs off (~100 ms) instead of retrying at once: the
  connection that could not be accepted stays in the backlog, so an immediate retry fails again
  and spins a core at 100%. Once descriptors are free again, new connections are served.

The server is started under prlimit(1) with the limits the test wants.

Run: /usr/bin/python3 tests/abuse/test_descriptor_limits.py --server build/chat-server
"""

import asyncio
import os
import re
import socket
import time
import unittest

import abuse_common as ab
from abuse_common import harness

LOW = 64  # descriptors: the server runs out after a few dozen connections


def nofile_limits(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = re.findall(r"\d+|unlimited", line)[:2]
                return int(soft), int(hard)
    raise AssertionError("no 'Max open files' line")


class DescriptorLimitsTest(unittest.IsolatedAsyncioTestCase):

    def make_server(self, nofile: str, *args) -> ab.AbuseServer:
        if not os.access("/usr/bin/prlimit", os.X_OK):
            self.skipTest("needs /usr/bin/prlimit (util-linux)")
        server = ab.AbuseServer(*args, nofile=nofile)
        self.addCleanup(server.cleanup)
        return server.start()

    async def test_soft_limit_is_raised_to_the_hard_limit(self):
        hard = min(4096, os.sysconf("SC_OPEN_MAX") if os.sysconf("SC_OPEN_MAX") > 0 else 4096)
        server = self.make_server(f"256:{hard}")
        self.assertEqual(nofile_limits(server.proc.pid), (hard, hard))
        self.assertEqual(harness.http_request(server, "GET", "/healthz").status, 200)
        await asyncio.to_thread(server.stop_and_check)

    async def test_accept_backs_off_when_out_of_descriptors(self):
        server = self.make_server(f"{LOW}:{LOW}", *ab.lift(), "--handshake-timeout", "30")
        pid = server.proc.pid
        # Plain TCP connections that send nothing: each holds a descriptor in the server once
        # accepted; the kernel queues the rest in the listen backlog.
        socks = []
        self.addCleanup(lambda: [s.close() for s in socks])
        for _ in range(LOW + 40):
            socks.append(socket.create_connection(("127.0.0.1", server.port), timeout=harness.TIMEOUT))
        # The server has met EMFILE when a request on a queued connection gets no answer; wait
        # for its accept loop to be in that state (a few accepts a second, at most).
        probe = ab.RawHttp(server.port, timeout=1)
        self.addCleanup(probe.close)
        probe.send(ab.request("GET", "/healthz", server.port))
        with self.assertRaises(AssertionError, msg="a connection past the descriptor limit was served"):
            probe.read_response()
        cpu0, t0 = ab.cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(1.0)  # measuring CPU over a second: the only timer wait here
        cpu = ab.cpu_seconds(pid) - cpu0
        wall = time.monotonic() - t0
        self.assertTrue(server.alive(), server.stderr_tail())
        self.assertLess(cpu, 0.25 * wall, f"the server used {cpu:.2f} s of CPU in {wall:.2f} s while out of "
                                          f"descriptors: accept is retried without a pause")
        # Free the descriptors: the server serves again, the queued probe included.
        for s in socks:
            s.close()
        socks.clear()
        probe.timeout = harness.TIMEOUT
        status, _, _ = probe.read_response()
        self.assertEqual(status, 200)

        def served():
            try:
                return harness.http_request(server, "GET", "/healthz").status == 200
            except OSError:
                return False

        await ab.poll_until(served, 5, "a new connection served once descriptors are free")
        async with harness.connect(server) as c:
            self.assertEqual((await c.message("hi"))["seq"], 1)
        await asyncio.to_thread(server.stop_and_check)


if __name__ == "__main__":
    harness.main()
