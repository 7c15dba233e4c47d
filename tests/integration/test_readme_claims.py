"""Claims the README makes that no other test held:

- files the server creates in the data directory are mode 0600 (backcheck.db, -wal, -shm), the
  folder 0700;
- POST /v1/messages answers 429 (`rate_limited`) past --rate/--burst, and 503 exactly for
  `too_many_conversations`;
- the expiry purge runs in the running server: a conversation idle past --conversation-expiry
  becomes `unknown_conversation`;
- operator sockets are closed with 1001 on SIGTERM, and the server exits 0, also when SIGTERM
  comes right after the listening line;
- nothing a person writes appears on stderr.

Run: /usr/bin/python3 tests/integration/test_readme_claims.py --server build/chat-server
"""

import asyncio
import http.client
import json
import logging
import os
import signal
import stat
import subprocess
import time
import unittest

import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import websockets  # noqa: E402

import harness  # noqa: E402
from harness import Client, Server  # noqa: E402

# The debug-mode loop's warnings about steps that block (starting a server) are noise here.
logging.getLogger("asyncio").setLevel(logging.ERROR)

TOKEN = "op-" + os.urandom(16).hex()


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


async def open_operator(server: Server) -> Client:
    ws = await websockets.connect(f"ws://127.0.0.1:{server.port}/v1/operator",
                                  extra_headers={"Authorization": f"Bearer {TOKEN}"}, **harness.connect_kwargs())
    return Client(ws)


def conversations_gauge(server: Server) -> float | None:
    r = harness.http_request(server, "GET", "/metrics")
    return harness.metric_value(harness.parse_metrics(r.body.decode()), "backcheck_conversations")


class ReadmeClaimsTest(unittest.IsolatedAsyncioTestCase):

    def make_server(self, *args, **kw) -> Server:
        server = Server(*args, env={"CHAT_OPERATOR_TOKEN": TOKEN}, **kw)
        self.addCleanup(server.cleanup)
        return server.start()

    async def stop(self, server: Server) -> None:
        code = await asyncio.to_thread(server.stop, signal.SIGTERM, harness.SHUTDOWN_TIMEOUT + 1)
        self.assertEqual(code, 0, server.stderr_tail())

    @unittest.skipIf(harness.STORE != "sqlite", "about the SQLite files in --data-dir")
    async def test_data_files_are_0600_and_the_folder_0700(self):
        server = self.make_server("--rate", "1000", "--burst", "1000", create_data_dir=False)
        async with harness.connect(server) as c:
            cid = (await c.start())["conversation"]
            for text in ["hi", "My upper back hurts after rows yesterday", "I have chest pain"]:
                await c.message(text, conversation=cid)
            self.assertEqual(oct(mode(server.data_dir)), oct(0o700), "the data dir is created 0700")
            names = {p.name for p in server.data_dir.iterdir()}
            for name in ["backcheck.db", "backcheck.db-wal", "backcheck.db-shm"]:
                self.assertIn(name, names, f"{name} while the server runs (WAL mode)")
            for p in server.data_dir.iterdir():  # every file there, whatever its name
                with self.subTest(file=p.name):
                    self.assertEqual(oct(mode(p)), oct(0o600), f"{p.name} is readable by others")
        await self.stop(server)
        for p in server.data_dir.iterdir():
            self.assertEqual(oct(mode(p)), oct(0o600), p.name)

    async def test_post_past_the_rate_is_429(self):
        server = self.make_server("--rate", "1", "--burst", "1")
        # The bucket is per connection: several POSTs on one keep-alive connection.
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=harness.TIMEOUT)
        try:
            statuses, bodies = [], []
            for _ in range(4):
                conn.request("POST", "/v1/messages", body=json.dumps({"text": "hi"}),
                             headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                statuses.append(resp.status)
                bodies.append(resp.read())
            self.assertEqual(statuses[0], 200, bodies[0])
            self.assertIn(429, statuses, f"4 POSTs at once with --rate 1 --burst 1: {statuses}")
            for status, body in zip(statuses, bodies):
                if status == 429:
                    err = json.loads(body)
                    self.assertEqual(err.get("code"), "rate_limited", err)
                else:
                    self.assertEqual(status, 200, body)
        finally:
            conn.close()
        await self.stop(server)

    async def test_post_too_many_conversations_is_503(self):
        server = self.make_server("--max-conversations", "1")
        async with harness.connect(server) as c:
            cid = (await c.start())["conversation"]
            r = harness.post_json(server, "/v1/messages", {"text": "hi"})
            self.assertEqual(r.status, 503, r)
            self.assertEqual(r.json().get("code"), "too_many_conversations", r)
            self.assertEqual(r.json().get("type"), "error", r)
            # The existing conversation is still served over POST.
            r = harness.post_json(server, "/v1/messages", {"text": "hi", "conversation": cid})
            self.assertEqual(r.status, 200, r)
        await self.stop(server)

    async def test_expiry_purge_runs_in_the_server(self):
        server = self.make_server("--conversation-expiry", "2")
        async with harness.connect(server) as c:
            cid = (await c.start())["conversation"]
            await c.message("What is DOMS?", conversation=cid)
        self.assertEqual(conversations_gauge(server), 1)
        # Polled on /metrics (a resume would make the conversation active again); ~10 s at most.
        deadline = time.monotonic() + 10
        while conversations_gauge(server) != 0:
            if time.monotonic() > deadline:
                self.fail("a conversation idle past --conversation-expiry 2 was not purged within 10 s")
            await asyncio.sleep(0.2)
        async with harness.connect(server) as c:
            await c.send({"type": "start", "resume": cid})
            await c.expect_error("unknown_conversation")
            await c.send({"type": "message", "conversation": cid, "text": "hi"})
            await c.expect_error("unknown_conversation")
        r = harness.post_json(server, "/v1/messages", {"text": "hi", "conversation": cid})
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.json().get("code"), "unknown_conversation", r)
        await self.stop(server)

    def test_sigterm_right_after_the_listening_line_exits_0(self):
        # "Once listening it prints exactly one line"; on SIGTERM it "exits 0". A supervisor may
        # signal as soon as it has read that line, so the handler must be in place by then. The
        # line is read here straight from the pipe and the signal sent at once (the harness's
        # reader thread would add a delay that hides the race).
        server = Server()
        self.addCleanup(server.cleanup)
        for attempt in range(50):
            proc = subprocess.Popen(server.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL)
            try:
                line = proc.stdout.readline()
                proc.send_signal(signal.SIGTERM)
                code = proc.wait(timeout=harness.SHUTDOWN_TIMEOUT + 1)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()
            self.assertTrue(line.startswith(b"listening on "), line)
            self.assertEqual(code, 0, f"attempt {attempt}: SIGTERM right after the listening line: exit "
                                      f"status {code} (killed by the signal: the handler was not installed yet)")

    async def test_operators_closed_1001_on_sigterm(self):
        server = self.make_server()
        idle = await open_operator(server)
        with_backlog = None
        try:
            async with harness.connect(server) as c:
                r = await c.message("I'm short of breath")
                self.assertTrue(r["escalated"], r)
            self.assertEqual((await idle.recv_type("escalation"))["conversation"], r["conversation"])
            with_backlog = await open_operator(server)  # one unacknowledged escalation waiting
            self.assertEqual((await with_backlog.recv_type("escalation"))["conversation"], r["conversation"])
            stop = asyncio.create_task(self.stop(server))
            codes = await asyncio.gather(idle.expect_closed(harness.SHUTDOWN_TIMEOUT + 1),
                                         with_backlog.expect_closed(harness.SHUTDOWN_TIMEOUT + 1))
            await stop
            self.assertEqual(codes, [1001, 1001])
        finally:
            await idle.close()
            if with_backlog is not None:
                await with_backlog.close()

    async def test_nothing_a_person_writes_is_on_stderr(self):
        marker = "zqmarker" + os.urandom(4).hex()
        server = self.make_server("--max-text-chars", "200", "--rate", "1000", "--burst", "1000")
        texts = [f"hi {marker}", f"I can't breathe {marker}", f"I have chest pain and my arm is numb {marker}",
                 f"my friend has {marker} tingling", f"What is DOMS? {marker}"]
        async with harness.connect(server) as c:
            cid = (await c.start())["conversation"]
            for t in texts:
                await c.message(t, conversation=cid)
            # Errors that echo or refuse what was sent.
            await c.send({"type": marker, "text": marker})
            await c.expect_error("unknown_type")
            await c.send("{" + marker)
            await c.expect_error("bad_json")
            await c.send({"type": "message", "conversation": cid, "text": marker * 40})
            await c.expect_error("text_too_long")
            await c.send({"type": "message", "conversation": marker + "A" * 22, "text": marker})
            await c.expect_error("unknown_conversation")
            await c.send_raw_text_frame(b'{"type":"message","text":"' + marker.encode() + b'\xff"}')
            await c.expect_closed()
        for t in texts:
            r = harness.post_json(server, "/v1/messages", {"text": t})
            self.assertEqual(r.status, 200, r)
        r = harness.post_json(server, "/v1/messages", "{" + marker)
        self.assertEqual(r.status, 400, r)
        op = await open_operator(server)
        try:
            await op.send({"type": marker})
            for _ in range(20):  # the backlog of escalations first, then the error
                f = await op.recv()
                if f["type"] != "escalation":
                    break
            self.assertEqual((f["type"], f.get("code")), ("error", "unknown_type"), f)
        finally:
            await op.close()
        await self.stop(server)
        stderr = server.stderr_path.read_bytes().decode("utf-8", "replace")
        self.assertNotIn(marker, stderr, f"what a person wrote appeared on stderr:\n{stderr[:2000]}")
        for line in server.stdout_lines:
            self.assertNotIn(marker, line)


if __name__ == "__main__":
    harness.main()
