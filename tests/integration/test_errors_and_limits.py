"""Every error code and close code, and every configurable limit being hit.

After each error the same connection must still answer a valid message (an error never closes the
connection). Each limit runs against its own server with a small value.

Run: /usr/bin/python3 tests/integration/test_errors_and_limits.py --server build/chat-server
"""

import asyncio
import json
import time

import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import harness  # noqa: E402
from harness import ConnectionClosed, InvalidStatusCode, ServerTestCase, collect_replies


class ErrorCodesTest(ServerTestCase):
    server_args = ("--max-text-chars", "50", "--rate", "1000", "--burst", "1000")

    async def asyncSetUp(self):
        self.c = await harness.open_client(self.server)
        self.cid = (await self.c.start())["conversation"]
        self.seq = 0

    async def asyncTearDown(self):
        await self.c.close()

    async def still_usable(self):
        """The connection answers a valid message, and errors did not use up a seq."""
        self.seq += 1
        r = await self.c.message("hi", conversation=self.cid, ref=f"ok{self.seq}")
        self.assertEqual(r["seq"], self.seq, "errors must not consume seq numbers")
        self.assertEqual(r["intent"], "greeting")

    async def bad(self, frame, code, ref=None):
        await self.c.send(frame)
        err = await self.c.expect_error(code, ref=ref)
        await self.still_usable()
        return err

    async def test_bad_json(self):
        for frame in ["not json", "{", "{\"type\": \"message\", \"text\": \"hi\"", "", "   ",
                      "[1, 2]", "\"start\"", "42", "null", "true", "{\"type\":\"start\"} trailing",
                      "{'type': 'start'}"]:
            with self.subTest(frame=frame):
                await self.bad(frame, "bad_json")

    async def test_bad_json_deeply_nested(self):
        # A parser recursing per level would overflow its stack; the server must just say bad_json.
        await self.bad("[" * 5000 + "]" * 5000, "bad_json")
        # A deeply nested object is valid JSON but has no type: bad_request.
        await self.bad('{"a":' * 2000 + "1" + "}" * 2000, "bad_request")
        self.assertServerAlive()

    async def test_bad_request(self):
        cases = [
            ({"text": "hi"}, None),                                         # no type
            ({"type": 5, "text": "hi"}, None),                              # type not a string
            ({"type": "message"}, None),                                    # no text
            ({"type": "message", "text": 42}, None),                        # text not a string
            ({"type": "message", "text": None}, None),
            ({"type": "message", "text": ["hi"]}, None),
            ({"type": "message", "text": ""}, None),                        # empty text
            ({"type": "message", "text": "hi", "conversation": 5}, None),   # conversation not a string
            ({"type": "message", "text": "hi", "ref": 5}, None),            # ref not a string: not echoed
            ({"type": "message", "text": "hi", "ref": {"a": 1}}, None),
            ({"type": "end"}, None),                                        # end without conversation
            ({"type": "end", "conversation": 7}, None),
            ({"type": "start", "resume": 5}, None),                         # resume not a string
            ({"type": "message", "ref": "r-missing-text"}, "r-missing-text"),
            ({"type": "message", "text": "", "ref": "r-empty"}, "r-empty"),
        ]
        for frame, ref in cases:
            with self.subTest(frame=frame):
                await self.bad(frame, "bad_request", ref=ref)

    async def test_ref_too_long(self):
        await self.c.send({"type": "message", "text": "hi", "conversation": self.cid, "ref": "x" * 257})
        await self.c.expect_error("bad_request")
        await self.still_usable()
        # 256 characters is fine.
        self.seq += 1
        r = await self.c.message("hi", conversation=self.cid, ref="y" * 256)
        self.assertEqual(r["seq"], self.seq)

    async def test_unknown_type(self):
        await self.bad({"type": "bogus"}, "unknown_type")
        await self.bad({"type": "bogus", "ref": "t1"}, "unknown_type", ref="t1")
        await self.bad({"type": "MESSAGE", "text": "hi"}, "unknown_type")
        await self.bad({"type": "reply", "text": "hi"}, "unknown_type")

    async def test_unknown_conversation(self):
        fake = "A" * 22
        await self.bad({"type": "message", "text": "hi", "conversation": "nope"}, "unknown_conversation")
        await self.bad({"type": "message", "text": "hi", "conversation": fake, "ref": "u1"},
                       "unknown_conversation", ref="u1")
        await self.bad({"type": "start", "resume": "nope"}, "unknown_conversation")
        await self.bad({"type": "start", "resume": fake}, "unknown_conversation")
        await self.bad({"type": "end", "conversation": fake}, "unknown_conversation")
        # A real id with a character changed is unknown too.
        other = self.cid[:-1] + ("A" if self.cid[-1] != "A" else "B")
        await self.bad({"type": "message", "text": "hi", "conversation": other}, "unknown_conversation")

    async def test_text_too_long(self):
        await self.bad({"type": "message", "text": "a" * 51, "conversation": self.cid}, "text_too_long")
        await self.bad({"type": "message", "text": "a" * 51, "conversation": self.cid, "ref": "long"},
                       "text_too_long", ref="long")
        # Counted in code points, not bytes or UTF-16 units: 50 of them pass, 51 do not.
        for ch in ["é", "✓", "😀"]:
            with self.subTest(ch=ch):
                self.seq += 1
                r = await self.c.message(ch * 50, conversation=self.cid)
                self.assertEqual(r["seq"], self.seq)
                await self.bad({"type": "message", "text": ch * 51, "conversation": self.cid},
                               "text_too_long")
        self.seq += 1
        r = await self.c.message("a" * 50, conversation=self.cid)
        self.assertEqual(r["seq"], self.seq)

    async def test_a_red_flag_anywhere_in_a_text_too_long_gets_the_guidance(self):
        # The limit here is 50 characters: the flag at the end, or across 50, is past it.
        filler = "my upper back hurts after rows. " * 5
        for text in [filler + "I have chest pain", filler[:40] + "I have chest pain" + filler]:
            with self.subTest(text=text):
                await self.c.send({"type": "message", "text": text, "conversation": self.cid})
                err = await self.c.expect_error("text_too_long")
                self.assertIn("guidance", err, "a red flag past the limit still gets the guidance")
                self.assertEqual(err["guidance"]["urgency"], "emergency")
                self.assertIn("chest_pain", err["guidance"]["red_flags"])
        await self.c.send({"type": "message", "text": filler * 3, "conversation": self.cid})
        self.assertNotIn("guidance", await self.c.expect_error("text_too_long"))

    async def test_text_too_long_does_not_start_a_conversation(self):
        async with self.connect() as c:
            await c.send({"type": "message", "text": "b" * 51, "ref": "tl"})
            await c.expect_error("text_too_long", ref="tl")
            await c.send({"type": "message", "text": "hi", "ref": "fine"})
            started = await c.recv_type("started")
            reply = await c.recv_type("reply")
            self.assertEqual((reply["conversation"], reply["seq"], reply["ref"]),
                             (started["conversation"], 1, "fine"))

    async def test_errors_in_a_row_then_reply(self):
        frames = ["nope", {"type": "bogus"}, {"type": "message"},
                  {"type": "message", "text": "hi", "conversation": "zzz"},
                  {"type": "message", "text": "c" * 60, "conversation": self.cid}]
        for f in frames:
            await self.c.send(f)
        codes = [(await self.c.recv_type("error"))["code"] for _ in frames]
        self.assertEqual(codes, ["bad_json", "unknown_type", "bad_request", "unknown_conversation",
                                 "text_too_long"])
        await self.still_usable()


class CloseCodesTest(ServerTestCase):
    server_args = ("--max-frame-bytes", "1024", "--rate", "1000", "--burst", "1000")

    async def test_frame_just_under_limit_is_fine(self):
        async with self.connect() as c:
            cid = (await c.start())["conversation"]
            frame = json.dumps({"type": "message", "conversation": cid, "text": "hi " + "x" * 10})
            frame = frame[:-1] + ', "pad": "' + "p" * (1024 - len(frame) - 11) + '"}'
            self.assertLessEqual(len(frame.encode()), 1024)
            await c.send(frame)
            r = await c.recv_type("reply")
            self.assertEqual(r["seq"], 1)

    async def test_frame_too_big_closes_1009(self):
        async with self.connect() as c:
            cid = (await c.start())["conversation"]
            await c.send({"type": "message", "conversation": cid, "text": "x" * 1100})
            self.assertEqual(await c.expect_closed(), 1009)
        # The server carries on for everyone else.
        async with self.connect() as c:
            r = await c.message("hi")
            self.assertEqual(r["seq"], 1)

    async def test_fragmented_message_too_big_closes_1009(self):
        async with self.connect() as c:
            await c.start()
            # 3 fragments of 500 bytes: each under the limit, the message over it.
            payload = json.dumps({"type": "message", "text": "y" * 1500}).encode()
            parts = [payload[i:i + 500] for i in range(0, len(payload), 500)]
            await c.ws.write_frame(False, 0x1, parts[0])
            for p in parts[1:-1]:
                await c.ws.write_frame(False, 0x0, p)
            await c.ws.write_frame(True, 0x0, parts[-1])
            self.assertEqual(await c.expect_closed(), 1009)

    async def test_binary_frame_closes_1003(self):
        async with self.connect() as c:
            await c.start()
            await c.send(b'{"type":"message","text":"hi"}')
            self.assertEqual(await c.expect_closed(), 1003)

    async def test_invalid_utf8_closes_1007(self):
        for payload in [b'{"type":"message","text":"caf\xe9"}',      # Latin-1 byte
                        b'{"type":"message","text":"\xc0\xaf"}',     # overlong encoding
                        b'{"type":"message","text":"\xed\xa0\x80"}',  # UTF-16 surrogate
                        b'\xff\xfe']:
            with self.subTest(payload=payload):
                async with self.connect() as c:
                    await c.start()
                    await c.send_raw_text_frame(payload)
                    self.assertEqual(await c.expect_closed(), 1007)
        self.assertServerAlive()


class RateLimitTest(ServerTestCase):
    server_args = ("--rate", "5", "--burst", "5")

    async def test_rate_limited(self):
        async with self.connect() as c:
            cid = (await c.start())["conversation"]
            refs = [str(i) for i in range(25)]
            t0 = time.monotonic()
            for ref in refs:
                await c.send({"type": "message", "conversation": cid, "text": "hi", "ref": ref})
            got, frames = await collect_replies(c, refs)
            elapsed = time.monotonic() - t0
            self.assertEqual(len(frames), len(refs), f"exactly one answer per message: {frames}")
            replies = [got[r] for r in refs if got[r]["type"] == "reply"]
            errors = [got[r] for r in refs if got[r]["type"] == "error"]
            self.assertTrue(errors, "25 messages at once with --burst 5 must hit the limit")
            for e in errors:
                harness.check_error(e)
                self.assertEqual(e["code"], "rate_limited", e)
            self.assertGreaterEqual(len(replies), 1)
            # At most the bucket plus what refilled meanwhile (5/s), with one token of slack.
            self.assertLessEqual(len(replies), 5 + int(5 * elapsed) + 1, f"{len(replies)} replies")
            self.assertEqual([r["seq"] for r in replies], list(range(1, len(replies) + 1)),
                             "rate-limited messages must not use a seq")

            # A second connection has its own bucket.
            async with self.connect() as other:
                r = await other.message("hi", ref="other")
                self.assertEqual(r["seq"], 1)

            # Token refill: the only place these tests wait on a timer.
            await asyncio.sleep(1.5)
            r = await c.message("hi", conversation=cid, ref="after")
            self.assertEqual(r["seq"], len(replies) + 1)


class BurstWithDefaultLimitsTest(ServerTestCase):
    """Default limits (--rate 20 --burst 40 --max-queued-frames 64), a client that reads promptly."""

    async def test_burst_past_the_bucket_gets_errors_not_a_disconnect(self):
        async with self.connect() as c:
            cid = (await c.start())["conversation"]
            refs = [str(i) for i in range(500)]
            try:
                await c.send_batch({"type": "message", "conversation": cid, "text": "What is DOMS?",
                                    "ref": ref} for ref in refs)
                got, frames = await collect_replies(c, refs)
            except ConnectionClosed as e:
                self.fail(f"the server dropped a client that was reading its replies ({e!r}, close "
                          f"code {c.ws.close_code}); an error never closes the connection")
            self.assertEqual(len(frames), len(refs))
            replies = [got[r] for r in refs if got[r]["type"] == "reply"]
            errors = [got[r] for r in refs if got[r]["type"] == "error"]
            self.assertTrue(errors)
            self.assertEqual({e["code"] for e in errors}, {"rate_limited"})
            self.assertEqual([r["seq"] for r in replies], list(range(1, len(replies) + 1)))
            # The whole bucket (40) was available; the server may count the start frame too.
            self.assertGreaterEqual(len(replies), 39)


class ConversationsPerConnectionTest(ServerTestCase):
    server_args = ("--max-conversations-per-connection", "2", "--rate", "1000", "--burst", "1000")

    async def test_limit(self):
        async with self.connect() as c:
            a = (await c.start())["conversation"]
            b = (await c.start())["conversation"]
            await c.send({"type": "start"})
            await c.expect_error("too_many_conversations")
            # Still usable, and both conversations still answer.
            self.assertEqual((await c.message("hi", conversation=a))["seq"], 1)
            self.assertEqual((await c.message("hi", conversation=b))["seq"], 1)
            # Resuming a third one from this socket is refused too.
            async with self.connect() as other:
                third = (await other.start())["conversation"]
            await c.send({"type": "start", "resume": third})
            await c.expect_error("too_many_conversations")
            self.assertEqual((await c.message("hi", conversation=a))["seq"], 2)
            # Another connection has its own allowance.
            async with self.connect() as c2:
                await c2.start()
                await c2.start()
                await c2.send({"type": "start"})
                await c2.expect_error("too_many_conversations")

    async def test_implicit_start_counts(self):
        async with self.connect() as c:
            await c.send({"type": "message", "text": "hi"})
            await c.recv_type("started")
            await c.recv_type("reply")
            await c.start()
            await c.send({"type": "start"})
            await c.expect_error("too_many_conversations")

    async def test_end_frees_a_slot(self):
        # A bridge serving many users over one socket must be able to end conversations and start
        # new ones without reconnecting.
        async with self.connect() as c:
            a = (await c.start())["conversation"]
            await c.start()
            await c.send({"type": "end", "conversation": a})
            self.assertEqual((await c.recv_type("ended"))["conversation"], a)
            started = await c.start()
            self.assertNotEqual(started["conversation"], a)


class ConversationsInAllTest(ServerTestCase):
    server_args = ("--max-conversations", "3", "--rate", "1000", "--burst", "1000")

    async def test_limit(self):
        async with self.connect() as c1, self.connect() as c2, self.connect() as c3:
            a = (await c1.start())["conversation"]
            await c1.start()
            b = (await c2.start())["conversation"]
            await c2.send({"type": "start"})
            await c2.expect_error("too_many_conversations")
            # An implicit start is refused the same way.
            await c3.send({"type": "message", "text": "hi", "ref": "imp"})
            await c3.expect_error("too_many_conversations", ref="imp")
            # HTTP cannot create one either.
            resp = harness.post_json(self.server, "/v1/messages", {"text": "hi"})
            self.assertGreaterEqual(resp.status, 400, resp)
            self.assertEqual(resp.json().get("code"), "too_many_conversations", resp)
            # Existing conversations carry on, from any connection.
            self.assertEqual((await c2.message("hi", conversation=b))["seq"], 1)
            self.assertEqual((await c3.message("hi", conversation=a))["seq"], 1)


class MaxConnectionsTest(ServerTestCase):
    server_args = ("--max-connections", "2")

    async def test_503_past_the_limit(self):
        c1 = await harness.open_client(self.server)
        c2 = await harness.open_client(self.server)
        try:
            with self.assertRaises(InvalidStatusCode) as cm:
                extra = await harness.open_client(self.server)
                await extra.close()
            self.assertEqual(cm.exception.status_code, 503)
            # The two open sockets still work.
            self.assertEqual((await c1.message("hi"))["seq"], 1)
            self.assertEqual((await c2.message("hi"))["seq"], 1)
            # Plain HTTP is not a WebSocket: health checks keep working at the limit.
            self.assertEqual(harness.http_request(self.server, "GET", "/healthz").status, 200)
        finally:
            await c1.close()
        try:
            # Once one closes, a new upgrade is accepted (poll: the server notices the close
            # asynchronously).
            deadline = time.monotonic() + harness.TIMEOUT
            c3 = None
            while c3 is None:
                try:
                    c3 = await harness.open_client(self.server)
                except InvalidStatusCode as e:
                    self.assertEqual(e.status_code, 503)
                    if time.monotonic() > deadline:
                        self.fail("a slot never came free after closing a WebSocket")
                    await asyncio.sleep(0.05)
            self.assertEqual((await c3.message("hi"))["seq"], 1)
            await c3.close()
        finally:
            await c2.close()


class TimeoutsTest(ServerTestCase):
    server_args = ("--handshake-timeout", "1", "--idle-timeout", "1")

    async def wait_eof(self, reader):
        try:
            data = await asyncio.wait_for(reader.read(65536), harness.TIMEOUT)
            while data:
                data = await asyncio.wait_for(reader.read(65536), harness.TIMEOUT)
        except asyncio.TimeoutError:
            self.fail(f"server kept the connection open for {harness.TIMEOUT} s")
        except ConnectionError:
            pass

    async def test_silent_tcp_connection_is_dropped(self):
        reader, writer = await asyncio.open_connection("127.0.0.1", self.server.port)
        await self.wait_eof(reader)
        writer.close()

    async def test_partial_handshake_is_dropped(self):
        reader, writer = await asyncio.open_connection("127.0.0.1", self.server.port)
        writer.write(b"GET /v1/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
        await writer.drain()
        await self.wait_eof(reader)
        writer.close()

    async def test_unresponsive_websocket_is_closed(self):
        # The idle timeout drops a peer that stops answering: the server pings a silent client
        # and closes the connection when no pong comes back.
        async with self.connect() as c:
            await c.start()

            async def no_pong(data=b""):
                return None

            c.ws.pong = no_pong
            try:
                frame = await c.recv(timeout=harness.TIMEOUT)
                self.fail(f"unexpected frame {frame}")
            except ConnectionClosed:
                pass  # closed by the server, with whatever close code
        # And the server is still fine afterwards.
        self.assertEqual(harness.http_request(self.server, "GET", "/healthz").status, 200)

    async def test_silent_but_live_websocket_stays_open(self):
        # A client that sends nothing but answers pings outlives the idle timeout (1 s): count
        # the server's pings until well past it, then the socket still works.
        async with self.connect() as c:
            cid = (await c.start())["conversation"]
            pings = asyncio.Queue()
            original = c.ws.pong

            async def pong(data=b""):
                await original(data)
                pings.put_nowait(time.monotonic())

            c.ws.pong = pong
            t0 = time.monotonic()
            while True:
                try:
                    at = await asyncio.wait_for(pings.get(), harness.TIMEOUT)
                except asyncio.TimeoutError:
                    self.fail("the server never pinged a silent client (idle timeout 1 s)")
                if at - t0 > 2.5:
                    break
            r = await c.message("hi", conversation=cid)
            self.assertEqual(r["seq"], 1)


class SlowReaderTest(ServerTestCase):
    """--max-queued-frames: a client that never reads its replies is dropped, not buffered for.

    When its queue is full the server stops reading from it; after --send-timeout without
    progress it drops the connection."""
    server_args = ("--max-queued-frames", "4", "--send-timeout", "1", "--rate", "1000000", "--burst", "1000000")

    async def test_client_not_reading_is_dropped(self):
        # max_queue=1: the client library stops reading from the socket once one message waits.
        c = await harness.open_client(self.server, max_queue=1)
        try:
            cid = (await c.start())["conversation"]
            frame = json.dumps({"type": "message", "conversation": cid, "text": "What is DOMS?"})
            sent = 0
            try:
                for _ in range(50000):
                    await asyncio.wait_for(c.ws.send(frame), harness.TIMEOUT)
                    sent += 1
            except ConnectionClosed:
                pass
            except asyncio.TimeoutError:
                self.fail("the server stopped reading but kept the connection open")
            received = 0
            try:
                while True:
                    await c.recv(timeout=harness.TIMEOUT)
                    received += 1
            except ConnectionClosed:
                pass
            self.assertLess(received, sent, f"all {sent} replies were delivered: the queue limit "
                                            f"was never hit")
        finally:
            await c.close()
        self.assertEqual(harness.http_request(self.server, "GET", "/healthz").status, 200)
        async with self.connect() as other:
            self.assertEqual((await other.message("hi"))["seq"], 1)


if __name__ == "__main__":
    harness.main()
