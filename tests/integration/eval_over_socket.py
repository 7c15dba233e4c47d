"""The labelled dev set (tests/eval/dev.jsonl) over the WebSocket.

Every line is its own conversation; all of them run at once, multiplexed on one connection (each
conversation's turns are sent one after the other, waiting for each reply). Expectations are
checked exactly as tests/eval/README.md says: intent, state, urgency (after the message),
red_flags and possible_flags (as sets; [] means none), facts (case-insensitive regular expressions on the text).

Run: /usr/bin/python3 tests/integration/eval_over_socket.py --server build/chat-server [--dev FILE]
"""

import argparse
import asyncio
import json
import re
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import harness  # noqa: E402
from harness import ServerTestCase

DEV = harness.REPO / "tests" / "eval" / "dev.jsonl"


def load_dev(path):
    cases = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            obj = json.loads(line)
            turns = obj["turns"] if "turns" in obj else [obj]
            name = obj.get("name") or obj.get("text")
            cases.append((lineno, name, turns))
    return cases


def check_turn(expect: dict, reply: dict) -> list:
    problems = []
    for key in ("intent", "state", "urgency"):
        if key in expect and reply.get(key) != expect[key]:
            problems.append(f"{key}: expected {expect[key]!r}, got {reply.get(key)!r}")
    for key in ("red_flags", "possible_flags"):
        if key in expect and set(reply.get(key) or []) != set(expect[key]):
            problems.append(f"{key}: expected {sorted(expect[key])}, got {sorted(reply.get(key) or [])}")
    for fact in expect.get("facts", []):
        if not re.search(fact, reply.get("text", ""), re.IGNORECASE):
            problems.append(f"facts: /{fact}/i not found in the text")
    return problems


class Mux:
    """Routes frames on one connection to waiters by ref."""

    def __init__(self, client):
        self.client = client
        self.waiters = {}
        self.task = asyncio.create_task(self._run())

    async def _run(self):
        while True:
            frame = await self.client.recv(timeout=harness.TIMEOUT * 6)
            fut = self.waiters.pop(frame.get("ref"), None)
            if fut is None:
                raise AssertionError(f"unexpected frame {frame}")
            fut.set_result(frame)

    async def ask(self, frame: dict) -> dict:
        fut = asyncio.get_running_loop().create_future()
        self.waiters[frame["ref"]] = fut
        await self.client.send(frame)
        done, _ = await asyncio.wait({fut, self.task}, timeout=harness.TIMEOUT,
                                     return_when=asyncio.FIRST_COMPLETED)
        if fut in done:
            return fut.result()
        if self.task in done:
            self.task.result()  # raises what went wrong
        raise AssertionError(f"no answer to ref {frame['ref']!r} within {harness.TIMEOUT} s")

    def stop(self):
        self.task.cancel()


class EvalOverSocketTest(ServerTestCase):
    server_args = ("--rate", "100000", "--burst", "100000",
                   "--max-conversations-per-connection", "10000", "--max-queued-frames", "100000")

    async def test_dev_set(self):
        cases = load_dev(DEV)
        self.assertTrue(cases, f"no cases in {DEV}")
        async with self.connect() as c:
            # Start every conversation; new conversations are interchangeable, so the order of
            # the `started` frames does not matter.
            for _ in cases:
                await c.send({"type": "start"})
            conversations = []
            for _ in cases:
                started = await c.recv_type("started")
                self.assertEqual((started["state"], started["urgency"], started["history"]),
                                 ("welcome", "none", []))
                conversations.append(started["conversation"])
            self.assertEqual(len(set(conversations)), len(cases))

            mux = Mux(c)

            async def run_case(index, conv):
                lineno, name, turns = cases[index]
                failures = []
                for t, turn in enumerate(turns):
                    reply = await mux.ask({"type": "message", "conversation": conv,
                                           "text": turn["text"], "ref": f"{lineno}.{t}"})
                    if reply["type"] != "reply":
                        failures.append(f"turn {t + 1} {turn['text']!r}: got {reply}")
                        break
                    harness.check_reply(reply)
                    if reply["conversation"] != conv or reply["seq"] != t + 1:
                        failures.append(f"turn {t + 1}: conversation/seq {reply['conversation']}/"
                                        f"{reply['seq']}, expected {conv}/{t + 1}")
                    for p in check_turn(turn, reply):
                        failures.append(f"turn {t + 1} {turn['text']!r}: {p}")
                return lineno, name, failures

            try:
                results = await asyncio.gather(*(run_case(i, conv) for i, conv in enumerate(conversations)))
            finally:
                mux.stop()

        failed = [(lineno, name, f) for lineno, name, f in results if f]
        for lineno, name, failures in results:
            status = "FAIL" if failures else "ok"
            print(f"{status:4} line {lineno}: {name}", file=sys.stderr)
            for f in failures:
                print(f"       {f}", file=sys.stderr)
        print(f"{len(results) - len(failed)}/{len(results)} dev-set conversations passed over the socket",
              file=sys.stderr)
        for lineno, name, failures in failed:
            with self.subTest(line=lineno, name=name):
                self.fail("; ".join(failures))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--dev")
    args, rest = parser.parse_known_args()
    if args.dev:
        DEV = args.dev
    sys.argv = [sys.argv[0], *rest]
    harness.main()
