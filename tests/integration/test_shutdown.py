"""Start-up line, graceful shutdown (SIGTERM/SIGINT -> close 1001 to every socket, exit 0 within
5 s) and resuming conversations after a restart on the same --data-dir.

Run: /usr/bin/python3 tests/integration/test_shutdown.py --server build/chat-server
"""

import asyncio
import http.client
import signal
import tempfile
import time
import unittest

import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import harness  # noqa: E402
from harness import Server


class ShutdownTest(unittest.IsolatedAsyncioTestCase):

    def make_server(self, *args, **kw) -> Server:
        server = Server(*args, **kw)
        self.addCleanup(server.cleanup)
        return server.start()

    async def stop_async(self, server: Server, sig=signal.SIGTERM) -> int:
        """Signal the server and wait for it to exit without blocking the event loop (the
        clients must be able to answer the server's close frames meanwhile)."""
        t0 = time.monotonic()
        code = await asyncio.to_thread(server.stop, sig, harness.SHUTDOWN_TIMEOUT + 1)
        elapsed = time.monotonic() - t0
        self.assertLessEqual(elapsed, harness.SHUTDOWN_TIMEOUT, f"exit took {elapsed:.1f} s")
        self.assertEqual(code, 0, f"exit status {code}\n{server.stderr_tail()}")
        return code

    async def test_port_zero_prints_one_listening_line(self):
        server = self.make_server()
        self.assertRegex(server.listening_line, r"^listening on http://127\.0\.0\.1:\d+$")
        self.assertNotEqual(server.port, 0)
        r = harness.http_request(server, "GET", "/healthz")
        self.assertEqual(r.status, 200)
        async with harness.connect(server) as c:
            await c.message("hi")
        await self.stop_async(server)
        self.assertEqual(server.stdout_lines, [server.listening_line],
                         "exactly one line on stdout (nothing the person writes is logged there)")

    async def test_two_servers_get_different_ports(self):
        a = self.make_server()
        b = self.make_server()
        self.assertNotEqual(a.port, b.port)
        await self.stop_async(a)
        await self.stop_async(b)

    async def shutdown_closes_sockets(self, sig):
        server = self.make_server()
        clients = [await harness.open_client(server) for _ in range(4)]
        try:
            # Some with conversations, one idle right after the handshake.
            for c in clients[:3]:
                await c.message("hi")
            async with harness.connect(server) as extra:
                await extra.start()
            await asyncio.gather(self.stop_async(server, sig),
                                 *(self.assert_closed_1001(c) for c in clients))
        finally:
            for c in clients:
                await c.close()

    async def assert_closed_1001(self, client):
        code = await client.expect_closed(timeout=harness.SHUTDOWN_TIMEOUT + 1)
        self.assertEqual(code, 1001)

    async def test_sigterm_closes_websockets_with_1001_and_exits_0(self):
        await self.shutdown_closes_sockets(signal.SIGTERM)

    async def test_sigint_closes_websockets_with_1001_and_exits_0(self):
        await self.shutdown_closes_sockets(signal.SIGINT)

    async def test_shutdown_during_a_burst(self):
        server = self.make_server("--rate", "100000", "--burst", "100000")
        c = await harness.open_client(server)
        try:
            cid = (await c.start())["conversation"]
            # 60 < the default --max-queued-frames (64): this test is about shutdown, not that limit.
            for i in range(60):
                await c.send({"type": "message", "conversation": cid, "text": "What is DOMS?",
                              "ref": str(i)})
            first = await c.recv_type("reply")
            server.proc.send_signal(signal.SIGTERM)
            replies = [first]
            t0 = time.monotonic()
            while True:
                try:
                    replies.append(await c.recv(timeout=harness.SHUTDOWN_TIMEOUT + 1))
                except harness.ConnectionClosed:
                    break
            code = await asyncio.to_thread(server.stop, None, harness.SHUTDOWN_TIMEOUT + 1)
            self.assertLessEqual(time.monotonic() - t0, harness.SHUTDOWN_TIMEOUT)
            self.assertEqual(code, 0, server.stderr_tail())
            self.assertEqual(c.ws.close_code, 1001)
            # Whatever was answered is a gapless, in-order prefix.
            self.assertEqual([r["type"] for r in replies], ["reply"] * len(replies))
            self.assertEqual([r["seq"] for r in replies], list(range(1, len(replies) + 1)))
            self.assertEqual([r["ref"] for r in replies], [str(i) for i in range(len(replies))])
        finally:
            await c.close()

    async def test_exits_with_open_http_keepalive_and_half_open_connections(self):
        server = self.make_server()
        # An HTTP/1.1 keep-alive connection left open after one request.
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=harness.TIMEOUT)
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        resp.read()
        self.assertEqual(resp.status, 200)
        # A TCP connection that never sends a request (the handshake timeout is 10 s by default).
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        # A request whose body never arrives.
        reader2, writer2 = await asyncio.open_connection("127.0.0.1", server.port)
        writer2.write(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100\r\n\r\n{\"text\":")
        await writer2.drain()
        try:
            await self.stop_async(server)
        finally:
            conn.close()
            writer.close()
            writer2.close()

    async def test_resume_after_restart(self):
        with tempfile.TemporaryDirectory(prefix="backcheck-data-") as data:
            server = self.make_server(data_dir=data)
            texts = ["My upper back hurts after my workout yesterday", "yes", "What is DOMS?"]
            async with harness.connect(server) as c:
                cid = (await c.start())["conversation"]
                replies = [await c.message(t, conversation=cid) for t in texts]
            http_first = self.post(server, {"text": "hi"})
            await self.stop_async(server)

            server = self.make_server(data_dir=data)
            async with harness.connect(server) as c:
                started = await c.start(resume=cid)
                self.assertIs(started["resumed"], True)
                self.assertEqual((started["state"], started["urgency"]), ("escalated", "urgent"))
                expected = []
                for t, r in zip(texts, replies):
                    expected += [{"role": "user", "text": t, "seq": r["seq"]},
                                 {"role": "assistant", "text": r["text"], "seq": r["seq"]}]
                self.assertEqual([{k: h.get(k) for k in ("role", "text", "seq")}
                                  for h in started["history"]], expected)
                r = await c.message("I'm short of breath", conversation=cid)
                self.assertEqual((r["seq"], r["urgency"], r["escalated"]), (4, "emergency", True))
            # A conversation started over HTTP survives too.
            again = self.post(server, {"text": "thanks", "conversation": http_first["conversation"]})
            self.assertEqual(again["seq"], 2)
            await self.stop_async(server)

    def post(self, server, obj):
        r = harness.post_json(server, "/v1/messages", obj)
        self.assertEqual(r.status, 200, r)
        return r.json()


if __name__ == "__main__":
    harness.main()
