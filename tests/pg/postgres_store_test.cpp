// PostgresStore against a real, throwaway PostgreSQL (tests/pg/pg_instance.py run -- this):
// compare-and-set commits, two instances on one database, history paging, escalations and acks
// across instances, refused schemas, an outage and the recovery after it, batching.
//
// Reads the database URL from BACKCHECK_TEST_DATABASE_URL; without it the program says so and
// exits 77 (CTest's SKIP_RETURN_CODE). Every case makes its own database on that server.
// The outage case stops and starts the server through BACKCHECK_TEST_PG_SCRIPT / _PG_DIR.
#define CATCH_CONFIG_RUNNER
#include <libpq-fe.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <future>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "dialog/conversation.hpp"
#include "server/store/postgres_store.hpp"

using namespace backcheck::server;
using backcheck::knowledge::Urgency;
using namespace std::chrono_literals;

namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// The base URL with another database name: postgresql://user@/NAME?host=...
std::string UrlFor(const std::string& database) {
  std::string url = Env("BACKCHECK_TEST_DATABASE_URL");
  const auto scheme = url.find("://");
  const auto slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  const auto end = url.find('?', slash);
  return url.substr(0, slash + 1) + database + (end == std::string::npos ? "" : url.substr(end));
}

// Runs SQL on the base database (or another one) and returns the first value of the first row.
std::string Sql(const std::string& sql, const std::string& url = Env("BACKCHECK_TEST_DATABASE_URL")) {
  const char* keys[] = {"dbname", nullptr};
  const char* values[] = {url.c_str(), nullptr};
  PGconn* c = PQconnectdbParams(keys, values, 1);
  REQUIRE(PQstatus(c) == CONNECTION_OK);
  PGresult* r = PQexec(c, sql.c_str());
  const auto status = PQresultStatus(r);
  INFO(sql << ": " << PQresultErrorMessage(r));
  REQUIRE((status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK));
  std::string out = PQntuples(r) > 0 && PQnfields(r) > 0 ? PQgetvalue(r, 0, 0) : "";
  PQclear(r);
  PQfinish(c);
  return out;
}

// A fresh database for one test case; its URL.
std::string FreshDatabase() {
  static std::atomic<int> n{0};
  const std::string name = "t" + std::to_string(::getpid()) + "_" + std::to_string(++n);
  Sql("CREATE DATABASE " + name);
  return UrlFor(name);
}

PostgresOptions Fast() {
  PostgresOptions o;
  o.backoff_min = 50ms;
  o.backoff_max = 400ms;
  o.poll_interval = 60s;  // notifications, not the safety-net poll, must carry the cases below
  return o;
}

void Raise(backcheck::dialog::ConversationState& s, const EscalationEvent& e) {
  if (e.level > s.urgency) s.urgency = e.level;
}

TurnRecord Create(const std::string& id) {
  TurnRecord r;
  r.kind = TurnRecord::Kind::kCreate;
  r.conversation = id;
  r.state.state = "welcome";
  r.at_ms = UnixMillis();
  return r;
}

TurnRecord Turn(const std::string& id, std::uint64_t expected, std::string user = "my back hurts",
                std::optional<Urgency> escalate = std::nullopt) {
  TurnRecord r;
  r.conversation = id;
  r.expected_seq = expected;
  r.seq = expected + 1;
  r.has_turn = true;
  r.user_text = user;
  r.reply_text = "reply to " + user;
  r.state.state = "advising";
  r.state.turns = static_cast<std::uint32_t>(r.seq);
  r.at_ms = UnixMillis();
  if (escalate) {
    r.state.urgency = *escalate;
    r.escalation = EscalationEvent{0, id, *escalate, {"cauda_equina"}, user, r.at_ms};
  }
  return r;
}

struct Committed {
  CommitResult result;
  std::optional<EscalationEvent> escalation;
};

// Without Catch assertions, which are not thread-safe: for client threads. nullopt: no answer in
// 20 s (a hang).
std::optional<Committed> CommitWait(ConversationStore& store, TurnRecord record) {
  auto done = std::make_shared<std::promise<Committed>>();
  store.Commit(std::move(record), [done](CommitResult r, const std::optional<EscalationEvent>& e) {
    done->set_value({r, e});
  });
  auto f = done->get_future();
  if (f.wait_for(20s) != std::future_status::ready) return std::nullopt;
  return f.get();
}

std::optional<Loaded> LoadWait(ConversationStore& store, const std::string& id) {
  auto done = std::make_shared<std::promise<Loaded>>();
  store.Load(id, [done](Loaded l) { done->set_value(std::move(l)); });
  auto f = done->get_future();
  if (f.wait_for(20s) != std::future_status::ready) return std::nullopt;
  return f.get();
}

Committed CommitNow(ConversationStore& store, TurnRecord record) {
  auto c = CommitWait(store, std::move(record));
  REQUIRE(c);
  return *c;
}

Loaded LoadNow(ConversationStore& store, const std::string& id) {
  auto l = LoadWait(store, id);
  REQUIRE(l);
  return *l;
}

std::optional<HistoryPage> HistoryNow(ConversationStore& store, const std::string& id,
                                      std::optional<std::uint64_t> before = std::nullopt, std::size_t turns = 100) {
  std::promise<std::optional<HistoryPage>> done;
  store.History(id, before, turns, [&](std::optional<HistoryPage> p) { done.set_value(std::move(p)); });
  auto f = done.get_future();
  REQUIRE(f.wait_for(20s) == std::future_status::ready);
  return f.get();
}

bool AckNow(EscalationLog& log, std::int64_t id, std::string by, std::string note = "") {
  std::promise<bool> done;
  log.Acknowledge(id, std::move(by), std::move(note), [&](bool found) { done.set_value(found); });
  auto f = done.get_future();
  REQUIRE(f.wait_for(20s) == std::future_status::ready);
  return f.get();
}

template <typename F>
bool WaitFor(F&& condition, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

// What a listener was told, thread-safe.
struct Heard {
  std::mutex mutex;
  std::vector<EscalationEvent> escalations;
  std::vector<std::pair<std::int64_t, std::string>> acks;

  EscalationLog::Listener listener() {
    return {[this](const EscalationEvent& e) {
              std::lock_guard lock(mutex);
              escalations.push_back(e);
            },
            [this](const EscalationEvent& e, const std::string& by) {
              std::lock_guard lock(mutex);
              acks.emplace_back(e.id, by);
            }};
  }
  std::size_t EscalationsWith(std::int64_t id) {
    std::lock_guard lock(mutex);
    return static_cast<std::size_t>(
        std::count_if(escalations.begin(), escalations.end(), [&](const auto& e) { return e.id == id; }));
  }
  std::size_t AcksOf(std::int64_t id) {
    std::lock_guard lock(mutex);
    return static_cast<std::size_t>(std::count_if(acks.begin(), acks.end(), [&](const auto& a) { return a.first == id; }));
  }
};

// "c" + n (not operator+ on a temporary: GCC 12's -Wrestrict misfires on it at -O3).
std::string Id(int n) {
  std::string id = "c";
  id += std::to_string(n);
  return id;
}

std::vector<std::uint64_t> Seqs(const HistoryPage& page) {
  std::vector<std::uint64_t> out;
  for (const auto& e : page.entries) out.push_back(e.seq);
  return out;
}

// Stops or starts the test server (tests/pg/pg_instance.py halt|resume DIR).
void Server(const char* command) {
  const std::string line = "python3 '" + Env("BACKCHECK_TEST_PG_SCRIPT") + "' " + command + " '" +
                           Env("BACKCHECK_TEST_PG_DIR") + "' >/dev/null";
  REQUIRE(std::system(line.c_str()) == 0);
}

}  // namespace

TEST_CASE("create, load, commit: a round trip") {
  PostgresStore store(FreshDatabase(), Raise, Fast());
  CHECK(LoadNow(store, "c1").status == Loaded::Status::kNotFound);
  CHECK(CommitNow(store, Create("c1")).result == CommitResult::kCommitted);
  CHECK(store.Count() == 1);
  Loaded created = LoadNow(store, "c1");
  REQUIRE(created.status == Loaded::Status::kFound);
  CHECK(created.conversation.seq == 0);
  CHECK(created.conversation.state.state == "welcome");

  CHECK(CommitNow(store, Turn("c1", 0, "it hurts")).result == CommitResult::kCommitted);
  Loaded loaded = LoadNow(store, "c1");
  REQUIRE(loaded.status == Loaded::Status::kFound);
  CHECK(loaded.conversation.seq == 1);
  CHECK(loaded.conversation.state.state == "advising");
  CHECK(loaded.conversation.state.turns == 1);
  auto page = HistoryNow(store, "c1");
  REQUIRE(page);
  REQUIRE(page->entries.size() == 2);
  CHECK(page->entries[0].role == "user");
  CHECK(page->entries[0].text == "it hurts");
  CHECK(page->entries[1].role == "assistant");
  CHECK(page->entries[1].text == "reply to it hurts");
  CHECK(!page->more);
  CHECK(store.Healthy());
  CHECK(CommitNow(store, Create("c1")).result == CommitResult::kConflict);  // the id exists
}

TEST_CASE("a commit on a stale seq is a conflict and writes nothing") {
  const std::string url = FreshDatabase();
  PostgresStore store(url, Raise, Fast());
  CommitNow(store, Create("c1"));
  REQUIRE(CommitNow(store, Turn("c1", 0)).result == CommitResult::kCommitted);
  auto stale = CommitNow(store, Turn("c1", 0, "again", Urgency::kEmergency));
  CHECK(stale.result == CommitResult::kConflict);
  CHECK(!stale.escalation);
  CHECK(LoadNow(store, "c1").conversation.seq == 1);
  CHECK(HistoryNow(store, "c1")->entries.size() == 2);
  CHECK(Sql("SELECT count(*) FROM escalations", url) == "0");
  CHECK(store.Unacknowledged().empty());
  CHECK(CommitNow(store, Turn("nobody", 0)).result == CommitResult::kConflict);  // no such conversation
}

TEST_CASE("two instances on one database: each sees the other's turns; a stale commit conflicts") {
  const std::string url = FreshDatabase();
  PostgresStore a(url, Raise, Fast());
  PostgresStore b(url, Raise, Fast());
  CommitNow(a, Create("c1"));
  REQUIRE(CommitNow(a, Turn("c1", 0, "first")).result == CommitResult::kCommitted);
  Loaded seen = LoadNow(b, "c1");
  REQUIRE(seen.status == Loaded::Status::kFound);
  CHECK(seen.conversation.seq == 1);
  REQUIRE(CommitNow(b, Turn("c1", 1, "second")).result == CommitResult::kCommitted);
  CHECK(CommitNow(a, Turn("c1", 1, "second, from a")).result == CommitResult::kConflict);
  CHECK(LoadNow(a, "c1").conversation.seq == 2);
  auto page = HistoryNow(a, "c1");
  REQUIRE(page);
  CHECK(Seqs(*page) == std::vector<std::uint64_t>{1, 1, 2, 2});
  CHECK(page->entries[2].text == "second");
}

StoredReply FindReplyNow(ConversationStore& store, const std::string& id, const std::string& client_id) {
  std::promise<StoredReply> done;
  store.FindReply(id, client_id, [&](StoredReply r) { done.set_value(std::move(r)); });
  auto future = done.get_future();
  REQUIRE(future.wait_for(20s) == std::future_status::ready);
  return future.get();
}

TEST_CASE("a turn's reply is found by its client id on any instance; instances share one key secret") {
  const std::string url = FreshDatabase();
  PostgresStore a(url, Raise, Fast());
  PostgresStore b(url, Raise, Fast());
  CHECK(a.KeySecret().size() == 32);
  CHECK(a.KeySecret() == b.KeySecret());
  CommitNow(a, Create("c1"));
  CommitNow(a, Create("c2"));
  auto record = Turn("c1", 0, "yes");
  record.client_id = "Ev1";
  record.reply_json = R"({"text":"Thanks."})";
  REQUIRE(CommitNow(a, record).result == CommitResult::kCommitted);
  const StoredReply found = FindReplyNow(b, "c1", "Ev1");
  CHECK(found.status == StoredReply::Status::kFound);
  CHECK(found.seq == 1);
  CHECK(found.reply_json == R"({"text":"Thanks."})");
  CHECK(FindReplyNow(b, "c2", "Ev1").status == StoredReply::Status::kNotFound);
  CHECK(FindReplyNow(a, "c1", "Ev2").status == StoredReply::Status::kNotFound);
  auto stale = Turn("c1", 0, "late");
  stale.client_id = "Ev3";
  stale.reply_json = "{}";
  CHECK(CommitNow(b, stale).result == CommitResult::kConflict);
  CHECK(FindReplyNow(a, "c1", "Ev3").status == StoredReply::Status::kNotFound);
  const std::string secret = a.KeySecret();
  PostgresStore c(url, Raise, Fast());
  CHECK(c.KeySecret() == secret);  // durable: the same after another start
  PostgresStore other(FreshDatabase(), Raise, Fast());
  CHECK(other.KeySecret() != secret);
}

TEST_CASE("an operator's turns keep their author; a message to the operator has no reply") {
  PostgresStore store(FreshDatabase(), Raise, Fast());
  CommitNow(store, Create("c1"));
  REQUIRE(CommitNow(store, Turn("c1", 0, "my back hurts")).result == CommitResult::kCommitted);
  auto said = Turn("c1", 1, "");
  said.reply_text = "Hi, I am Alice from the clinic.";
  said.reply_author = "alice";
  REQUIRE(CommitNow(store, said).result == CommitResult::kCommitted);
  auto to_operator = Turn("c1", 2, "thanks Alice");
  to_operator.reply_text.clear();
  REQUIRE(CommitNow(store, to_operator).result == CommitResult::kCommitted);
  auto page = HistoryNow(store, "c1");
  REQUIRE(page);
  REQUIRE(page->entries.size() == 4);
  CHECK(page->entries[0].role == "user");
  CHECK(page->entries[1].role == "assistant");
  CHECK(page->entries[1].operator_name.empty());
  CHECK(page->entries[2].role == "operator");
  CHECK(page->entries[2].text == "Hi, I am Alice from the clinic.");
  CHECK(page->entries[2].operator_name == "alice");
  CHECK(page->entries[3].role == "user");
  CHECK(page->entries[3].text == "thanks Alice");
  CHECK(Seqs(*page) == std::vector<std::uint64_t>{1, 1, 2, 3});
}

std::vector<AuditEntry> AuditNow(ConversationStore& store, const std::string& id) {
  std::promise<std::optional<std::vector<AuditEntry>>> done;
  store.Audit(id, [&](std::optional<std::vector<AuditEntry>> a) { done.set_value(std::move(a)); });
  auto f = done.get_future();
  REQUIRE(f.wait_for(20s) == std::future_status::ready);
  auto entries = f.get();
  REQUIRE(entries);
  return *entries;
}

TEST_CASE("a state-only change on A makes B's copy stale: B's commit on the same seq conflicts") {
  const std::string url = FreshDatabase();
  PostgresStore a(url, Raise, Fast());
  PostgresStore b(url, Raise, Fast());
  CommitNow(a, Create("c1"));
  REQUIRE(CommitNow(a, Turn("c1", 0)).result == CommitResult::kCommitted);
  const Loaded seen = LoadNow(b, "c1");  // B's copy: seq 1
  auto join = Turn("c1", 1);
  join.has_turn = false;
  join.seq = 1;  // a join changes the state, not the seq
  join.state.operator_name = "alice";
  join.expected_revision = LoadNow(a, "c1").conversation.revision;
  join.audit = AuditEntry{"c1", "join", "alice", 1, join.at_ms};
  REQUIRE(CommitNow(a, join).result == CommitResult::kCommitted);

  auto late = Turn("c1", 1, "no");
  late.expected_revision = seen.conversation.revision;
  CHECK(CommitNow(b, late).result == CommitResult::kConflict);
  const Loaded now = LoadNow(b, "c1");
  CHECK(now.conversation.state.operator_name == "alice");
  CHECK(now.conversation.revision == seen.conversation.revision + 1);
  late.expected_revision = now.conversation.revision;
  CHECK(CommitNow(b, late).result == CommitResult::kCommitted);
}

TEST_CASE("operators' actions are audited with the turn's transaction; an ack keeps its note, on every instance") {
  const std::string url = FreshDatabase();
  PostgresStore a(url, Raise, Fast());
  PostgresStore b(url, Raise, Fast());
  CommitNow(a, Create("c1"));
  auto escalated = CommitNow(a, Turn("c1", 0, "I have chest pain", Urgency::kEmergency));
  REQUIRE(escalated.escalation);
  auto claim = Turn("c1", 1);
  claim.has_turn = false;
  claim.seq = 1;
  claim.audit = AuditEntry{"c1", "claim", "alice", 1, claim.at_ms};
  REQUIRE(CommitNow(a, claim).result == CommitResult::kCommitted);
  auto conflicting = claim;  // on a stale seq: nothing of it, its audit entry neither, is written
  conflicting.expected_seq = 0;
  conflicting.audit->by = "mallory";
  REQUIRE(CommitNow(a, conflicting).result == CommitResult::kConflict);
  CHECK(AckNow(b, escalated.escalation->id, "bob", "phoned them"));
  CHECK_FALSE(AckNow(b, escalated.escalation->id, "carol", "again"));  // acknowledged already: not audited

  for (ConversationStore* store : {static_cast<ConversationStore*>(&a), static_cast<ConversationStore*>(&b)}) {
    const auto audit = AuditNow(*store, "c1");
    REQUIRE(audit.size() == 2);
    CHECK((audit[0].action == "claim" && audit[0].by == "alice" && audit[0].seq == 1));
    CHECK((audit[1].action == "ack" && audit[1].by == "bob" && audit[1].seq == 1));
    CHECK(audit[1].escalation == escalated.escalation->id);
    CHECK(audit[1].note == "phoned them");
    CHECK(audit[1].at_ms >= audit[0].at_ms);
  }
  CHECK(AuditNow(a, "nobody").empty());
}

TEST_CASE("history: in order, paged back with before and turns") {
  PostgresStore store(FreshDatabase(), Raise, Fast());
  CommitNow(store, Create("c1"));
  for (std::uint64_t s = 0; s < 5; ++s) {
    REQUIRE(CommitNow(store, Turn("c1", s, "message " + std::to_string(s + 1))).result == CommitResult::kCommitted);
  }
  auto last = HistoryNow(store, "c1", std::nullopt, 2);
  REQUIRE(last);
  CHECK(Seqs(*last) == std::vector<std::uint64_t>{4, 4, 5, 5});
  CHECK(last->entries[0].text == "message 4");
  CHECK(last->entries[0].role == "user");
  CHECK(last->entries[1].role == "assistant");
  CHECK(last->more);
  auto earlier = HistoryNow(store, "c1", 4, 2);
  REQUIRE(earlier);
  CHECK(Seqs(*earlier) == std::vector<std::uint64_t>{2, 2, 3, 3});
  CHECK(earlier->more);
  auto first = HistoryNow(store, "c1", 2, 2);
  REQUIRE(first);
  CHECK(Seqs(*first) == std::vector<std::uint64_t>{1, 1});
  CHECK(!first->more);
  auto none = HistoryNow(store, "unknown");
  REQUIRE(none);
  CHECK(none->entries.empty());
}

TEST_CASE("an escalation made on A reaches B's operators; an ack on B reaches A's, once") {
  const std::string url = FreshDatabase();
  Heard heard_a, heard_b;  // outlive the stores that call them
  PostgresStore a(url, Raise, Fast());
  PostgresStore b(url, Raise, Fast());
  a.Subscribe(heard_a.listener());
  b.Subscribe(heard_b.listener());

  CommitNow(a, Create("c1"));
  auto made = CommitNow(a, Turn("c1", 0, "numb saddle", Urgency::kEmergency));
  REQUIRE(made.result == CommitResult::kCommitted);
  REQUIRE(made.escalation);
  const std::int64_t id = made.escalation->id;
  CHECK(id > 0);
  CHECK(heard_a.EscalationsWith(id) == 1);  // made here: announced once, at the commit
  REQUIRE(WaitFor([&] { return heard_b.EscalationsWith(id) == 1; }, 5s));
  auto backlog_b = b.Unacknowledged();
  REQUIRE(backlog_b.size() == 1);
  CHECK(backlog_b[0].id == id);
  CHECK(backlog_b[0].conversation == "c1");
  CHECK(backlog_b[0].level == Urgency::kEmergency);
  CHECK(backlog_b[0].flags == std::vector<std::string>{"cauda_equina"});
  CHECK(backlog_b[0].text == "numb saddle");

  // A Load of the conversation on B raises its urgency to the stored escalation's.
  // (The stored state is put back to no urgency, as if the escalating turn had not been written.)
  Sql("UPDATE conversations SET state = replace(state, '\"urgency\":\"emergency\"', '\"urgency\":\"none\"')", url);
  CHECK(Sql("SELECT state LIKE '%\"urgency\":\"none\"%' FROM conversations", url) == "t");
  CHECK(LoadNow(b, "c1").conversation.state.urgency == Urgency::kEmergency);

  CHECK(AckNow(b, id, "nurse kim"));
  CHECK(heard_b.AcksOf(id) == 1);
  REQUIRE(WaitFor([&] { return heard_a.AcksOf(id) == 1; }, 5s));
  {
    std::lock_guard lock(heard_a.mutex);
    CHECK(heard_a.acks[0].second == "nurse kim");
  }
  CHECK(a.Unacknowledged().empty());
  CHECK(b.Unacknowledged().empty());
  CHECK(!AckNow(a, id, "someone else"));  // acknowledged already
  CHECK(Sql("SELECT acked_by FROM escalations WHERE id = " + std::to_string(id), url) == "nurse kim");
  std::this_thread::sleep_for(300ms);  // later notifications and re-reads announce nothing again
  CHECK(heard_a.AcksOf(id) == 1);
  CHECK(heard_b.AcksOf(id) == 1);
  CHECK(heard_a.EscalationsWith(id) == 1);
  CHECK(heard_b.EscalationsWith(id) == 1);

  // A third instance starting now holds no acknowledged escalation; an unacknowledged one, yes.
  auto again = CommitNow(b, Turn("c1", 1, "still numb", Urgency::kEmergency));
  REQUIRE(again.result == CommitResult::kCommitted);
  PostgresStore c(url, Raise, Fast());
  auto backlog_c = c.Unacknowledged();
  REQUIRE(backlog_c.size() == 1);
  CHECK(backlog_c[0].id == again.escalation->id);
}

TEST_CASE("a newer or foreign schema, or no database, is refused with a clear message") {
  SECTION("newer") {
    const std::string url = FreshDatabase();
    { PostgresStore first(url); }  // migrates
    CHECK(Sql("SELECT max(version) FROM schema_migrations", url) == std::to_string(PostgresStore::kSchemaVersion));
    { PostgresStore again(url); }  // opens its own schema again
    Sql("INSERT INTO schema_migrations VALUES (" + std::to_string(PostgresStore::kSchemaVersion + 1) +
            ", 'from the future', 0)",
        url);
    CHECK_THROWS_WITH(PostgresStore(url), Catch::Contains("newer than this server knows"));
  }
  SECTION("tables without a migrations record") {
    const std::string url = FreshDatabase();
    Sql("CREATE TABLE conversations (x integer)", url);
    CHECK_THROWS_WITH(PostgresStore(url), Catch::Contains("no schema_migrations record"));
    CHECK(Sql("SELECT to_regclass('schema_migrations') IS NULL", url) == "t");  // nothing changed
  }
  SECTION("another application's schema_migrations") {
    const std::string url = FreshDatabase();
    Sql("CREATE TABLE schema_migrations (version varchar PRIMARY KEY)", url);
    CHECK_THROWS_WITH(PostgresStore(url), Catch::Contains("not Backcheck's"));
  }
  SECTION("a record this server did not write") {
    const std::string url = FreshDatabase();
    Sql("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)",
        url);
    Sql("INSERT INTO schema_migrations VALUES (1, 'something else', 0)", url);
    CHECK_THROWS_WITH(PostgresStore(url), Catch::Contains("foreign schema"));
  }
  SECTION("unreachable") {
    CHECK_THROWS_WITH(PostgresStore(UrlFor("no_such_database")), Catch::Contains("cannot be reached"));
  }
}

// Schema version 1 as its migration made it (a copy: migrations are never edited), for the
// upgrade case below.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL);
INSERT INTO schema_migrations VALUES (1, 'conversations, turns, escalations', 0);
CREATE TABLE conversations (id text PRIMARY KEY, state text NOT NULL, seq bigint NOT NULL,
                            created_at bigint NOT NULL, last_active bigint NOT NULL);
CREATE INDEX conversations_idle ON conversations (last_active);
CREATE TABLE turns (conversation text NOT NULL, seq bigint NOT NULL,
                    role text NOT NULL CHECK (role IN ('user', 'assistant', 'operator')),
                    text text NOT NULL, at bigint NOT NULL, PRIMARY KEY (conversation, seq, role));
CREATE TABLE escalations (id bigserial PRIMARY KEY, conversation text NOT NULL, level text NOT NULL,
                          flags text NOT NULL, text text NOT NULL, at bigint NOT NULL, acked_at bigint,
                          acked_by text);
CREATE INDEX escalations_unacked ON escalations (id) WHERE acked_at IS NULL;
CREATE INDEX escalations_conversation ON escalations (conversation);
CREATE TABLE store_probe (id integer PRIMARY KEY CHECK (id = 1), at bigint NOT NULL);
)sql";

// A SQL string literal.
std::string Quoted(const std::string& s) {
  std::string out = "'";
  for (char ch : s) {
    out += ch;
    if (ch == '\'') out += '\'';
  }
  return out + "'";
}

TEST_CASE("a version 1 database is upgraded: its conversations, turns and escalations read back the same") {
  const std::string url = FreshDatabase();
  Sql(kSchemaV1, url);
  // Rows as version 1's store wrote them: the state as nlohmann's JSON (no "v"), two turn rows a
  // seq (user, assistant), an unacknowledged escalation.
  backcheck::dialog::ConversationState state;
  state.state = "advising";
  state.turns = 3;
  state.urgency = Urgency::kSeeDoctor;
  state.flags = {"night_pain"};
  const std::string json = nlohmann::json(state).dump();
  Sql("INSERT INTO conversations VALUES ('old', " + Quoted(json) + ", 3, 1000, 5000), "
      "('quiet', " + Quoted(nlohmann::json(backcheck::dialog::ConversationState{}).dump()) + ", 0, 1000, 1000)", url);
  Sql("INSERT INTO turns VALUES "
      "('old', 1, 'user', 'my back hurts', 2000), ('old', 1, 'assistant', 'since when?', 2000), "
      "('old', 2, 'assistant', 'and at night?', 3000), ('old', 2, 'user', 'a week, it''s worse', 3000), "
      "('old', 3, 'user', 'yes', 5000), ('old', 3, 'assistant', 'see a doctor', 5000)", url);
  Sql("INSERT INTO escalations (conversation, level, flags, text, at) "
      "VALUES ('old', 'see_doctor', '[\"night_pain\"]', 'yes', 5000)", url);

  PostgresStore store(url, Raise, Fast());
  CHECK(Sql("SELECT max(version) FROM schema_migrations", url) == std::to_string(PostgresStore::kSchemaVersion));
  CHECK(store.Count() == 2);
  Loaded loaded = LoadNow(store, "old");
  REQUIRE(loaded.status == Loaded::Status::kFound);
  CHECK(loaded.conversation.seq == 3);
  CHECK(loaded.conversation.last_active_ms == 5000);
  CHECK(loaded.conversation.state.state == "advising");
  CHECK(loaded.conversation.state.turns == 3);
  CHECK(loaded.conversation.state.urgency == Urgency::kSeeDoctor);
  CHECK(loaded.conversation.state.flags == std::vector<std::string>{"night_pain"});
  CHECK(LoadNow(store, "quiet").conversation.seq == 0);

  auto page = HistoryNow(store, "old");
  REQUIRE(page);
  REQUIRE(page->entries.size() == 6);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"user", "my back hurts"}, {"assistant", "since when?"}, {"user", "a week, it's worse"},
      {"assistant", "and at night?"}, {"user", "yes"}, {"assistant", "see a doctor"}};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CHECK(page->entries[i].role == expected[i].first);
    CHECK(page->entries[i].text == expected[i].second);
    CHECK(page->entries[i].seq == i / 2 + 1);
  }
  auto last = HistoryNow(store, "old", std::nullopt, 1);
  REQUIRE(last);
  CHECK(Seqs(*last) == std::vector<std::uint64_t>{3, 3});
  CHECK(last->more);

  auto backlog = store.Unacknowledged();
  REQUIRE(backlog.size() == 1);
  CHECK(backlog[0].conversation == "old");
  CHECK(backlog[0].flags == std::vector<std::string>{"night_pain"});

  // The upgraded conversation goes on; the old shape is still readable by hand.
  CHECK(CommitNow(store, Turn("old", 3, "still hurts")).result == CommitResult::kCommitted);
  CHECK(CommitNow(store, Turn("old", 3, "stale")).result == CommitResult::kConflict);
  CHECK(HistoryNow(store, "old")->entries.size() == 8);
  CHECK(Sql("SELECT count(*) FROM turns WHERE conversation = 'old'", url) == "8");
  CHECK(Sql("SELECT text FROM turns WHERE conversation = 'old' AND seq = 2 AND role = 'user'", url) ==
        "a week, it's worse");
  CHECK(Sql("SELECT to_regclass('conversations_idle') IS NULL", url) == "t");
}

TEST_CASE("two instances starting at once on an empty database both start") {
  const std::string url = FreshDatabase();
  std::atomic<int> refused{0};
  auto start = [&] {
    try {
      PostgresStore s(url);
    } catch (const StoreError&) {
      ++refused;
    }
  };
  std::thread t1(start), t2(start);
  t1.join();
  t2.join();
  CHECK(refused == 0);
  CHECK(Sql("SELECT count(*) FROM schema_migrations", url) == std::to_string(PostgresStore::kSchemaVersion));
}

TEST_CASE("many commits from several threads land, several per transaction; a conflict fails only itself") {
  const std::string url = FreshDatabase();
  PostgresStore store(url, Raise, Fast());
  constexpr int kThreads = 8, kTurns = 40;
  for (int t = 0; t < kThreads; ++t) CommitNow(store, Create(Id(t)));
  const auto commits_before = store.Commits();
  std::atomic<int> committed{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Each thread queues its conversation's turns without waiting: they commit in call order.
      std::vector<std::future<void>> pending;
      for (std::uint64_t s = 0; s < kTurns; ++s) {
        auto p = std::make_shared<std::promise<void>>();
        pending.push_back(p->get_future());
        store.Commit(Turn(Id(t), s), [&, p](CommitResult r, const std::optional<EscalationEvent>&) {
          (r == CommitResult::kCommitted ? committed : other)++;
          p->set_value();
        });
      }
      for (auto& f : pending) f.wait();
    });
  }
  for (auto& t : threads) t.join();
  CHECK(committed == kThreads * kTurns);
  CHECK(other == 0);
  const auto transactions = store.Commits() - commits_before;
  INFO("transactions: " << transactions);
  CHECK(transactions < static_cast<std::uint64_t>(kThreads * kTurns) / 2);  // more than 2 turns per commit
  CHECK(Sql("SELECT count(*) FROM turns", url) == std::to_string(2 * kThreads * kTurns));
  CHECK(LoadNow(store, "c3").conversation.seq == kTurns);

  // A stale record queued among good ones: it conflicts, they commit.
  std::vector<std::future<CommitResult>> results;
  for (int t = 0; t < kThreads; ++t) {
    auto p = std::make_shared<std::promise<CommitResult>>();
    results.push_back(p->get_future());
    const std::uint64_t expected = t == 2 ? 3 : kTurns;  // c2's is stale
    store.Commit(Turn(Id(t), expected),
                 [p](CommitResult r, const std::optional<EscalationEvent>&) { p->set_value(r); });
  }
  for (int t = 0; t < kThreads; ++t) {
    CHECK(results[static_cast<std::size_t>(t)].get() == (t == 2 ? CommitResult::kConflict : CommitResult::kCommitted));
  }
  CHECK(LoadNow(store, "c2").conversation.seq == kTurns);
  CHECK(LoadNow(store, "c5").conversation.seq == kTurns + 1);
}

TEST_CASE("one batch: a conversation's several records in order, creates, deletes and conflicts among them") {
  const std::string url = FreshDatabase();
  Heard heard;  // outlives the store that calls it
  PostgresStore store(url, Raise, Fast());
  store.Subscribe(heard.listener());
  CommitNow(store, Create("old"));
  const auto before = store.Commits();
  // Queued from a commit's callback, which runs on the writer: all of them make the next batch.
  std::vector<TurnRecord> records;
  records.push_back(Create("n1"));
  records.push_back(Turn("n1", 0, "first"));
  records.push_back(Turn("n1", 1, "second", Urgency::kUrgent));
  records.push_back(Turn("n1", 1, "second again"));  // stale: n1 is at 2 by now
  records.push_back(Turn("old", 0, "old one"));  // stale: the first commit took seq 1
  records.push_back(Create("n2"));
  TurnRecord gone;
  gone.kind = TurnRecord::Kind::kDelete;
  gone.conversation = "n2";
  records.push_back(gone);
  records.push_back(Create("n2"));  // again, after its delete
  records.push_back(Create("old"));  // exists
  records.push_back(Turn("nobody", 0));
  records.push_back(Turn("n1", 2, "third", Urgency::kEmergency));
  const std::vector<CommitResult> expected = {
      CommitResult::kCommitted, CommitResult::kCommitted, CommitResult::kCommitted, CommitResult::kConflict,
      CommitResult::kConflict,  CommitResult::kCommitted, CommitResult::kCommitted, CommitResult::kCommitted,
      CommitResult::kConflict,  CommitResult::kConflict,  CommitResult::kCommitted};
  std::mutex m;
  std::vector<std::pair<std::size_t, Committed>> answered;  // in the order the callbacks ran
  std::promise<void> all;
  std::promise<void> first;
  store.Commit(Turn("old", 0, "the first, alone"), [&](CommitResult, const std::optional<EscalationEvent>&) {
    for (std::size_t i = 0; i < records.size(); ++i) {
      store.Commit(records[i], [&, i](CommitResult r, const std::optional<EscalationEvent>& e) {
        std::lock_guard lock(m);
        answered.emplace_back(i, Committed{r, e});
        if (answered.size() == records.size()) all.set_value();
      });
    }
    first.set_value();
  });
  first.get_future().wait();
  REQUIRE(all.get_future().wait_for(20s) == std::future_status::ready);
  CHECK(store.Commits() - before == 2);  // the first alone, then the rest in one transaction
  REQUIRE(answered.size() == records.size());
  for (std::size_t i = 0; i < answered.size(); ++i) {
    INFO("record " << i);
    CHECK(answered[i].first == i);  // in call order
    CHECK(answered[i].second.result == expected[i]);
  }
  // records[4] was computed on seq 0, which the first commit had taken: a conflict.
  CHECK(LoadNow(store, "old").conversation.seq == 1);
  REQUIRE(answered[2].second.escalation);
  REQUIRE(answered[10].second.escalation);
  CHECK(answered[2].second.escalation->id < answered[10].second.escalation->id);
  CHECK(answered[10].second.escalation->conversation == "n1");
  CHECK(heard.EscalationsWith(answered[2].second.escalation->id) == 1);
  Loaded n1 = LoadNow(store, "n1");
  CHECK(n1.conversation.seq == 3);
  CHECK(n1.conversation.state.turns == 3);
  auto page = HistoryNow(store, "n1");
  REQUIRE(page);
  REQUIRE(page->entries.size() == 6);
  CHECK(page->entries[0].text == "first");
  CHECK(page->entries[2].text == "second");
  CHECK(page->entries[4].text == "third");
  CHECK(page->entries[5].text == "reply to third");
  CHECK(LoadNow(store, "n2").status == Loaded::Status::kFound);
  CHECK(Sql("SELECT count(*) FROM escalations", url) == "2");
  CHECK(store.Count() == 3);  // old, n1, n2
}

TEST_CASE("a record the database refuses fails alone; the rest of its batch commits") {
  const std::string url = FreshDatabase();
  PostgresStore store(url, Raise, Fast());
  for (int t = 0; t < 6; ++t) CommitNow(store, Create(Id(t)));
  std::vector<std::future<CommitResult>> results;
  // Queued from a callback so they are in one batch; the third has invalid UTF-8, which the
  // database refuses (the server validates frames, so this stands for any refused record).
  std::promise<void> queued;
  store.Commit(Turn("c0", 0), [&](CommitResult, const std::optional<EscalationEvent>&) { queued.set_value(); });
  queued.get_future().wait();
  std::mutex m;
  {
    std::lock_guard lock(m);
    for (int t = 1; t < 6; ++t) {
      auto p = std::make_shared<std::promise<CommitResult>>();
      results.push_back(p->get_future());
      store.Commit(Turn(Id(t), 0, t == 3 ? std::string("bad \xff byte") : std::string("fine")),
                   [p](CommitResult r, const std::optional<EscalationEvent>&) { p->set_value(r); });
    }
  }
  for (int t = 1; t < 6; ++t) {
    CHECK(results[static_cast<std::size_t>(t - 1)].get() ==
          (t == 3 ? CommitResult::kUnavailable : CommitResult::kCommitted));
  }
  CHECK(store.Healthy());
  CHECK(LoadNow(store, "c3").conversation.seq == 0);
  CHECK(LoadNow(store, "c4").conversation.seq == 1);
}

TEST_CASE("the database stopped: kUnavailable at once; back by itself; the failed escalation is delivered") {
  if (Env("BACKCHECK_TEST_PG_DIR").empty() || Env("BACKCHECK_TEST_PG_SCRIPT").empty()) {
    WARN("BACKCHECK_TEST_PG_DIR / _PG_SCRIPT unset (not run under pg_instance.py run): outage case skipped");
    return;
  }
  const std::string url = FreshDatabase();
  Heard heard;  // outlives the store that calls it
  PostgresStore store(url, Raise, Fast());
  store.Subscribe(heard.listener());
  CommitNow(store, Create("c1"));
  REQUIRE(CommitNow(store, Turn("c1", 0)).result == CommitResult::kCommitted);

  Server("halt");
  // Its text is not UTF-8: the turn would be refused anyway; the escalation still reaches an
  // operator (with U+FFFD for the bad byte), and does not hold up the others.
  CHECK(CommitNow(store, Turn("c1", 1, "numb \xff", Urgency::kUrgent)).result == CommitResult::kUnavailable);
  // No client waits on a database that is away: each call below answers (CommitNow and the
  // others fail the test if a completion does not come within their bound), and with
  // kUnavailable. No timing is asserted here: this machine may be loaded.
  auto failed = CommitNow(store, Turn("c1", 1, "cannot feel my legs", Urgency::kEmergency));
  CHECK(failed.result == CommitResult::kUnavailable);
  CHECK(!failed.escalation);
  CHECK(!store.Healthy());
  // Known to be away now: this one fails before it is queued; its escalation is kept too.
  CHECK(CommitNow(store, Turn("c1", 1, "and my bladder", Urgency::kEmergency)).result == CommitResult::kUnavailable);
  CHECK(LoadNow(store, "c1").status == Loaded::Status::kUnavailable);
  CHECK(!HistoryNow(store, "c1"));
  CHECK(!AckNow(store, 1, "nobody"));
  {
    std::lock_guard lock(heard.mutex);
    CHECK(heard.escalations.empty());
  }

  Server("resume");
  REQUIRE(WaitFor([&] { return store.Healthy(); }, 15s));  // by itself: no commit needed
  REQUIRE(WaitFor([&] { return store.Unacknowledged().size() == 3; }, 5s));
  {
    std::lock_guard lock(heard.mutex);
    REQUIRE(heard.escalations.size() == 3);  // each once
    CHECK(heard.escalations[0].text == "numb \xEF\xBF\xBD");
    CHECK(heard.escalations[1].text == "cannot feel my legs");
    CHECK(heard.escalations[2].text == "and my bladder");
    CHECK(heard.escalations[1].conversation == "c1");
    CHECK(heard.escalations[1].id != heard.escalations[2].id);
  }
  CHECK(Sql("SELECT count(*) FROM escalations", url) == "3");
  Loaded after = LoadNow(store, "c1");
  REQUIRE(after.status == Loaded::Status::kFound);
  CHECK(after.conversation.seq == 1);  // the failed turn is not there...
  CHECK(after.conversation.state.urgency == Urgency::kEmergency);  // ...its urgency is
  CHECK(CommitNow(store, Turn("c1", 1)).result == CommitResult::kCommitted);
  CHECK(HistoryNow(store, "c1")->entries.size() == 4);

  // Away again with no traffic at all: Healthy() says so without waiting for a turn.
  Server("halt");
  CHECK(WaitFor([&] { return !store.Healthy(); }, 15s));  // a bound, not a timing: CI machines are busy
  Server("resume");
  CHECK(WaitFor([&] { return store.Healthy(); }, 15s));
}

TEST_CASE("connections killed mid-stream: every commit reported committed is stored, seqs without gaps") {
  const std::string url = FreshDatabase();
  PostgresStore store(url, Raise, Fast());
  constexpr int kClients = 4;
  for (int t = 0; t < kClients; ++t) CommitNow(store, Create(Id(t)));
  std::atomic<bool> stop{false};
  // What each client was told is committed: "seq:text", every text unique.
  std::vector<std::vector<std::string>> told(kClients);
  std::atomic<int> unavailable{0}, hung{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t) {
    clients.emplace_back([&, t] {
      std::uint64_t seq = 0;
      for (int attempt = 0; !stop; ++attempt) {
        const std::string text = "attempt " + std::to_string(attempt);
        const auto c = CommitWait(store, Turn(Id(t), seq, text));
        if (!c) {
          ++hung;
          return;
        }
        const auto r = c->result;
        if (r == CommitResult::kCommitted) {
          told[static_cast<std::size_t>(t)].push_back(std::to_string(++seq) + ":" + text);
          continue;
        }
        // Unavailable or a conflict (a commit whose outcome was unknown did land): reload, go on.
        if (r == CommitResult::kUnavailable) ++unavailable;
        std::this_thread::sleep_for(20ms);
        auto l = LoadWait(store, Id(t));
        if (!l) {
          ++hung;
          return;
        }
        if (l->status == Loaded::Status::kFound) seq = l->conversation.seq;
      }
    });
  }
  const std::string kill =
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'backcheck' "
      "AND datname = current_database() AND pid <> pg_backend_pid()";
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(300ms);
    CHECK(std::stoi(Sql(kill, url)) >= 1);  // the writer at least (the reader reconnects when asked)
  }
  std::this_thread::sleep_for(500ms);
  stop = true;
  for (auto& c : clients) c.join();
  CHECK(hung == 0);
  INFO("unavailable: " << unavailable);
  for (int t = 0; t < kClients; ++t) {
    const auto& mine = told[static_cast<std::size_t>(t)];
    REQUIRE(!mine.empty());
    const std::string where = " FROM turns WHERE conversation = '" + Id(t) + "'";
    // Every seq 1..max once, both rows: no gap, no duplicate.
    const std::string max_seq = Sql("SELECT COALESCE(max(seq), 0)" + where, url);
    CHECK(Sql("SELECT count(*) || ',' || count(DISTINCT seq)" + where, url) ==
          std::to_string(2 * std::stoull(max_seq)) + "," + max_seq);
    // Every turn a client was told is committed is there, with its text.
    const std::string stored = "," + Sql("SELECT string_agg(seq || ':' || text, ',')" + where + " AND role = 'user'", url) + ",";
    std::size_t missing = 0;
    for (const auto& turn : mine) missing += stored.find("," + turn + ",") == std::string::npos;
    CHECK(missing == 0);
  }
  CHECK(WaitFor([&] { return store.Healthy(); }, 10s));
}

TEST_CASE("a store shut down with commits queued commits them first") {
  const std::string url = FreshDatabase();
  {
    PostgresStore store(url, Raise, Fast());
    CommitNow(store, Create("c1"));
    for (std::uint64_t s = 0; s < 30; ++s) store.Commit(Turn("c1", s), [](CommitResult, const auto&) {});
  }
  PostgresStore again(url, Raise, Fast());
  CHECK(LoadNow(again, "c1").conversation.seq == 30);
}

TEST_CASE("purge deletes idle conversations with their turns; Count follows") {
  const std::string url = FreshDatabase();
  PostgresStore store(url, Raise, Fast());
  const std::int64_t now = UnixMillis();
  auto at = [](TurnRecord r, std::int64_t ms) {
    r.at_ms = ms;
    return r;
  };
  CommitNow(store, at(Create("idle"), now - 100'000));
  CommitNow(store, at(Turn("idle", 0), now - 100'000));
  CommitNow(store, at(Create("empty"), now - 20'000));       // never had a message
  CommitNow(store, at(Create("active"), now - 20'000));
  CommitNow(store, at(Turn("active", 0), now - 20'000));
  CHECK(store.Count() == 3);
  store.Purge(now - 50'000, now - 10'000, 0);
  REQUIRE(WaitFor([&] { return store.Count() == 1; }, 5s));
  CHECK(LoadNow(store, "idle").status == Loaded::Status::kNotFound);
  CHECK(LoadNow(store, "empty").status == Loaded::Status::kNotFound);
  CHECK(LoadNow(store, "active").status == Loaded::Status::kFound);
  CHECK(Sql("SELECT count(*) FROM turns", url) == "2");  // the active conversation's turn only
  // Deleting a conversation that never had a message; one that had messages stays.
  CommitNow(store, Create("fresh"));
  TurnRecord gone;
  gone.kind = TurnRecord::Kind::kDelete;
  gone.conversation = "fresh";
  CHECK(CommitNow(store, gone).result == CommitResult::kCommitted);
  CHECK(LoadNow(store, "fresh").status == Loaded::Status::kNotFound);
  gone.conversation = "active";
  CommitNow(store, gone);
  CHECK(LoadNow(store, "active").status == Loaded::Status::kFound);
  CHECK(store.Count() == 1);
}

TEST_CASE("review entries are kept with their turn only, read and deleted by backcheck review, purged by age") {
  const std::string url = FreshDatabase();
  PostgresStore store(url, Raise, Fast());
  CommitNow(store, Create("c"));
  TurnRecord kept = Turn("c", 0, "zorblax flimflam");
  kept.review = ReviewEntry{"zorblax flimflam", kept.at_ms - 10, "welcome", 0, "fallback"};
  REQUIRE(CommitNow(store, kept).result == CommitResult::kCommitted);
  TurnRecord retrieved = Turn("c", 1, "the rhomboid muscles");
  retrieved.review = ReviewEntry{"the rhomboid muscles", retrieved.at_ms, "advising", 15.5625, "muscles"};
  REQUIRE(CommitNow(store, retrieved).result == CommitResult::kCommitted);
  CommitNow(store, Turn("c", 2, "what should I tell the doctor"));  // answered: nothing to review
  // A conflicting turn writes no review entry either.
  TurnRecord conflict = Turn("c", 0, "late");
  conflict.review = ReviewEntry{"late", conflict.at_ms, "welcome", 0, "fallback"};
  CHECK(CommitNow(store, conflict).result == CommitResult::kConflict);

  auto entries = ReadReviewPostgres(url);
  REQUIRE(entries.size() == 2);
  CHECK(entries[0].text == "zorblax flimflam");
  CHECK(entries[0].state == "welcome");
  CHECK(entries[0].intent == "fallback");
  CHECK(entries[0].score == 0);
  CHECK(entries[1].text == "the rhomboid muscles");
  CHECK(entries[1].score == Approx(15.5625));
  CHECK(entries[1].at_ms == retrieved.at_ms);
  // The purge drops entries older than the review cutoff and keeps the conversation (active).
  store.Purge(0, 0, retrieved.at_ms);
  REQUIRE(WaitFor([&] { return ReadReviewPostgres(url).size() == 1; }, 5s));
  CHECK(LoadNow(store, "c").status == Loaded::Status::kFound);
  CHECK(DeleteReviewPostgres(url, INT64_MAX) == 1);
  CHECK(ReadReviewPostgres(url).empty());
}

int main(int argc, char** argv) {
  if (Env("BACKCHECK_TEST_DATABASE_URL").empty()) {
    std::cout << "postgres_store_test: BACKCHECK_TEST_DATABASE_URL is not set; skipped (run it through "
                 "tests/pg/pg_instance.py run -- ...)\n";
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
