"""Issue 11, defect 7: --data-dir and its mode.

The server used to chmod whatever folder it was given to 0700: an existing folder shared with
others (0755), or the target of a symlink (say /srv/backcheck -> /data), silently lost its mode.
Now: an existing folder's mode is never changed (through a symlink neither); a world-writable
one is refused (exit 2, stderr names the folder and says "world-writable": anybody could swap the
database); a missing one is created 0700. A folder another server uses is refused (issue 14).

Run: /usr/bin/python3 tests/abuse/test_data_dir.py --server build/chat-server
"""

import os
import stat
import tempfile
import unittest
from pathlib import Path

import abuse_common as ab
from abuse_common import harness


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


class DataDirTest(unittest.TestCase):

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="backcheck-datadir-")
        self.addCleanup(self._tmp.cleanup)
        self.root = Path(self._tmp.name)

    def server(self, data_dir) -> ab.AbuseServer:
        s = ab.AbuseServer(data_dir=data_dir, create_data_dir=False)
        self.addCleanup(s.cleanup)
        return s

    def served_and_stopped(self, s: ab.AbuseServer) -> None:
        s.start()
        r = harness.post_json(s, "/v1/messages", {"text": "hi"})
        self.assertEqual(r.status, 200, r)
        s.stop_and_check()

    def make_dir(self, name: str, m: int) -> Path:
        d = self.root / name
        d.mkdir()
        os.chmod(d, m)  # not subject to the umask
        self.assertEqual(mode(d), m)
        return d

    def test_existing_0755_folder_keeps_its_mode(self):
        d = self.make_dir("shared", 0o755)
        self.served_and_stopped(self.server(d))
        self.assertEqual(oct(mode(d)), oct(0o755), "the server changed the mode of an existing folder")
        self.assertTrue((d / "backcheck.db").exists())

    def test_existing_0750_folder_keeps_its_mode(self):
        d = self.make_dir("group", 0o750)
        self.served_and_stopped(self.server(d))
        self.assertEqual(oct(mode(d)), oct(0o750))

    def test_symlink_to_a_folder_leaves_the_target_alone(self):
        target = self.make_dir("target", 0o755)
        link = self.root / "link"
        os.symlink(target, link)
        self.served_and_stopped(self.server(link))
        self.assertTrue(link.is_symlink())
        self.assertEqual(oct(mode(target)), oct(0o755), "the symlink's target changed mode")
        self.assertTrue((target / "backcheck.db").exists())

    def test_world_writable_folder_is_refused(self):
        for m in (0o777, 0o1777, 0o757):
            with self.subTest(mode=oct(m)):
                d = self.make_dir(f"open{m:o}", m)
                code, stderr = self.server(d).start_expect_failure()
                self.assertEqual(code, 2, stderr)
                self.assertIn("world-writable", stderr)
                self.assertIn(str(d), stderr, "stderr must name the folder")
                self.assertEqual(mode(d), m, "a refused folder is left as it was")
                self.assertEqual(list(d.iterdir()), [], "nothing is created in a refused folder")

    def test_symlink_to_a_world_writable_folder_is_refused(self):
        target = self.make_dir("opentarget", 0o777)
        link = self.root / "openlink"
        os.symlink(target, link)
        code, stderr = self.server(link).start_expect_failure()
        self.assertEqual(code, 2, stderr)
        self.assertIn("world-writable", stderr)
        self.assertEqual(mode(target), 0o777)

    def test_missing_folder_is_created_0700(self):
        d = self.root / "new"
        self.served_and_stopped(self.server(d))
        self.assertEqual(oct(mode(d)), oct(0o700))
        nested = self.root / "a" / "b" / "c"
        self.served_and_stopped(self.server(nested))
        self.assertEqual(oct(mode(nested)), oct(0o700))


class DataDirLockTest(unittest.TestCase):
    """Issue 14 item 4: SQLite is for one process. A second server on the same --data-dir is
    refused (exit 1, as any database the server cannot use) with a message naming the process that holds it; once that one stops, the
    directory can be used again."""

    def test_a_second_server_on_the_same_data_dir_is_refused_naming_the_holder(self):
        first = ab.AbuseServer()
        self.addCleanup(first.cleanup)
        first.start()
        second = ab.AbuseServer(data_dir=first.data_dir)
        self.addCleanup(second.cleanup)
        code, stderr = second.start_expect_failure()
        self.assertEqual(code, 1, stderr)
        self.assertIn("in use", stderr)
        self.assertIn(f"pid {first.proc.pid}", stderr)
        # The first one is unharmed, and after it stops the directory is free again.
        self.assertEqual(harness.post_json(first, "/v1/messages", {"text": "hi"}).status, 200)
        first.stop_and_check()
        third = ab.AbuseServer(data_dir=first.data_dir)
        self.addCleanup(third.cleanup)
        third.start()
        third.stop_and_check()


if __name__ == "__main__":
    harness.main()
