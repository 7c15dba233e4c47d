"""HTTP on the WebSocket port: /healthz, /metrics, POST /v1/messages, static files, path traversal.

Run: /usr/bin/python3 tests/integration/test_http.py --server build/chat-server
"""

import json
import tempfile
from pathlib import Path

import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import harness  # noqa: E402
from harness import InvalidStatusCode, ServerTestCase, http_request, post_json

_TMP = tempfile.TemporaryDirectory(prefix="backcheck-web-")
WEB = harness.make_web_dir(Path(_TMP.name))

TRAVERSALS = [
    "/../README.md",
    "/%2e%2e/README.md",
    "/%2E%2E/README.md",
    "/%2E%2E%2FREADME.md",
    "/..%2fREADME.md",
    "/..%2f..%2fetc/passwd",
    "/../../../../../../etc/passwd",
    "/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "//etc/passwd",
    "/web/../../etc/passwd",
    "/web/../README.md",
    "/./../README.md",
    "/app.js/../../README.md",
    "/..\\README.md",
    "/%2e%2e%5cREADME.md",
    "/%252e%252e/README.md",
    "/.%2e/README.md",
    "/leak.txt",
    "/leakdir/secret.txt",
    "/leakdir/../secret.txt",
    "/secret.txt",
    "/outside/secret.txt",
]


def looks_leaked(body: bytes) -> bool:
    return WEB["marker"].encode() in body or b"root:" in body


class HttpTest(ServerTestCase):
    server_args = ("--max-body-bytes", "1024", "--max-text-chars", "50")

    @classmethod
    def web_dir(cls):
        return WEB["web"]

    # -- health and metrics ----------------------------------------------------------------

    async def test_healthz(self):
        r = http_request(self.server, "GET", "/healthz")
        self.assertEqual(r.status, 200, r)

    async def test_metrics(self):
        # Some traffic first, so that the labelled series exist.
        async with self.connect() as c:
            before = harness.parse_metrics(http_request(self.server, "GET", "/metrics").body.decode())
            received_before = harness.metric_value(before, "backcheck_messages_received_total") or 0
            cid = (await c.start())["conversation"]
            await c.message("hi", conversation=cid)
            await c.message("What is DOMS?", conversation=cid)
            await c.message("I'm short of breath", conversation=cid)
            await c.send("not json")
            await c.expect_error("bad_json")
            r = http_request(self.server, "GET", "/metrics")
            self.assertEqual(r.status, 200, r)
            self.assertTrue(r.content_type.startswith("text/plain"), r.content_type)
            text = r.body.decode("utf-8")
            samples = harness.parse_metrics(text)
            names = {n for n, _, _ in samples}
            for name in ["backcheck_connections_open", "backcheck_conversations",
                         "backcheck_messages_received_total", "backcheck_replies_total",
                         "backcheck_escalations_total", "backcheck_errors_total",
                         "backcheck_reply_latency_seconds_bucket",
                         "backcheck_reply_latency_seconds_sum",
                         "backcheck_reply_latency_seconds_count"]:
                self.assertIn(name, names, f"metric {name} missing from:\n{text}")
            v = harness.metric_value
            self.assertGreaterEqual(v(samples, "backcheck_connections_open"), 1)
            self.assertGreaterEqual(v(samples, "backcheck_conversations"), 1)
            self.assertGreaterEqual(v(samples, "backcheck_messages_received_total") - received_before, 3)
            self.assertGreaterEqual(v(samples, "backcheck_replies_total", intent="greeting") or 0, 1, text)
            self.assertGreaterEqual(v(samples, "backcheck_replies_total", intent="doms") or 0, 1, text)
            self.assertGreaterEqual(v(samples, "backcheck_escalations_total", level="emergency") or 0, 1, text)
            self.assertGreaterEqual(v(samples, "backcheck_errors_total", code="bad_json") or 0, 1, text)
            # A well-formed histogram: cumulative buckets ending at +Inf == _count.
            buckets = [(float(l["le"]), val) for n, l, val in samples
                       if n == "backcheck_reply_latency_seconds_bucket" and "le" in l]
            self.assertTrue(buckets and buckets[-1][0] == float("inf"), buckets)
            counts = [val for _, val in sorted(buckets)]
            self.assertEqual(counts, sorted(counts), "histogram buckets must be cumulative")
            self.assertEqual(counts[-1], v(samples, "backcheck_reply_latency_seconds_count"))
            self.assertGreaterEqual(counts[-1], 3)
            self.assertIn("# TYPE backcheck_reply_latency_seconds histogram", text)

    # -- POST /v1/messages -----------------------------------------------------------------

    def check_http_reply(self, r):
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.content_type.startswith("application/json"), r.content_type)
        body = r.json()
        # The reply object as on the WebSocket; its "type" is optional over HTTP (the status says it).
        self.assertEqual(body.get("type", "reply"), "reply", body)
        harness.check_reply({**body, "type": "reply"})
        return body

    async def test_post_message_new_and_continued(self):
        first = self.check_http_reply(post_json(self.server, "/v1/messages", {"text": "hi"}))
        self.assertEqual((first["seq"], first["intent"], first["state"]), (1, "greeting", "welcome"))
        cid = first["conversation"]
        second = self.check_http_reply(post_json(self.server, "/v1/messages",
                                                 {"text": "My upper back hurts after my workout yesterday",
                                                  "conversation": cid}))
        self.assertEqual((second["conversation"], second["seq"]), (cid, 2))
        self.assertEqual((second["intent"], second["state"]), ("describe_pain", "screening"))
        third = self.check_http_reply(post_json(self.server, "/v1/messages",
                                                {"text": "yes", "conversation": cid}))
        self.assertEqual((third["seq"], third["state"], third["urgency"], third["escalated"]),
                         (3, "escalated", "urgent", True))
        # A new conversation each time none is given.
        other = self.check_http_reply(post_json(self.server, "/v1/messages", {"text": "hi"}))
        self.assertNotEqual(other["conversation"], cid)
        self.assertEqual(other["seq"], 1)
        # The same conversation continues over the WebSocket, and resumes with its history.
        async with self.connect() as c:
            r = await c.message("What is DOMS?", conversation=cid)
            self.assertEqual((r["seq"], r["urgency"]), (4, "urgent"))
        async with self.connect() as c:
            started = await c.start(resume=cid)
            self.assertEqual(len(started["history"]), 8)
            self.assertEqual(started["history"][1]["text"], first["text"])

    async def test_post_continues_websocket_conversation(self):
        async with self.connect() as c:
            cid = (await c.start())["conversation"]
            await c.message("I'm short of breath", conversation=cid)
        body = self.check_http_reply(post_json(self.server, "/v1/messages",
                                               {"text": "What is DOMS?", "conversation": cid}))
        self.assertEqual((body["conversation"], body["seq"], body["intent"], body["urgency"]),
                         (cid, 2, "doms", "emergency"))

    async def test_post_bad_json(self):
        for body in ["not json", "{", "[1,2]", ""]:
            with self.subTest(body=body):
                r = post_json(self.server, "/v1/messages", body)
                self.assertEqual(r.status, 400, r)
                err = r.json()
                self.assertEqual((err.get("type"), err.get("code")), ("error", "bad_json"), err)
                self.assertTrue(err.get("message"), err)

    async def test_post_bad_request(self):
        for obj in [{}, {"text": 5}, {"text": ""}, {"text": "hi", "conversation": 5}]:
            with self.subTest(obj=obj):
                r = post_json(self.server, "/v1/messages", obj)
                self.assertEqual(r.status, 400, r)
                self.assertEqual(r.json().get("code"), "bad_request", r)

    async def test_post_unknown_conversation(self):
        r = post_json(self.server, "/v1/messages", {"text": "hi", "conversation": "Z" * 22})
        self.assertEqual(r.status, 404, r)
        err = r.json()
        self.assertEqual((err.get("type"), err.get("code")), ("error", "unknown_conversation"), err)

    async def test_post_text_too_long(self):
        r = post_json(self.server, "/v1/messages", {"text": "a" * 51})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json().get("code"), "text_too_long", r)
        # 50 code points of a 4-byte character are fine.
        self.check_http_reply(post_json(self.server, "/v1/messages", {"text": "😀" * 50}))

    async def test_post_body_too_big(self):
        body = json.dumps({"text": "hi", "pad": "x" * 2000})
        r = post_json(self.server, "/v1/messages", body)
        self.assertEqual(r.status, 413, r)
        # The server is fine afterwards.
        self.check_http_reply(post_json(self.server, "/v1/messages", {"text": "hi"}))

    # -- static files -----------------------------------------------------------------------

    async def test_index(self):
        for path in ["/", "/index.html"]:
            with self.subTest(path=path):
                r = http_request(self.server, "GET", path)
                self.assertEqual(r.status, 200, r)
                self.assertTrue(r.content_type.startswith("text/html"), r.content_type)
                self.assertEqual(r.body.decode(), WEB["files"]["index.html"])

    async def test_static_content_types(self):
        r = http_request(self.server, "GET", "/app.js")
        self.assertEqual(r.status, 200, r)
        self.assertIn(r.content_type.split(";")[0].strip(), ("text/javascript", "application/javascript"))
        self.assertEqual(r.body.decode(), WEB["files"]["app.js"])
        r = http_request(self.server, "GET", "/style.css")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.content_type.startswith("text/css"), r.content_type)
        self.assertEqual(r.body.decode(), WEB["files"]["style.css"])

    async def test_unknown_paths_404(self):
        for path in ["/nope", "/nope.html", "/app.jsx", "/v1/nope", "/healthz/x", "/web/index.html"]:
            with self.subTest(path=path):
                r = http_request(self.server, "GET", path)
                self.assertEqual(r.status, 404, r)

    async def test_path_traversal(self):
        for path in TRAVERSALS:
            with self.subTest(path=path):
                r = http_request(self.server, "GET", path)
                self.assertFalse(looks_leaked(r.body), f"{path} served a file outside --web: {r}")
                self.assertEqual(r.status, 404, r)
        self.assertServerAlive()

    async def test_websocket_upgrade_on_other_path_refused(self):
        with self.assertRaises(InvalidStatusCode) as cm:
            async with self.connect("/v1/nope"):
                pass
        self.assertEqual(cm.exception.status_code, 404)


class DefaultWebTest(ServerTestCase):
    """Without --web the server serves the repository's web/ folder."""

    async def test_widget_page(self):
        r = http_request(self.server, "GET", "/")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.content_type.startswith("text/html"), r.content_type)
        self.assertIn(b"<", r.body)

    async def test_traversal_does_not_reach_the_repository(self):
        readme = (harness.REPO / "README.md").read_bytes()[:40]
        for path in ["/../README.md", "/%2e%2e/README.md", "/%2E%2E%2FREADME.md",
                     "/..%2f..%2fetc/passwd", "//etc/passwd", "/web/../../etc/passwd",
                     "/../CMakeLists.txt", "/../knowledge/article.txt"]:
            with self.subTest(path=path):
                r = http_request(self.server, "GET", path)
                self.assertNotIn(readme, r.body)
                self.assertNotIn(b"root:", r.body)
                self.assertNotIn(b"cmake_minimum_required", r.body)
                self.assertEqual(r.status, 404, r)


if __name__ == "__main__":
    try:
        harness.main()
    finally:
        _TMP.cleanup()
