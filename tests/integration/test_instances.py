"""Several chat-server instances on one PostgreSQL database (issue 14): --store postgres.

Each test class starts a real, throwaway PostgreSQL (tests/pg/pg_instance.py) and two or three
chat-server instances on it, and drives them with Debian's python3-websockets:
- a conversation continued on another instance keeps its history and its order, and messages of
  one conversation sent to two instances at once all get replies, seq 1..n without a gap or a
  duplicate (each commit is a compare-and-set on seq; a conflict reloads and runs it again);
- an escalation made on one instance reaches the operators of every instance, and an ack on one
  is seen on the others, once;
- kill -9 of an instance in the middle of a burst: every reply a client received is in the
  database, and the clients resume on another instance;
- PostgreSQL restarted under load: store_unavailable while it is down, no acknowledged turn
  lost, and service resumes by itself.

No test sleeps for timing: waits are for frames, with a deadline.

Run: /usr/bin/python3 tests/integration/test_instances.py --server build/chat-server
"""

import asyncio
import os
import subprocess
import sys
import time
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pg"))

import websockets  # noqa: E402

import harness  # noqa: E402
from harness import Client, Server  # noqa: E402
import pg_instance  # noqa: E402

TOKEN = "op-" + os.urandom(16).hex()
PAIN = "my upper back hurts after rows yesterday"
ARM = "and my left arm is numb and tingling"


async def open_operator(server: Server) -> Client:
    ws = await websockets.connect(f"ws://127.0.0.1:{server.port}/v1/operator",
                                  extra_headers={"Authorization": f"Bearer {TOKEN}"}, **harness.connect_kwargs())
    return Client(ws)


def psql(pg, sql: str) -> list[list[str]]:
    """Rows of a query (fields split on '|'), run with Debian's psql."""
    out = subprocess.run(["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", pg.url, "-c", sql],
                         capture_output=True, text=True, check=True).stdout
    return [line.split("|") for line in out.splitlines() if line]


class InstancesTestCase(unittest.IsolatedAsyncioTestCase):
    """One PostgreSQL for the class; fresh instances per test (on a fresh database)."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.pg = pg_instance.PgInstance()
        cls.pg.__enter__()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.pg.__exit__(None, None, None)

    def instance(self, *args: str) -> Server:
        server = Server("--store", "postgres", "--database-url", self.pg.url, "--rate", "1000", "--burst", "1000",
                        "--max-conversations-per-connection", "64", *args,
                        env={"CHAT_OPERATOR_TOKEN": TOKEN})
        self.addCleanup(server.cleanup)
        return server.start()

    async def asyncSetUp(self) -> None:
        # Every test sees only its own conversations and escalations.
        psql(self.pg, "DO $$ BEGIN IF to_regclass('turns') IS NOT NULL THEN "
                      "TRUNCATE turns, conversations, escalations, operator_actions; END IF; END $$;")


class ConversationAcrossInstancesTest(InstancesTestCase):
    async def test_continued_on_another_instance_keeps_history_and_order(self):
        a, b = self.instance(), self.instance()
        async with harness.connect(a) as ca:
            cid = (await ca.start())["conversation"]
            first = await ca.message(PAIN, conversation=cid)
            self.assertEqual((first["seq"], first["state"]), (1, "screening"))
        async with harness.connect(b) as cb:
            resumed = await cb.start(resume=cid)
            self.assertEqual([h["seq"] for h in resumed["history"]], [1, 1])
            self.assertEqual(resumed["history"][0]["text"], PAIN)
            # B answers the screening question A asked: the state came from the database.
            second = await cb.message("no", conversation=cid)
            self.assertEqual((second["seq"], second["state"]), (2, "screening"))
        async with harness.connect(a) as ca:
            # A's cache holds seq 1: its commit conflicts, it reloads and answers on top of B's turn.
            third = await ca.message("no", conversation=cid)
            self.assertEqual(third["seq"], 3)

    async def test_one_conversation_on_two_instances_at_once_gets_gapless_seqs(self):
        a, b = self.instance(), self.instance()
        per_instance = 25
        async with harness.connect(a) as ca, harness.connect(b) as cb:
            cid = (await ca.start())["conversation"]
            await cb.start(resume=cid)

            async def burst(client: Client, tag: str) -> list[int]:
                refs = [f"{tag}{i}" for i in range(per_instance)]
                await client.send_batch([{"type": "message", "conversation": cid, "text": "what is doms?", "ref": r}
                                         for r in refs])
                _, frames = await harness.collect_replies(client, refs, timeout=30)
                for f in frames:
                    self.assertEqual(f["type"], "reply", f"{f}")
                return [f["seq"] for f in frames]

            seqs_a, seqs_b = await asyncio.gather(burst(ca, "a"), burst(cb, "b"))
        self.assertEqual(seqs_a, sorted(seqs_a), "one instance's replies are in its send order")
        self.assertEqual(seqs_b, sorted(seqs_b))
        self.assertEqual(sorted(seqs_a + seqs_b), list(range(1, 2 * per_instance + 1)))
        rows = psql(self.pg, f"SELECT seq FROM turns WHERE conversation = '{cid}' AND role = 'user' ORDER BY seq")
        self.assertEqual([int(r[0]) for r in rows], list(range(1, 2 * per_instance + 1)))


class OperatorsAcrossInstancesTest(InstancesTestCase):
    async def test_escalation_on_b_reaches_operators_on_a_and_b_and_an_ack_on_a_reaches_b(self):
        a, b = self.instance(), self.instance()
        op_a, op_b = await open_operator(a), await open_operator(b)
        try:
            async with harness.connect(b) as cb:
                await cb.message(PAIN)
                reply = await cb.message(ARM)
                self.assertTrue(reply["escalated"], reply)
            event_a = await op_a.recv_type("escalation")
            event_b = await op_b.recv_type("escalation")
            self.assertEqual(event_a["id"], event_b["id"])
            self.assertEqual(event_a["text"], ARM)
            await op_a.send({"type": "ack", "id": event_a["id"]})
            self.assertEqual((await op_a.recv_type("acked"))["id"], event_a["id"])
            self.assertEqual((await op_b.recv_type("acked"))["id"], event_a["id"])
            # Once: the next frame each operator gets is the next escalation, not a repeat.
            async with harness.connect(a) as ca:
                await ca.message(PAIN)
                await ca.message(ARM)
            for op in (op_a, op_b):
                nxt = await op.recv()
                self.assertEqual(nxt["type"], "escalation", nxt)
                self.assertNotEqual(nxt["id"], event_a["id"])
        finally:
            await op_a.close()
            await op_b.close()

    async def test_an_operator_connecting_to_any_instance_gets_the_backlog(self):
        a, b = self.instance(), self.instance()
        async with harness.connect(a) as ca:
            await ca.message(PAIN)
            await ca.message(ARM)
        op_b = await open_operator(b)
        try:
            event = await op_b.recv_type("escalation")
            self.assertEqual(event["text"], ARM)
        finally:
            await op_b.close()


class HandoffAcrossInstancesTest(InstancesTestCase):
    """The person on instance B, the operator on instance A (issue 16): behind a load balancer
    nothing puts them on the same one. Every handoff frame still reaches whom it concerns."""

    async def test_claim_join_messages_and_leave_cross_instances(self):
        a, b = self.instance(), self.instance()
        op_a, op_b = await open_operator(a), await open_operator(b)
        self.addAsyncCleanup(op_a.close)
        self.addAsyncCleanup(op_b.close)
        person = await harness.open_client(b)
        self.addAsyncCleanup(person.close)
        cid = (await person.start())["conversation"]
        await person.message(PAIN, conversation=cid)  # B caches the conversation: nobody joined

        await op_a.send({"type": "claim", "conversation": cid})
        for op in (op_a, op_b):
            self.assertEqual((await op.recv_type("claimed"))["conversation"], cid)
        self.assertEqual((await person.recv_type("notice"))["notice"], "escalation_claimed")
        await op_a.send({"type": "join", "conversation": cid})
        for op in (op_a, op_b):
            self.assertEqual((await op.recv_type("joined"))["conversation"], cid)
        self.assertEqual((await person.recv_type("handoff"))["event"], "joined")

        # B's cached copy predates the join (same seq): the message must still go to the
        # operator, on A, with its text, and the assistant must not answer it.
        await person.send({"type": "message", "conversation": cid, "text": "no, nothing like that"})
        self.assertEqual((await person.recv_type("received"))["seq"], 2)
        for op in (op_a, op_b):  # one operator (the unnamed one), a console on each instance
            message = await op.recv_type("user_message")
            self.assertEqual((message["conversation"], message["text"], message["seq"]),
                             (cid, "no, nothing like that", 2))

        await op_a.send({"type": "say", "conversation": cid, "text": "Hello from the clinic."})
        self.assertEqual((await op_a.recv_type("said"))["seq"], 3)
        written = await person.recv_type("operator_message")
        self.assertEqual((written["text"], written["seq"]), ("Hello from the clinic.", 3))

        await op_a.send({"type": "leave", "conversation": cid})
        self.assertEqual((await op_b.recv_type("left"))["conversation"], cid)
        self.assertEqual((await person.recv_type("handoff"))["event"], "left")
        after = await person.message("what should I do now?", conversation=cid)
        self.assertTrue(after["text"], "the assistant answers again")


class FailuresTest(InstancesTestCase):
    async def test_kill9_mid_burst_loses_no_acknowledged_reply_and_clients_resume_elsewhere(self):
        a, b = self.instance(), self.instance()
        clients = 20
        received: dict[str, list[int]] = {}

        async def chat(i: int) -> None:
            try:
                async with harness.connect(a) as c:
                    cid = (await c.start())["conversation"]
                    received[cid] = []
                    for n in range(50):
                        r = await c.message("what is doms?", conversation=cid)
                        received[cid].append(r["seq"])
            except (AssertionError, websockets.exceptions.ConnectionClosed, OSError, asyncio.TimeoutError):
                pass  # the instance died under it

        tasks = [asyncio.create_task(chat(i)) for i in range(clients)]
        # Kill once the burst is under way: every client has had a few replies.
        deadline = time.monotonic() + 20
        while (len(received) < clients or min(map(len, received.values())) < 3) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        a.kill9()
        await asyncio.gather(*tasks)
        self.assertEqual(len(received), clients)
        for cid, seqs in received.items():
            rows = psql(self.pg, f"SELECT seq FROM turns WHERE conversation = '{cid}' AND role = 'assistant'")
            stored = {int(r[0]) for r in rows}
            self.assertTrue(set(seqs) <= stored, f"{cid}: replies {seqs} but stored {sorted(stored)}")
        # Each client carries on on B, after what it was told.
        async with harness.connect(b) as cb:
            for cid, seqs in received.items():
                resumed = await cb.start(resume=cid)
                self.assertGreaterEqual(max(h["seq"] for h in resumed["history"]), seqs[-1])
                nxt = await cb.message("thanks", conversation=cid)
                self.assertGreater(nxt["seq"], seqs[-1])

    async def test_database_restart_under_load_answers_store_unavailable_then_recovers(self):
        a = self.instance()
        told: dict[str, list[int]] = {}
        errors: list[str] = []
        stop = asyncio.Event()

        async def chat() -> None:
            async with harness.connect(a) as c:
                cid = (await c.start())["conversation"]
                told[cid] = []
                while not stop.is_set():
                    await c.send({"type": "message", "conversation": cid, "text": "what is doms?"})
                    f = await c.recv(timeout=30)
                    if f["type"] == "reply":
                        told[cid].append(f["seq"])
                    else:
                        self.assertEqual(f["type"], "error", f)
                        errors.append(f["code"])

        tasks = [asyncio.create_task(chat()) for _ in range(5)]
        while len(told) < 5 or min(map(len, told.values())) < 3:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(self.pg.stop_server)
        # While it is down, messages get store_unavailable (and the server stays up).
        seen = len(errors)
        deadline = time.monotonic() + 20
        while len(errors) == seen and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        self.assertIn("store_unavailable", errors)
        await asyncio.to_thread(self.pg.start_server)
        # Service resumes by itself: new replies arrive after the restart.
        after = {cid: len(seqs) for cid, seqs in told.items()}
        deadline = time.monotonic() + 30
        while any(len(told[c]) <= after[c] for c in told) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*tasks)
        self.assertTrue(all(len(told[c]) > after[c] for c in told),
                        f"replies resumed after the restart: {after} -> { {c: len(s) for c, s in told.items()} }; "
                        f"errors {len(errors)}\n{a.stderr_tail()}")
        self.assertEqual(set(errors), {"store_unavailable"})
        for cid, seqs in told.items():
            self.assertEqual(seqs, sorted(set(seqs)), "no seq twice, in order")
            rows = psql(self.pg, f"SELECT seq FROM turns WHERE conversation = '{cid}' AND role = 'assistant'")
            self.assertTrue(set(seqs) <= {int(r[0]) for r in rows}, "every reply a client got is stored")


if __name__ == "__main__":
    harness.main()
