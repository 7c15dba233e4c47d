"""N chat-server instances behind nginx, with the shipped configuration (issue 14 item 5).

Starts a throwaway PostgreSQL (tests/pg/pg_instance.py), two chat-server instances on it
(--store postgres --trusted-proxies 127.0.0.1) and Debian's nginx run directly (not as a daemon,
`-p TMPDIR -c TMPDIR/nginx.conf`) on a free port. The generated nginx.conf is the main context
only (pid, logs, temp paths, events) and includes a copy of deploy/nginx/backcheck.conf in which
exactly two things are changed: the upstream's `server` lines get the instances' addresses (each
keeping the shipped parameters) and `listen` gets the free port. Everything else is the file as
shipped. Through nginx:
- a WebSocket conversation (start, messages, replies), and POST /v1/messages continuing it;
- the same conversation resumed directly on the instance that did not serve it, with its history;
- the instance holding the connection stopped: the client gets the server's 1001 through nginx,
  and reconnecting through nginx resumes the conversation on the other instance;
- /healthz, /metrics refused at the proxy (per instance, scraped directly), the page's own Origin
  accepted (nginx forwards Host) and a foreign one refused;
- X-Forwarded-For believed: per-address limits count the client's address, not nginx's;
- an idle WebSocket is closed by the server (--idle-timeout 2, --max-idle-without-message 3) with
  its close code 1001, not by nginx (whose tunnel timeouts must exceed the server's).

Skips (exit 77) when nginx or PostgreSQL is not installed (scripts/setup --for-tests installs both).
No test sleeps for timing: waits are for frames, closes and accepted connections, with deadlines.

Run: /usr/bin/python3 tests/integration/test_proxy.py --server build/chat-server
"""

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pg"))

import websockets  # noqa: E402

import harness  # noqa: E402
from harness import Client, Server  # noqa: E402
import pg_instance  # noqa: E402

CONF = harness.REPO / "deploy" / "nginx" / "backcheck.conf"
PAIN = "my upper back hurts after rows yesterday"
DEFAULT_IDLE_TIMEOUT = 300  # chat-server's --idle-timeout default (README "Flags and limits")
DEFAULT_MAX_BODY = 16384    # chat-server's --max-body-bytes default


def find_nginx() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def strip_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def seconds(value: str) -> float:
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", value)
    assert m, f"not an nginx time: {value!r}"
    return int(m.group(1)) * {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[m.group(2)]


def size_bytes(value: str) -> int:
    m = re.fullmatch(r"(\d+)([kKmM])?", value)
    assert m, f"not an nginx size: {value!r}"
    return int(m.group(1)) * {None: 1, "k": 1024, "K": 1024, "m": 1 << 20, "M": 1 << 20}[m.group(2)]


def location_block(conf: str, name: str) -> str:
    """The body of `location = NAME { ... }` (no nested blocks in ours)."""
    m = re.search(r"location\s+=\s+" + re.escape(name) + r"\s*\{([^{}]*)\}", conf)
    assert m, f"no `location = {name}` in {CONF}"
    return m.group(1)


def generate_conf(text: str, upstreams: list[str], port: int) -> str:
    """backcheck.conf with the upstream's servers and the listen port replaced, nothing else."""
    up = re.search(r"(upstream\s+backcheck\s*\{)(.*?)(\n\})", text, re.S)
    assert up, f"no `upstream backcheck {{ ... }}` in {CONF}"
    server_re = re.compile(r"^(\s*server\s+)(\S+)(\s[^;]*)?;")
    lines, emitted = [], False
    for line in up.group(2).split("\n"):
        m = server_re.match(line)
        if not m:
            lines.append(line)
        elif not emitted:  # the first server line, once per instance, with its parameters
            lines += [f"{m.group(1)}{addr}{m.group(3) or ''};" for addr in upstreams]
            emitted = True
    assert emitted, f"no server line in the upstream of {CONF}"
    body = "\n".join(lines)
    text = text[:up.start(2)] + body + text[up.end(2):]
    text, n = re.subn(r"^(\s*)listen\s+[^;]+;", rf"\g<1>listen 127.0.0.1:{port};", text, flags=re.M)
    assert n == 1, f"expected one listen line in {CONF}, found {n}"
    return text


class Nginx:
    """nginx in the foreground on a free port, with a generated copy of the shipped config."""

    def __init__(self, upstreams: list[str], edit=None):
        self.binary = find_nginx()
        self.dir = Path(tempfile.mkdtemp(prefix="backcheck-nginx-"))
        self.port = free_port()
        text = generate_conf(CONF.read_text(encoding="utf-8"), upstreams, self.port)
        if edit is not None:
            text = edit(text)
        (self.dir / "backcheck.conf").write_text(text)
        d = self.dir
        user = "user root root;\n" if os.geteuid() == 0 else ""  # temp dirs below a 0700 folder
        (d / "nginx.conf").write_text(
            f"# generated by tests/integration/test_proxy.py: Debian's nginx.conf, reduced\n"
            f"{user}worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n"
            f"events {{ worker_connections 1024; }}\n"
            f"http {{\n  access_log {d}/access.log;\n"
            + "".join(f"  {k}_temp_path {d}/{k}_temp;\n" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
            + f"  include {d}/backcheck.conf;\n}}\n")
        self.proc: subprocess.Popen | None = None

    def command(self, *extra: str) -> list[str]:
        return [self.binary, "-p", f"{self.dir}/", "-c", f"{self.dir}/nginx.conf", "-e", f"{self.dir}/error.log",
                *extra]

    def start(self) -> "Nginx":
        check = subprocess.run(self.command("-t", "-q"), capture_output=True, text=True)
        if check.returncode != 0:
            raise AssertionError(f"nginx -t refused the generated config:\n{check.stderr}{self.error_log()}")
        self.proc = subprocess.Popen(self.command("-g", "daemon off;"), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     preexec_fn=harness._die_with_parent)
        deadline = time.monotonic() + harness.STARTUP_TIMEOUT
        while True:  # listening once a connection is accepted
            if self.proc.poll() is not None:
                raise AssertionError(f"nginx exited with {self.proc.returncode}\n{self.error_log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"nginx not listening on {self.port} within "
                                         f"{harness.STARTUP_TIMEOUT} s\n{self.error_log()}")
                time.sleep(0.05)  # polling for the listener, not timing anything

    def error_log(self) -> str:
        try:
            return "--- nginx error.log ---\n" + (self.dir / "error.log").read_text(errors="replace")[-3000:]
        except OSError:
            return "(no nginx error log)"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: workers finish, then exit
            try:
                self.proc.wait(timeout=harness.TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/chat"


class Via:
    """What harness.connect / http_request need of a server: a port (here nginx's)."""

    def __init__(self, port: int):
        self.port = port


async def connect_via(nginx: Nginx, source: str | None = None, **kw) -> Client:
    if source is not None:  # the client's address as nginx sees it (any 127.x.y.z is loopback)
        kw["local_addr"] = (source, 0)
    ws = await websockets.connect(nginx.ws_url, **harness.connect_kwargs(**kw))
    return Client(ws)


def connections_open(server: Server) -> int:
    samples = harness.parse_metrics(harness.http_request(server, "GET", "/metrics").body.decode())
    return int(harness.metric_value(samples, "backcheck_connections_open") or 0)


def wait_for(condition, what: str, timeout: float = harness.TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)  # polling a condition


PG: pg_instance.PgInstance | None = None


def setUpModule() -> None:
    global PG
    PG = pg_instance.PgInstance().start()


def tearDownModule() -> None:
    if PG is not None:
        PG.stop()


class ProxyTestCase(unittest.IsolatedAsyncioTestCase):
    """Two instances on the module's PostgreSQL and nginx in front, for the class."""

    instance_args: tuple = ()
    edit_conf = None  # a function changing the generated config (to watch a test fail)

    @classmethod
    def setUpClass(cls) -> None:
        cls.instances: list[Server] = []
        cls.nginx = None
        try:
            for _ in range(2):
                server = Server("--store", "postgres", "--database-url", PG.url, "--trusted-proxies", "127.0.0.1",
                                *cls.instance_args)
                cls.instances.append(server)
                server.start()
            cls.nginx = Nginx([f"127.0.0.1:{s.port}" for s in cls.instances], edit=cls.edit_conf).start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        if cls.nginx is not None:
            cls.nginx.stop()
        for server in cls.instances:
            server.cleanup()

    async def holder(self) -> tuple[Server, Server]:
        """(the instance holding this test's one open WebSocket, the other one)."""
        a, b = self.instances
        found = await asyncio.to_thread(wait_for, lambda: [s for s in (a, b) if s.alive() and connections_open(s) > 0],
                         "an instance holding the WebSocket")
        self.assertEqual(len(found), 1, "one WebSocket, one instance")
        return (a, b) if found[0] is a else (b, a)


class StaticConfigTest(unittest.TestCase):
    """The shipped file's settings that matter but take minutes to show live."""

    def setUp(self) -> None:
        self.conf = strip_comments(CONF.read_text(encoding="utf-8"))

    def test_websocket_locations_upgrade_and_outlast_the_server_idle_timeout(self):
        self.assertRegex(self.conf, r"map\s+\$http_upgrade\s+\$backcheck_connection\s*\{[^}]*default\s+upgrade;")
        for name in ("/v1/chat", "/v1/operator"):
            block = location_block(self.conf, name)
            self.assertRegex(block, r"proxy_set_header\s+Upgrade\s+\$http_upgrade;", name)
            self.assertRegex(block, r"proxy_set_header\s+Connection\s+\$backcheck_connection;", name)
            self.assertRegex(block, r"proxy_set_header\s+X-Forwarded-For\s+\$proxy_add_x_forwarded_for;", name)
            for directive in ("proxy_read_timeout", "proxy_send_timeout"):
                m = re.search(directive + r"\s+(\S+);", block)
                self.assertIsNotNone(m, f"{name}: no {directive} (nginx's default 60 s would cut idle sockets)")
                self.assertGreater(seconds(m.group(1)), DEFAULT_IDLE_TIMEOUT,
                                   f"{name}: {directive} must exceed the server's --idle-timeout")
        self.assertRegex(self.conf, r"proxy_http_version\s+1\.1;")

    def test_body_limit_matches_the_server(self):
        m = re.search(r"client_max_body_size\s+(\S+);", self.conf)
        self.assertIsNotNone(m)
        self.assertEqual(size_bytes(m.group(1)), DEFAULT_MAX_BODY)

    @unittest.skipUnless(find_nginx(), "nginx is not installed")
    def test_generated_config_passes_nginx_t(self):
        nginx = Nginx(["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"])
        try:
            text = (nginx.dir / "backcheck.conf").read_text()
            self.assertEqual(len(re.findall(r"^\s*server\s+127\.0\.0\.1:[123]\s+max_fails=1 fail_timeout=10s;", text,
                                            re.M)), 3, text)
            result = subprocess.run(nginx.command("-t"), capture_output=True, text=True)
            self.assertEqual(result.returncode, 0, result.stderr)
        finally:
            nginx.stop()


class ThroughProxyTest(ProxyTestCase):
    async def test_conversation_then_resumed_directly_on_the_other_instance(self):
        c = await connect_via(self.nginx)
        try:
            started = await c.start()
            cid = started["conversation"]
            self.assertFalse(started["resumed"])
            self.assertIn("welcome", started)
            first = await c.message(PAIN, conversation=cid, ref="m1")
            self.assertEqual((first["seq"], first["state"], first["ref"]), (1, "screening", "m1"))
            second = await c.message("no", conversation=cid, ref="m2")
            self.assertEqual(second["seq"], 2)
            served, other = await self.holder()
        finally:
            await c.close()
        # Directly on the instance that did not serve it: the history came from the database.
        async with harness.connect(other) as d:
            resumed = await d.start(resume=cid)
            self.assertTrue(resumed["resumed"])
            self.assertEqual([(h["role"], h["seq"]) for h in resumed["history"]],
                             [("user", 1), ("assistant", 1), ("user", 2), ("assistant", 2)])
            self.assertEqual(resumed["history"][0]["text"], PAIN)
            third = await d.message("no", conversation=cid)
            self.assertEqual(third["seq"], 3)
        # POST /v1/messages through nginx continues it too (whichever instance answers).
        res = harness.post_json(Via(self.nginx.port), "/v1/messages", {"conversation": cid, "text": "what is doms?"})
        self.assertEqual(res.status, 200, res)
        body = res.json()
        self.assertEqual((body["conversation"], body["seq"]), (cid, 4))

    async def test_post_messages_starts_a_conversation(self):
        res = harness.post_json(Via(self.nginx.port), "/v1/messages", {"text": PAIN})
        self.assertEqual(res.status, 200, res)
        body = res.json()
        self.assertEqual(body["seq"], 1)
        self.assertRegex(body["conversation"], harness.CONVERSATION_ID_RE)
        # A body past client_max_body_size (= --max-body-bytes) stops at nginx.
        big = harness.post_json(Via(self.nginx.port), "/v1/messages", {"text": "x" * (DEFAULT_MAX_BODY + 10)})
        self.assertEqual(big.status, 413, big)

    async def test_healthz_and_metrics(self):
        res = harness.http_request(Via(self.nginx.port), "GET", "/healthz")
        self.assertEqual(res.status, 200, res)
        self.assertEqual(harness.http_request(Via(self.nginx.port), "GET", "/metrics").status, 403,
                         "/metrics is per instance: not through the balancer")
        for s in self.instances:
            self.assertEqual(harness.http_request(s, "GET", "/metrics").status, 200)

    async def test_page_origin_accepted_foreign_origin_refused(self):
        own = f"http://127.0.0.1:{self.nginx.port}"  # the page as nginx served it
        c = await connect_via(self.nginx, origin=own)
        try:
            await c.start()
        finally:
            await c.close()
        with self.assertRaises(websockets.exceptions.InvalidStatusCode) as refused:
            await connect_via(self.nginx, origin="http://evil.example")
        self.assertEqual(refused.exception.status_code, 403)


class FailoverTest(ProxyTestCase):
    async def test_instance_stopped_conversation_continues_on_the_other_through_nginx(self):
        c = await connect_via(self.nginx)
        started = await c.start()
        cid = started["conversation"]
        await c.message(PAIN, conversation=cid)
        served, other = await self.holder()
        await asyncio.to_thread(served.stop_and_check)  # SIGTERM: the server closes its WebSockets with 1001
        self.assertEqual(await c.expect_closed(), 1001, "the server's close code, relayed by nginx")
        # Every reconnect through nginx lands on the survivor (the stopped one is refused and
        # skipped) and resumes the conversation with its history.
        for attempt in range(3):
            c = await connect_via(self.nginx)
            try:
                resumed = await c.start(resume=cid)
                self.assertTrue(resumed["resumed"], attempt)
                self.assertEqual([h["seq"] for h in resumed["history"]][:2], [1, 1])
                reply = await c.message("no", conversation=cid)
                self.assertEqual(reply["seq"], 2 + attempt)
                self.assertGreaterEqual(await asyncio.to_thread(connections_open, other), 1)
            finally:
                await c.close()


class ForwardedForTest(ProxyTestCase):
    # Two WebSockets per client address on each instance. Were X-Forwarded-For not believed,
    # every client would be nginx's 127.0.0.1 and share one allowance of 2 per instance.
    instance_args = ("--max-connections-per-ip", "2")

    async def test_limits_count_the_client_address_not_nginx(self):
        held = []
        try:
            for _ in range(4):  # least_conn: two on each instance
                held.append(await connect_via(self.nginx, source="127.0.0.2"))
                await held[-1].start()
            with self.assertRaises(websockets.exceptions.InvalidStatusCode) as refused:
                held.append(await connect_via(self.nginx, source="127.0.0.2"))
            self.assertEqual(refused.exception.status_code, 429)
            other = await connect_via(self.nginx, source="127.0.0.3")
            held.append(other)
            await other.start()
        finally:
            for c in held:
                await c.close()


class IdleTimeoutTest(ProxyTestCase):
    # The server pings a silent client every second and closes one that sends no frame for 3 s
    # (with 1001), although the client answers the pings. nginx, with the shipped 360 s tunnel
    # timeouts, must relay the pings and the close rather than cut the socket (1006) itself.
    IDLE = 3
    instance_args = ("--idle-timeout", "2", "--max-idle-without-message", str(IDLE))

    async def test_idle_websocket_is_closed_by_the_server_with_its_code(self):
        c = await connect_via(self.nginx)
        await c.start()
        pings = []
        original = c.ws.pong

        async def pong(data=b""):
            await original(data)
            pings.append(time.monotonic())

        c.ws.pong = pong
        t0 = time.monotonic()
        code = await c.expect_closed(timeout=self.IDLE + 10)
        elapsed = time.monotonic() - t0
        self.assertEqual(code, 1001, f"closed with {code} after {elapsed:.1f} s (1006: nginx cut the tunnel)")
        self.assertGreaterEqual(elapsed, self.IDLE - 0.5)
        self.assertTrue(pings, "the server's pings did not come through nginx")


if __name__ == "__main__":
    try:
        pg_instance.find_bin_dir()
        have_pg = True
    except RuntimeError:
        have_pg = False
    missing = [what for what, ok in (("nginx", find_nginx()), ("PostgreSQL", have_pg)) if not ok]
    if missing:
        print(f"SKIP: {' and '.join(missing)} not installed (scripts/setup --for-tests)", file=sys.stderr)
        sys.exit(77)
    harness.main()
