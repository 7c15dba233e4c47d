"""Hot reload of the knowledge base (issue 17 item 4): SIGHUP and POST /v1/admin/reload.

The server runs on a copy of knowledge/ in a temporary folder. Several WebSocket conversations
are kept busy in the middle of screening (each asks a question between two screening answers,
again and again) while the copy's answer text is edited and reloaded, once by SIGHUP and once by
POST: no connection drops, no message fails, the replies switch to the new text, /healthz and
/metrics show the new version, and each conversation then goes on with its screening where it
was. Then the copy is broken (invalid JSON, then a source quote the article does not hold): the
reload is refused with the loader's error (422 for the POST, a log line for SIGHUP), the old
engine still answers and the version stays. The POST needs an operator token (401 without, 403
from another origin).

No sleeps for timing: every wait is on a condition, with a deadline.

Run: /usr/bin/python3 tests/integration/test_reload.py --server build/chat-server
"""

import asyncio
import json
import shutil
import signal
import sys
import tempfile
import time
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import harness  # noqa: E402
from harness import Server, http_request  # noqa: E402

TOKEN = "reload-test-operator-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
DEADLINE = 20.0
CONVERSATIONS = 4
QUESTION = "What is DOMS?"


async def wait_for(condition, what: str, deadline: float = DEADLINE):
    """Polls `condition` (sync, run off the event loop) until it is truthy; its value."""
    end = time.monotonic() + deadline
    while True:
        value = await asyncio.to_thread(condition)
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline} s waiting for {what}")
        await asyncio.sleep(0.02)  # a poll interval, not a wait for something to happen


class ReloadTest(unittest.IsolatedAsyncioTestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="backcheck-reload-")
        self.kb = Path(self.tmp.name) / "knowledge"
        (self.kb / "data").mkdir(parents=True)
        source = harness.REPO / "knowledge"
        shutil.copy(source / "article.txt", self.kb / "article.txt")
        for f in (source / "data").iterdir():
            shutil.copy(f, self.kb / "data" / f.name)
        # Each busy connection sends as fast as it is answered: no per-connection rate limit.
        self.server = Server("--kb", str(self.kb), "--rate", "1000000", "--burst", "1000000",
                             env={"CHAT_OPERATOR_TOKEN": TOKEN})
        self.server.start()
        self.flow = harness.load_kb_file("flow.jsonc")

    def tearDown(self):
        try:
            if self.server.alive():
                self.server.stop_and_check()
            else:
                self.fail(f"the server died\n{self.server.stderr_tail()}")
        finally:
            self.server.cleanup()
            self.tmp.cleanup()

    # -- helpers ----------------------------------------------------------------------------

    def healthz(self) -> dict:
        r = http_request(self.server, "GET", "/healthz")
        self.assertEqual(r.status, 200, r)
        return r.json()

    def metrics(self):
        return harness.parse_metrics(http_request(self.server, "GET", "/metrics").body.decode())

    def reloads(self, outcome: str) -> float:
        return harness.metric_value(self.metrics(), "backcheck_knowledge_reloads_total", outcome=outcome) or 0

    def post_reload(self, headers=None):
        return http_request(self.server, "POST", "/v1/admin/reload", "{}", AUTH if headers is None else headers)

    def edit(self, name: str, old: str, new: str) -> None:
        path = self.kb / "data" / name
        text = path.read_text(encoding="utf-8")
        self.assertIn(old, text, f"{name} should contain {old!r}")
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    async def busy(self, client, cid: str, stop: asyncio.Event, seen: list) -> int:
        """Asks QUESTION in the conversation until `stop`; every reply must be a reply that stays
        in screening. Returns how many were answered."""
        n = 0
        while not stop.is_set():
            reply = await client.message(QUESTION, conversation=cid)
            self.assertEqual(reply["state"], "screening", reply)
            seen.append(reply["text"])
            n += 1
        return n

    # -- the test ---------------------------------------------------------------------------

    async def test_reload_under_load_then_refused(self):
        screening = self.flow["screening"]
        v0 = self.healthz()["knowledge_version"]
        self.assertRegex(v0, r"^[0-9a-f]{16}$")
        self.assertEqual(harness.metric_value(self.metrics(), "backcheck_knowledge_info", version=v0), 1)

        # The answer the question gets, from the copy's topics, to edit.
        topics = json.loads(harness.strip_jsonc_comments((self.kb / "data" / "topics.jsonc").read_text()))["topics"]

        async with harness.connect(self.server) as probe:
            text = (await probe.message(QUESTION))["text"]
        answer = next(t["answer"] for t in topics if t["answer"] and t["answer"] in text)
        literal = json.dumps(answer, ensure_ascii=False)

        clients, cids = [], []
        for _ in range(CONVERSATIONS):
            c = await harness.open_client(self.server)
            cid = (await c.start())["conversation"]
            await c.message("my upper back is sore after rows yesterday", conversation=cid)
            second = await c.message("no", conversation=cid)  # in the middle: question 2 of 3
            self.assertIn(screening[1]["text"], second["text"])
            clients.append(c)
            cids.append(cid)
        open_before = harness.metric_value(self.metrics(), "backcheck_connections_open")

        stop = asyncio.Event()
        seen = [[] for _ in clients]
        load = [asyncio.create_task(self.busy(c, cid, stop, s)) for c, cid, s in zip(clients, cids, seen)]
        try:
            async def all_say(marker: str):
                marks = [len(s) for s in seen]  # replies from now on
                end = time.monotonic() + DEADLINE
                while not all(any(marker in t for t in s[m:]) for s, m in zip(seen, marks)):
                    for task in load:
                        if task.done():
                            task.result()  # a failed message fails the test here
                    if time.monotonic() > end:
                        raise AssertionError(f"not every conversation's replies say {marker!r}")
                    await asyncio.sleep(0.02)

            # 1. SIGHUP, with the answer edited.
            await wait_for(lambda: all(len(s) >= 2 for s in seen), "every conversation busy")
            self.edit("topics.jsonc", literal, json.dumps("RELOADED-ONE " + answer, ensure_ascii=False))
            self.server.proc.send_signal(signal.SIGHUP)
            v1 = await wait_for(lambda: (v := self.healthz()["knowledge_version"]) != v0 and v, "a new version (SIGHUP)")
            await all_say("RELOADED-ONE")

            # 2. POST, with the answer edited again.
            self.edit("topics.jsonc", "RELOADED-ONE ", "RELOADED-TWO ")
            r = await asyncio.to_thread(self.post_reload)
            self.assertEqual(r.status, 200, r)
            body = r.json()
            self.assertEqual(body["outcome"], "reloaded", body)
            self.assertEqual(body["previous_version"], v1, body)
            v2 = body["knowledge_version"]
            self.assertNotIn(v2, (v0, v1))
            self.assertEqual(self.healthz()["knowledge_version"], v2)
            await all_say("RELOADED-TWO")
        finally:
            stop.set()
            counts = await asyncio.gather(*load, return_exceptions=True)
        for n in counts:
            if isinstance(n, BaseException):
                raise n
        self.assertTrue(all(n >= 3 for n in counts), counts)

        samples = self.metrics()
        self.assertEqual(harness.metric_value(samples, "backcheck_knowledge_info", version=v2), 1)
        self.assertIsNone(harness.metric_value(samples, "backcheck_knowledge_info", version=v0))
        self.assertEqual(harness.metric_value(samples, "backcheck_knowledge_reloads_total", outcome="reloaded"), 2)
        self.assertEqual(harness.metric_value(samples, "backcheck_connections_open"), open_before)
        self.assertEqual(harness.metric_value(samples, "backcheck_errors_total") or 0, 0)

        # The conversations in flight go on with their screening where they were.
        for c, cid in zip(clients, cids):
            self.assertTrue(c.ws.open, "a connection was dropped")
            third = await c.message("no", conversation=cid)
            self.assertIn(screening[2]["text"], third["text"])
            passed = await c.message("no", conversation=cid)
            self.assertNotEqual(passed["state"], "screening", passed)

        # 3. Broken: invalid JSON. The POST is refused with the error; the old engine answers.
        intents = self.kb / "data" / "intents.jsonc"
        good_intents = intents.read_text(encoding="utf-8")
        intents.write_text(good_intents + "\n{ not json", encoding="utf-8")
        r = await asyncio.to_thread(self.post_reload)
        self.assertEqual(r.status, 422, r)
        body = r.json()
        self.assertEqual(body["outcome"], "refused", body)
        self.assertIn("intents.jsonc", body["error"])
        self.assertIn("invalid JSON", body["error"])
        self.assertEqual(body["knowledge_version"], v2)
        self.assertEqual(self.healthz()["knowledge_version"], v2)
        reply = await clients[0].message(QUESTION, conversation=cids[0])
        self.assertIn("RELOADED-TWO", reply["text"])

        # ...and by SIGHUP: refused, logged, the version unchanged.
        refused = self.reloads("refused")
        self.server.proc.send_signal(signal.SIGHUP)
        await wait_for(lambda: self.reloads("refused") == refused + 1, "the SIGHUP reload refused")
        self.assertEqual(self.healthz()["knowledge_version"], v2)
        await wait_for(lambda: '"outcome":"refused"' in self.server.stderr_path.read_text()
                       and '"trigger":"sighup"' in self.server.stderr_path.read_text(), "the refusal logged")

        # 4. Broken: valid JSON that fails validation (a quote the article does not hold).
        intents.write_text(good_intents, encoding="utf-8")
        self.edit("topics.jsonc", '"quote": "', '"quote": "Not in the article. ')
        r = await asyncio.to_thread(self.post_reload)
        self.assertEqual(r.status, 422, r)
        self.assertIn("topics.jsonc", r.json()["error"])
        self.assertIn("quote", r.json()["error"])
        self.assertEqual(self.healthz()["knowledge_version"], v2)
        async with harness.connect(self.server) as fresh:
            self.assertIn("RELOADED-TWO", (await fresh.message(QUESTION))["text"])

        for c in clients:
            await c.close()

    async def test_reload_is_for_operators(self):
        r = self.post_reload(headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.headers.get("WWW-Authenticate"), "Bearer")
        r = self.post_reload(headers={"Authorization": "Bearer wrong", "Content-Type": "application/json"})
        self.assertEqual(r.status, 401, r)
        r = self.post_reload(headers={**AUTH, "Origin": "https://elsewhere.example"})
        self.assertEqual(r.status, 403, r)
        r = http_request(self.server, "GET", "/v1/admin/reload", headers=AUTH)
        self.assertEqual(r.status, 405, r)
        self.assertEqual(self.reloads("reloaded") + self.reloads("refused"), 0)
        # A reload while another runs is answered at once, "busy" (409), or not at all raced.
        self.server.proc.send_signal(signal.SIGHUP)
        r = self.post_reload()
        self.assertIn(r.status, (200, 409), r)
        if r.status == 409:
            self.assertEqual(r.json()["outcome"], "busy")
            self.assertEqual(r.headers.get("Retry-After"), "1")
        await wait_for(lambda: self.reloads("reloaded") >= 1, "the SIGHUP reload done")


if __name__ == "__main__":
    harness.main()
