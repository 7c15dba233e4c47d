"""Shared helpers of the abuse tests (tests/abuse/test_*.py).

The abuse tests hold the server to the hardening of issue 11: each file attacks one defect (a
frame that crashed the server, an operator backlog past the send queue, a full disk, filling the
conversation table, unbounded memory, idle sockets, the data directory's mode, HTTP edge cases).
They reuse the integration harness (tests/integration/harness.py: the real server on a free
loopback port, python3-websockets 10.4, http.client) and add what the harness has not: raw
sockets for bytes no client library sends, a server started with a fixed port or as another
user, RSS from /proc, and polling helpers with a deadline.

Every loop is bounded in count and time. Nothing sleeps to wait for something: the tests wait on
events (a frame, a close, end of file); the only timer waits are short pauses between polls of a
condition with a deadline (the server noticing a closed socket, a purge, /healthz turning 200).

Run any file as
    /usr/bin/python3 tests/abuse/<file>.py --server build/chat-server [unittest args]
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import logging
import os
import pwd
import re
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

import harness  # noqa: E402
from harness import Server, TIMEOUT  # noqa: E402,F401

# IsolatedAsyncioTestCase runs its loop in debug mode, which logs a warning for every step that
# blocks more than 0.1 s (starting a server, a raw socket read): noise, not a finding.
logging.getLogger("asyncio").setLevel(logging.ERROR)

# A message that affirms two emergency flags for the person writing it.
EMERGENCY_TEXT = "I can't breathe and I have chest pain"
EMERGENCY_FLAGS = {"shortness_of_breath", "chest_pain"}
# Emergency (chest pain) and urgent (numbness) together: the guidance is at the highest level.
CHEST_AND_ARM_TEXT = "I have chest pain and my arm is numb"
# A red-flag message that escalates a new conversation at once (the operator tests use it).
BREATH_TEXT = "I can't breathe"

# Flags that lift the per-connection, per-address and global limits so that a test can make
# load quickly. Flags the server does not know are left out (a server without the flag has no
# such limit): see lift().
LIFT = {
    "--rate": "1000000", "--burst": "1000000",
    "--ip-rate": "1000000", "--ip-burst": "1000000",
    "--global-rate": "1000000",
    "--new-conversations-per-minute": "100000000",
    "--max-connections-per-ip": "100000",
    "--max-conversations-per-connection": "100000",
}


@functools.lru_cache(maxsize=1)
def server_help() -> str:
    out = subprocess.run([str(harness.server_binary()), "--help"], stdin=subprocess.DEVNULL,
                         capture_output=True, timeout=TIMEOUT)
    return out.stdout.decode("utf-8", "replace") + out.stderr.decode("utf-8", "replace")


def server_knows(flag: str) -> bool:
    return re.search(re.escape(flag) + r"\b", server_help()) is not None


def lift(*keep: str) -> list[str]:
    """The LIFT flags (except those in `keep`, which the test sets itself) the server knows."""
    out: list[str] = []
    for flag, value in LIFT.items():
        if flag not in keep and server_knows(flag):
            out += [flag, value]
    return out


# --------------------------------------------------------------------------------------------
# Servers


class AbuseServer(Server):
    """harness.Server plus a fixed --port and running as another user (`run_as`, a user name)."""

    def __init__(self, *args, port: int | None = None, run_as: str | None = None, nofile: str | None = None,
                 **kw):
        """`nofile`: the descriptor limit the server starts with, "SOFT:HARD" (prlimit)."""
        super().__init__(*args, **kw)
        self.fixed_port = port
        self.run_as = run_as
        self.nofile = nofile

    def command(self) -> list[str]:
        cmd = super().command()
        if self.fixed_port is not None:
            cmd[cmd.index("--port") + 1] = str(self.fixed_port)
        if self.run_as is not None:
            pw = pwd.getpwnam(self.run_as)
            cmd = ["/usr/bin/setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups",
                   "--", *cmd]
        if self.nofile is not None:
            cmd = ["/usr/bin/prlimit", f"--nofile={self.nofile}", "--", *cmd]
        return cmd


def rss_kib(pid: int) -> int:
    """VmRSS of a process, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metrics(server: Server) -> list:
    r = harness.http_request(server, "GET", "/metrics")
    assert r.status == 200, r
    return harness.parse_metrics(r.body.decode("utf-8"))


def metric(server: Server, name: str, **labels) -> float | None:
    return harness.metric_value(metrics(server), name, **labels)


async def poll_until(condition, timeout: float, what: str, interval: float = 0.05):
    """Call `condition()` (sync or async) until it returns a true value; return that value.
    Fails with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    for _ in range(int(timeout / interval) + 2):
        last = condition()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout} s (last value {last!r})")


def check_guidance(testcase, frame: dict, urgency: str, flags: set[str] | None = None) -> dict:
    """`frame` is an error carrying the safety guidance of a red-flag message."""
    g = frame.get("guidance")
    testcase.assertIsInstance(g, dict, f"the error answering a red-flag message carries no guidance: {frame}")
    testcase.assertIsInstance(g.get("text"), str, frame)
    testcase.assertTrue(g["text"].strip(), f"empty guidance text: {frame}")
    testcase.assertEqual(g.get("urgency"), urgency, frame)
    testcase.assertIsInstance(g.get("red_flags"), list, frame)
    if flags is not None:
        testcase.assertTrue(set(flags) <= set(g["red_flags"]), f"guidance.red_flags {g['red_flags']} "
                                                               f"should include {sorted(flags)}: {frame}")
    return g


# --------------------------------------------------------------------------------------------
# Raw HTTP on a socket (bytes no client library sends, several requests on one connection)


class RawHttp:
    """One TCP connection to the server, read and written byte by byte as the test decides."""

    def __init__(self, port: int, timeout: float = TIMEOUT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        self.reset = False  # the peer reset the connection

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _more(self, deadline: float) -> bool:
        """Read what comes; False at end of file (or a reset)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"nothing more from the server within {self.timeout} s; have {self.buf[:300]!r}")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise AssertionError(f"nothing more from the server within {self.timeout} s; have {self.buf[:300]!r}") from None
        except ConnectionResetError:
            self.reset = True
            return False
        if not data:
            return False
        self.buf += data
        return True

    def read_exact(self, n: int, deadline: float) -> bytes:
        while len(self.buf) < n:
            if not self._more(deadline):
                raise AssertionError(f"connection closed after {len(self.buf)} of {n} bytes")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_until(self, marker: bytes, deadline: float, limit: int = 1 << 20) -> bytes:
        while marker not in self.buf:
            if len(self.buf) > limit or not self._more(deadline):
                raise AssertionError(f"no {marker!r} from the server; have {self.buf[:300]!r}")
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_head(self, deadline: float | None = None) -> tuple[int, dict, str]:
        """Status line and headers: (status, {lower-case name: value}, status line)."""
        deadline = deadline or time.monotonic() + self.timeout
        head = self.read_until(b"\r\n\r\n", deadline).decode("latin-1")
        lines = head.split("\r\n")
        m = re.fullmatch(r"HTTP/1\.[01] (\d{3})(?: .*)?", lines[0])
        if not m:
            raise AssertionError(f"not an HTTP status line: {lines[0]!r} (response {head[:300]!r})")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(m.group(1)), headers, lines[0]

    def read_response(self, head_request: bool = False) -> tuple[int, dict, bytes]:
        """One whole response: (status, headers, body). A response to HEAD has no body."""
        deadline = time.monotonic() + self.timeout
        status, headers, _ = self.read_head(deadline)
        if head_request or status < 200 or status in (204, 304):
            return status, headers, b""
        if "content-length" in headers:
            return status, headers, self.read_exact(int(headers["content-length"]), deadline)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = b""
            for _ in range(100000):
                size = int(self.read_until(b"\r\n", deadline).split(b";")[0].strip(), 16)
                body += self.read_exact(size, deadline)
                self.read_exact(2, deadline)
                if size == 0:
                    return status, headers, body
            raise AssertionError("endless chunked body")
        return status, headers, self.read_to_eof()

    def read_to_eof(self, timeout: float | None = None) -> bytes:
        """Everything until the server closes the connection."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while self._more(deadline):
            if len(self.buf) > (16 << 20):
                raise AssertionError("more than 16 MiB without end of file")
        out, self.buf = self.buf, b""
        return out

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def request(method: str, path: str, port: int, headers: dict | None = None, body: bytes = b"",
            keep_alive: bool = True) -> bytes:
    hdrs = {"Host": f"127.0.0.1:{port}"}
    if body:
        hdrs["Content-Length"] = str(len(body))
    if not keep_alive:
        hdrs["Connection"] = "close"
    hdrs.update(headers or {})
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in hdrs.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# --------------------------------------------------------------------------------------------
# Raw WebSocket


WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def new_ws_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def ws_accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def upgrade_request(path: str, port: int, key: str | None = None, headers: dict | None = None) -> bytes:
    hdrs = {"Upgrade": "websocket", "Connection": "Upgrade",
            "Sec-WebSocket-Key": key if key is not None else new_ws_key(), "Sec-WebSocket-Version": "13"}
    hdrs.update(headers or {})
    return request("GET", path, port, hdrs)


def ws_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A client frame (masked, as RFC 6455 requires of clients)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def parse_ws_frames(data: bytes) -> tuple[list[tuple[bool, int, bytes]], bytes]:
    """Server frames (unmasked) in `data`: ([(fin, opcode, payload)], the incomplete rest)."""
    frames = []
    i = 0
    while len(data) - i >= 2:
        fin = bool(data[i] & 0x80)
        opcode = data[i] & 0x0F
        n = data[i + 1] & 0x7F
        j = i + 2
        if n == 126:
            if len(data) - j < 2:
                break
            n = struct.unpack("!H", data[j:j + 2])[0]
            j += 2
        elif n == 127:
            if len(data) - j < 8:
                break
            n = struct.unpack("!Q", data[j:j + 8])[0]
            j += 8
        if data[i + 1] & 0x80:
            raise AssertionError("the server sent a masked frame")
        if len(data) - j < n:
            break
        frames.append((fin, opcode, data[j:j + n]))
        i = j + n
    return frames, data[i:]


def ws_messages(frames) -> list[tuple[int, bytes]]:
    """Whole messages from frames (a message may come in fragments): [(opcode, payload)].
    Control frames are messages of their own; an unfinished message at the end is left out."""
    out = []
    opcode, parts = None, []
    for fin, op, payload in frames:
        if op >= 0x8:
            out.append((op, payload))
            continue
        if op != 0x0:
            opcode, parts = op, []
        parts.append(payload)
        if fin and opcode is not None:
            out.append((opcode, b"".join(parts)))
            opcode, parts = None, []
    return out


def raw_websocket(port: int, path: str = "/v1/chat", headers: dict | None = None) -> RawHttp:
    """A raw socket that has completed the WebSocket handshake (101 checked)."""
    conn = RawHttp(port)
    key = new_ws_key()
    conn.send(upgrade_request(path, port, key, headers))
    status, hdrs, line = conn.read_head()
    if status != 101:
        conn.close()
        raise AssertionError(f"upgrade answered {line!r}, expected 101")
    if hdrs.get("sec-websocket-accept") != ws_accept(key):
        conn.close()
        raise AssertionError(f"bad Sec-WebSocket-Accept {hdrs.get('sec-websocket-accept')!r}")
    return conn


# --------------------------------------------------------------------------------------------
# unittest base


OPERATOR_TOKEN = "op-" + os.urandom(16).hex()


class AbuseTestCase(harness.ServerTestCase):
    """ServerTestCase with `threads` and the operator token in the server's environment."""

    threads = 2
    operator_token: str | None = OPERATOR_TOKEN
    lift_limits = False  # add lift() for the flags server_args does not set

    @classmethod
    def setUpClass(cls) -> None:
        super(harness.ServerTestCase, cls).setUpClass()
        args = list(cls.server_args)
        if cls.lift_limits:
            args += lift(*(a for a in args if str(a).startswith("--")))
        cls.server = AbuseServer(*args, web=cls.web_dir(), threads=cls.threads,
                                 env={"CHAT_OPERATOR_TOKEN": cls.operator_token})
        try:
            cls.server.start()
        except BaseException:
            cls.server.cleanup()
            raise


async def open_operator(server: Server, token: str | None = OPERATOR_TOKEN, **kw) -> harness.Client:
    headers = dict(kw.pop("extra_headers", {}) or {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    ws = await harness.websockets.connect(f"ws://127.0.0.1:{server.port}/v1/operator",
                                          extra_headers=headers, **harness.connect_kwargs(**kw))
    return harness.Client(ws)
