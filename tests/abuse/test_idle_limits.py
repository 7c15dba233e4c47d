"""Issue 11, defect 6: connections that cost the server without ever doing anything.

- `--max-idle-without-message`: a chat WebSocket that sends no frame for this long is closed with
  1001, even though it answers every ping (the idle timeout alone keeps such a client forever).
  A client that keeps sending frames stays.
- `--max-http-connections N`: the N+1th plain HTTP connection gets 503 and is closed (not left
  waiting); once the others close a new one is served.

Run: /usr/bin/python3 tests/abuse/test_idle_limits.py --server build/chat-server
"""

import asyncio
import time
import unittest

import abuse_common as ab
from abuse_common import harness

IDLE = 2  # --max-idle-without-message


class IdleWithoutMessageTest(ab.AbuseTestCase):
    # --idle-timeout 1: the server pings a silent client about every half second, and the
    # client library answers each ping.
    server_args = ("--max-idle-without-message", str(IDLE), "--idle-timeout", "1")
    lift_limits = True

    async def watch_pings(self, c: harness.Client) -> asyncio.Queue:
        pings: asyncio.Queue = asyncio.Queue()
        original = c.ws.pong

        async def pong(data=b""):
            await original(data)  # answered, as a live client does
            pings.put_nowait(time.monotonic())

        c.ws.pong = pong
        return pings

    async def test_client_that_only_answers_pings_is_closed_1001(self):
        async with self.connect() as c:
            cid = (await c.start())["conversation"]
            pings = await self.watch_pings(c)
            t0 = time.monotonic()
            code = await c.expect_closed(timeout=IDLE + 8)
            elapsed = time.monotonic() - t0
            self.assertEqual(code, 1001, f"closed with {code}")
            self.assertGreater(pings.qsize(), 0, "the server never pinged: the test proves nothing")
            self.assertGreaterEqual(elapsed, IDLE - 0.5, f"closed after {elapsed:.1f} s, before {IDLE} s idle")
        # The conversation is not lost: a new connection resumes it.
        async with self.connect() as c:
            self.assertTrue((await c.start(resume=cid))["resumed"])

    async def test_connection_without_any_frame_is_closed_too(self):
        async with self.connect() as c:
            await self.watch_pings(c)
            self.assertEqual(await c.expect_closed(timeout=IDLE + 8), 1001)

    async def test_client_that_keeps_writing_stays(self):
        # A frame each time the server pings (every ~0.5 s): never IDLE s without one.
        async with self.connect() as c:
            cid = (await c.start())["conversation"]
            pings = await self.watch_pings(c)
            t0 = time.monotonic()
            n = 0
            while time.monotonic() - t0 < IDLE * 2 + 1:
                try:
                    await asyncio.wait_for(pings.get(), harness.TIMEOUT)
                except asyncio.TimeoutError:
                    self.fail("no ping from the server")
                n += 1
                r = await c.message("hi", conversation=cid, ref=f"k{n}")
                self.assertEqual(r["seq"], n)
                if n > 100:
                    self.fail("more than 100 pings in a few seconds")
            self.assertTrue(c.ws.open)


class MaxHttpConnectionsTest(ab.AbuseTestCase):
    server_args = ("--max-http-connections", "3", "--handshake-timeout", "30")
    lift_limits = True

    def held_connection(self) -> ab.RawHttp:
        """An open keep-alive HTTP connection that has been served once."""
        conn = ab.RawHttp(self.server.port)
        conn.send(ab.request("GET", "/healthz", self.server.port))
        status, _, body = conn.read_response()
        self.assertEqual(status, 200)
        return conn

    def refused(self, conn: ab.RawHttp) -> str:
        """The connection past the limit: 503 then closed, or closed at once. Returns what happened."""
        try:
            conn.send(ab.request("GET", "/healthz", self.server.port))
        except (BrokenPipeError, ConnectionResetError):
            return "closed"
        try:
            status, headers, _ = conn.read_response()
        except AssertionError as e:
            if "closed" in str(e) or "no b'\\r\\n\\r\\n'" in str(e):
                return "closed"
            raise
        self.assertEqual(status, 503, "past --max-http-connections")
        rest = conn.read_to_eof(timeout=5)  # and closed
        self.assertEqual(rest, b"")
        return "503"

    async def test_connection_past_the_limit(self):
        held = [self.held_connection() for _ in range(3)]
        try:
            extra = ab.RawHttp(self.server.port, timeout=5)
            try:
                self.refused(extra)
            finally:
                extra.close()
            # The three held ones still work (keep-alive).
            for conn in held:
                conn.send(ab.request("GET", "/healthz", self.server.port))
                self.assertEqual(conn.read_response()[0], 200)
        finally:
            for conn in held:
                conn.close()

        def served():
            conn = ab.RawHttp(self.server.port, timeout=5)
            try:
                conn.send(ab.request("GET", "/healthz", self.server.port, keep_alive=False))
                return conn.read_response()[0] == 200
            except (AssertionError, OSError):
                return False
            finally:
                conn.close()

        await ab.poll_until(served, 5, "a plain HTTP connection served after the others closed")
        self.assertTrue(self.server.alive())

if __name__ == "__main__":
    harness.main()
