"""`possible_flags` (SPEC sections 5 and 6.1) in every reply the server gives: the WebSocket `reply`
frame and the `POST /v1/messages` answer carry it always, as an array, `[]` when the reply asks
about nothing; and the safety net over the wire: partial evidence ("I noticed some blood this
morning") is asked about in `possible_flags` without raising the urgency, a "yes" escalates and a
"no" does not, in the frame, the HTTP answer, `backcheck chat` (--json and human) and the live
script runner.

Run: /usr/bin/python3 tests/integration/test_possible_flags.py --server build/chat-server
"""

import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path

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


BLOOD = "I noticed some blood this morning"


class SafetyNetAsksTest(ServerTestCase):
    """The safety net's question over the wire (SPEC 5): partial evidence for coughing_blood gives
    possible_flags ["coughing_blood"], no red flag, the urgency unchanged and a question; "yes"
    then escalates it, "no" does not."""
    server_args = ("--rate", "1000", "--burst", "1000")

    def assert_asks_about_coughing_blood(self, r):
        self.assertEqual(r["possible_flags"], ["coughing_blood"], r)
        self.assertEqual(r["red_flags"], [], "asked about, not affirmed")
        self.assertEqual(r["urgency"], "none", "the urgency rises only when a flag is affirmed")
        self.assertIs(r["escalated"], False)
        self.assertIn("?", r["text"], "the reply asks one yes/no question")

    async def test_frame_asks_then_yes_escalates(self):
        async with self.connect() as c:
            cid = (await c.start())["conversation"]
            self.assert_asks_about_coughing_blood(await c.message(BLOOD, conversation=cid))
            yes = await c.message("yes", conversation=cid)
            self.assertIn("coughing_blood", yes["red_flags"], yes)
            self.assertEqual(yes["urgency"], "emergency")
            self.assertIs(yes["escalated"], True)
            self.assertEqual(yes["possible_flags"], [])

    async def test_frame_asks_then_no_carries_on(self):
        async with self.connect() as c:
            cid = (await c.start())["conversation"]
            self.assert_asks_about_coughing_blood(await c.message(BLOOD, conversation=cid))
            no = await c.message("no", conversation=cid)
            self.assertEqual(no["red_flags"], [], no)
            self.assertEqual(no["urgency"], "none")
            self.assertIs(no["escalated"], False)

    async def test_http_answer_asks(self):
        _, r = post_reply(self.server, {"text": BLOOD})
        self.assert_asks_about_coughing_blood(r)
        _, yes = post_reply(self.server, {"text": "yes", "conversation": r["conversation"]})
        self.assertIn("coughing_blood", yes["red_flags"], yes)
        self.assertEqual(yes["urgency"], "emergency")

    def test_cli_chat_and_live_runner_carry_it(self):
        tool = harness.server_binary().parent / "backcheck"
        as_json = subprocess.run([str(tool), "chat", "--json"], input=BLOOD + "\n", capture_output=True,
                                 text=True, timeout=60)
        self.assertEqual(as_json.returncode, 0, as_json.stderr)
        self.assertEqual(json.loads(as_json.stdout.splitlines()[0])["possible_flags"], ["coughing_blood"])
        human = subprocess.run([str(tool), "chat"], input=BLOOD + "\n", capture_output=True, text=True, timeout=60)
        self.assertIn("\n  asking about: coughing_blood\n", human.stdout)
        # The live runner reads possible_flags from the server's frames: an expectation on it holds
        # only when the frame's field is parsed.
        with tempfile.TemporaryDirectory() as d:
            script = Path(d) / "asks.convo"
            script.write_text(f"> {BLOOD}\n  possible flags: coughing_blood\n  red flags: none\n"
                              "> yes\n  red flags include: coughing_blood\n  possible flags: none\n")
            live = subprocess.run([str(tool), "test", str(script), "--url", self.server.ws_url],
                                  capture_output=True, text=True, timeout=120)
            self.assertEqual(live.returncode, 0, live.stdout + live.stderr)


if __name__ == "__main__":
    harness.main()
