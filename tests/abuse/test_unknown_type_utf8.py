"""Issue 11, defect 1: a `type` longer than the part the error message echoes, cut inside a
multi-byte character, used to put invalid UTF-8 into the error frame (and the server fell over).

`{"type": "a" + "é"*40}` must get `error` `unknown_type` whose message is valid UTF-8 (cut on a
character boundary), on the same connection as before, and the server must keep serving that
client and another one; with --threads 1 and 2.

Run: /usr/bin/python3 tests/abuse/test_unknown_type_utf8.py --server build/chat-server
"""

import json

import abuse_common as ab
from abuse_common import harness

# Types whose echo limit falls inside a character, at every offset of 2-, 3- and 4-byte ones.
TYPES = ["a" + "é" * 40] + ["a" * k + "é" * 40 for k in range(0, 4)] + \
        ["a" * k + "✓" * 30 for k in range(0, 3)] + ["a" * k + "😀" * 30 for k in range(0, 4)]


class UnknownTypeUtf8Base(ab.AbuseTestCase):
    lift_limits = True  # 200 frames at once from one address

    def check_message(self, err: dict, type_: str) -> None:
        msg = err["message"]
        self.assertNotIn("\ufffd", msg, f"the echoed type was cut inside a character: {err}")
        # Whatever part of the type is echoed is a prefix of it made of whole characters.
        for run in (r for r in msg.split("'") if r and set(r) <= set(type_)):
            if len(run) > 3:
                self.assertTrue(type_.startswith(run), f"echo {run!r} is not a prefix of the type: {err}")

    async def test_long_multibyte_type_gets_unknown_type(self):
        async with self.connect() as c:
            cid = (await c.start())["conversation"]
            for i, t in enumerate(TYPES):
                with self.subTest(type=t):
                    await c.send(json.dumps({"type": t, "ref": f"t{i}"}, ensure_ascii=False))
                    err = await c.expect_error("unknown_type", ref=f"t{i}")
                    self.check_message(err, t)
                    # The same connection goes on.
                    r = await c.message("hi", conversation=cid, ref=f"ok{i}")
                    self.assertEqual(r["seq"], i + 1)
        self.assertServerAlive()
        # Another client is served.
        async with self.connect() as other:
            self.assertEqual((await other.message("What is DOMS?"))["seq"], 1)
        self.assertEqual(harness.http_request(self.server, "GET", "/healthz").status, 200)

    async def test_the_frame_of_the_issue_on_a_fresh_connection(self):
        async with self.connect() as c:
            await c.send('{"type": "a' + "é" * 40 + '"}')
            err = await c.expect_error("unknown_type", ref=None)
            self.check_message(err, "a" + "é" * 40)
            self.assertEqual((await c.message("hi"))["seq"], 1)
        self.assertServerAlive()

    async def test_many_at_once_from_several_connections(self):
        frame = json.dumps({"type": "a" + "é" * 40}, ensure_ascii=False)
        clients = [await harness.open_client(self.server) for _ in range(4)]
        try:
            for c in clients:
                await c.send_batch([frame] * 50)
            for c in clients:
                for _ in range(50):
                    await c.expect_error("unknown_type")
                self.assertEqual((await c.message("hi"))["seq"], 1)
        finally:
            for c in clients:
                await c.close()
        self.assertServerAlive()

    async def test_operator_endpoint_too(self):
        # The operator endpoint parses its own frames; a long multi-byte type is unknown there too,
        # and an error never closes an operator connection.
        op = await ab.open_operator(self.server)
        try:
            for t in TYPES[:3]:
                await op.send(json.dumps({"type": t, "id": 1}, ensure_ascii=False))
                err = await op.expect_error("unknown_type")
                self.assertNotIn("\ufffd", err["message"], err)
            await op.send({"type": "ack", "id": 987654321})
            await op.expect_error("bad_request")
        finally:
            await op.close()
        self.assertServerAlive()


class OneThread(UnknownTypeUtf8Base):
    threads = 1


class TwoThreads(UnknownTypeUtf8Base):
    threads = 2


del UnknownTypeUtf8Base  # only the two configurations run


if __name__ == "__main__":
    harness.main()
