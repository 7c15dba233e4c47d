"""Issue 11, defect 4: the conversation table and the per-address limits.

One client could fill the whole conversation table with empty conversations (`start` costs
nothing), after which a person writing about chest pain got a bare `too_many_conversations` and
no advice. Now:
- a refusal of a red-flag message carries the safety `guidance` (WebSocket and POST);
- `end` of a conversation that never received a message deletes it and frees its slot;
- empty conversations are purged after `--empty-conversation-expiry`;
- per client address: `--new-conversations-per-minute` (rate_limited), `--ip-rate` (messages
  of all its connections together), `--max-connections-per-ip` (HTTP 429 on the upgrade);
- `X-Forwarded-For` is believed only from `--trusted-proxies`;
- `/readyz` is 503 while the table is full, `/healthz` stays 200 (the store is fine).

Run: /usr/bin/python3 tests/abuse/test_conversation_limits.py --server build/chat-server
"""

import asyncio
import time
import unittest

import abuse_common as ab
from abuse_common import harness
from harness import InvalidStatusCode

CHEST_AND_ARM_FLAGS = {"chest_pain", "numbness"}


class LimitsTestCase(unittest.IsolatedAsyncioTestCase):
    """A fresh server per test."""

    def make_server(self, *args) -> ab.AbuseServer:
        server = ab.AbuseServer(*args)
        self.addCleanup(server.cleanup)
        return server.start()

    async def client(self, server, **kw) -> harness.Client:
        c = await harness.open_client(server, **kw)
        self.addAsyncCleanup(c.close)
        return c

    def get(self, server, path, headers=None) -> harness.HttpResponse:
        return harness.http_request(server, "GET", path, headers=headers)

    async def stop(self, server) -> None:
        """SIGTERM and exit 0; the event loop runs meanwhile, so open clients answer the close."""
        self.assertTrue(server.alive(), server.stderr_tail())
        await asyncio.to_thread(server.stop_and_check)


class ConversationTableTest(LimitsTestCase):

    async def test_full_table_refuses_with_guidance(self):
        server = self.make_server("--max-conversations", "3", *ab.lift())
        a = await self.client(server)
        with_message = (await a.start())["conversation"]
        await a.message("hi", conversation=with_message)
        empty1 = (await a.start())["conversation"]
        empty2 = (await a.start())["conversation"]

        # A new person, the table full: refused, with what to do now.
        b = await self.client(server)
        await b.send({"type": "message", "text": ab.CHEST_AND_ARM_TEXT, "ref": "new"})
        err = await b.expect_error("too_many_conversations", ref="new")
        ab.check_guidance(self, err, "emergency", CHEST_AND_ARM_FLAGS)
        # A message without a red flag is refused the same way, without guidance.
        await b.send({"type": "message", "text": "What is DOMS?", "ref": "plain"})
        err = await b.expect_error("too_many_conversations", ref="plain")
        self.assertNotIn("guidance", err)
        # The same on POST: 503 and the guidance in the body.
        r = harness.post_json(server, "/v1/messages", {"text": ab.CHEST_AND_ARM_TEXT})
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json().get("code"), "too_many_conversations", r)
        ab.check_guidance(self, r.json(), "emergency", CHEST_AND_ARM_FLAGS)

        # Readiness says no, health says yes (the store is fine).
        ready = self.get(server, "/readyz")
        self.assertEqual(ready.status, 503, ready)
        reason = ready.body.decode("utf-8").strip()
        self.assertTrue(reason and "\n" not in reason, f"/readyz 503 needs a one-line reason: {ready.body!r}")
        self.assertEqual(self.get(server, "/healthz").status, 200)

        # Ending a conversation with messages keeps it (resumable), so no slot is freed.
        await a.send({"type": "end", "conversation": with_message})
        await a.recv_type("ended")
        await b.send({"type": "start"})
        await b.expect_error("too_many_conversations")
        # Ending one that never received a message deletes it: its slot is free.
        await a.send({"type": "end", "conversation": empty1, "ref": "e1"})
        self.assertEqual((await a.recv_type("ended"))["conversation"], empty1)
        started = await b.start()
        self.assertNotIn(started["conversation"], (with_message, empty1, empty2))
        await b.send({"type": "start", "resume": empty1})
        await b.expect_error("unknown_conversation")
        # The one ended with messages is still there.
        resumed = await b.start(resume=with_message)
        self.assertEqual(len(resumed["history"]), 2, resumed)
        self.assertEqual(self.get(server, "/readyz").status, 503)
        # And again: end the new empty one, and the table has room (ready again).
        await b.send({"type": "end", "conversation": started["conversation"]})
        await b.recv_type("ended")
        await ab.poll_until(lambda: self.get(server, "/readyz").status == 200, 5, "/readyz back to 200")
        await self.stop(server)

    async def test_empty_conversations_expire(self):
        server = self.make_server("--empty-conversation-expiry", "1", *ab.lift())
        a = await self.client(server)
        empty_closed = (await a.start())["conversation"]
        await a.close()
        b = await self.client(server)
        empty_open = (await b.start())["conversation"]  # its connection stays open
        c = await self.client(server)
        kept = (await c.start())["conversation"]
        await c.message("hi", conversation=kept)
        self.assertEqual(ab.metric(server, "backcheck_conversations"), 3)
        # Polled on /metrics: a resume would make the conversation active again.
        await ab.poll_until(lambda: ab.metric(server, "backcheck_conversations") == 1, 10,
                            "the two empty conversations purged", interval=0.1)
        async with harness.connect(server) as d:
            for cid in (empty_closed, empty_open):
                await d.send({"type": "start", "resume": cid})
                await d.expect_error("unknown_conversation")
            resumed = await d.start(resume=kept)
            self.assertEqual(len(resumed["history"]), 2)
        await self.stop(server)


class PerAddressTest(LimitsTestCase):

    async def test_new_conversations_per_minute(self):
        server = self.make_server("--new-conversations-per-minute", "5",
                                  *ab.lift("--new-conversations-per-minute"))
        clients = [await self.client(server) for _ in range(3)]
        made, refused = [], []
        for i in range(30):  # several connections: the allowance is per address
            c = clients[i % 3]
            await c.send({"type": "start", "ref": f"s{i}"})
            f = await c.recv()
            if f["type"] == "started":
                made.append((c, f["conversation"]))
            else:
                self.assertEqual((f["type"], f.get("code")), ("error", "rate_limited"), f)
                refused.append(f)
        self.assertTrue(refused, "30 new conversations at once with --new-conversations-per-minute 5")
        self.assertTrue(made)
        self.assertLessEqual(len(made), 21, "more than the burst of 20 (+1 refill) new conversations")
        # A red-flag message that would start one is refused with the guidance.
        fresh = await self.client(server)
        await fresh.send({"type": "message", "text": ab.EMERGENCY_TEXT, "ref": "rf"})
        err = await fresh.expect_error("rate_limited", ref="rf")
        ab.check_guidance(self, err, "emergency", ab.EMERGENCY_FLAGS)
        # POST without a conversation starts one: 429 too.
        r = harness.post_json(server, "/v1/messages", {"text": ab.EMERGENCY_TEXT})
        self.assertEqual(r.status, 429, r)
        self.assertEqual(r.json().get("code"), "rate_limited", r)
        ab.check_guidance(self, r.json(), "emergency", ab.EMERGENCY_FLAGS)
        # Existing conversations are not limited: messages and resumes go on.
        c, cid = made[0]
        self.assertEqual((await c.message("hi", conversation=cid))["seq"], 1)
        r = harness.post_json(server, "/v1/messages", {"text": "hi", "conversation": cid})
        self.assertEqual(r.status, 200, r)
        resumed = await fresh.start(resume=cid)
        self.assertTrue(resumed["resumed"])
        await self.stop(server)

    async def test_ip_rate_counts_all_connections_together(self):
        server = self.make_server("--ip-rate", "5", "--ip-burst", "5", *ab.lift("--ip-rate", "--ip-burst"))
        clients = [await self.client(server) for _ in range(4)]
        cids = [(await c.start())["conversation"] for c in clients]
        t0 = time.monotonic()
        for k, (c, cid) in enumerate(zip(clients, cids)):  # 5 each: each alone is within the burst
            await c.send_batch({"type": "message", "conversation": cid, "text": "hi", "ref": f"{k}.{i}"}
                               for i in range(5))
        replies, errors = [], []
        for k, c in enumerate(clients):
            got, _ = await harness.collect_replies(c, [f"{k}.{i}" for i in range(5)])
            for f in got.values():
                (replies if f["type"] == "reply" else errors).append(f)
        elapsed = time.monotonic() - t0
        self.assertTrue(errors, "20 messages from one address with --ip-rate 5 --ip-burst 5")
        self.assertEqual({e["code"] for e in errors}, {"rate_limited"}, errors)
        self.assertLessEqual(len(replies), 5 + int(5 * elapsed) + 1, f"{len(replies)} replies in {elapsed:.2f} s")
        # POSTs from the same address share the bucket (each on its own connection here).
        statuses = [harness.post_json(server, "/v1/messages", {"text": "hi", "conversation": cids[0]}).status
                    for _ in range(10)]
        self.assertIn(429, statuses, statuses)
        # A red-flag message refused for the rate gets the guidance.
        for _ in range(10):
            await clients[0].send({"type": "message", "conversation": cids[0], "text": ab.EMERGENCY_TEXT,
                                   "ref": "rf"})
            f = await clients[0].recv()
            if f["type"] == "error":
                self.assertEqual(f["code"], "rate_limited", f)
                ab.check_guidance(self, f, "emergency", ab.EMERGENCY_FLAGS)
                break
        else:
            self.fail("10 messages at once never hit --ip-rate 5")
        await self.stop(server)

    async def test_max_connections_per_ip(self):
        server = self.make_server("--max-connections-per-ip", "2", *ab.lift("--max-connections-per-ip"))
        c1 = await self.client(server)
        c2 = await self.client(server)
        with self.assertRaises(InvalidStatusCode) as cm:
            extra = await harness.open_client(server)
            await extra.close()
        self.assertEqual(cm.exception.status_code, 429)
        # Those two work; plain HTTP is not a WebSocket.
        self.assertEqual((await c1.message("hi"))["seq"], 1)
        self.assertEqual((await c2.message("hi"))["seq"], 1)
        self.assertEqual(self.get(server, "/healthz").status, 200)
        await c1.close()
        # The server notices the close and releases the slot (polled: it learns it asynchronously).
        await ab.poll_until(lambda: ab.metric(server, "backcheck_connections_open") == 1, 5,
                            "backcheck_connections_open back to 1 after one of two WebSockets closed")

        async def try_open():
            try:
                return await harness.open_client(server)
            except InvalidStatusCode as e:
                self.assertEqual(e.status_code, 429)
                return None

        c3 = await ab.poll_until(try_open, 5, "a WebSocket slot free again after closing one")
        self.addAsyncCleanup(c3.close)
        self.assertEqual((await c3.message("hi"))["seq"], 1)
        await self.stop(server)


class GlobalRateAndGuidanceTest(LimitsTestCase):

    async def test_global_rate_counts_every_address(self):
        # Four clients with their own addresses (a trusted proxy names them), each well within
        # its per-connection and per-address allowances: together they pass --global-rate 5.
        server = self.make_server("--global-rate", "5", "--trusted-proxies", "127.0.0.1",
                                  *ab.lift("--global-rate"))
        clients = [await self.client(server, extra_headers={"X-Forwarded-For": f"10.1.0.{i}"})
                   for i in range(1, 5)]
        cids = [(await c.start())["conversation"] for c in clients]
        t0 = time.monotonic()
        for k, (c, cid) in enumerate(zip(clients, cids)):
            await c.send_batch({"type": "message", "conversation": cid, "text": "hi", "ref": f"{k}.{i}"}
                               for i in range(5))
        replies, errors = [], []
        for k, c in enumerate(clients):
            got, _ = await harness.collect_replies(c, [f"{k}.{i}" for i in range(5)])
            for f in got.values():
                (replies if f["type"] == "reply" else errors).append(f)
        elapsed = time.monotonic() - t0
        self.assertTrue(errors, "20 messages at once with --global-rate 5")
        self.assertEqual({e["code"] for e in errors}, {"rate_limited"}, errors)
        self.assertLessEqual(len(replies), 5 + int(5 * elapsed) + 1, f"{len(replies)} replies in {elapsed:.2f} s")
        await self.stop(server)

    async def test_every_refusal_of_a_red_flag_message_carries_guidance(self):
        server = self.make_server("--max-text-chars", "80", *ab.lift())
        unknown = "A" * 22
        too_long = ab.EMERGENCY_TEXT + ", it started an hour ago" * 4
        self.assertGreater(len(too_long), 80)
        async with harness.connect(server) as c:
            await c.send({"type": "message", "conversation": unknown, "text": ab.EMERGENCY_TEXT, "ref": "u"})
            ab.check_guidance(self, await c.expect_error("unknown_conversation", ref="u"), "emergency",
                              ab.EMERGENCY_FLAGS)
            await c.send({"type": "message", "text": too_long, "ref": "l"})
            ab.check_guidance(self, await c.expect_error("text_too_long", ref="l"), "emergency", ab.EMERGENCY_FLAGS)
            await c.send({"type": "message", "text": "my fingers are numb", "conversation": unknown, "ref": "n"})
            ab.check_guidance(self, await c.expect_error("unknown_conversation", ref="n"), "urgent", {"numbness"})
            # No red flag, no guidance.
            await c.send({"type": "message", "conversation": unknown, "text": "What is DOMS?", "ref": "d"})
            self.assertNotIn("guidance", await c.expect_error("unknown_conversation", ref="d"))
            await c.send({"type": "message", "text": "What is DOMS? " * 10, "ref": "dl"})
            self.assertNotIn("guidance", await c.expect_error("text_too_long", ref="dl"))
        r = harness.post_json(server, "/v1/messages", {"conversation": unknown, "text": ab.EMERGENCY_TEXT})
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.json().get("code"), "unknown_conversation", r)
        ab.check_guidance(self, r.json(), "emergency", ab.EMERGENCY_FLAGS)
        r = harness.post_json(server, "/v1/messages", {"text": too_long})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json().get("code"), "text_too_long", r)
        ab.check_guidance(self, r.json(), "emergency", ab.EMERGENCY_FLAGS)
        await self.stop(server)


class ForwardedForTest(LimitsTestCase):

    async def ws(self, server, xff: str | None) -> harness.Client | int:
        """A chat WebSocket sent with this X-Forwarded-For, or the refusing HTTP status."""
        headers = {"X-Forwarded-For": xff} if xff is not None else {}
        try:
            return await self.client(server, extra_headers=headers)
        except InvalidStatusCode as e:
            return e.status_code

    async def test_untrusted_peer_forwarded_for_is_ignored(self):
        server = self.make_server("--max-connections-per-ip", "1", *ab.lift("--max-connections-per-ip"))
        first = await self.ws(server, "10.0.0.1")
        self.assertIsInstance(first, harness.Client)
        # A different claimed address does not make a different client.
        self.assertEqual(await self.ws(server, "10.0.0.2"), 429)
        self.assertEqual(await self.ws(server, None), 429)
        await self.stop(server)

    async def test_trusted_proxy_separates_clients(self):
        server = self.make_server("--max-connections-per-ip", "1", "--trusted-proxies", "127.0.0.1",
                                  *ab.lift("--max-connections-per-ip"))
        a = await self.ws(server, "10.0.0.1")
        b = await self.ws(server, "10.0.0.2")
        self.assertIsInstance(a, harness.Client, f"10.0.0.1 refused: {a}")
        self.assertIsInstance(b, harness.Client, "two forwarded addresses are two clients, each with "
                                                 f"its own allowance: got {b}")
        self.assertEqual(await self.ws(server, "10.0.0.1"), 429)
        # The client is the rightmost address not trusted: a client cannot escape its limit by
        # prepending an address to the header the proxy appends to.
        self.assertEqual(await self.ws(server, "10.9.9.9, 10.0.0.2"), 429)
        self.assertEqual(await self.ws(server, "10.0.0.2, 127.0.0.1"), 429)
        c = await self.ws(server, "10.0.0.2, 10.0.0.3")
        self.assertIsInstance(c, harness.Client, f"10.0.0.3 refused: {c}")
        # Without the header the client is the proxy itself.
        d = await self.ws(server, None)
        self.assertIsInstance(d, harness.Client, f"127.0.0.1 refused: {d}")
        self.assertEqual(await self.ws(server, None), 429)
        for client in (a, b, c, d):
            self.assertEqual((await client.message("hi"))["seq"], 1)
        await self.stop(server)


if __name__ == "__main__":
    harness.main()
