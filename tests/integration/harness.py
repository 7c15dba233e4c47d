"""Shared harness for the chat-server integration tests.

Every test file is run as

    /usr/bin/python3 tests/integration/<file>.py --server build/chat-server [unittest args]

The harness starts the real server binary on a free port (``--port 0``), waits for the exact line
``listening on http://127.0.0.1:PORT`` on its stdout (10 s at most), talks to it with Debian's
python3-websockets (asyncio API, 10.4) and the standard library's http.client, and stops it with
SIGTERM at the end, asserting exit status 0.

No test sleeps to wait for something to happen: each waits on an event (a frame arriving, a close
frame, end of file on a socket, process exit) with a timeout. The only timer waits are the token
bucket refill in the rate-limit test and short pauses between retries while polling for a
condition (the server noticing that a socket closed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import http.client
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path
from typing import Any, Iterable

import websockets
import websockets.exceptions
from websockets.exceptions import ConnectionClosed, InvalidStatusCode  # noqa: F401 (re-exported)

REPO = Path(__file__).resolve().parents[2]
SERVER_BINARY: Path | None = None

# How long to wait for any single event (a frame, a close, an HTTP answer).
TIMEOUT = float(os.environ.get("BACKCHECK_TEST_TIMEOUT", "10"))
STARTUP_TIMEOUT = 10.0
SHUTDOWN_TIMEOUT = 5.0  # SPEC section 7: exit 0 within 5 s of SIGTERM/SIGINT

LISTENING_RE = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")
CONVERSATION_ID_RE = re.compile(r"[A-Za-z0-9_-]{22,}")
STATES = {"welcome", "screening", "advising", "escalated", "ended"}
LEVELS = ["none", "see_doctor", "urgent", "emergency"]

_MISSING = object()

# The store every Server uses unless a test names one: the default (SQLite) or, when
# BACKCHECK_TEST_STORE=postgres and a database server is given (BACKCHECK_TEST_DATABASE_URL, as
# tests/pg/pg_instance.py run sets it), PostgreSQL: each Server then gets a database of its own,
# as it gets a data dir of its own, so the suites run unchanged against either store.
STORE = os.environ.get("BACKCHECK_TEST_STORE", "sqlite")
if STORE not in ("sqlite", "postgres"):
    raise SystemExit(f"BACKCHECK_TEST_STORE must be sqlite or postgres, not {STORE!r}")


def postgres_database_for(data_dir: Path) -> str:
    """The database on the test's PostgreSQL that stands for `data_dir` (created empty the first
    time: a server restarted on the same data dir finds its conversations); returns its URL."""
    base = os.environ.get("BACKCHECK_TEST_DATABASE_URL")
    if not base:
        raise SystemExit("BACKCHECK_TEST_STORE=postgres needs BACKCHECK_TEST_DATABASE_URL "
                         "(run the suite under tests/pg/pg_instance.py run -- ...)")
    name = "it_" + hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:16]
    exists = subprocess.run(["psql", "-X", "-A", "-t", "-q", base, "-c",
                             f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
                            check=True, capture_output=True, text=True).stdout.strip()
    if not exists:
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", base, "-c", f"CREATE DATABASE {name}"],
                       check=True, capture_output=True)
    path, _, query = base.partition("?")
    return f"{path.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")

# The per-address and global abuse limits (README "Security") would throttle these tests, which
# make many conversations and bursts of messages from 127.0.0.1 on purpose. They are lifted here
# unless a test sets the flag itself; tests/abuse/ tests the limits at their own values.
ABUSE_LIMITS_LIFTED = {
    "--max-connections-per-ip": "100000",
    "--new-conversations-per-minute": "100000000",
    "--ip-rate": "1000000",
    "--ip-burst": "1000000",
    "--global-rate": "10000000",
}


# --------------------------------------------------------------------------------------------
# Command line


def _resolve_server(value: str | None) -> Path:
    if not value:
        return REPO / "build" / "chat-server"
    path = Path(value)
    if path.is_absolute() or path.exists():
        return path.resolve()
    # Relative to the repository when the test runs from elsewhere (e.g. CTest's build folder).
    return (REPO / path).resolve()


def main() -> None:
    """Parse --server, then hand the rest of the command line to unittest."""
    global SERVER_BINARY
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--server", default=os.environ.get("BACKCHECK_SERVER"))
    args, rest = parser.parse_known_args()
    SERVER_BINARY = _resolve_server(args.server)
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)


def server_binary() -> Path:
    global SERVER_BINARY
    if SERVER_BINARY is None:
        SERVER_BINARY = _resolve_server(os.environ.get("BACKCHECK_SERVER"))
    return SERVER_BINARY


# --------------------------------------------------------------------------------------------
# The knowledge data (JSON with comments), so tests expect what the data says, not a copy of it


def strip_jsonc_comments(text: str) -> str:
    """`text` without its // and /* */ comments (a "//" inside a string is kept)."""
    out, i, n, in_str = [], 0, len(text), False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_str = False
            i += 1
        elif c == '"':
            in_str = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def load_kb_file(name: str) -> Any:
    """knowledge/data/NAME (e.g. "flow.jsonc") as parsed JSON: the data the server loads."""
    return json.loads(strip_jsonc_comments((REPO / "knowledge" / "data" / name).read_text(encoding="utf-8")))


def kb_welcome() -> tuple[str, list[str]]:
    """The welcome reply the knowledge base defines: flow text "greeting" and quick replies
    "welcome" (the "default" ones when that list is empty), as dialog::Engine::WelcomeReply()."""
    flow = load_kb_file("flow.jsonc")
    replies = flow.get("quick_replies", {})
    return flow["texts"]["greeting"], list(replies.get("welcome") or replies.get("default") or [])


def kb_banners() -> dict[str, str]:
    """urgency level -> banner line, from red_flags.jsonc guidance (levels other than "none")."""
    return {g["level"]: g.get("banner", "") for g in load_kb_file("red_flags.jsonc")["guidance"]
            if g["level"] != "none"}


# --------------------------------------------------------------------------------------------
# The server process


try:  # resolved here, in the parent: the child only makes the call
    import ctypes
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except Exception:  # pragma: no cover
    _prctl = None


def _die_with_parent() -> None:
    """In the child: get SIGKILL if the test process dies (e.g. a CTest timeout kills it)."""
    if _prctl is not None:
        _prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG


class Server:
    """One chat-server process on a free loopback port with its own temporary data dir."""

    def __init__(self, *extra_args: str, web: str | os.PathLike | None = None,
                 data_dir: str | os.PathLike | None = None, threads: int = 2,
                 env: dict | None = None, create_data_dir: bool = True, lift_abuse_limits: bool = True):
        """`env`: variables added to (value None: removed from) the server's environment.
        `create_data_dir=False` leaves creating --data-dir to the server.
        `lift_abuse_limits=False` keeps the per-address limits at their defaults."""
        self.lift_abuse_limits = lift_abuse_limits
        self.extra_args = [str(a) for a in extra_args]
        self.web = web
        self.threads = threads
        self.env = dict(env or {})
        self._tmp = tempfile.TemporaryDirectory(prefix="backcheck-it-")
        self.data_dir = Path(data_dir) if data_dir else Path(self._tmp.name) / "data"
        if create_data_dir:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts = 0
        self.stderr_path = Path(self._tmp.name) / "stderr.log"
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.listening_line: str | None = None
        self._lines: "queue.Queue[str | None]" = queue.Queue()
        self.stdout_lines: list[str] = []
        self._reader: threading.Thread | None = None
        # The store this Server uses: what the test named, else the suite's (see STORE).
        self.store = next((self.extra_args[i + 1] for i, a in enumerate(self.extra_args[:-1]) if a == "--store"),
                          None)
        self.database_url: str | None = None
        if self.store is None and STORE == "postgres":
            self.store = "postgres"
            self.database_url = postgres_database_for(self.data_dir)
            self.extra_args = ["--store", "postgres", "--database-url", self.database_url] + self.extra_args
        self.store = self.store or "sqlite"

    # -- lifecycle ------------------------------------------------------------------------

    def command(self) -> list[str]:
        cmd = [str(server_binary()), "--port", "0", "--host", "127.0.0.1",
               "--data-dir", str(self.data_dir), "--threads", str(self.threads)]
        if self.web is not None:
            cmd += ["--web", str(self.web)]
        lifted = []
        if self.lift_abuse_limits:
            for flag, value in ABUSE_LIMITS_LIFTED.items():
                if flag not in self.extra_args:
                    lifted += [flag, value]
        return cmd + lifted + self.extra_args

    def environment(self) -> dict | None:
        if not self.env:
            return None  # inherit, as before
        env = dict(os.environ)
        for k, v in self.env.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
        return env

    def _spawn(self) -> None:
        binary = server_binary()
        if not (binary.is_file() and os.access(binary, os.X_OK)):
            raise AssertionError(f"server binary not found or not executable: {binary}")
        if self.starts:
            # A restart on the same data dir: fresh stdout state, stderr of this run only.
            self.stderr_path = Path(self._tmp.name) / f"stderr.{self.starts}.log"
            self._lines = queue.Queue()
            self.stdout_lines = []
            self.port = None
            self.listening_line = None
        self.starts += 1
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self._stderr,
                                     preexec_fn=_die_with_parent, env=self.environment())
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()

    def start(self) -> "Server":
        self._spawn()
        try:
            line = self._lines.get(timeout=STARTUP_TIMEOUT)
        except queue.Empty:
            self.kill()
            raise AssertionError(f"no listening line within {STARTUP_TIMEOUT} s; "
                                 f"command {self.command()}\n{self.stderr_tail()}")
        if line is None:
            code = self.proc.wait(timeout=TIMEOUT)
            raise AssertionError(f"server exited with status {code} before listening; "
                                 f"command {self.command()}\n{self.stderr_tail()}")
        m = LISTENING_RE.fullmatch(line)
        if not m:
            self.kill()
            raise AssertionError(f"first stdout line is {line!r}, expected exactly "
                                 f"'listening on http://127.0.0.1:PORT'")
        self.listening_line = line
        self.port = int(m.group(1))
        if not 0 < self.port < 65536:
            self.kill()
            raise AssertionError(f"bad port in listening line {line!r}")
        return self

    def _read_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.stdout_lines.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def stop(self, sig: int | None = signal.SIGTERM, timeout: float = SHUTDOWN_TIMEOUT) -> int:
        """Send `sig` (None: already sent), wait for exit (at most `timeout` s) and return the
        exit status.

        Raises AssertionError if the process does not exit in time (it is then killed).
        """
        assert self.proc is not None
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"server did not exit within {timeout} s of signal {sig}\n"
                                 f"{self.stderr_tail()}")
        finally:
            self._close_files()
        return code

    def stop_and_check(self) -> None:
        code = self.stop()
        if code != 0:
            raise AssertionError(f"server exit status {code} after SIGTERM, expected 0\n"
                                 f"{self.stderr_tail()}")

    def restart(self) -> "Server":
        """Start the same command again on the same data dir (the process must have exited)."""
        if self.alive():
            raise AssertionError("restart() while the server is still running")
        return self.start()

    def kill9(self) -> int:
        """SIGKILL the server now (no chance to flush anything) and return its exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        code = self.proc.wait(timeout=TIMEOUT)
        self._close_files()
        return code

    def start_expect_failure(self, timeout: float = STARTUP_TIMEOUT) -> tuple[int, str]:
        """Start the server expecting it to refuse: it must exit without printing the listening
        line. Returns (exit status, stderr text)."""
        self._spawn()
        assert self.proc is not None
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise AssertionError(f"server neither exited nor listened within {timeout} s\n"
                                 f"{self.stderr_tail()}") from None
        if line is not None:
            self.kill()
            raise AssertionError(f"server started (stdout {line!r}) but was expected to refuse\n"
                                 f"{self.stderr_tail()}")
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"server closed stdout but did not exit within {timeout} s") from None
        self._close_files()
        return code, self.stderr_path.read_bytes().decode("utf-8", "replace")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_files()

    def _close_files(self) -> None:
        if self._reader is not None:
            self._reader.join(timeout=TIMEOUT)
        if self.proc is not None and self.proc.stdout is not None and self.proc.poll() is not None:
            with contextlib.suppress(Exception):
                self.proc.stdout.close()
        with contextlib.suppress(Exception):
            self._stderr.close()

    def cleanup(self) -> None:
        self.kill()
        self._tmp.cleanup()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stderr_tail(self, n: int = int(os.environ.get("BACKCHECK_TEST_STDERR_TAIL", "3000"))) -> str:
        with contextlib.suppress(Exception):
            self._stderr.flush()
        try:
            data = self.stderr_path.read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            data = ""
        return f"--- server stderr (tail) ---\n{data}\n--- end ---" if data else "(no stderr)"

    # -- addresses ------------------------------------------------------------------------

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/chat"

    @property
    def db_path(self) -> Path:
        """The SQLite store of --store sqlite (the default)."""
        return self.data_dir / "backcheck.db"

    @property
    def http_base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


# --------------------------------------------------------------------------------------------
# WebSocket client


class Client:
    """Thin wrapper around a websockets client connection speaking the v1 chat protocol."""

    def __init__(self, ws):
        self.ws = ws
        self.implicitly_started: dict | None = None

    async def send(self, obj: Any) -> None:
        await self.ws.send(obj if isinstance(obj, (str, bytes)) else json.dumps(obj))

    async def send_batch(self, objs) -> None:
        """Send many text frames in one socket write, so that they reach the server together."""
        from websockets.frames import Frame, Opcode
        blob = b"".join(
            Frame(Opcode.TEXT, (o if isinstance(o, str) else json.dumps(o)).encode()).serialize(mask=True)
            for o in objs)
        self.ws.transport.write(blob)
        await self.ws.drain()

    async def send_raw_text_frame(self, payload: bytes) -> None:
        """Send a text frame whose payload is `payload` as is (may be invalid UTF-8)."""
        await self.ws.write_frame(True, 0x1, payload)

    async def recv(self, timeout: float = TIMEOUT) -> dict:
        try:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"no frame from the server within {timeout} s") from None
        if not isinstance(raw, str):
            raise AssertionError(f"server sent a binary frame: {raw[:200]!r}")
        try:
            obj = json.loads(raw)
        except ValueError:
            raise AssertionError(f"server sent a text frame that is not JSON: {raw[:300]!r}")
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            raise AssertionError(f"server frame is not an object with a type: {raw[:300]!r}")
        return obj

    async def recv_type(self, type_: str, timeout: float = TIMEOUT) -> dict:
        obj = await self.recv(timeout)
        if obj["type"] != type_:
            raise AssertionError(f"expected a {type_!r} frame, got {obj}")
        return obj

    async def start(self, resume: str | None = None) -> dict:
        frame: dict = {"type": "start"}
        if resume is not None:
            frame["resume"] = resume
        await self.send(frame)
        started = await self.recv_type("started")
        check_started(started)
        return started

    async def message(self, text: str, conversation: str | None = None,
                      ref: str | None = None, **extra) -> dict:
        """Send one message and return its reply (asserts the next frame is that reply)."""
        frame: dict = {"type": "message", "text": text}
        if conversation is not None:
            frame["conversation"] = conversation
        if ref is not None:
            frame["ref"] = ref
        frame.update(extra)
        await self.send(frame)
        reply = await self.recv()
        if conversation is None and reply["type"] == "started":
            # The connection had no conversation: the message started one first.
            check_started(reply)
            self.implicitly_started = reply
            reply = await self.recv()
            if reply.get("conversation") != self.implicitly_started["conversation"]:
                raise AssertionError(f"reply {reply} is not for the conversation just started "
                                     f"{self.implicitly_started['conversation']!r}")
        if reply["type"] != "reply":
            raise AssertionError(f"expected a 'reply' frame, got {reply}")
        check_reply(reply)
        if conversation is not None and reply["conversation"] != conversation:
            raise AssertionError(f"reply for {reply['conversation']!r}, sent to {conversation!r}")
        if ref is not None and reply.get("ref") != ref:
            raise AssertionError(f"reply ref {reply.get('ref')!r}, expected {ref!r}")
        return reply

    async def expect_error(self, code: str, ref: Any = _MISSING, timeout: float = TIMEOUT) -> dict:
        """Next frame must be an error with `code`; `ref` checks the echoed ref (None: absent)."""
        obj = await self.recv(timeout)
        if obj["type"] != "error":
            raise AssertionError(f"expected error {code!r}, got {obj}")
        check_error(obj)
        if obj["code"] != code:
            raise AssertionError(f"expected error code {code!r}, got {obj}")
        if ref is None and "ref" in obj:
            raise AssertionError(f"error should carry no ref: {obj}")
        if ref is not _MISSING and ref is not None and obj.get("ref") != ref:
            raise AssertionError(f"error ref {obj.get('ref')!r}, expected {ref!r}: {obj}")
        return obj

    async def expect_closed(self, timeout: float = TIMEOUT) -> int | None:
        """Read (discarding frames) until the server closes the connection; return the code."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"connection still open after {timeout} s")
            try:
                await asyncio.wait_for(self.ws.recv(), remaining)
            except ConnectionClosed:
                break
            except asyncio.TimeoutError:
                raise AssertionError(f"connection still open after {timeout} s") from None
        # close_code is final only once the closing handshake (and TCP close) is complete.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.wait_closed(), timeout)
        return self.ws.close_code

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), TIMEOUT)


def connect_kwargs(**kw) -> dict:
    # max_queue=None: the client library keeps reading the socket even while a test is busy
    # sending, so the server never sees a slow reader (see SlowReaderTest for that case).
    base = dict(max_size=None, max_queue=None, ping_interval=None, compression=None,
                open_timeout=TIMEOUT, close_timeout=TIMEOUT)
    base.update(kw)
    return base


@contextlib.asynccontextmanager
async def connect(server: Server, path: str = "/v1/chat", **kw):
    ws = await websockets.connect(f"ws://127.0.0.1:{server.port}{path}", **connect_kwargs(**kw))
    client = Client(ws)
    try:
        yield client
    finally:
        await client.close()


async def open_client(server: Server, path: str = "/v1/chat", **kw) -> Client:
    """Connect without a context manager (the caller closes it)."""
    ws = await websockets.connect(f"ws://127.0.0.1:{server.port}{path}", **connect_kwargs(**kw))
    return Client(ws)


async def collect_replies(client: Client, refs: Iterable[str], timeout: float = TIMEOUT) -> tuple[dict, list]:
    """Read frames until a reply (or error) for every ref in `refs` has arrived.

    Returns ({ref: frame}, [frames in arrival order, including ones for other refs]).
    A second frame for the same ref is an assertion failure.
    """
    want = set(refs)
    got: dict = {}
    frames: list = []
    while not want.issubset(got):
        frame = await client.recv(timeout)
        frames.append(frame)
        ref = frame.get("ref")
        if frame["type"] in ("reply", "error") and ref in want:
            if ref in got:
                raise AssertionError(f"two answers for ref {ref!r}: {got[ref]} and {frame}")
            got[ref] = frame
    return got, frames


# --------------------------------------------------------------------------------------------
# Frame shape checks


def check_started(f: dict) -> None:
    assert f["type"] == "started", f
    conv = f.get("conversation")
    assert isinstance(conv, str) and CONVERSATION_ID_RE.fullmatch(conv), \
        f"conversation id {conv!r} is not URL-safe with >= 128 random bits (22+ chars): {f}"
    assert isinstance(f.get("resumed"), bool), f"started.resumed must be a bool: {f}"
    assert f.get("state") in STATES, f"started.state {f.get('state')!r}: {f}"
    assert f.get("urgency") in LEVELS, f"started.urgency {f.get('urgency')!r}: {f}"
    history = f.get("history")
    assert isinstance(history, list), f"started.history must be a list: {f}"
    # SPEC 6.1: the welcome reply (new conversations only) and the banner line per level.
    banners = f.get("banners")
    assert isinstance(banners, dict) and all(k in LEVELS and k != "none" and isinstance(v, str)
                                             for k, v in banners.items()), \
        f"started.banners must map urgency levels to strings: {f}"
    if "welcome" in f:
        w = f["welcome"]
        assert isinstance(w, dict) and isinstance(w.get("text"), str) \
            and isinstance(w.get("quick_replies"), list) \
            and all(isinstance(q, str) for q in w["quick_replies"]), f"bad started.welcome: {f}"
    for turn in history:
        assert isinstance(turn, dict) and turn.get("role") in ("user", "assistant", "operator") \
            and isinstance(turn.get("text"), str) and isinstance(turn.get("seq"), int) \
            and not isinstance(turn.get("seq"), bool), f"bad history entry {turn!r}"
        # An operator's turn names them; no other carries a name.
        assert (turn["role"] == "operator") == isinstance(turn.get("operator"), str), f"bad history entry {turn!r}"


def check_reply(f: dict) -> None:
    assert f["type"] == "reply", f
    assert isinstance(f.get("conversation"), str) and CONVERSATION_ID_RE.fullmatch(f["conversation"]), f
    seq = f.get("seq")
    assert isinstance(seq, int) and not isinstance(seq, bool) and seq >= 1, f"bad seq: {f}"
    assert isinstance(f.get("text"), str) and f["text"].strip(), f"empty reply text: {f}"
    assert isinstance(f.get("intent"), str) and f["intent"], f
    assert f.get("state") in STATES, f"bad state: {f}"
    assert f.get("urgency") in LEVELS, f"bad urgency: {f}"
    assert isinstance(f.get("red_flags"), list) and all(isinstance(x, str) for x in f["red_flags"]), f
    # The safety net's question (SPEC 5, 6.1): always present, [] unless the reply asks about a flag.
    assert isinstance(f.get("possible_flags"), list) and all(isinstance(x, str) for x in f["possible_flags"]), \
        f"reply.possible_flags must be an array of strings: {f}"
    assert isinstance(f.get("escalated"), bool), f
    assert isinstance(f.get("quick_replies"), list) and all(isinstance(x, str) for x in f["quick_replies"]), f
    assert isinstance(f.get("sources"), list), f
    for s in f["sources"]:
        assert isinstance(s, dict) and isinstance(s.get("section"), str) and isinstance(s.get("quote"), str), \
            f"bad source {s!r}"
    if "ref" in f:
        assert isinstance(f["ref"], str), f


def check_error(f: dict) -> None:
    assert f["type"] == "error", f
    assert isinstance(f.get("code"), str), f
    assert isinstance(f.get("message"), str) and f["message"], f"error without a message: {f}"


# --------------------------------------------------------------------------------------------
# HTTP


class HttpResponse:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").lower()

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self) -> str:
        return f"<HTTP {self.status} {self.content_type} {self.body[:200]!r}>"


def http_request(server: Server, method: str, path: str, body: bytes | str | None = None,
                 headers: dict | None = None) -> HttpResponse:
    """One request on a fresh connection; `path` is sent exactly as given (no normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        if isinstance(body, str):
            body = body.encode("utf-8")
        conn.putrequest(method, path, skip_accept_encoding=True)
        hdrs = {"Connection": "close"}
        if body is not None:
            hdrs["Content-Length"] = str(len(body))
        hdrs.update(headers or {})
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return HttpResponse(resp.status, resp.headers, data)
    finally:
        conn.close()


def post_json(server: Server, path: str, obj: Any) -> HttpResponse:
    body = obj if isinstance(obj, (str, bytes)) else json.dumps(obj)
    return http_request(server, "POST", path, body, {"Content-Type": "application/json"})


# --------------------------------------------------------------------------------------------
# Prometheus text


SAMPLE_RE = re.compile(
    r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+"
    r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|NaN|[+-]Inf)(?:\s+-?\d+)?")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> list[tuple[str, dict, float]]:
    """Parse Prometheus text exposition; raise AssertionError on a malformed line."""
    samples = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = SAMPLE_RE.fullmatch(line.strip())
        if not m:
            raise AssertionError(f"malformed metrics line: {line!r}")
        labels = dict(LABEL_RE.findall(m.group(2) or ""))
        samples.append((m.group(1), labels, float(m.group(3))))
    return samples


def metric_value(samples, name: str, **labels) -> float | None:
    """Sum of the samples named `name` whose labels include `labels` (None if there are none)."""
    total = None
    for n, l, v in samples:
        if n == name and all(l.get(k) == val for k, val in labels.items()):
            total = (total or 0.0) + v
    return total


# --------------------------------------------------------------------------------------------
# unittest base


class ServerTestCase(unittest.IsolatedAsyncioTestCase):
    """One server per test class, started with `server_args` (and `web_dir()` if given)."""

    server_args: tuple = ()
    server: Server

    @classmethod
    def web_dir(cls):
        return None

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.server = Server(*cls.server_args, web=cls.web_dir())
        try:
            cls.server.start()
        except BaseException:
            cls.server.cleanup()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        try:
            alive = cls.server.alive()
            if not alive:
                raise AssertionError(f"server died during the tests (status {cls.server.proc.returncode})\n"
                                     f"{cls.server.stderr_tail()}")
            cls.server.stop_and_check()
        finally:
            cls.server.cleanup()
            super().tearDownClass()

    def assertServerAlive(self) -> None:
        if not self.server.alive():
            self.fail(f"server exited (status {self.server.proc.returncode})\n{self.server.stderr_tail()}")

    def connect(self, path: str = "/v1/chat", **kw):
        return connect(self.server, path, **kw)


def make_web_dir(root: Path) -> dict:
    """A small --web folder plus files outside it that must never be served.

    root/web/index.html, app.js, style.css      served
    root/web/leak.txt -> root/secret.txt        symlink to a file outside --web
    root/web/leakdir  -> root/outside           symlink to a folder outside --web
    root/README.md, root/secret.txt, root/outside/secret.txt   outside --web
    """
    web = root / "web"
    web.mkdir(parents=True)
    marker = "TOP-SECRET-" + os.urandom(8).hex()
    files = {
        "index.html": "<!doctype html>\n<html><head><title>widget test page</title>"
                      "<link rel=\"stylesheet\" href=\"style.css\"></head>"
                      "<body><script src=\"app.js\"></script></body></html>\n",
        "app.js": "console.log('backcheck widget test');\n",
        "style.css": "body { color: #123456; }\n",
    }
    for name, text in files.items():
        (web / name).write_text(text)
    (root / "README.md").write_text(f"# outside README {marker}\n")
    (root / "secret.txt").write_text(f"secret {marker}\n")
    (root / "outside").mkdir()
    (root / "outside" / "secret.txt").write_text(f"secret dir {marker}\n")
    os.symlink(root / "secret.txt", web / "leak.txt")
    os.symlink(root / "outside", web / "leakdir")
    return {"web": web, "marker": marker, "files": files}
