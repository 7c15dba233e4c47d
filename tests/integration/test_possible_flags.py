"""`possible_flags` (SPEC sections 5 and 6.1) in every reply the server gives: the WebSocket `reply`
frame and the `POST /v1/messages` answer carry it always, as an array, `[]` when the reply asks
about nothing.

Run: /usr/bin/python3 tests/integration/test_possible_flags.py --server build/chat-server
"""

import asyncio
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import harness  # noqa: E402
from harness import ServerTestCase, http_request, post_json

PAIN = "My upper back hurts after my workout yesterday"
# Ordinary messages of every kind: greeting, a knowledge question, pain (screening), a screening
# "yes" (an affirmed red flag), an explicit red flag, a negated one, and chit-chat.
ORDINARY = ["hi", "What is DOMS?", PAIN, "yes", "I'm short of breath", "no numbness at all", "thanks a lot"]


def post_reply(server, body):
    r = post_json(server, "/v1/messages", body)
    assert r.status == 200, r
    reply = r.json()
    harness.check_reply({**reply, "type": "reply"})
    return r, reply


class PossibleFlagsFieldTest(ServerTestCase):
    server_args = ("--rate", "1000", "--burst", "1000")

    async def test_reply_frame_always_carries_possible_flags(self):
        async with self.connect() as c:
            cid = (await c.start())["conversation"]
            for text in ORDINARY:
                with self.subTest(text=text):
                    r = await c.message(text, conversation=cid)
                    self.assertIn("possible_flags", r)
                    self.assertEqual(r["possible_flags"], [], "an ordinary message asks about no flag")
            # The raw frame too: the field is written, not merely defaulted by a JSON reader.
            await c.send({"type": "message", "conversation": cid, "text": "hi"})
            raw = await asyncio.wait_for(c.ws.recv(), harness.TIMEOUT)
            self.assertIn('"possible_flags":[]', raw)

    async def test_http_answer_always_carries_possible_flags(self):
        r, first = post_reply(self.server, {"text": "hi"})
        self.assertIn(b'"possible_flags":[]', r.body)
        self.assertEqual(first["possible_flags"], [])
        cid = first["conversation"]
        for text in ORDINARY[1:]:
            with self.subTest(text=text):
                _, reply = post_reply(self.server, {"text": text, "conversation": cid})
                self.assertEqual(reply["possible_flags"], [])


if __name__ == "__main__":
    harness.main()
