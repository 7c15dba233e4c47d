"""The escalation webhook (issue 16 item 4): `--escalation-webhook URL` POSTs each escalation,
signed (X-Backcheck-Signature: sha256=HMAC(secret, timestamp + "." + body)), retried with back-off
from the store's outbox until a 2xx, never blocking replies, and neither lost nor repeated across
a restart. The payload carries no text the person wrote.

Run: /usr/bin/python3 tests/integration/test_webhook.py --server build/chat-server
"""

import hashlib
import hmac
import http.server
import json
import queue
import secrets
import threading
import time
import unittest

import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import harness  # noqa: E402
from harness import Server  # noqa: E402

SECRET = secrets.token_hex(32)


class Receiver:
    """A local HTTP endpoint that fails its first `failures` POSTs (500, then a dropped connection)."""

    def __init__(self, failures: int):
        self.posts: "queue.Queue[tuple[int, dict, bytes]]" = queue.Queue()  # (status answered, headers, body)
        self.failures = failures
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                n = receiver.failures
                if n > 0:
                    receiver.failures -= 1
                    if n % 2 == 0:
                        receiver.posts.put((500, dict(self.headers), body))
                        self.send_response(500)
                        self.end_headers()
                        return
                    receiver.posts.put((0, dict(self.headers), body))
                    self.close_connection = True
                    self.connection.close()  # no answer at all
                    return
                receiver.posts.put((200, dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/backcheck"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def next_post(self, timeout=30.0):
        try:
            return self.posts.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no POST within {timeout} s") from None

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def check_signature(test, headers, body):
    stamp = headers["X-Backcheck-Timestamp"]
    expected = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    test.assertEqual(headers["X-Backcheck-Signature"], f"sha256={expected}")
    test.assertLess(abs(time.time() - int(stamp)), 300)


class WebhookTest(unittest.IsolatedAsyncioTestCase):
    async def test_failing_receiver_gets_the_escalation_once_after_a_restart_in_between(self):
        receiver = Receiver(failures=2)
        self.addCleanup(receiver.close)
        server = Server("--escalation-webhook", receiver.url, env={"BACKCHECK_WEBHOOK_SECRET": SECRET})
        self.addCleanup(server.cleanup)
        server.start()
        client = await harness.open_client(server)
        cid = (await client.start())["conversation"]
        reply = await client.message("I have chest pain and my left arm is numb", conversation=cid)
        self.assertTrue(reply["escalated"], "the reply did not wait for the webhook")
        await client.close()
        status, _, first = receiver.next_post()
        self.assertEqual(status, 500)
        server.stop_and_check()  # restarted while the receiver still fails
        server.restart()
        statuses = [status]
        while statuses[-1] != 200:
            status, headers, body = receiver.next_post()
            statuses.append(status)
        self.assertEqual(statuses, [500, 0, 200])
        self.assertEqual(body, first, "the same event each time")
        check_signature(self, headers, body)
        event = json.loads(body)
        self.assertEqual((event["type"], event["conversation"], event["level"]), ("escalation", cid, "emergency"))
        self.assertEqual(headers["X-Backcheck-Delivery"], str(event["id"]))
        self.assertNotIn("text", event)
        self.assertNotIn("left arm", body.decode(), "nothing the person wrote")
        # Delivered: after another restart the next POST is a new escalation, not that one again.
        server.stop_and_check()
        server.restart()
        client = await harness.open_client(server)
        other = (await client.start())["conversation"]
        self.assertTrue((await client.message("I can't breathe", conversation=other))["escalated"])
        await client.close()
        _, headers, body = receiver.next_post()
        self.assertEqual(json.loads(body)["conversation"], other)
        self.assertGreater(int(headers["X-Backcheck-Delivery"]), event["id"])

    def test_the_flag_needs_a_secret_and_a_durable_store(self):
        for args, env, why in ((("--escalation-webhook", "http://127.0.0.1:9/x"), {"BACKCHECK_WEBHOOK_SECRET": None},
                                "BACKCHECK_WEBHOOK_SECRET"),
                               (("--escalation-webhook", "http://127.0.0.1:9/x", "--store", "memory"),
                                {"BACKCHECK_WEBHOOK_SECRET": SECRET}, "--store sqlite"),
                               (("--escalation-webhook", "ftp://example.org/x"), {"BACKCHECK_WEBHOOK_SECRET": SECRET},
                                "--escalation-webhook")):
            with self.subTest(args=args):
                server = Server(*args, env=env)
                self.addCleanup(server.cleanup)
                code, err = server.start_expect_failure()
                self.assertNotEqual(code, 0)
                self.assertIn(why, err)


if __name__ == "__main__":
    harness.main()
