"""The conversation-script runner (`backcheck test`), as a user meets it: the suite passes
in-process and against a live server, a wrong expectation is shown as a diff with exit status 1,
a script with a syntax error is refused with its file and line, and --junit writes JUnit XML."""
import os
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SUITE = [os.path.join(ROOT, "tests", "conversations"), os.path.join(ROOT, "tests", "eval", "dev.jsonl")]
BROKEN = os.path.join(ROOT, "tests", "fixtures", "broken.convo")
BAD_SYNTAX = os.path.join(ROOT, "tests", "fixtures", "bad_syntax.convo")


def backcheck(*args):
    # build/backcheck sits next to the server binary the harness was given (--server).
    tool = harness.server_binary().parent / "backcheck"
    return subprocess.run([str(tool), *args], capture_output=True, text=True, timeout=300)


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

    async def test_unreachable_server_fails_clearly(self):
        r = backcheck("test", BROKEN, "--url", "ws://127.0.0.1:1/v1/chat")
        self.assertEqual(r.returncode, 1)
        self.assertIn("connection to ws://127.0.0.1:1/v1/chat failed", r.stdout)


if __name__ == "__main__":
    harness.main()
