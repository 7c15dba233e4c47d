#!/usr/bin/env python3
"""CTest packaging.deb: the install tree and the Debian package, from this build tree's binaries.

    test_package.py --build-dir BUILD --server BUILD/chat-server --cli BUILD/backcheck
                    --cmake CMAKE --cpack CPACK --source-dir SRC --version X.Y.Z

1. cmake --install into a temporary prefix (with DESTDIR, so that nothing can reach the real /):
   bin/ and share/backcheck/ only; the installed backcheck finds its knowledge base.
2. cpack builds the .deb from the same binaries (no second build); dpkg-deb -c / -I / -e: the
   binaries, share/backcheck/ (every knowledge data file and the web files), the systemd unit,
   /etc/backcheck/, /var/lib/backcheck/ mode 0700, the maintainer scripts, the dependencies; no
   path or byte string of the build or source tree.
3. dpkg-deb -x into a temporary root; the unit's ExecStart, pointed at that root, starts the
   extracted chat-server with no --kb/--web: it serves the widget page and answers
   POST /v1/messages; SIGTERM exits 0. A --web folder that does not exist is refused.
4. --version of both extracted binaries; systemd-analyze verify of the unit when it exists.
5. The build tree's binaries copied elsewhere without a share/ folder exit 2 with a message that
   says what to pass, not a crash.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

ARGS: argparse.Namespace

UNIT = "./lib/systemd/system/backcheck.service"


def run(cmd, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 120)
    return subprocess.run([str(c) for c in cmd], **kw)


def start_server(cmd: list[str]) -> tuple[subprocess.Popen, int]:
    """Starts chat-server, waits (10 s) for its `listening on` line; returns it and its port."""
    proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line or proc.poll() is not None:
            break
    m = re.match(r"listening on http://127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.kill()
        _, err = proc.communicate(timeout=5)
        raise AssertionError(f"{cmd[0]} did not start: stdout {line!r}, stderr {err!r}")
    return proc, int(m.group(1))


def stop_server(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=8)
    finally:
        if proc.poll() is None:
            proc.kill()


def request(port: int, method: str, path: str, body: dict | None = None) -> tuple[int, str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type", ""), r.read().decode("utf-8", "replace")
    finally:
        conn.close()


class PackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="backcheck-pkg-"))
        cls.source = Path(ARGS.source_dir).resolve()
        cls.build = Path(ARGS.build_dir).resolve()
        dist = cls.tmp / "dist"
        r = run([ARGS.cpack, "--config", cls.build / "CPackConfig.cmake", "-B", dist])
        if r.returncode != 0:
            raise AssertionError(f"cpack failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        debs = sorted(dist.glob("*.deb"))
        if len(debs) != 1:
            raise AssertionError(f"cpack made {debs}, expected one .deb:\n{r.stdout}")
        cls.deb = debs[0]
        listing = run(["dpkg-deb", "-c", cls.deb], check=True).stdout
        # "drwx------ root/root 0 2026-12-08 04:06 ./var/lib/backcheck/" -> {path: mode}
        cls.entries = {}
        for line in listing.splitlines():
            parts = line.split(None, 5)
            cls.entries[parts[5].split(" -> ")[0]] = parts[0]
        cls.root = cls.tmp / "root"
        run(["dpkg-deb", "-x", cls.deb, cls.root], check=True)
        cls.control = cls.tmp / "control"
        run(["dpkg-deb", "-e", cls.deb, cls.control], check=True)
        cls.unit_text = (cls.root / UNIT).read_text()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # -- contents -------------------------------------------------------------------------------

    def test_contents(self):
        want = ["./usr/bin/chat-server", "./usr/bin/backcheck", "./usr/share/backcheck/knowledge/article.txt",
                "./usr/share/backcheck/web/index.html", "./usr/share/backcheck/web/widget.js",
                "./usr/share/backcheck/web/widget.css", UNIT, "./etc/backcheck/", "./var/lib/backcheck/"]
        # Whatever the loader reads: every data file of the source tree's knowledge base.
        want += [f"./usr/share/backcheck/knowledge/data/{p.name}"
                 for p in sorted((self.source / "knowledge" / "data").glob("*.jsonc"))]
        for path in want:
            self.assertIn(path, self.entries, f"{path} missing from {self.deb.name}")
        self.assertTrue(self.entries["./usr/bin/chat-server"].startswith("-rwxr-xr-x"))
        self.assertEqual(self.entries["./var/lib/backcheck/"], "drwx------", "the data directory must be 0700")
        # No operators file (an empty one would be a trap), no build-tree leftovers.
        for path in self.entries:
            self.assertNotIn("operators", path)
            for bad in ("CMakeFiles", "_CPack", "backcheck-dev-paths", ".cpp", ".hpp", str(self.build),
                        str(self.source)):
                self.assertNotIn(bad, path)
        example = self.source / "deploy" / "backcheck.toml"
        if example.exists():
            self.assertIn("./etc/backcheck/backcheck.toml", self.entries)
            self.assertIn("/etc/backcheck/backcheck.toml", (self.control / "conffiles").read_text().split())

    def test_no_build_path_inside_the_binaries(self):
        # An installed binary must not depend on (or even name) the tree it was built in.
        for name in ("chat-server", "backcheck"):
            data = (self.root / "usr" / "bin" / name).read_bytes()
            for tree in {str(self.source), str(self.build)}:
                self.assertFalse(tree.encode() + b"/" in data, f"{name} contains the path {tree}")

    def test_control_and_maintainer_scripts(self):
        info = run(["dpkg-deb", "-I", self.deb], check=True).stdout
        self.assertRegex(info, rf"(?m)^ Version: {re.escape(ARGS.version)}$")
        depends = re.search(r"(?m)^ Depends: (.*)$", info).group(1)
        for lib in ("adduser", "libre2-9", "libsqlite3-0", "libpq5", "libstemmer0d", "libssl3"):
            self.assertIn(lib, depends)
        postinst = (self.control / "postinst").read_text()
        self.assertIn("adduser --system --group --home /var/lib/backcheck", postinst)
        self.assertRegex(postinst, r"install -d -m 0700 -o backcheck -g backcheck /var/lib/backcheck")
        for script in ("postinst", "prerm", "postrm"):
            path = self.control / script
            self.assertTrue(os.access(path, os.X_OK), f"{script} is not executable")
            r = run(["sh", "-n", path])
            self.assertEqual(r.returncode, 0, f"{script}: {r.stderr}")

    # -- the unit --------------------------------------------------------------------------------

    def directives(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for line in self.unit_text.splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                k, v = line.split("=", 1)
                out.setdefault(k.strip(), []).append(v.strip())
        return out

    def test_unit_hardening(self):
        d = self.directives()
        for key, value in [("User", "backcheck"), ("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"),
                           ("ReadWritePaths", "/var/lib/backcheck"), ("PrivateTmp", "yes"), ("ProtectHome", "yes"),
                           ("Restart", "on-failure")]:
            self.assertEqual(d.get(key), [value], f"{key}= in the unit")
        self.assertTrue(d["ExecStart"][0].startswith("/usr/bin/chat-server --data-dir /var/lib/backcheck"))
        for word in d["ExecStart"][0].split():
            if word.startswith("/etc/"):
                self.assertIn("." + word, self.entries, f"ExecStart names {word}, which the package lacks")

    def test_systemd_analyze_verify(self):
        analyze = shutil.which("systemd-analyze")
        if not analyze:
            self.skipTest("no systemd-analyze (the systemd package) on this machine")
        # verify checks that ExecStart's binary exists: point it at the extracted one.
        unit_dir = self.tmp / "unit"
        unit_dir.mkdir(exist_ok=True)
        unit = unit_dir / "backcheck.service"
        unit.write_text(self.unit_text.replace("/usr/bin/chat-server", str(self.root / "usr/bin/chat-server")))
        r = run([analyze, "verify", unit])
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, out)
        # A directive it cannot parse is only a warning ("...service:16: Failed to parse..."): refuse it too.
        self.assertNotIn("backcheck.service", out, out)

    # -- the extracted binaries ------------------------------------------------------------------

    def test_version(self):
        for name in ("chat-server", "backcheck"):
            r = run([self.root / "usr/bin" / name, "--version"])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout.strip(), rf"^{name} {re.escape(ARGS.version)} \(git [0-9a-zA-Z._-]+\)$")

    def test_extracted_server_serves_with_no_kb_or_web_flag(self):
        d = self.directives()
        var = self.tmp / "var"
        # The unit's own command line, pointed at the extracted root: the flags it passes must exist.
        cmd = d["ExecStart"][0].split()
        cmd = [str(self.root / "usr/bin/chat-server")] + [
            str(var) if a == "/var/lib/backcheck" else (str(self.root) + a if a.startswith("/etc/") else a)
            for a in cmd[1:]]
        self.assertFalse(any(a in ("--kb", "--web") or a.startswith(("--kb=", "--web=")) for a in cmd))
        help_text = run([cmd[0], "--help"]).stdout
        self.assertIn(str(self.root / "usr/share/backcheck/knowledge"), help_text)
        self.assertIn(str(self.root / "usr/share/backcheck/web"), help_text)
        proc, port = start_server(cmd + ["--port", "0", "--threads", "1"])
        try:
            status, ctype, page = request(port, "GET", "/")
            self.assertEqual(status, 200)
            self.assertIn("text/html", ctype)
            self.assertIn("widget.js", page)
            self.assertEqual(page, (self.root / "usr/share/backcheck/web/index.html").read_text())
            status, _, js = request(port, "GET", "/widget.js")
            self.assertEqual(status, 200)
            status, _, body = request(port, "POST", "/v1/messages", {"text": "my upper back hurts after rows"})
            self.assertEqual(status, 200, body)
            reply = json.loads(body)
            self.assertTrue(reply.get("text"), reply)
            self.assertEqual(reply.get("intent"), "describe_pain", reply)
        finally:
            code = stop_server(proc)
        err = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
        self.assertEqual(code, 0, err)
        self.assertTrue((var / "backcheck.db").exists(), "the conversation was not kept in --data-dir")

    def test_missing_web_folder_is_refused(self):
        r = run([self.root / "usr/bin/chat-server", "--port", "0", "--store", "memory", "--data-dir",
                 self.tmp / "var-web", "--web", self.tmp / "no-such-folder"], timeout=10)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("no-such-folder", r.stderr)
        self.assertNotIn("listening", r.stdout)


class InstallTreeTest(unittest.TestCase):
    def test_cmake_install_prefix(self):
        with tempfile.TemporaryDirectory(prefix="backcheck-install-") as tmp:
            destdir, prefix = Path(tmp) / "destdir", "/opt/backcheck"
            env = dict(os.environ, DESTDIR=str(destdir))
            r = run([ARGS.cmake, "--install", ARGS.build_dir, "--prefix", prefix], env=env)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            top = sorted(p.name for p in destdir.iterdir())
            self.assertEqual(top, ["opt"], "cmake --install wrote outside its prefix (the .deb's /etc, /lib, /var?)")
            root = destdir / prefix.lstrip("/")
            self.assertEqual(sorted(p.name for p in root.iterdir()), ["bin", "share"])
            self.assertTrue((root / "share/backcheck/knowledge/article.txt").is_file())
            self.assertTrue((root / "share/backcheck/web/index.html").is_file())
            r = run([root / "bin/backcheck", "kb-report"])
            self.assertEqual(r.returncode, 0, r.stderr)
            r = run([root / "bin/backcheck", "--help"])
            self.assertIn(str(root / "share/backcheck/knowledge"), r.stdout)


class MovedBinaryTest(unittest.TestCase):
    def test_moved_binaries_say_what_is_missing(self):
        with tempfile.TemporaryDirectory(prefix="backcheck-moved-") as tmp:
            bin_dir = Path(tmp) / "bin"
            bin_dir.mkdir()
            server = shutil.copy(ARGS.server, bin_dir / "chat-server")
            cli = shutil.copy(ARGS.cli, bin_dir / "backcheck")
            r = run([server, "--port", "0", "--store", "memory", "--data-dir", Path(tmp) / "var"], timeout=10)
            self.assertEqual(r.returncode, 2, f"expected exit 2, got {r.returncode}: {r.stderr}")
            self.assertIn("no knowledge folder found", r.stderr)
            self.assertIn("--kb DIR", r.stderr)
            self.assertNotIn("listening", r.stdout)
            r = run([cli, "kb-report"], timeout=10)
            self.assertEqual(r.returncode, 2, f"expected exit 2, got {r.returncode}: {r.stderr}")
            self.assertIn("no knowledge folder found", r.stderr)
            # Told where they are, they work: nothing else is looked up by a build path.
            r = run([cli, "--kb", Path(ARGS.source_dir) / "knowledge", "kb-report"], timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)


def main() -> None:
    global ARGS
    p = argparse.ArgumentParser()
    for a in ("--build-dir", "--server", "--cli", "--cmake", "--cpack", "--source-dir", "--version"):
        p.add_argument(a, required=True)
    ARGS, rest = p.parse_known_args()
    for tool in ("dpkg-deb",):
        if not shutil.which(tool):
            print(f"packaging.deb: {tool} not found (dpkg)", file=sys.stderr)
            sys.exit(1)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
