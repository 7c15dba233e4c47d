"""Named operators (issue 16 item 1): `--operators FILE` of `name sha256:HASH` lines made by
`chat-server --new-operator NAME`; programs send `Authorization: Bearer <token>`, browsers sign in
with POST /v1/operator/session {"token"} and get an HttpOnly, SameSite=Strict session cookie that
authorises the operator WebSocket and the console's HTTP calls, from the server's own origin only.
An ack is made in the operator's name. GET /v1/operator/conversations/ID is the transcript.

Run: /usr/bin/python3 tests/integration/test_operator_accounts.py --server build/chat-server
"""

import json
import os
import re
import subprocess
import tempfile
import unittest
from pathlib import Path

import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import websockets  # noqa: E402

import harness  # noqa: E402
from harness import Client, InvalidStatusCode, Server  # noqa: E402

PAIN = "My upper back hurts after my workout yesterday"


def new_operator(name: str) -> tuple[str, str]:
    """(token, line) as `chat-server --new-operator NAME` prints them."""
    out = subprocess.run([str(harness.server_binary()), "--new-operator", name], capture_output=True, text=True,
                         check=True).stdout
    token = out.splitlines()[0].rsplit(" ", 1)[1]
    line = out.splitlines()[1].split(": ", 1)[1]
    return token, line


class AccountsTestCase(unittest.IsolatedAsyncioTestCase):
    def setUp(self):
        self.folder = Path(tempfile.mkdtemp(prefix="backcheck-operators-"))
        self.addCleanup(lambda: __import__("shutil").rmtree(self.folder, ignore_errors=True))
        self.alice, alice_line = new_operator("alice")
        self.bob, bob_line = new_operator("bob")
        self.file = self.folder / "operators"
        self.file.write_text(f"# the clinic's operators\n{alice_line}\n{bob_line}\n")
        os.chmod(self.file, 0o600)

    def make_server(self, *args) -> Server:
        server = Server("--operators", str(self.file), *args, env={"CHAT_OPERATOR_TOKEN": None})
        self.addCleanup(server.cleanup)
        return server.start()

    def own_origin(self, server) -> str:
        return f"http://127.0.0.1:{server.port}"

    def sign_in(self, server, token, origin=None, content_type="application/json"):
        headers = {"Content-Type": content_type, "Origin": origin or self.own_origin(server)}
        return harness.http_request(server, "POST", "/v1/operator/session", json.dumps({"token": token}), headers)

    async def operator_ws(self, server, headers) -> Client:
        ws = await websockets.connect(f"ws://127.0.0.1:{server.port}/v1/operator", extra_headers=headers,
                                      **harness.connect_kwargs())
        client = Client(ws)
        self.addAsyncCleanup(client.close)
        return client

    async def escalation(self, server) -> str:
        chat = await harness.open_client(server)
        self.addAsyncCleanup(chat.close)
        cid = (await chat.start())["conversation"]
        r = await chat.message("I have chest pain", conversation=cid)
        self.assertTrue(r["escalated"])
        return cid


class NamedOperatorsTest(AccountsTestCase):
    async def test_each_operator_acts_in_their_own_name(self):
        server = self.make_server()
        alice = await self.operator_ws(server, {"Authorization": f"Bearer {self.alice}"})
        bob = await self.operator_ws(server, {"Authorization": f"Bearer {self.bob}"})
        cid = await self.escalation(server)
        event = await alice.recv_type("escalation")
        self.assertEqual(event["conversation"], cid)
        self.assertEqual((await bob.recv_type("escalation"))["id"], event["id"])
        waiting = harness.parse_metrics(harness.http_request(server, "GET", "/metrics").body.decode())
        self.assertEqual(harness.metric_value(waiting, "backcheck_escalations_unacknowledged"), 1)
        self.assertGreaterEqual(harness.metric_value(waiting, "backcheck_escalation_oldest_unacknowledged_age_seconds"), 0)
        await bob.send({"type": "ack", "id": event["id"]})
        for op in (alice, bob):
            acked = await op.recv_type("acked")
            self.assertEqual((acked["id"], acked["by"], acked["conversation"]), (event["id"], "bob", cid))
        done = harness.parse_metrics(harness.http_request(server, "GET", "/metrics").body.decode())
        self.assertEqual(harness.metric_value(done, "backcheck_escalations_unacknowledged"), 0)
        self.assertEqual(harness.metric_value(done, "backcheck_escalation_oldest_unacknowledged_age_seconds"), 0)

    def test_every_metric_the_shipped_alert_rules_and_dashboard_use_exists(self):
        server = self.make_server()
        samples = harness.parse_metrics(harness.http_request(server, "GET", "/metrics").body.decode())
        names = {n for n, _, _ in samples}
        monitoring = Path(__file__).resolve().parents[2] / "docs/monitoring"
        rules = (monitoring / "backcheck-alerts.yml").read_text()
        dashboard = json.loads((monitoring / "backcheck-dashboard.json").read_text())
        exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
        self.assertGreaterEqual(len(exprs), 15, "the dashboard's queries")
        for where, text in (("the alert rules", rules), ("the dashboard", "\n".join(exprs))):
            with self.subTest(where=where):
                used = set(re.findall(r"\bbackcheck_[a-z_]+", text))
                self.assertTrue(used)
                self.assertEqual(used - names, set(), f"metrics {where} use but /metrics does not have")
                # A label value matched exactly (code="store_unavailable") must be one /metrics has.
                for name, label, value in re.findall(r'\b(backcheck_[a-z_]+)\{(\w+)="([^"]*)"', text):
                    self.assertTrue(any(n == name and labels.get(label) == value for n, labels, _ in samples),
                                    f'{where}: {name}{{{label}="{value}"}} matches nothing in /metrics')
        for topic in ("reply_latency", "errors_total", "store_healthy", "escalations_unacknowledged",
                      "escalation_oldest_unacknowledged_age_seconds", "escalations_total", "connections_open"):
            self.assertIn(f"backcheck_{topic}", "\n".join(exprs), f"the dashboard has no panel on {topic}")

    async def test_a_wrong_or_missing_token_is_refused_and_the_file_holds_no_token(self):
        server = self.make_server()
        for headers in ({}, {"Authorization": "Bearer " + "0" * 64}, {"Authorization": f"Bearer {self.alice}x"}):
            with self.subTest(headers=headers):
                with self.assertRaises(InvalidStatusCode) as refused:
                    await websockets.connect(f"ws://127.0.0.1:{server.port}/v1/operator", extra_headers=headers,
                                             **harness.connect_kwargs())
                self.assertEqual(refused.exception.status_code, 401)
        self.assertNotIn(self.alice, self.file.read_text())

    def test_a_file_others_may_change_or_a_bad_line_is_refused_at_start_up(self):
        os.chmod(self.file, 0o664)
        server = Server("--operators", str(self.file))
        self.addCleanup(server.cleanup)
        code, err = server.start_expect_failure()
        self.assertEqual(code, 2)
        self.assertIn("chmod 600", err)
        os.chmod(self.file, 0o600)
        self.file.write_text(self.file.read_text() + "carol " + "ab" * 32 + "\n")
        code, err = server.start_expect_failure()
        self.assertEqual(code, 2)
        self.assertIn(":4: the hash of 'carol'", err)


class SignInTest(AccountsTestCase):
    async def test_a_browser_signs_in_and_its_cookie_opens_the_operator_socket(self):
        server = self.make_server()
        r = self.sign_in(server, self.alice)
        self.assertEqual(r.status, 204, r)
        cookie = r.headers["Set-Cookie"]
        for attribute in ("HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="):
            self.assertIn(attribute, cookie)
        self.assertNotIn("Secure", cookie, "plain http: a Secure cookie would never come back")
        session = cookie.split(";", 1)[0]
        self.assertTrue(session.startswith("backcheck_operator="))
        self.assertNotIn(self.alice, cookie)
        who = harness.http_request(server, "GET", "/v1/operator/session", headers={"Cookie": session})
        self.assertEqual((who.status, json.loads(who.body)), (200, {"operator": "alice"}))
        op = await self.operator_ws(server, {"Cookie": session, "Origin": self.own_origin(server)})
        cid = await self.escalation(server)
        event = await op.recv_type("escalation")
        await op.send({"type": "ack", "id": event["id"]})
        self.assertEqual((await op.recv_type("acked"))["by"], "alice")
        self.assertEqual(event["conversation"], cid)
        # Signed out: the cookie opens nothing any more.
        out = harness.http_request(server, "DELETE", "/v1/operator/session",
                                   headers={"Cookie": session, "Origin": self.own_origin(server)})
        self.assertEqual(out.status, 204)
        self.assertIn("Max-Age=0", out.headers["Set-Cookie"])
        self.assertEqual(harness.http_request(server, "GET", "/v1/operator/session", headers={"Cookie": session}).status, 401)
        with self.assertRaises(InvalidStatusCode) as refused:
            await websockets.connect(f"ws://127.0.0.1:{server.port}/v1/operator", extra_headers={"Cookie": session},
                                     **harness.connect_kwargs())
        self.assertEqual(refused.exception.status_code, 401)

    def test_a_wrong_token_gets_401_and_https_gets_a_secure_cookie(self):
        server = self.make_server()
        r = self.sign_in(server, "0" * 64)
        self.assertEqual(r.status, 401)
        self.assertNotIn("Set-Cookie", r.headers)
        self.assertEqual(self.sign_in(server, self.alice, content_type="text/plain").status, 415)
        # Behind a TLS proxy the browser's origin is https://: the cookie is Secure.
        r = self.sign_in(server, self.bob, origin=f"https://127.0.0.1:{server.port}")
        self.assertEqual(r.status, 204)
        self.assertIn("; Secure", r.headers["Set-Cookie"])
        metrics = harness.parse_metrics(harness.http_request(server, "GET", "/metrics").body.decode())
        self.assertEqual(harness.metric_value(metrics, "backcheck_operator_sign_ins_refused_total"), 1)

    async def test_another_site_cannot_sign_in_nor_open_the_socket_even_if_the_widget_may_embed(self):
        server = self.make_server("--allowed-origins", "https://widget-host.example")
        for origin in ("https://evil.example", "https://widget-host.example", "null"):
            with self.subTest(origin=origin):
                self.assertEqual(self.sign_in(server, self.alice, origin=origin).status, 403)
        session = self.sign_in(server, self.alice).headers["Set-Cookie"].split(";", 1)[0]
        for origin in ("https://evil.example", "https://widget-host.example"):
            with self.subTest(origin=origin):
                with self.assertRaises(InvalidStatusCode) as refused:
                    await websockets.connect(f"ws://127.0.0.1:{server.port}/v1/operator",
                                             extra_headers={"Cookie": session, "Origin": origin},
                                             **harness.connect_kwargs())
                self.assertEqual(refused.exception.status_code, 403)
        # The widget's own socket still accepts the embedding site.
        chat = await websockets.connect(f"ws://127.0.0.1:{server.port}/v1/chat",
                                        extra_headers={"Origin": "https://widget-host.example"},
                                        **harness.connect_kwargs())
        await chat.close()


class TranscriptTest(AccountsTestCase):
    async def test_an_operator_reads_the_whole_conversation(self):
        server = self.make_server()
        chat = await harness.open_client(server)
        self.addAsyncCleanup(chat.close)
        cid = (await chat.start())["conversation"]
        await chat.message(PAIN, conversation=cid)
        await chat.message("I have chest pain", conversation=cid)
        path = f"/v1/operator/conversations/{cid}"
        self.assertEqual(harness.http_request(server, "GET", path).status, 401)
        r = harness.http_request(server, "GET", path, headers={"Authorization": f"Bearer {self.alice}"})
        self.assertEqual(r.status, 200, r)
        t = json.loads(r.body)
        self.assertEqual((t["conversation"], t["urgency"], t["state"]), (cid, "emergency", "escalated"))
        self.assertIn("chest_pain", t["red_flags"])
        self.assertEqual((t["claimed_by"], t["operator"]), ("", ""))  # nobody has claimed or joined it
        self.assertEqual([(e["role"], e["seq"]) for e in t["history"]],
                         [("user", 1), ("assistant", 1), ("user", 2), ("assistant", 2)])
        self.assertEqual(t["history"][2]["text"], "I have chest pain")
        self.assertEqual([e["flags"] for e in t["unacknowledged"]], [["chest_pain"]])
        earlier = json.loads(harness.http_request(server, "GET", path + "?before=2",
                                                  headers={"Authorization": f"Bearer {self.alice}"}).body)
        self.assertEqual([e["seq"] for e in earlier["history"]], [1, 1])
        missing = harness.http_request(server, "GET", "/v1/operator/conversations/" + "A" * 22,
                                       headers={"Authorization": f"Bearer {self.alice}"})
        self.assertEqual(missing.status, 404)


if __name__ == "__main__":
    harness.main()
