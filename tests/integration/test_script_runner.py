"""The conversation-script runner (`backcheck test`), as a user meets it: the suite passes
in-process and against a live server, a wrong expectation is shown as a diff with exit status 1,
a script with a syntax error is refused with its file and line, and --junit writes JUnit XML.

Against a live server (`--url`) it is a client like a bridge (issue 15): a server it cannot
reach (refused, DNS, TLS, an HTTP status instead of the upgrade, a timeout) is a setup error, one
line on stderr and exit status 2; `wss://` goes through a TLS-terminating proxy started here with
a throwaway CA (`--ca-file`); a server that stops answering or never lets up on `rate_limited`
fails the scripts saying why instead of hanging; `--token` (a bridge token) is tested when the
server has `--bridge-tokens`."""
import asyncio
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SUITE = [os.path.join(ROOT, "tests", "conversations"), os.path.join(ROOT, "tests", "eval", "dev.jsonl")]
BROKEN = os.path.join(ROOT, "tests", "fixtures", "broken.convo")
BAD_SYNTAX = os.path.join(ROOT, "tests", "fixtures", "bad_syntax.convo")


def backcheck(*args, env=None):
    # build/backcheck sits next to the server binary the harness was given (--server).
    tool = harness.server_binary().parent / "backcheck"
    full_env = None
    if env is not None:
        full_env = {k: v for k, v in os.environ.items() if k != "BACKCHECK_BRIDGE_TOKEN"}
        full_env.update(env)
    return subprocess.run([str(tool), *args], capture_output=True, text=True, timeout=300, env=full_env)


def closed_port():
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopThread:
    """An asyncio loop of its own in a thread, for servers the tests start: the test's own loop is
    blocked while backcheck runs (subprocess.run)."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(harness.TIMEOUT)

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(harness.TIMEOUT)
        self.loop.close()


async def _pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except (ConnectionError, OSError):
            pass


def start_tls_proxy(loop: LoopThread, target_port: int, context: ssl.SSLContext):
    """A TLS-terminating proxy on a free loopback port, forwarding bytes to 127.0.0.1:target_port;
    returns (asyncio server, port)."""
    async def handle(reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def start():
        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
        return server, server.sockets[0].getsockname()[1]
    return loop.run(start())


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca_and_cert(d, name, san):
    """A throwaway CA (d/name-ca.pem) and a certificate it signed for `san` (d/name.pem, d/name.key)."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name} test CA",
            "-keyout", f"{name}-ca.key", "-out", f"{name}-ca.pem", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=backcheck test server",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{name}-ca.pem", "-CAkey", f"{name}-ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=d)
    return {"ca": os.path.join(d, f"{name}-ca.pem"), "cert": os.path.join(d, f"{name}.pem"),
            "key": os.path.join(d, f"{name}.key")}


class InProcessTest(unittest.TestCase):
    def test_suite_passes_in_process(self):
        r = backcheck("test", *SUITE)
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr)
        self.assertIn(" 0 failed", r.stdout)

    def test_broken_expectation_shows_a_diff_and_exits_1(self):
        r = backcheck("test", BROKEN)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        out = r.stdout
        self.assertIn("FAIL deliberately broken", out)
        self.assertIn("broken.convo:3, message 1 \"What is DOMS?\"", out)
        self.assertIn("text contains: 48 to 96", out)
        self.assertIn("expected: text containing \"48 to 96\"", out)
        self.assertIn("urgency: urgent\n      expected: urgent\n      got:      none", out)
        self.assertIn("the whole reply: {", out)
        self.assertNotIn("intent: doms\n      expected", out)  # a met expectation is not reported
        self.assertIn("1 scripts, 1 messages, 3 expectations: 0 passed, 1 failed", out)

    def test_syntax_error_names_file_and_line(self):
        r = backcheck("test", BAD_SYNTAX)
        self.assertEqual(r.returncode, 2)
        self.assertIn("bad_syntax.convo:4: unknown expectation 'urgncy'", r.stderr)

    def test_junit_report(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "results.xml")
            r = backcheck("test", BROKEN, SUITE[0], "--junit", path)
            self.assertEqual(r.returncode, 1)
            suite = ET.parse(path).getroot().find("testsuite")
            self.assertEqual(suite.get("failures"), "1")
            failed = [c for c in suite.findall("testcase") if c.find("failure") is not None]
            self.assertEqual([c.get("name") for c in failed], ["deliberately broken"])
            self.assertIn("48 to 96", failed[0].find("failure").text)

    def test_filter_by_name(self):
        r = backcheck("test", SUITE[0], "--filter", "an unclear answer")
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertRegex(r.stdout, r"^[1-9]\d* scripts")
        r = backcheck("test", SUITE[0], "--filter", "no script has this name")
        self.assertEqual(r.returncode, 2)


class LiveTest(harness.ServerTestCase):
    # The runner itself copes with rate limits (it waits and resends); a high rate keeps CI fast.
    server_args = ("--rate", "100000", "--burst", "100000")

    async def test_suite_passes_against_a_live_server(self):
        url = f"ws://127.0.0.1:{self.server.port}/v1/chat"
        r = backcheck("test", *SUITE, "--url", url)
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr)
        self.assertIn(" 0 failed", r.stdout)

    async def test_broken_expectation_against_a_live_server(self):
        r = backcheck("test", BROKEN, "--url", f"ws://127.0.0.1:{self.server.port}/v1/chat")
        self.assertEqual(r.returncode, 1)
        self.assertIn("got:      none", r.stdout)

    async def test_unreachable_server_is_a_setup_error(self):
        url = f"ws://127.0.0.1:{closed_port()}/v1/chat"
        r = backcheck("test", *SUITE, "--url", url)
        self.assertEqual(r.returncode, 2, r.stdout[-2000:] + r.stderr)
        self.assertEqual(r.stderr.strip().count("\n"), 0, r.stderr)  # one line
        self.assertIn(f"cannot reach {url}: ", r.stderr)
        self.assertIn("refused", r.stderr.lower())
        self.assertNotIn("FAIL", r.stdout)  # not a failed script per script

    async def test_unknown_host_is_a_setup_error(self):
        url = "ws://no-such-host.invalid/v1/chat"
        r = backcheck("test", BROKEN, "--url", url, "--timeout", "10")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(f"cannot reach {url}: ", r.stderr)
        self.assertIn("no-such-host.invalid", r.stderr)

    async def test_http_status_instead_of_an_upgrade_is_a_setup_error(self):
        url = f"ws://127.0.0.1:{self.server.port}/no/such/path"
        r = backcheck("test", BROKEN, "--url", url)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(f"cannot reach {url}: the server answered HTTP 404", r.stderr)

    async def test_a_url_that_is_no_websocket_url_is_a_setup_error(self):
        r = backcheck("test", BROKEN, "--url", f"http://127.0.0.1:{self.server.port}/v1/chat")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("--url must look like ws://", r.stderr)

    async def test_a_server_that_never_upgrades_times_out_as_a_setup_error(self):
        # A listener that accepts the connection and never says anything.
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            url = f"ws://127.0.0.1:{listener.getsockname()[1]}/v1/chat"
            r = backcheck("test", BROKEN, "--url", url, "--timeout", "1")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(f"cannot reach {url}: the WebSocket upgrade timed out", r.stderr)

    async def test_wss_through_a_tls_proxy(self):
        if not shutil.which("openssl"):
            self.skipTest("the openssl command is needed to make a throwaway certificate")
        with tempfile.TemporaryDirectory() as d:
            good = make_ca_and_cert(d, "good", "DNS:localhost")
            other = make_ca_and_cert(d, "other", "DNS:localhost")
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(good["cert"], good["key"])
            loop = LoopThread()
            try:
                proxy, port = start_tls_proxy(loop, self.server.port, context)
                url = f"wss://localhost:{port}/v1/chat"
                with self.subTest("trusted CA: the suite passes"):
                    r = backcheck("test", *SUITE, "--url", url, "--ca-file", good["ca"])
                    self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr)
                    self.assertIn(" 0 failed", r.stdout)
                with self.subTest("another CA: a setup error"):
                    r = backcheck("test", BROKEN, "--url", url, "--ca-file", other["ca"])
                    self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                    self.assertIn(f"cannot reach {url}: TLS handshake failed", r.stderr)
                    self.assertIn("certificate verify failed", r.stderr)
                with self.subTest("no --ca-file: the system's CAs do not know it"):
                    r = backcheck("test", BROKEN, "--url", url)
                    self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                    self.assertIn("TLS handshake failed", r.stderr)
                    self.assertIn("--ca-file", r.stderr)
                with self.subTest("the host name is checked: the certificate is for localhost, not 127.0.0.1"):
                    r = backcheck("test", BROKEN, "--url", f"wss://127.0.0.1:{port}/v1/chat", "--ca-file", good["ca"])
                    self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                    self.assertIn("TLS handshake failed", r.stderr)
                with self.subTest("plain ws:// to a TLS port is a setup error, not a hang"):
                    r = backcheck("test", BROKEN, "--url", f"ws://localhost:{port}/v1/chat", "--timeout", "5")
                    self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                    self.assertIn("cannot reach", r.stderr)
                proxy.close()
            finally:
                loop.stop()


class FakeServer:
    """A WebSocket server in a thread of its own whose answers a test chooses: `answer(frame)`
    returns the frames to send back (none: silence)."""

    def __init__(self, answer):
        self.answer = answer
        self.loop = LoopThread()
        self.frames = 0

        async def handler(ws, _path=None):
            try:
                async for raw in ws:
                    self.frames += 1
                    for out in self.answer(json.loads(raw)):
                        await ws.send(json.dumps(out))
            except harness.ConnectionClosed:
                pass

        async def start():
            server = await harness.websockets.serve(handler, "127.0.0.1", 0)
            return server, server.sockets[0].getsockname()[1]
        self.server, self.port = self.loop.run(start())
        self.url = f"ws://127.0.0.1:{self.port}/v1/chat"

    def close(self):
        async def stop():
            self.server.close()
            await self.server.wait_closed()
        try:
            self.loop.run(stop())
        finally:
            self.loop.stop()


class NoSilentHangTest(unittest.TestCase):
    """Every wait has a bound: a script that cannot finish fails, saying why."""

    def test_a_server_that_stops_answering_fails_the_scripts_with_the_reason(self):
        # Starts are answered, messages never.
        fake = FakeServer(lambda f: [{"type": "started", "conversation": f"c{os.urandom(4).hex()}"}]
                          if f["type"] == "start" else [])
        try:
            r = backcheck("test", BROKEN, SUITE[0], "--url", fake.url, "--timeout", "1")
        finally:
            fake.close()
        self.assertEqual(r.returncode, 1, r.stdout[-3000:] + r.stderr)
        self.assertIn("no answer from the server within 1.0 s", r.stdout)

    def test_rate_limited_is_retried_a_bounded_number_of_times(self):
        def answer(f):
            return [{"type": "error", "code": "rate_limited", "message": "too many messages; slow down",
                     "ref": f.get("ref")}]
        fake = FakeServer(answer)
        try:
            r = backcheck("test", BROKEN, "--url", fake.url, "--retries", "3")
            frames = fake.frames
        finally:
            fake.close()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("gave up on the start of its conversation after 4 'rate_limited' answers in a row "
                      "(the last: \"too many messages; slow down\")", r.stdout)
        self.assertEqual(frames, 4)  # the start and 3 resends

    def test_rate_limited_then_answered_passes(self):
        # Every frame is refused twice, then answered like a server would.
        seen = {}

        def answer(f):
            key = (f["type"], f.get("conversation"), f.get("text"))
            seen[key] = seen.get(key, 0) + 1
            if seen[key] <= 2:
                return [{"type": "error", "code": "rate_limited", "message": "slow down", "ref": f.get("ref")}]
            if f["type"] == "start":
                return [{"type": "started", "conversation": "c1"}]
            if f["type"] == "end":
                return [{"type": "ended", "conversation": f["conversation"]}]
            return [{"type": "reply", "conversation": f["conversation"], "ref": f.get("ref"), "seq": 1,
                     "text": "Delayed onset muscle soreness ... 24 to 72 hours", "intent": "doms", "state": "advising",
                     "urgency": "none", "red_flags": [], "possible_flags": [], "escalated": False,
                     "quick_replies": [], "sources": []}]
        fake = FakeServer(answer)
        try:
            r = backcheck("test", BROKEN, "--url", fake.url)
        finally:
            fake.close()
        # broken.convo fails on its (deliberately wrong) expectations, not on the rate limit.
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("expected: text containing \"48 to 96\"", r.stdout)
        self.assertNotIn("gave up", r.stdout)


class RateLimitedLiveTest(harness.ServerTestCase):
    # The per-connection bucket at its default rate with a small burst: the runner must slow
    # down and resend, and the suite still passes.
    server_args = ("--rate", "20", "--burst", "5")

    async def test_suite_passes_through_rate_limits(self):
        url = f"ws://127.0.0.1:{self.server.port}/v1/chat"
        r = backcheck("test", SUITE[0], "--filter", "screening", "--url", url)
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr)
        self.assertIn(" 0 failed", r.stdout)
        samples = harness.parse_metrics(harness.http_request(self.server, "GET", "/metrics").body.decode())
        self.assertGreater(harness.metric_value(samples, "backcheck_errors_total", code="rate_limited") or 0, 0,
                           "the server never rate-limited the run: the test proves nothing")


def server_has_bridge_tokens() -> bool:
    r = subprocess.run([str(harness.server_binary()), "--help"], capture_output=True, text=True, timeout=30)
    return "--bridge-tokens" in r.stdout


class BridgeTokenTest(harness.ServerTestCase):
    """`--token`: a bridge connection, with the server's default limits (nothing lifted)."""

    TOKEN = "ci-" + "7f3a9c1e5b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a"

    @classmethod
    def setUpClass(cls) -> None:
        if not server_has_bridge_tokens():
            raise unittest.SkipTest("this chat-server has no --bridge-tokens (issue 15's server side)")
        cls._tokens_dir = tempfile.TemporaryDirectory(prefix="backcheck-tokens-")
        path = os.path.join(cls._tokens_dir.name, "bridge-tokens")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"script-runner {cls.TOKEN}\n")
        cls.server = harness.Server("--bridge-tokens", path, lift_abuse_limits=False)
        try:
            cls.server.start()
        except BaseException:
            cls.server.cleanup()
            cls._tokens_dir.cleanup()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        try:
            super().tearDownClass()
        finally:
            cls._tokens_dir.cleanup()

    async def test_bad_token_is_a_setup_error_naming_401(self):
        url = f"ws://127.0.0.1:{self.server.port}/v1/chat"
        r = backcheck("test", *SUITE, "--url", url, "--token", "not-" + self.TOKEN)
        self.assertEqual(r.returncode, 2, r.stdout[-2000:] + r.stderr)
        self.assertIn(f"cannot reach {url}: the server answered HTTP 401", r.stderr)
        self.assertIn("--token", r.stderr)

    async def test_good_token_from_the_environment_passes_the_suite_at_default_limits(self):
        url = f"ws://127.0.0.1:{self.server.port}/v1/chat"
        r = backcheck("test", *SUITE, "--url", url, env={"BACKCHECK_BRIDGE_TOKEN": self.TOKEN})
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr)
        self.assertIn(" 0 failed", r.stdout)

    async def test_the_flag_wins_over_the_environment(self):
        url = f"ws://127.0.0.1:{self.server.port}/v1/chat"
        r = backcheck("test", BROKEN, "--url", url, "--token", "not-" + self.TOKEN,
                      env={"BACKCHECK_BRIDGE_TOKEN": self.TOKEN})
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("401", r.stderr)
        r = backcheck("test", BROKEN, "--url", url, "--token", self.TOKEN,
                      env={"BACKCHECK_BRIDGE_TOKEN": "not-" + self.TOKEN})
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)  # ran: broken.convo's expectations fail
        self.assertIn("FAIL deliberately broken", r.stdout)


if __name__ == "__main__":
    harness.main()
