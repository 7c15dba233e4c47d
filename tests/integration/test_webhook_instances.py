"""The escalation webhook with --store postgres and two instances on one database (issue 16): the
PostgreSQL outbox hands each pending escalation to one instance at a time (a lease taken with
FOR UPDATE SKIP LOCKED, server/store/postgres_outbox.hpp), so an escalation is POSTed by one of
them, once, though every instance is woken by every escalation and sweeps from the oldest; an
instance stopped while the receiver fails gives its lease back, and the escalation is delivered
once after its restart, never again after that. tests/integration/test_webhook.py is the SQLite
case (its secret and signature check are used here).

Starts its own throwaway PostgreSQL (tests/pg/pg_instance.py). No sleeps for timing: every wait
is for a condition (a POST, a row), with a deadline.

Run: /usr/bin/python3 tests/integration/test_webhook_instances.py --server build/chat-server
"""

import http.server
import json
import queue
import sys
import threading
import time
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pg"))

import harness  # noqa: E402
from harness import Server  # noqa: E402
import pg_instance  # noqa: E402
from test_instances import psql  # noqa: E402
from test_webhook import SECRET, check_signature  # noqa: E402

EMERGENCY = "I have chest pain and my left arm is numb"
TIMEOUT = 30.0


class GatedReceiver:
    """A local HTTP endpoint that fails its first two POSTs: the first is held open until release()
    and then answered 500, the second gets no answer (a dropped connection); later ones get 200.
    Holding the first lets a test see what the other instance sends meanwhile."""

    def __init__(self):
        self.posts: "queue.Queue[tuple[int, dict, bytes]]" = queue.Queue()  # (status answered, headers, body)
        self.gate = threading.Event()
        self.held = threading.Event()  # the first POST has arrived and waits on the gate
        self.count = 0
        lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    receiver.count += 1
                    n = receiver.count
                if n == 1:
                    receiver.held.set()
                    receiver.gate.wait(TIMEOUT)
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    receiver.posts.put((500, dict(self.headers), body))
                elif n == 2:
                    receiver.posts.put((0, dict(self.headers), body))
                    self.close_connection = True
                    self.connection.close()  # no answer at all
                else:
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    receiver.posts.put((200, dict(self.headers), body))

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/backcheck"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def next_post(self, timeout=TIMEOUT):
        try:
            return self.posts.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no POST within {timeout} s") from None

    def rest(self):
        """The POSTs not taken yet (call once the instances have stopped: nothing is in flight)."""
        out = []
        while True:
            try:
                out.append(self.posts.get_nowait())
            except queue.Empty:
                return out

    def close(self):
        self.gate.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def delivery(post) -> int:
    return int(post[1]["X-Backcheck-Delivery"])


def wait_until(what: str, predicate, timeout: float = TIMEOUT):
    """Polls `predicate` until it returns something true, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


class WebhookAcrossInstancesTest(unittest.IsolatedAsyncioTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.pg = pg_instance.PgInstance()
        cls.pg.__enter__()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.pg.__exit__(None, None, None)

    def instance(self, receiver: GatedReceiver) -> Server:
        server = Server("--store", "postgres", "--database-url", self.pg.url, "--escalation-webhook", receiver.url,
                        env={"BACKCHECK_WEBHOOK_SECRET": SECRET})
        self.addCleanup(server.cleanup)
        return server.start()

    async def escalate(self, server: Server) -> tuple[str, int]:
        """A new conversation on `server` made an emergency: (its id, the escalation's id)."""
        async with harness.connect(server) as client:
            cid = (await client.start())["conversation"]
            reply = await client.message(EMERGENCY, conversation=cid)
            self.assertTrue(reply["escalated"], "the reply did not wait for the webhook")
        rows = psql(self.pg, f"SELECT id FROM escalations WHERE conversation = '{cid}'")
        self.assertEqual(len(rows), 1)
        return cid, int(rows[0][0])

    def row(self, escalation_id: int) -> tuple[str, str]:
        """(webhook_lessee, webhook_at) of one escalation, '' for NULL."""
        rows = psql(self.pg, f"SELECT COALESCE(webhook_lessee, ''), COALESCE(webhook_at::text, '') "
                             f"FROM escalations WHERE id = {escalation_id}")
        self.assertEqual(len(rows), 1)
        return rows[0][0], rows[0][1]

    def lessee_of(self, escalation_id: int, servers: tuple[Server, ...]) -> Server:
        """The instance whose lease the escalation is under: the lessee is "host/pid/random"."""
        lessee = self.row(escalation_id)[0]
        holders = [s for s in servers if lessee.count("/") == 2 and s.proc.pid == int(lessee.split("/")[1])]
        self.assertEqual(len(holders), 1, f"escalation {escalation_id}'s lessee {lessee!r} is not one instance")
        return holders[0]

    def check_event(self, post, escalation_id: int, cid: str) -> None:
        _, headers, body = post
        check_signature(self, headers, body)
        event = json.loads(body)
        self.assertEqual((event["type"], event["id"], event["conversation"], event["level"]),
                         ("escalation", escalation_id, cid, "emergency"))
        self.assertEqual(headers["X-Backcheck-Delivery"], str(escalation_id))
        self.assertNotIn("text", event)
        self.assertNotIn("left arm", body.decode(), "nothing the person wrote")

    async def test_each_escalation_posted_once_by_one_instance_across_a_restart_of_its_holder(self):
        receiver = GatedReceiver()
        self.addCleanup(receiver.close)
        a, b = self.instance(receiver), self.instance(receiver)
        # Made on B; both instances are woken by it (A through NOTIFY) and sweep.
        first_cid, first_id = await self.escalate(b)
        self.assertTrue(receiver.held.wait(TIMEOUT), "no POST of the first escalation")
        holder = self.lessee_of(first_id, (a, b))
        other = b if holder is a else a

        # While the holder's POST hangs, a second escalation on B: both instances are woken again
        # and sweep from the oldest; the other may take the new one only (the first is leased).
        second_cid, second_id = await self.escalate(b)
        post = receiver.next_post()
        self.assertEqual((post[0], delivery(post)), (0, second_id),
                         "the other instance sent the new escalation, not the one the holder is sending")
        self.assertIs(self.lessee_of(second_id, (a, b)), other)

        # The holder's POST fails (500), and it is stopped during its back-off: a graceful stop
        # gives the lease back (else another instance would take it when the lease runs out).
        receiver.gate.set()
        posts = [receiver.next_post(), post]
        self.assertEqual((posts[0][0], delivery(posts[0])), (500, first_id))
        holder.stop_and_check()
        lessee, delivered_at = self.row(first_id)
        if not delivered_at:  # (unless its retry, after at least half a second, came first)
            self.assertEqual(lessee, "", "the stop gave the lease back")
        holder.restart()  # sweeps the outbox at start; the other one holds the second's lease

        def answered():
            return {delivery(p) for p in posts if p[0] == 200} >= {first_id, second_id}

        while not answered():
            posts.append(receiver.next_post())
        by_id = {i: [p[0] for p in posts if delivery(p) == i] for i in (first_id, second_id)}
        self.assertEqual(by_id, {first_id: [500, 200], second_id: [0, 200]}, "each attempt once, by one instance")
        self.check_event(next(p for p in posts if p[0] == 200 and delivery(p) == first_id), first_id, first_cid)
        self.check_event(next(p for p in posts if p[0] == 200 and delivery(p) == second_id), second_id, second_cid)
        # Recorded once the 2xx is in (MarkDelivered follows the answer), the leases freed.
        for i in (first_id, second_id):
            wait_until(f"escalation {i}'s webhook_at set", lambda: self.row(i)[1])
            self.assertEqual(self.row(i)[0], "")

        # Both stopped (nothing in flight) and restarted: each sweeps from the oldest at start;
        # what was delivered is not sent again, and a third escalation goes out once.
        for s in (a, b):
            s.stop_and_check()
        self.assertEqual([(p[0], delivery(p)) for p in receiver.rest()], [], "a repeated POST")
        for s in (a, b):
            s.restart()
        third_cid, third_id = await self.escalate(other)
        post = receiver.next_post()
        self.assertEqual((post[0], delivery(post)), (200, third_id), "the first POST after the restarts")
        self.check_event(post, third_id, third_cid)
        wait_until("the third one's webhook_at set", lambda: self.row(third_id)[1])
        for s in (a, b):
            s.stop_and_check()
        self.assertEqual([(p[0], delivery(p)) for p in receiver.rest()], [], "a repeated POST")
        self.assertEqual(psql(self.pg, "SELECT count(*) FROM escalations WHERE webhook_at IS NULL "
                                       "OR webhook_lessee IS NOT NULL"), [["0"]])

    def test_the_memory_store_is_refused(self):
        server = Server("--store", "memory", "--escalation-webhook", "http://127.0.0.1:9/x",
                        env={"BACKCHECK_WEBHOOK_SECRET": SECRET})
        self.addCleanup(server.cleanup)
        code, err = server.start_expect_failure()
        self.assertNotEqual(code, 0)
        self.assertIn("--store sqlite or --store postgres", err)


if __name__ == "__main__":
    harness.main()
