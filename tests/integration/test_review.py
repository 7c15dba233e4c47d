"""What people asked that it could not answer (issue 17 item 5): with `--review` the server keeps
the messages whose reply was the fallback (or that only retrieval answered), and
`backcheck review --data-dir DIR` (or `--database-url`) lists them grouped by similar wording, most
frequent first; `--json` is one JSON document; `--delete` empties it. Without `--review` nothing is
kept.

The backcheck binary is the one beside --server (or BACKCHECK_CLI).

Run: /usr/bin/python3 tests/integration/test_review.py --server build/chat-server
"""

import json
import os
import subprocess
import sys
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import harness  # noqa: E402

# Two alike, one different: none of them means anything to the knowledge base.
SIMILAR = ["zorblax quintessential flimflam", "zorblax quintessential flimflam again"]
DIFFERENT = "wibble wobble snorkel"
NORMAL = "what should I tell the doctor?"


def backcheck() -> Path:
    return Path(os.environ.get("BACKCHECK_CLI") or harness.server_binary().parent / "backcheck")


class ReviewTest(unittest.IsolatedAsyncioTestCase):
    def make_server(self, *args: str) -> harness.Server:
        server = harness.Server(*args)
        self.addCleanup(server.cleanup)
        server.start()
        return server

    def review(self, server: harness.Server, *args: str) -> subprocess.CompletedProcess:
        where = (["--database-url", server.database_url] if server.store == "postgres"
                 else ["--data-dir", str(server.data_dir)])
        return subprocess.run([str(backcheck()), "review", *where, *args], capture_output=True, text=True,
                              timeout=60)

    async def converse(self, server: harness.Server) -> None:
        client = await harness.open_client(server)
        try:
            cid = (await client.start())["conversation"]
            for text in [DIFFERENT, SIMILAR[0], NORMAL, SIMILAR[1]]:  # the rarer one first
                reply = await client.message(text, conversation=cid)
                if text != NORMAL:
                    self.assertEqual(reply["intent"], "fallback", text)
                else:
                    self.assertNotEqual(reply["intent"], "fallback")
        finally:
            await client.close()

    async def test_review_lists_groups_then_delete_empties_it(self):
        server = self.make_server("--review", "--review-days", "7")
        await self.converse(server)
        # Read while the server runs (SQLite: read-only beside it).
        table = self.review(server)
        self.assertEqual(table.returncode, 0, table.stderr)
        self.assertIn("3 messages in 2 groups", table.stdout)
        rows = [line for line in table.stdout.splitlines() if line.strip()[:1].isdigit() and '"' in line]
        self.assertEqual(len(rows), 2, table.stdout)
        self.assertTrue(rows[0].split()[0] == "2" and SIMILAR[0] in rows[0], table.stdout)
        self.assertTrue(rows[1].split()[0] == "1" and DIFFERENT in rows[1], table.stdout)
        self.assertNotIn(NORMAL, table.stdout)

        listed = self.review(server, "--json")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        doc = json.loads(listed.stdout)
        self.assertEqual(doc["messages"], 3)
        self.assertEqual([g["count"] for g in doc["groups"]], [2, 1])
        self.assertEqual(set(doc["groups"][0]["examples"]), set(SIMILAR))
        self.assertEqual(doc["groups"][1]["examples"], [DIFFERENT])
        self.assertEqual(doc["groups"][0]["intents"], {"fallback": 2})
        self.assertLessEqual(doc["groups"][0]["first_ms"], doc["groups"][0]["last_ms"])
        self.assertNotIn(NORMAL, listed.stdout)

        # --before a date long past deletes nothing; --delete alone deletes everything.
        kept = self.review(server, "--delete", "--before", "2000-01-01")
        self.assertEqual(kept.returncode, 0, kept.stderr)
        self.assertIn("deleted 0", kept.stdout)
        deleted = self.review(server, "--delete")
        self.assertEqual(deleted.returncode, 0, deleted.stderr)
        self.assertIn("deleted 3", deleted.stdout)
        after = self.review(server, "--json")
        self.assertEqual(json.loads(after.stdout), {"messages": 0, "groups": []})
        server.stop_and_check()

    async def test_without_review_nothing_is_kept(self):
        server = self.make_server()
        await self.converse(server)
        listed = self.review(server, "--json")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertEqual(json.loads(listed.stdout), {"messages": 0, "groups": []})
        server.stop_and_check()

    def test_a_folder_without_a_database_is_refused(self):
        empty = harness.Server()
        self.addCleanup(empty.cleanup)
        r = subprocess.run([str(backcheck()), "review", "--data-dir", str(empty.data_dir)], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 2)
        self.assertIn("no such database", r.stderr)


if __name__ == "__main__":
    harness.main()
