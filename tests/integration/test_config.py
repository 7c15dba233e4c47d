"""chat-server --config FILE and --print-config (README "Configuration"): a value from the file takes
effect, a flag on the command line wins over it, an unknown key, a wrong type or a malformed line
stops the server at start-up with FILE:LINE and a non-zero status, a missing file too; the shipped
example deploy/backcheck.toml is accepted (and documents every option with its true default);
--print-config reads back to itself and never shows a secret.

Run: /usr/bin/python3 tests/integration/test_config.py --server build/chat-server
"""

import os
import re
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import harness  # noqa: E402
from harness import REPO, Server, ServerTestCase

EXAMPLE = REPO / "deploy" / "backcheck.toml"
SECRET_ENV = {
    "CHAT_OPERATOR_TOKEN": "op-token-0123456789abcdef",
    "BACKCHECK_WEBHOOK_SECRET": "hook-secret-0123456789abcdef",
    "BACKCHECK_DATABASE_URL": "postgresql://backcheck:db-password-xyz@db.internal/backcheck",
}


def run_server(*args, env=None, timeout=harness.TIMEOUT):
    """chat-server with `args` (for --print-config or a refusal: it exits by itself)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([str(harness.server_binary()), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=full_env, stdin=subprocess.DEVNULL)


def print_config(*args, env=None) -> str:
    r = run_server(*args, "--print-config", env=env)
    if r.returncode != 0:
        raise AssertionError(f"--print-config {args} exited {r.returncode}: {r.stderr}")
    return r.stdout


def settings(toml: str) -> dict:
    """key -> value text of the `key = value` lines (comments skipped)."""
    out = {}
    for line in toml.splitlines():
        m = re.fullmatch(r"([a-z][a-z0-9-]*) = (.*)", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def known_keys(toml: str) -> set:
    """Every key --print-config names, set or not ("# key: not set")."""
    keys = set(settings(toml))
    keys |= {m.group(1) for m in re.finditer(r"^# ([a-z][a-z0-9-]*): ", toml, re.M)}
    return keys


class ConfigFiles(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="backcheck-config-")
        self.addCleanup(self._tmp.cleanup)
        self.dir = Path(self._tmp.name)

    def write(self, text: str, name: str = "backcheck.toml") -> Path:
        path = self.dir / name
        path.write_text(text)
        return path

    def refused(self, text: str, *args) -> tuple:
        """Start a real server on a file expected to be refused; returns (path, status, stderr)."""
        path = self.write(text)
        server = Server("--config", str(path), *args)
        try:
            code, stderr = server.start_expect_failure()
        finally:
            server.cleanup()
        self.assertNotEqual(code, 0, stderr)
        self.assertEqual(code, 2, f"start-up errors exit 2 (as --operators, --bridge-tokens): {stderr}")
        self.assertIn(f"chat-server: --config {path}", stderr)
        return path, code, stderr


class Refusals(ConfigFiles):
    def test_unknown_key_names_the_file_line_and_key(self):
        path, _, stderr = self.refused("# a comment\n\nport = 9000\nmax-txt-chars = 100\n")
        self.assertIn(f"{path}:4:", stderr)
        self.assertIn("max-txt-chars", stderr)
        self.assertIn("unknown key", stderr)

    def test_wrong_type_names_the_file_line_and_key(self):
        for text, line, key in [('host = "h"\nport = "9000"\n', 2, "port"),
                                ("rate = true\n", 1, "rate"),
                                ("store = 1\n", 1, "store"),
                                ("max-text-chars = -5\n", 1, "max-text-chars"),
                                ("max-text-chars = 2.5\n", 1, "max-text-chars"),
                                ('allowed-origins = ["https://a.example", 3]\n', 1, "allowed-origins")]:
            with self.subTest(text=text):
                path, _, stderr = self.refused(text)
                self.assertIn(f"{path}:{line}:", stderr)
                if key != "allowed-origins":
                    self.assertIn(f"'{key}' must be", stderr)

    def test_a_value_the_flag_refuses_names_the_line(self):
        # The option's own checks apply to the file's value, as to the flag's.
        for text, line, key in [("\n\nmax-text-chars = 0\n", 3, "--max-text-chars"),
                                ('store = "mysql"\n', 1, "--store"),
                                ("max-frame-bytes = 20\n", 1, "--max-frame-bytes"),
                                ('emergency-number = "call 112"\n', 1, "--emergency-number")]:
            with self.subTest(text=text):
                path, _, stderr = self.refused(text)
                self.assertIn(f"{path}:{line}:", stderr)
                self.assertIn(key, stderr)

    def test_malformed_lines_name_the_line(self):
        for text, line in [("port 9000\n", 1), ('host = "unclosed\n', 1), ("host = localhost\n", 1),
                           ("[server]\nport = 1\n", 1), ("port = 1 2\n", 1), ("port = 1\nport = 2\n", 2),
                           ("= 3\n", 1), ("max-history-turns = 99999999999999999999\n", 1), ('threads = 1\ntrusted-proxies = ["a",\n"b"]\n', 2), ("port =\n", 1)]:
            with self.subTest(text=text):
                path, _, stderr = self.refused(text)
                self.assertIn(f"{path}:{line}:", stderr)

    def test_missing_file(self):
        path = self.dir / "nowhere.toml"
        server = Server("--config", str(path))
        try:
            code, stderr = server.start_expect_failure()
        finally:
            server.cleanup()
        self.assertEqual(code, 2, stderr)
        self.assertIn(f"chat-server: --config {path}: cannot read it: No such file or directory", stderr)

    def test_secrets_and_actions_cannot_be_set_in_the_file(self):
        for text, word in [('webhook-secret = "0123456789abcdef0"\n', "BACKCHECK_WEBHOOK_SECRET"),
                           ('operator-token = "0123456789abcdef0"\n', "CHAT_OPERATOR_TOKEN"),
                           ('new-operator = "alice"\n', "command line"),
                           ('print-config = true\n', "command line"),
                           ('config = "/etc/other.toml"\n', "command line")]:
            with self.subTest(text=text):
                path, _, stderr = self.refused(text)
                self.assertIn(f"{path}:1:", stderr)
                self.assertIn(word, stderr)


class PrintConfig(ConfigFiles):
    def test_file_then_flags_then_defaults(self):
        defaults = settings(print_config())
        self.assertEqual(defaults["port"], "8080")
        path = self.write('port = 9000\nrate = 2.5\nstore = "memory"\nallowed-origins = ["https://a.example"]\n')
        from_file = settings(print_config("--config", path))
        self.assertEqual(from_file["port"], "9000")
        self.assertEqual(from_file["rate"], "2.5")
        self.assertEqual(from_file["store"], '"memory"')
        self.assertEqual(from_file["allowed-origins"], '["https://a.example"]')
        self.assertEqual(from_file["burst"], defaults["burst"])
        flags = settings(print_config("--config", path, "--port", "9001", "--allowed-origins", "https://b.example,*"))
        self.assertEqual(flags["port"], "9001", "the flag wins over the file")
        self.assertEqual(flags["allowed-origins"], '["https://b.example", "*"]')
        self.assertEqual(flags["rate"], "2.5", "what the command line leaves out still comes from the file")

    def test_round_trip(self):
        path = self.write('host = "0.0.0.0"\nport = 9000\nrate = 0.5\nglobal-rate = 1e4\n'
                          'trusted-proxies = ["10.0.0.2", "10.0.0.3"]\nallowed-origins = "*"\n'
                          "data-dir = 'C:\\odd \"dir\"'\nemergency-number = \"+112\"\nthreads = 1_0\n"
                          + ("review = true\n" if "review" in settings(print_config()) else ""))
        first = print_config("--config", path, "--max-text-chars", "77")
        self.assertIn("max-text-chars = 77", first)
        if "review = true" in path.read_text():
            self.assertIn("review = true", first, "a flag set in the file")
        self.assertIn('data-dir = "C:\\\\odd \\"dir\\""', first)
        printed = self.write(first, "printed.toml")
        second = print_config("--config", printed)
        self.assertEqual(first, second, "--print-config read back with --config prints the same")
        self.assertEqual(print_config("--config", self.write(print_config(), "defaults.toml")), print_config())

    def test_no_secret_is_printed(self):
        out = print_config("--database-url", "postgresql://backcheck:flag-password-abc@db/backcheck",
                           "--escalation-webhook", "https://hooks.example/x", env=SECRET_ENV)
        for secret in [*SECRET_ENV.values(), "db-password-xyz", "flag-password-abc"]:
            self.assertNotIn(secret, out)
        self.assertIn("# database-url: set, not shown", out)
        self.assertIn('escalation-webhook = "https://hooks.example/x"', out)
        # A URL without a password is shown (and reads back).
        self.assertIn('database-url = "postgresql://backcheck@db/backcheck"',
                      print_config("--database-url", "postgresql://backcheck@db/backcheck", env=SECRET_ENV))


class Example(ConfigFiles):
    def test_example_is_accepted(self):
        out = print_config("--config", EXAMPLE)
        self.assertEqual(settings(out)["data-dir"], '"/var/lib/backcheck"')

    def test_example_lists_every_option_with_its_default(self):
        # Each option is there as "# key = value": uncommented, the whole file must be accepted,
        # and where the option has a default, the value shown must be it.
        text = EXAMPLE.read_text()
        shown = {m.group(1) for m in re.finditer(r"^#? ?([a-z][a-z0-9-]*) = ", text, re.M)}
        defaults_toml = print_config()
        self.assertEqual(shown, known_keys(defaults_toml), "the example names exactly the options there are")
        uncommented = self.write(re.sub(r"^# ([a-z][a-z0-9-]*) = ", r"\1 = ", text, flags=re.M), "all.toml")
        everything = settings(print_config("--config", uncommented))
        active = settings(text)
        for key, value in settings(defaults_toml).items():
            if key not in active:
                self.assertEqual(everything[key], value, f"the example's default of {key}")

    def test_server_runs_on_the_example(self):
        # The harness's --data-dir and --port on the command line win over the example's.
        server = Server("--config", str(EXAMPLE)).start()
        try:
            self.assertTrue(server.alive())
        finally:
            server.stop_and_check()
            server.cleanup()


class ValueFromTheFile(ServerTestCase):
    """max-text-chars = 10 in the file: an 11-character message is text_too_long."""
    _tmp = tempfile.TemporaryDirectory(prefix="backcheck-config-")
    _file = Path(_tmp.name) / "limits.toml"
    _file.write_text("# from the file\nmax-text-chars = 10\nmax-history-turns = 7\n")
    server_args = ("--config", str(_file))

    async def test_file_value_takes_effect(self):
        async with self.connect() as c:
            started = await c.start()
            await c.send({"type": "message", "text": "a" * 11, "conversation": started["conversation"]})
            await c.expect_error("text_too_long")
            await c.message("a" * 10, conversation=started["conversation"])


class FlagOverTheFile(ServerTestCase):
    """The same file with --max-text-chars 50 on the command line: 11 characters pass, 51 do not."""
    server_args = ("--config", str(ValueFromTheFile._file), "--max-text-chars", "50")

    async def test_flag_overrides_file(self):
        async with self.connect() as c:
            started = await c.start()
            await c.message("a" * 11, conversation=started["conversation"])
            await c.send({"type": "message", "text": "a" * 51, "conversation": started["conversation"]})
            await c.expect_error("text_too_long")


if __name__ == "__main__":
    harness.main()
