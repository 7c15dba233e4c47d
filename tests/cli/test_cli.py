"""The command-line tool does what the README's "The command-line tool" and "Conversation scripts"
sections say, exit codes included (issue 17 item 8):

- `chat` (piped lines), `chat --json` (one JSON reply a line), `chat --record FILE` (a script that
  passes `backcheck test`; an existing file refused, exit 2, unless --force; a path that cannot be
  written refused before the greeting; a write error stops the chat at once, exit 2);
- `test`: 0 all passed, 1 a failure, 2 a missing, unreadable or malformed script or none found;
  `--filter` leaves the other scripts out;
- `eval`: 0, 1 on a failed expectation, 2 on a malformed line; `name` on a one-message line;
- `retrieval-scores`: the threshold and the out-of-scope scores the README quotes;
- `kb-report`: 0 at 100%, 1 below (an uncited sentence added to a copy of knowledge/);
- `kb-report --ids`: exactly the intents and red flags of knowledge/data;
- the README's counts of the conversation suite are true.

Run: /usr/bin/python3 tests/cli/test_cli.py --backcheck build/backcheck
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
from harness import strip_jsonc_comments  # noqa: E402

KB = REPO / "knowledge"
BACKCHECK: Path = REPO / "build" / "backcheck"
TIMEOUT = 60


def run(*args, stdin: str = "", kb: Path | None = KB, preexec=None, user: int | None = None):
    cmd = [str(BACKCHECK)] + (["--kb", str(kb)] if kb else []) + [str(a) for a in args]
    if user is not None:  # as another user (root reads every file, whatever its mode)
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=TIMEOUT, preexec_fn=preexec)


def load_kb_file(kb: Path, name: str):
    return json.loads(strip_jsonc_comments((kb / "data" / name).read_text(encoding="utf-8")))


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="backcheck-cli-"))
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def write(self, name: str, text: str) -> Path:
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path


class ChatTest(TempDirTest):
    def test_piped_lines_are_answered_one_a_line(self):
        r = run("chat", stdin="hi\n\nthanks\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertTrue(lines[0].startswith("assistant: "), "the greeting comes first")
        tags = [l for l in lines if l.startswith("  [intent=")]
        self.assertEqual(len(tags), 2, "one reply per non-blank line:\n" + r.stdout)
        self.assertIn("[intent=greeting state=", tags[0])
        self.assertIn("[intent=thanks state=", tags[1])

    def test_json_is_one_reply_object_a_line(self):
        r = run("chat", "--json", stdin="hi\nmy upper back hurts after rows\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        replies = [json.loads(l) for l in r.stdout.splitlines()]
        self.assertEqual(len(replies), 2, "no greeting line, one object per message")
        for reply in replies:
            for field in ("text", "intent", "state", "urgency", "red_flags", "possible_flags", "quick_replies"):
                self.assertIn(field, reply)
        self.assertEqual(replies[0]["intent"], "greeting")
        self.assertEqual(replies[1]["state"], "screening")

    def test_possible_flag_is_shown_as_asking_about(self):
        r = run("chat", stdin="I noticed some blood\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("  asking about: coughing_blood", r.stdout.splitlines())


class RecordTest(TempDirTest):
    MESSAGES = "my upper back hurts after rows\nI have a fever\n"

    def test_record_writes_a_script_that_passes(self):
        path = self.dir / "case.convo"
        r = run("chat", "--record", path, stdin=self.MESSAGES)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"recorded 2 messages to {path}", r.stderr)
        text = path.read_text(encoding="utf-8")
        self.assertIn("name: case\n", text)
        self.assertEqual(text.count("\n> "), 2)
        self.assertIn("  red flags: fever\n", text)
        t = run("test", path)
        self.assertEqual(t.returncode, 0, t.stdout + t.stderr)
        self.assertIn("1 scripts, 2 messages", t.stdout)

    def test_record_writes_possible_flags(self):
        path = self.dir / "ask.convo"
        r = run("chat", "--record", path, stdin="I noticed some blood\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("  possible flags: coughing_blood\n", path.read_text(encoding="utf-8"))
        self.assertEqual(run("test", path).returncode, 0)

    def test_existing_file_is_refused_without_force(self):
        path = self.write("keep.convo", "precious\n")
        r = run("chat", "--record", path, stdin=self.MESSAGES)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stdout, "", "refused before the greeting")
        self.assertIn("already exists", r.stderr)
        self.assertIn("--force", r.stderr)
        self.assertEqual(path.read_text(encoding="utf-8"), "precious\n", "the file is untouched")

    def test_force_overwrites(self):
        path = self.write("over.convo", "precious\n")
        r = run("chat", "--record", path, "--force", stdin=self.MESSAGES)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("precious", path.read_text(encoding="utf-8"))
        self.assertEqual(run("test", path).returncode, 0)

    def test_unwritable_path_is_refused_before_the_conversation(self):
        path = self.dir / "no-such-folder" / "x.convo"
        r = run("chat", "--record", path, stdin=self.MESSAGES)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stdout, "", "nothing was said: the path is checked first")
        self.assertIn(f"cannot write {path}", r.stderr)

    def test_full_disk_is_refused_before_the_conversation(self):
        r = run("chat", "--record", "/dev/full", "--force", stdin=self.MESSAGES)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stdout, "")
        self.assertIn("cannot write /dev/full", r.stderr)

    def test_write_error_mid_conversation_stops_at_once(self):
        # A file size limit (SIGXFSZ ignored: the write fails with EFBIG) a few messages in.
        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (400, 400))
        path = self.dir / "big.convo"
        r = run("chat", "--record", path, stdin="hi\n" * 20, preexec=limit)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(f"cannot write {path}", r.stderr)
        answered = r.stdout.count("  [intent=")
        self.assertGreater(answered, 0)
        self.assertLess(answered, 20, "the chat stopped at the first write error, not at the end")
        self.assertNotIn("recorded", r.stderr)


class TestCommandTest(TempDirTest):
    def scripts(self) -> Path:
        self.write("suite/alpha.convo", "name: alpha greeting\n> hi\n  intent: greeting\n")
        self.write("suite/beta.convo", "name: beta thanks\n> thanks\n  intent: greeting\n")  # fails
        return self.dir / "suite"

    def test_failure_exits_1(self):
        r = run("test", self.scripts())
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("2 scripts, 2 messages", r.stdout)
        self.assertIn("1 passed, 1 failed", r.stdout)

    def test_filter_leaves_the_other_scripts_out(self):
        suite = self.scripts()
        r = run("test", suite, "--filter", "ALPHA")  # the name, case-insensitively
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("1 scripts, 1 messages", r.stdout)
        self.assertNotIn("beta", r.stdout)
        r = run("test", suite, "--filter", "beta.convo")  # the file
        self.assertEqual(r.returncode, 1)
        self.assertIn("1 scripts, 1 messages", r.stdout)
        r = run("test", suite, "--filter", "gamma")
        self.assertEqual(r.returncode, 2)
        self.assertIn("no script found", r.stderr)

    def test_missing_path_exits_2(self):
        r = run("test", self.dir / "nothing.convo")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("nothing.convo", r.stderr)

    def test_unreadable_script_exits_2(self):
        path = self.write("secret.convo", "> hi\n")
        path.chmod(0)
        user = None
        if os.geteuid() == 0:
            if not shutil.which("setpriv"):
                self.skipTest("root reads any file, and setpriv is missing to run as another user")
            user = 65534  # nobody: it can read the binary and the knowledge base, not the script
            self.dir.chmod(0o755)
        r = run("test", path, user=user)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(f"{path}: cannot be read", r.stderr)

    def test_malformed_script_exits_2_naming_file_and_line(self):
        path = self.write("bad.convo", "name: bad\n> hi\n  intnet: greeting\n")
        r = run("test", path)
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"{path}:3:", r.stderr)

    def test_labelled_one_message_line_may_have_a_name(self):
        path = self.write("one.jsonl", '{"name": "says hello", "text": "hi", "intent": "greeting"}\n')
        r = run("test", path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        path.write_text('{"name": "says hello", "text": "hi", "intent": "thanks"}\n', encoding="utf-8")
        r = run("test", path)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"FAIL says hello ({path})", r.stdout, "the failure is reported under its name")

    def test_suite_counts_in_the_readme_are_true(self):
        readme = (REPO / "README.md").read_text(encoding="utf-8")
        m = re.search(r"\(over (\d+) scripts and (\d+) messages\)", readme)
        self.assertIsNotNone(m, "README states the suite's size as '(over N scripts and M messages)'")
        r = run("test", REPO / "tests" / "conversations")
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr)
        counted = re.search(r"^(\d+) scripts, (\d+) messages,", r.stdout, re.M)
        scripts, messages = int(counted[1]), int(counted[2])
        self.assertGreater(scripts, int(m[1]), "README: over N scripts")
        self.assertGreater(messages, int(m[2]), "README: over M messages")
        # "Over" stays true as scripts are added; far over, it no longer says how big the suite is.
        self.assertLess(scripts, int(m[1]) * 1.25, f"{scripts} scripts: update the README's count")
        self.assertLess(messages, int(m[2]) * 1.25, f"{messages} messages: update the README's count")


class EvalTest(TempDirTest):
    def test_dev_set_passes(self):
        r = run("eval", REPO / "tests" / "eval" / "dev.jsonl")
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertRegex(r.stdout, r"\d+ conversations, \d+ messages, \d+ expectations, 0 failed")

    def test_failed_expectation_exits_1_and_is_printed(self):
        path = self.write("x.jsonl", '{"text": "hi", "intent": "greeting"}\n'
                                     '{"name": "wrong", "text": "thanks", "intent": "goodbye"}\n')
        r = run("eval", path)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn('line 2 (wrong), message 1 "thanks": intent: expected goodbye, got thanks', r.stdout)
        self.assertIn("2 conversations, 2 messages, 2 expectations, 1 failed", r.stdout)

    def test_malformed_line_exits_2(self):
        path = self.write("x.jsonl", '{"text": "hi", "intnet": "greeting"}\n')
        r = run("eval", path)
        self.assertEqual(r.returncode, 2)
        self.assertIn("x.jsonl:1: unknown field 'intnet'", r.stderr)

    def test_name_on_a_one_message_line(self):
        # tests/eval/README.md: `name` on any line, a one-message one too.
        path = self.write("x.jsonl", '{"name": "a greeting", "text": "hi", "intent": "thanks"}\n')
        r = run("eval", path)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("line 1 (a greeting), message 1", r.stdout)
        path = self.write("y.jsonl", '{"name": 3, "text": "hi"}\n')
        self.assertIn("'name' must be a string", run("eval", path).stderr)
        path = self.write("z.jsonl", '{"turns": [{"text": "hi", "name": "x"}]}\n')
        self.assertIn("unknown field 'name'", run("eval", path).stderr, "a message of `turns` has no name")

    def test_missing_file_exits_2(self):
        self.assertEqual(run("eval", self.dir / "none.jsonl").returncode, 2)


class RetrievalScoresTest(unittest.TestCase):
    def test_scores_of_the_dev_set(self):
        dev = REPO / "tests" / "eval" / "dev.jsonl"
        r = run("retrieval-scores", dev)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        threshold = load_kb_file(KB, "language.jsonc")["retrieval"]["min_score"]
        self.assertEqual(float(lines[0].split()[1]), threshold)
        messages = []
        for line in dev.read_text(encoding="utf-8").splitlines():
            if line.strip():
                conv = json.loads(line)
                messages += conv.get("turns", [conv])
        rows = [re.match(r"^\s*(\d+\.\d\d)  (\S+)\s+(.*)$", l) for l in lines[1:]]
        self.assertTrue(all(rows), "each line: score, intent, text")
        self.assertEqual([m[3] for m in rows], [t["text"] for t in messages], "one line per labelled message")
        readme = (REPO / "README.md").read_text(encoding="utf-8")
        claim = re.search(r"The threshold is (\d+\.\d)", readme)
        self.assertIsNotNone(claim)
        self.assertEqual(float(claim[1]), threshold, "README's threshold is language.jsonc's")
        scores = {}
        for m in rows:
            scores.setdefault(m[2], []).append(float(m[1]))
        self.assertTrue(scores.get("out_of_scope"))
        self.assertEqual(set(scores["out_of_scope"]), {0.0}, "README: its out-of-scope messages score 0")
        top = re.search(r"other messages up to (\d+\.\d)", readme)
        self.assertIsNotNone(top)
        self.assertAlmostEqual(max(max(v) for v in scores.values()), float(top[1]), delta=0.05)


class KbReportTest(TempDirTest):
    def test_complete_coverage_exits_0(self):
        r = run("kb-report")
        self.assertEqual(r.returncode, 0, r.stdout[-2000:])
        self.assertRegex(r.stdout, r"coverage: (\d+)/\1 sentences cited by a topic \(100%\)")
        self.assertNotIn("[NOT CITED]", r.stdout)

    def test_an_uncited_sentence_exits_1(self):
        kb = self.dir / "knowledge"
        shutil.copytree(KB, kb)
        article = kb / "article.txt"
        sentence = "Zebras rarely lift weights on Tuesdays."
        article.write_text(article.read_text(encoding="utf-8").rstrip("\n") + " " + sentence + "\n",
                           encoding="utf-8")
        r = run("kb-report", kb=kb)
        self.assertEqual(r.returncode, 1, r.stdout[-2000:] + r.stderr)
        self.assertIn(f"[NOT CITED] {sentence}", r.stdout)
        m = re.search(r"coverage: (\d+)/(\d+) sentences cited by a topic \((\d+)%\)", r.stdout)
        self.assertEqual(int(m[1]) + 1, int(m[2]))

    def test_ids_are_the_knowledge_base(self):
        intents = load_kb_file(KB, "intents.jsonc")["intents"]
        flags = load_kb_file(KB, "red_flags.jsonc")["flags"]
        r = run("kb-report", "--ids")
        self.assertEqual(r.returncode, 0, r.stderr)
        intent_part, flag_part = r.stdout.split("\n\n")
        rows = lambda part: [l.split(None, 3) for l in part.splitlines() if l and not l.startswith("#")][1:]
        self.assertEqual([tuple(row) for row in rows(intent_part)],
                         [(i["id"], i.get("kind", "question"), i.get("as", i["id"])) for i in intents])
        self.assertEqual([tuple(row) for row in rows(flag_part)],
                         [(f["id"], f["level"], "yes" if "ask" in f else "no", f["name"]) for f in flags])

    def test_ids_follow_the_kb_flag(self):
        kb = self.dir / "knowledge"
        shutil.copytree(KB, kb)
        data = kb / "data" / "red_flags.jsonc"
        data.write_text(data.read_text(encoding="utf-8").replace('"name": "pain that began with a fall',
                                                                 '"name": "pain since a fall'), encoding="utf-8")
        r = run("kb-report", "--ids", kb=kb)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"\ntrauma +urgent +no +pain since a fall, crash or blow\n")


class ReadmeTest(unittest.TestCase):
    def test_documented_commands_and_flags_exist(self):
        """Every `build/backcheck SUBCOMMAND --flag` written at the start of a README line is a
        subcommand with that flag in its --help (the flags before a subcommand: the top level's)."""
        readme = (REPO / "README.md").read_text(encoding="utf-8")
        lines = re.findall(r"^(?:\S+=\S+ )?build/backcheck (.*)$", readme, re.M)
        commands = {}
        for line in lines:
            usage = line.split("  ")[0]  # the description starts after two spaces
            words = [w for w in usage.split() if not w.startswith(("-", "[")) and w.upper() != w]
            sub = words[0] if words and not usage.startswith("-") else ""  # "--kb DIR ...": the top level
            flags = re.findall(r"(?<![\w-])--[a-z][a-z-]*", usage)
            commands.setdefault(sub, set()).update(flags)
        self.assertTrue({"chat", "test", "kb-report", "eval", "retrieval-scores"} <= commands.keys(), commands)
        self.assertIn("--ids", commands["kb-report"], "the README points to kb-report --ids")
        self.assertIn("--force", commands["chat"])
        top = run("--help", kb=None).stdout
        for sub, flags in commands.items():
            if sub:
                self.assertRegex(top, rf"\n  {sub} ", f"backcheck has a subcommand {sub}")
            r = run(*([sub] if sub else []), "--help", kb=None)
            self.assertEqual(r.returncode, 0, f"backcheck {sub} --help: {r.stderr}")
            for flag in flags:
                self.assertRegex(r.stdout, rf"(?<![\w-]){flag}(?![\w-])", f"backcheck {sub} --help has {flag}")


def main() -> None:
    global BACKCHECK
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--backcheck", default=os.environ.get("BACKCHECK_CLI"))
    args, rest = parser.parse_known_args()
    if args.backcheck:
        BACKCHECK = Path(args.backcheck).resolve()
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)


if __name__ == "__main__":
    main()
