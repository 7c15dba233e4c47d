"""Durability of the conversation store (SPEC sections 5-7): `--store sqlite` (the default) keeps
conversations, turns and escalations in <data-dir>/backcheck.db (SQLite, WAL mode), so a
conversation resumes with its whole history after a clean restart (SIGTERM) and after SIGKILL.
A corrupt database or one with a newer schema is refused, never reset; the data dir is created
0700; `--store memory` forgets everything on restart.

Every reply a client has received must be in the database by the time it left the server, so the
kill -9 tests kill the server right after a reply arrives (or while replies are still coming) and
check that every reply seen is in the resumed history, with its seq and in order.

Run: /usr/bin/python3 tests/integration/test_durability.py --server build/chat-server
"""

import asyncio
import os
import signal
import sqlite3
import stat
import time
import unittest

import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import harness  # noqa: E402
from harness import ConnectionClosed, Server  # noqa: E402

PAIN = "My upper back hurts after my workout yesterday"

# Scripts whose last state is known to differ: escalated (urgent / emergency), screening,
# advising, and plain small talk.
SCRIPTS = [
    [PAIN, "yes", "What is DOMS?"],                       # urgent, escalated
    ["hi", "What is DOMS?"],                              # none
    ["I have chest pain"],                                # emergency
    [PAIN, "no", "no"],                                   # screening -> advising
    ["What is DOMS?", "I'm short of breath", "thanks"],   # emergency in the middle
    [PAIN],                                               # screening, one turn
]


def pairs_to_history(pairs) -> list[dict]:
    """[(user text, reply frame)] -> the history a resume must return."""
    out = []
    for text, reply in pairs:
        out.append({"role": "user", "text": text, "seq": reply["seq"]})
        out.append({"role": "assistant", "text": reply["text"], "seq": reply["seq"]})
    return out


def plain_history(started: dict) -> list[dict]:
    return [{k: turn.get(k) for k in ("role", "text", "seq")} for turn in started["history"]]


def open_db_readonly(path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=harness.TIMEOUT)


class DurabilityTestCase(unittest.IsolatedAsyncioTestCase):

    def make_server(self, *args, start=True, **kw) -> Server:
        server = Server(*args, **kw)
        self.addCleanup(server.cleanup)
        return server.start() if start else server

    async def stop_async(self, server: Server, sig=signal.SIGTERM) -> None:
        """Clean stop without blocking the event loop (clients answer the close frames)."""
        code = await asyncio.to_thread(server.stop, sig, harness.SHUTDOWN_TIMEOUT + 1)
        self.assertEqual(code, 0, f"exit status {code} after {sig!r}\n{server.stderr_tail()}")

    def kill9(self, server: Server) -> None:
        code = server.kill9()
        self.assertEqual(code, -signal.SIGKILL, f"server was not killed by SIGKILL (status {code})")

    async def resume_and_check(self, server: Server, cid: str, pairs, state=None, urgency=None,
                               client=None) -> dict:
        """Resume `cid` and assert resumed=true and exactly the history of `pairs`."""
        async def go(c):
            started = await c.start(resume=cid)
            self.assertEqual(started["conversation"], cid)
            self.assertIs(started["resumed"], True, started)
            self.assertEqual(plain_history(started), pairs_to_history(pairs),
                             f"history of {cid} after restart")
            # Each restored reply has its quick replies and "From the article" sources again.
            replies = [t for t in started["history"] if t["role"] == "assistant"]
            for entry, (_, reply) in zip(replies, pairs):
                self.assertEqual((entry.get("quick_replies", []), entry.get("sources", [])),
                                 (reply["quick_replies"], reply["sources"]), f"turn {reply['seq']} of {cid}")
            if pairs:
                last = pairs[-1][1]
                self.assertEqual((started["state"], started["urgency"]),
                                 (last["state"], last["urgency"]),
                                 f"state/urgency of {cid} after restart")
            if state is not None:
                self.assertEqual(started["state"], state)
            if urgency is not None:
                self.assertEqual(started["urgency"], urgency)
            return started
        if client is not None:
            return await go(client)
        async with harness.connect(server) as c:
            return await go(c)

    def post(self, server, obj) -> dict:
        r = harness.post_json(server, "/v1/messages", obj)
        self.assertEqual(r.status, 200, r)
        return r.json()


async def run_scripts_on_connection(client, scripts) -> list[tuple[str, list]]:
    """Start one conversation per script on `client` and play them round-robin (one message of
    each conversation in turn, each answered before the next is sent).
    Returns [(conversation id, [(text, reply)])]."""
    convs = []
    for script in scripts:
        convs.append(((await client.start())["conversation"], []))
    for step in range(max(len(s) for s in scripts)):
        for (cid, pairs), script in zip(convs, scripts):
            if step < len(script):
                reply = await client.message(script[step], conversation=cid)
                assert reply["seq"] == step + 1, reply
                pairs.append((script[step], reply))
    return convs


class RestartTest(DurabilityTestCase):

    async def play_everything(self, server):
        """Several conversations on several connections at once, plus one over HTTP."""
        clients = [await harness.open_client(server) for _ in range(3)]
        groups = [SCRIPTS[0:2], SCRIPTS[2:4], SCRIPTS[4:6]]
        results = await asyncio.gather(
            *(run_scripts_on_connection(c, g) for c, g in zip(clients, groups)))
        convs = [conv for group in results for conv in group]
        http_first = await asyncio.to_thread(self.post, server, {"text": "hi"})
        http_cid = http_first["conversation"]
        http_second = await asyncio.to_thread(self.post, server,
                                              {"text": "I have chest pain", "conversation": http_cid})
        self.assertEqual(http_second["seq"], 2)
        convs.append((http_cid, [("hi", http_first), ("I have chest pain", http_second)]))
        return clients, convs

    async def check_all_resumed(self, server, convs):
        # Resume on as many connections as there were, each carrying a few conversations.
        async def resume_group(group):
            async with harness.connect(server) as c:
                for cid, pairs in group:
                    await self.resume_and_check(server, cid, pairs, client=c)
        await asyncio.gather(*(resume_group(convs[i::3]) for i in range(3)))

    async def test_resume_after_sigterm_restart(self):
        server = self.make_server()
        clients, convs = await self.play_everything(server)
        try:
            await self.stop_async(server)
        finally:
            for c in clients:
                await c.close()
        server.restart()
        await self.check_all_resumed(server, convs)
        # The conversations go on where they were.
        async with harness.connect(server) as c:
            for cid, pairs in convs:
                r = await c.message("What is DOMS?", conversation=cid)
                self.assertEqual((r["seq"], r["urgency"], r["escalated"]),
                                 (len(pairs) + 1, pairs[-1][1]["urgency"], False))
        await self.stop_async(server)

    async def test_resume_after_kill9_right_after_last_reply(self):
        server = self.make_server()
        clients, convs = await self.play_everything(server)
        # The HTTP reply was the last one received: kill at once, no clean shutdown.
        self.kill9(server)
        for c in clients:
            await c.close()
        server.restart()
        await self.check_all_resumed(server, convs)
        # Once more: continue each conversation, kill -9 right after the last reply again.
        async with harness.connect(server) as c:
            for cid, pairs in convs:
                r = await c.message("thanks", conversation=cid)
                self.assertEqual(r["seq"], len(pairs) + 1)
                pairs.append(("thanks", r))
            self.kill9(server)
        server.restart()
        await self.check_all_resumed(server, convs)
        # A conversation created over HTTP goes on over HTTP after the restart.
        http_cid, http_pairs = convs[-1]
        again = await asyncio.to_thread(self.post, server, {"text": "What is DOMS?",
                                                            "conversation": http_cid})
        self.assertEqual(again["seq"], len(http_pairs) + 1)
        self.assertEqual(again["urgency"], "emergency")
        await self.stop_async(server)

    async def test_kill9_while_replies_are_in_flight(self):
        """Three connections keep several messages in flight each; SIGKILL as soon as one of
        them has seen a number of replies. Every reply any client saw must be in the history;
        the history may go further (turns answered but not delivered), but only with the
        messages sent, in order."""
        server = self.make_server("--rate", "100000", "--burst", "100000", threads=4)
        texts = ["hi", "What is DOMS?", PAIN, "no", "no", "thanks", "What is DOMS?",
                 "How long does it last?", "hi", "thanks", "What is DOMS?", "bye"]
        total, window, kill_after = 48, 6, 20
        clients = [await harness.open_client(server) for _ in range(3)]
        cids = []
        seen: dict[str, list] = {}
        sent: dict[str, int] = {}
        killed = asyncio.Event()

        def text(k):
            return texts[k % len(texts)]

        async def run(c, cid, kill):
            sent[cid], seen[cid] = 0, []
            while len(seen[cid]) < total:
                try:
                    while sent[cid] < total and sent[cid] - len(seen[cid]) < window:
                        await c.send({"type": "message", "conversation": cid,
                                      "text": text(sent[cid]), "ref": str(sent[cid])})
                        sent[cid] += 1
                    frame = await c.recv()
                except ConnectionClosed:
                    return
                self.assertEqual(frame["type"], "reply", frame)
                self.assertEqual(frame["conversation"], cid)
                seen[cid].append(frame)
                if kill and len(seen[cid]) == kill_after:
                    server.proc.send_signal(signal.SIGKILL)  # right now, from the event loop
                    killed.set()

        try:
            for c in clients:
                cids.append((await c.start())["conversation"])
            await asyncio.gather(*(run(c, cid, i == 0)
                                   for i, (c, cid) in enumerate(zip(clients, cids))))
        finally:
            for c in clients:
                await c.close()
        self.assertTrue(killed.is_set())
        self.kill9(server)
        server.restart()
        async with harness.connect(server) as c:
            for cid in cids:
                replies = seen[cid]
                self.assertEqual([r["seq"] for r in replies], list(range(1, len(replies) + 1)),
                                 "replies before the kill are a gapless prefix")
                self.assertEqual([r.get("ref") for r in replies],
                                 [str(k) for k in range(len(replies))])
                started = await c.start(resume=cid)
                self.assertIs(started["resumed"], True)
                hist = plain_history(started)
                self.assertEqual(len(hist) % 2, 0, hist)
                n = len(hist) // 2
                self.assertGreaterEqual(n, len(replies),
                                        f"a reply the client received is missing after kill -9: "
                                        f"saw {len(replies)}, history has {n} turns")
                self.assertLessEqual(n, sent[cid])
                self.assertEqual(hist[:2 * len(replies)],
                                 pairs_to_history((text(k), r) for k, r in enumerate(replies)))
                for k in range(len(replies), n):  # answered, not delivered: still the right turn
                    self.assertEqual(hist[2 * k], {"role": "user", "text": text(k), "seq": k + 1})
                    self.assertEqual((hist[2 * k + 1]["role"], hist[2 * k + 1]["seq"]),
                                     ("assistant", k + 1))
                r = await c.message("hi", conversation=cid)
                self.assertEqual(r["seq"], n + 1, "the conversation continues after its history")
        await self.stop_async(server)

    async def test_state_and_urgency_preserved(self):
        server = self.make_server()
        async with harness.connect(server) as c:
            urgent = (await c.start())["conversation"]
            u = [(t, await c.message(t, conversation=urgent)) for t in [PAIN, "yes"]]
            emergency = (await c.start())["conversation"]
            e = [(t, await c.message(t, conversation=emergency))
                 for t in ["I have chest pain", "What is DOMS?"]]
            calm = (await c.start())["conversation"]
            n = [(t, await c.message(t, conversation=calm)) for t in ["hi"]]
        self.assertEqual((u[-1][1]["urgency"], u[-1][1]["escalated"]), ("urgent", True))
        self.assertEqual(e[0][1]["urgency"], "emergency")
        self.assertIs(e[0][1]["escalated"], True)
        self.assertEqual(n[-1][1]["urgency"], "none")
        self.kill9(server)

        server.restart()
        await self.resume_and_check(server, urgent, u, state="escalated", urgency="urgent")
        await self.resume_and_check(server, emergency, e, urgency="emergency")
        await self.resume_and_check(server, calm, n, urgency="none")
        async with harness.connect(server) as c:
            # Urgency never goes down, restart or not; a message that raises nothing is no
            # escalation; one that raises it still is.
            for cid, pairs in ((urgent, u), (emergency, e), (calm, n)):
                await c.start(resume=cid)
                r = await c.message("What is DOMS?", conversation=cid)
                self.assertEqual((r["seq"], r["urgency"], r["escalated"]),
                                 (len(pairs) + 1, pairs[-1][1]["urgency"], False))
                pairs.append(("What is DOMS?", r))
            r = await c.message("I'm short of breath", conversation=urgent)
            self.assertEqual((r["urgency"], r["escalated"]), ("emergency", True))
            u.append(("I'm short of breath", r))
        await self.stop_async(server)

        server.restart()
        await self.resume_and_check(server, urgent, u, urgency="emergency")
        await self.resume_and_check(server, emergency, e, urgency="emergency")
        await self.resume_and_check(server, calm, n, urgency="none")
        await self.stop_async(server)

    async def test_burst_of_connections_all_stored(self):
        """20 connections x 5 messages at once, kill -9, restart: every conversation resumes
        whole. Then, after a clean stop, the database file is SQLite in WAL mode."""
        server = self.make_server(threads=4)
        texts = ["hi", "What is DOMS?", PAIN, "no", "thanks"]

        async def one(i):
            async with harness.connect(server) as c:
                cid = (await c.start())["conversation"]
                await c.send_batch([{"type": "message", "conversation": cid, "text": t,
                                     "ref": f"{i}-{k}"} for k, t in enumerate(texts)])
                got, frames = await harness.collect_replies(c, [f"{i}-{k}" for k in range(len(texts))])
                replies = [got[f"{i}-{k}"] for k in range(len(texts))]
                for r in replies:
                    self.assertEqual(r["type"], "reply", r)
                self.assertEqual([r["seq"] for r in replies], [1, 2, 3, 4, 5])
                return cid, list(zip(texts, replies))

        convs = await asyncio.gather(*(one(i) for i in range(20)))
        self.assertEqual(len({cid for cid, _ in convs}), 20)
        self.kill9(server)

        server.restart()

        async def check(cid, pairs):
            await self.resume_and_check(server, cid, pairs)
        await asyncio.gather(*(check(cid, pairs) for cid, pairs in convs))
        await self.stop_async(server)
        if server.store != "sqlite":
            return  # what follows reads the SQLite file

        db = server.db_path
        self.assertTrue(db.is_file(), f"{db} missing")
        with open(db, "rb") as f:
            header = f.read(100)
        self.assertEqual(header[:16], b"SQLite format 3\x00", "not an SQLite database file")
        self.assertEqual((header[18], header[19]), (2, 2), "database header is not in WAL mode")
        conn = open_db_readonly(db)
        try:
            self.assertEqual(conn.execute("PRAGMA journal_mode").fetchone()[0].lower(), "wal")
            self.assertEqual(conn.execute("PRAGMA integrity_check").fetchone()[0], "ok")
            tables = {name: sql for name, sql in conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'table'")}
            # Best effort: if a turns table with a conversation column can be recognised, it holds
            # exactly these 20 conversations (the resumes above are the real check).
            for name in tables:
                if "turn" not in name.lower():
                    continue
                cols = [row[1] for row in conn.execute(f'PRAGMA table_info("{name}")')]
                conv_cols = [col for col in cols if col.lower() in ("conversation", "conversation_id",
                                                                    "conv", "conv_id")]
                if len(conv_cols) == 1:
                    count = conn.execute(
                        f'SELECT COUNT(DISTINCT "{conv_cols[0]}") FROM "{name}"').fetchone()[0]
                    self.assertEqual(count, 20, f"distinct conversations in {name}.{conv_cols[0]}")
        finally:
            conn.close()


class StoreTest(DurabilityTestCase):

    @unittest.skipIf(harness.STORE != "sqlite", "about the SQLite file in --data-dir")
    async def test_data_dir_created_0700(self):
        server = self.make_server(create_data_dir=False, start=False)
        self.assertFalse(server.data_dir.exists())
        old = os.umask(0o022)  # the usual umask: the server must not rely on it
        try:
            server.start()
        finally:
            os.umask(old)
        async with harness.connect(server) as c:
            await c.message("hi")
        st = os.stat(server.data_dir)
        self.assertTrue(stat.S_ISDIR(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o700,
                         f"data dir mode {oct(stat.S_IMODE(st.st_mode))}, expected 0o700")
        self.assertTrue(server.db_path.is_file(), f"{server.db_path} missing")
        await self.stop_async(server)

    async def test_memory_store_forgets_on_restart(self):
        server = self.make_server("--store", "memory")
        async with harness.connect(server) as c:
            cid = (await c.start())["conversation"]
            pairs = [(t, await c.message(t, conversation=cid)) for t in ["hi", "I have chest pain"]]
        # Within one run it resumes as usual.
        await self.resume_and_check(server, cid, pairs)
        await self.stop_async(server)
        server.restart()
        async with harness.connect(server) as c:
            await c.send({"type": "start", "resume": cid})
            await c.expect_error("unknown_conversation")
            # The server works, with a new conversation.
            r = await c.message("hi")
            self.assertEqual(r["seq"], 1)
        await self.stop_async(server)

    async def test_explicit_sqlite_store_keeps_conversations(self):
        server = self.make_server("--store", "sqlite")
        async with harness.connect(server) as c:
            cid = (await c.start())["conversation"]
            pairs = [(t, await c.message(t, conversation=cid)) for t in ["hi", "What is DOMS?"]]
        await self.stop_async(server)
        server.restart()
        await self.resume_and_check(server, cid, pairs)
        await self.stop_async(server)

    def assert_refused_corrupt(self, content: bytes):
        server = self.make_server(start=False)
        server.db_path.write_bytes(content)
        code, err = server.start_expect_failure()
        self.assertNotEqual(code, 0, f"exit status 0 with a corrupt database\n{err}")
        self.assertGreater(code, 0, f"server died of signal {-code} instead of exiting\n{err}")
        self.assertTrue(str(server.db_path) in err or os.path.realpath(server.db_path) in err,
                        f"stderr does not name {server.db_path}:\n{err}")
        self.assertRegex(err.lower(), r"not a (valid )?(sqlite )?database",
                         f"stderr does not say the file is not a valid database:\n{err}")
        self.assertEqual(server.db_path.read_bytes(), content, "the corrupt database was changed")
        return server

    @unittest.skipIf(harness.STORE != "sqlite", "about the SQLite file in --data-dir")
    async def test_corrupt_database_random_bytes_refused(self):
        server = self.assert_refused_corrupt(os.urandom(4096))
        # Refused again, still unchanged: never a silent reset.
        code, err = server.start_expect_failure()
        self.assertGreater(code, 0, err)

    @unittest.skipIf(harness.STORE != "sqlite", "about the SQLite file in --data-dir")
    async def test_corrupt_database_text_refused(self):
        self.assert_refused_corrupt(b"this is not a database")

    @unittest.skipIf(harness.STORE != "sqlite", "about the SQLite file in --data-dir")
    async def test_newer_schema_version_refused(self):
        server = self.make_server()
        async with harness.connect(server) as c:
            cid = (await c.start())["conversation"]
            pairs = [(t, await c.message(t, conversation=cid)) for t in ["hi", "I have chest pain"]]
        await self.stop_async(server)

        conn = sqlite3.connect(server.db_path, timeout=harness.TIMEOUT)
        try:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            self.assertIn("schema_migrations", names)
            with conn:
                conn.execute("INSERT INTO schema_migrations(version, applied_at) VALUES (999, 0)")
            before = conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
        finally:
            conn.close()

        code, err = server.start_expect_failure()
        self.assertGreater(code, 0, f"exit status {code} with schema version 999\n{err}")
        self.assertIn("999", err, f"stderr does not name the schema version 999:\n{err}")

        # Nothing was reset or migrated away.
        conn = sqlite3.connect(server.db_path, timeout=harness.TIMEOUT)
        try:
            self.assertEqual(conn.execute("SELECT COUNT(*) FROM schema_migrations WHERE version = 999")
                             .fetchone()[0], 1)
            self.assertEqual(conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall(),
                             before)
            with conn:
                conn.execute("DELETE FROM schema_migrations WHERE version = 999")
        finally:
            conn.close()
        # With the known version back, the server starts and the conversation is all there.
        server.restart()
        await self.resume_and_check(server, cid, pairs, urgency="emergency")
        await self.stop_async(server)


if __name__ == "__main__":
    harness.main()
