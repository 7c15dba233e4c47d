"""Issue 11, the lesser defects: HTTP and WebSocket edge cases, and start-up refusals.

- HEAD has the headers of GET (Content-Length included) and no body: checked on a raw keep-alive
  connection, where a body would be read as the start of the next response.
- Query strings do not change routing: /v1/chat?x=1 upgrades, /healthz?x is 200.
- Request headers over 8 KiB: 431. A Sec-WebSocket-Key that is not base64 of 16 bytes: 400.
- A close frame with an invalid code (5000...) is not echoed: the server drops the connection.
- Origin: a foreign Origin is refused (403) on the upgrades and on POST /v1/messages, unless
  --allowed-origins lists it; no Origin, or the server's own, is fine. POST /v1/messages needs
  Content-Type: application/json (415 otherwise). OPTIONS preflight from an allowed origin: 204
  with the CORS headers.
- A database the server cannot write is refused at start-up (exit 1); a port in use is reported
  as `cannot listen on 127.0.0.1:PORT: Address already in use` (exit 1).
- /readyz: 200 `ready` normally (the 503 of a full table is in test_conversation_limits.py).

Run: /usr/bin/python3 tests/abuse/test_http_edges.py --server build/chat-server
"""

import asyncio
import base64
import hashlib
import os
import pwd
import socket
import stat
import struct
import tempfile
import unittest
from pathlib import Path

import abuse_common as ab
from abuse_common import harness
from harness import InvalidStatusCode

EVIL = "https://evil.example"
GOOD = "https://good.example"


class HttpEdgesTest(ab.AbuseTestCase):
    lift_limits = True

    # -- HEAD ----------------------------------------------------------------------------------

    def test_head_has_content_length_and_no_body(self):
        port = self.server.port
        for path in ["/", "/widget.js", "/healthz", "/readyz", "/metrics"]:
            with self.subTest(path=path):
                conn = ab.RawHttp(port)
                try:
                    conn.send(ab.request("HEAD", path, port))
                    status, headers, _ = conn.read_head()
                    self.assertEqual(status, 200, f"HEAD {path}")
                    self.assertIn("content-length", headers, f"HEAD {path} must carry the GET body's length")
                    length = int(headers["content-length"])
                    self.assertGreater(length, 0)
                    # The next response on the same connection must start right here: a body sent
                    # after the HEAD response would be read as its status line.
                    conn.send(ab.request("GET", path, port))
                    status, headers2, body = conn.read_response()
                    self.assertEqual(status, 200, f"GET {path} after HEAD")
                    if path != "/metrics":  # its text changes between two requests
                        self.assertEqual(len(body), length, f"HEAD {path}: Content-Length of the GET body")
                    conn.send(ab.request("GET", "/healthz", port, keep_alive=False))
                    self.assertEqual(conn.read_response()[0], 200)
                finally:
                    conn.close()

    # -- routing -------------------------------------------------------------------------------

    async def test_query_string_is_ignored_for_routing(self):
        ws = await harness.websockets.connect(f"ws://127.0.0.1:{self.server.port}/v1/chat?x=1",
                                              **harness.connect_kwargs())
        c = harness.Client(ws)
        try:
            self.assertEqual((await c.message("hi"))["seq"], 1)
        finally:
            await c.close()
        for path in ["/healthz?x", "/healthz?x=1&y=2", "/readyz?probe=1", "/?utm=1", "/metrics?"]:
            with self.subTest(path=path):
                self.assertEqual(harness.http_request(self.server, "GET", path).status, 200)
        r = harness.http_request(self.server, "POST", "/v1/messages?x=1", b'{"text":"hi"}',
                                 {"Content-Type": "application/json"})
        self.assertEqual(r.status, 200, r)
        op = await harness.websockets.connect(f"ws://127.0.0.1:{self.server.port}/v1/operator?x=1",
                                              extra_headers={"Authorization": f"Bearer {ab.OPERATOR_TOKEN}"},
                                              **harness.connect_kwargs())
        await op.close()

    def test_readyz(self):
        r = harness.http_request(self.server, "GET", "/readyz")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body.decode().strip(), "ready")

    # -- headers -------------------------------------------------------------------------------

    def status_of(self, raw: bytes) -> int:
        conn = ab.RawHttp(self.server.port)
        try:
            conn.send(raw)
            return conn.read_head()[0]
        finally:
            conn.close()

    def test_headers_over_8_kib_get_431(self):
        port = self.server.port
        big = {"X-Big": "a" * 9000}
        many = {f"X-H{i}": "b" * 60 for i in range(200)}  # 200 small ones, ~13 KiB together
        for name, hdrs in [("one big header", big), ("many headers", many)]:
            with self.subTest(name):
                self.assertEqual(self.status_of(ab.request("GET", "/healthz", port, hdrs)), 431)
                self.assertEqual(self.status_of(ab.upgrade_request("/v1/chat", port, headers=hdrs)), 431)
        # Just under is fine.
        self.assertEqual(self.status_of(ab.request("GET", "/healthz", port, {"X-Big": "a" * 6000})), 200)
        self.assertTrue(self.server.alive())

    def test_bad_sec_websocket_key_gets_400(self):
        port = self.server.port
        keys = {
            "8 bytes": base64.b64encode(b"12345678").decode(),
            "17 bytes": base64.b64encode(b"12345678901234567").decode(),
            "15 bytes": base64.b64encode(b"123456789012345").decode(),
            "24 chars, not base64": "!" * 22 + "==",
            "16 bytes without padding": base64.b64encode(os.urandom(16)).decode().rstrip("="),
        }
        for name, key in keys.items():
            with self.subTest(name, key=key):
                self.assertEqual(self.status_of(ab.upgrade_request("/v1/chat", port, key=key)), 400)
        self.assertEqual(self.status_of(ab.upgrade_request("/v1/chat", port, key=ab.new_ws_key())), 101)

    # -- close codes ---------------------------------------------------------------------------

    def close_with(self, code: int) -> list:
        """Send a close frame with `code`; return the frames the server sent until EOF."""
        conn = ab.raw_websocket(self.server.port)
        try:
            conn.send(ab.ws_frame(0x8, struct.pack("!H", code)))
            data = conn.buf + conn.read_to_eof(timeout=5)
            frames, _ = ab.parse_ws_frames(data)
            return ab.ws_messages(frames)
        finally:
            conn.close()

    def test_invalid_close_code_is_not_echoed(self):
        for code in [5000, 999, 1005, 1006, 65535]:
            with self.subTest(code=code):
                frames = self.close_with(code)
                # Failing the connection (RFC 6455 7.1.7) is dropping it, or closing with 1002
                # protocol error; what must not happen is the invalid code coming back.
                echoed = [p for op, p in frames if op == 0x8 and p[:2] != (1002).to_bytes(2, "big")]
                self.assertEqual(echoed, [], f"the server answered close code {code} with a close frame other than 1002")
        # A valid code is answered with a close frame, as RFC 6455 says.
        frames = self.close_with(1000)
        closes = [p for op, p in frames if op == 0x8]
        self.assertEqual(len(closes), 1, frames)
        self.assertTrue(self.server.alive())

    # -- Origin and Content-Type ----------------------------------------------------------------

    async def test_foreign_origin_upgrade_is_403(self):
        with self.assertRaises(InvalidStatusCode) as cm:
            await harness.open_client(self.server, origin=EVIL)
        self.assertEqual(cm.exception.status_code, 403)
        with self.assertRaises(InvalidStatusCode) as cm:
            await ab.open_operator(self.server, origin=EVIL)
        self.assertEqual(cm.exception.status_code, 403)
        # No Origin (a bridge, curl) and the server's own origin are fine.
        for origin in [None, f"http://127.0.0.1:{self.server.port}"]:
            with self.subTest(origin=origin):
                kw = {"origin": origin} if origin else {}
                c = await harness.open_client(self.server, **kw)
                try:
                    self.assertEqual((await c.message("hi"))["seq"], 1)
                finally:
                    await c.close()
        op = await ab.open_operator(self.server)
        await op.close()

    def post(self, headers: dict, body: bytes = b'{"text":"hi"}') -> harness.HttpResponse:
        return harness.http_request(self.server, "POST", "/v1/messages", body, headers)

    def test_post_needs_json_content_type(self):
        for ct in ["text/plain", "application/x-www-form-urlencoded", "text/json", "application/jsonx",
                   None]:
            with self.subTest(content_type=ct):
                r = self.post({"Content-Type": ct} if ct else {})
                self.assertEqual(r.status, 415, r)
        for ct in ["application/json", "application/json; charset=utf-8", "application/json;charset=UTF-8",
                   "Application/JSON"]:
            with self.subTest(content_type=ct):
                r = self.post({"Content-Type": ct})
                self.assertEqual(r.status, 200, r)

    def test_post_from_foreign_origin_is_403(self):
        r = self.post({"Content-Type": "application/json", "Origin": EVIL})
        self.assertEqual(r.status, 403, r)
        self.assertIsNone(r.headers.get("Access-Control-Allow-Origin"), r.headers)
        r = self.post({"Content-Type": "application/json", "Origin": f"http://127.0.0.1:{self.server.port}"})
        self.assertEqual(r.status, 200, r)

    def test_preflight_from_foreign_origin_is_not_allowed(self):
        r = harness.http_request(self.server, "OPTIONS", "/v1/messages", None,
                                 {"Origin": EVIL, "Access-Control-Request-Method": "POST",
                                  "Access-Control-Request-Headers": "content-type"})
        self.assertNotEqual(r.status // 100, 2, r)
        self.assertIsNone(r.headers.get("Access-Control-Allow-Origin"), r.headers)


class AllowedOriginsTest(ab.AbuseTestCase):
    server_args = ("--allowed-origins", f"{GOOD},https://other.example")
    lift_limits = True

    async def test_listed_origin_upgrades(self):
        c = await harness.open_client(self.server, origin=GOOD)
        try:
            self.assertEqual((await c.message("hi"))["seq"], 1)
        finally:
            await c.close()
        # The operators' socket is for this server's own pages only (issue 16): a listed origin
        # may embed the widget, not act for a signed-in operator.
        with self.assertRaises(InvalidStatusCode) as cm:
            await ab.open_operator(self.server, origin=GOOD)
        self.assertEqual(cm.exception.status_code, 403)
        with self.assertRaises(InvalidStatusCode) as cm:
            await harness.open_client(self.server, origin=EVIL)
        self.assertEqual(cm.exception.status_code, 403)
        # Origins are compared whole: a suffix or another scheme is another origin.
        for origin in ["https://good.example.evil.example", "http://good.example", "https://evilgood.example"]:
            with self.subTest(origin=origin):
                with self.assertRaises(InvalidStatusCode) as cm:
                    await harness.open_client(self.server, origin=origin)
                self.assertEqual(cm.exception.status_code, 403)

    def test_preflight_and_cors_headers(self):
        r = harness.http_request(self.server, "OPTIONS", "/v1/messages", None,
                                 {"Origin": GOOD, "Access-Control-Request-Method": "POST",
                                  "Access-Control-Request-Headers": "content-type"})
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.headers.get("Access-Control-Allow-Origin"), GOOD, r.headers)
        methods = [m.strip().upper() for m in (r.headers.get("Access-Control-Allow-Methods") or "").split(",")]
        self.assertIn("POST", methods, r.headers)
        allowed = [h.strip().lower() for h in (r.headers.get("Access-Control-Allow-Headers") or "").split(",")]
        self.assertIn("content-type", allowed, r.headers)
        self.assertEqual(r.body, b"")
        # The POST itself, cross-origin: answered with the origin and Vary: Origin.
        r = harness.http_request(self.server, "POST", "/v1/messages", b'{"text":"hi"}',
                                 {"Content-Type": "application/json", "Origin": GOOD})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("Access-Control-Allow-Origin"), GOOD, r.headers)
        vary = [v.strip().lower() for v in ",".join(r.headers.get_all("Vary") or []).split(",")]
        self.assertIn("origin", vary, r.headers)
        r = harness.http_request(self.server, "POST", "/v1/messages", b'{"text":"hi"}',
                                 {"Content-Type": "application/json", "Origin": EVIL})
        self.assertEqual(r.status, 403, r)


class AnyOriginTest(ab.AbuseTestCase):
    server_args = ("--allowed-origins", "*")
    lift_limits = True

    async def test_star_allows_any_origin(self):
        c = await harness.open_client(self.server, origin=EVIL)
        try:
            self.assertEqual((await c.message("hi"))["seq"], 1)
        finally:
            await c.close()
        r = harness.http_request(self.server, "POST", "/v1/messages", b'{"text":"hi"}',
                                 {"Content-Type": "application/json", "Origin": EVIL})
        self.assertEqual(r.status, 200, r)


class StartupRefusalsTest(unittest.TestCase):

    def test_port_in_use(self):
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(holder.close)
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        server = ab.AbuseServer(port=port)
        self.addCleanup(server.cleanup)
        code, stderr = server.start_expect_failure()
        self.assertEqual(code, 1, stderr)
        self.assertIn(f"cannot listen on 127.0.0.1:{port}", stderr)
        self.assertIn("Address already in use", stderr)

    def test_database_the_server_cannot_write_is_refused(self):
        run_as = None
        tmp = tempfile.TemporaryDirectory(prefix="backcheck-rodb-")
        self.addCleanup(tmp.cleanup)
        data = Path(tmp.name) / "data"
        data.mkdir(mode=0o700)
        if os.geteuid() == 0:
            # Root writes whatever the mode says: run the server as an unprivileged user instead.
            try:
                pw = pwd.getpwnam("nobody")
            except KeyError:
                self.skipTest("running as root and there is no user 'nobody' to run the server as")
            if not os.access("/usr/bin/setpriv", os.X_OK):
                self.skipTest("running as root and /usr/bin/setpriv is missing")
            run_as = "nobody"
            os.chmod(tmp.name, 0o711)
            os.chown(data, pw.pw_uid, pw.pw_gid)
        server = ab.AbuseServer(data_dir=data, create_data_dir=False, run_as=run_as)
        self.addCleanup(server.cleanup)
        try:
            server.start()
        except AssertionError as e:
            self.skipTest(f"the server cannot run as {run_as}: {e}")
        r = harness.post_json(server, "/v1/messages", {"text": "hi"})
        self.assertEqual(r.status, 200, r)
        server.stop_and_check()
        db = data / "backcheck.db"
        os.chmod(db, 0o400)
        before = hashlib.sha256(db.read_bytes()).hexdigest()
        code, stderr = server.start_expect_failure()
        self.assertEqual(code, 1, f"a database the server cannot write must be refused at start-up\n{stderr}")
        self.assertIn("backcheck.db", stderr, "stderr must name the database")
        self.assertEqual(hashlib.sha256(db.read_bytes()).hexdigest(), before, "the refused database was changed")
        self.assertEqual(stat.S_IMODE(os.stat(db).st_mode), 0o400)


if __name__ == "__main__":
    harness.main()
