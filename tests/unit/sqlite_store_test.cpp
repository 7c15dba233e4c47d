// The durable store: what is persisted comes back after reopening; bad files are refused.
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <random>

#include "server/sqlite_store.hpp"

namespace fs = std::filesystem;
using namespace backcheck::server;

namespace {

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("backcheck-store-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  fs::path db() const { return path_ / "backcheck.db"; }

 private:
  fs::path path_;
};

// Persists and waits until durable; returns the escalation as stored.
std::optional<EscalationEvent> PersistNow(ConversationStore& store, TurnRecord record, bool expect_ok = true) {
  std::promise<std::optional<EscalationEvent>> done;
  store.Persist(std::move(record), [&](bool ok, const std::optional<EscalationEvent>& e) {
    CHECK(ok == expect_ok);
    done.set_value(e);
  });
  return done.get_future().get();
}

bool AckNow(ConversationStore& store, std::int64_t id) {
  std::promise<bool> done;
  store.Acknowledge(id, [&](bool found) { done.set_value(found); });
  return done.get_future().get();
}

// A new conversation's record (a turn's record updates the row only if it exists with seq - 1).
TurnRecord Created(const std::string& id, const backcheck::dialog::ConversationState& state) {
  TurnRecord r;
  r.kind = TurnRecord::Kind::kCreate;
  r.conversation = id;
  r.state_json = nlohmann::json(state).dump();
  r.at_ms = UnixMillis();
  return r;
}

TurnRecord Turn(const std::string& id, std::uint64_t seq, const std::string& user, const std::string& reply,
                const backcheck::dialog::ConversationState& state) {
  TurnRecord r;
  r.conversation = id;
  r.seq = seq;
  r.expected_seq = seq - 1;
  r.has_turn = true;
  r.user_text = user;
  r.reply_text = reply;
  r.state_json = nlohmann::json(state).dump();
  r.at_ms = UnixMillis();
  return r;
}

}  // namespace

TEST_CASE("conversations, turns and unacknowledged escalations come back after reopening", "[sqlite]") {
  TempDir dir;
  backcheck::dialog::ConversationState state;
  state.state = "escalated";
  state.urgency = backcheck::knowledge::Urgency::kEmergency;
  state.flags = {"shortness_of_breath"};
  std::int64_t first_id = 0;
  {
    SqliteStore store(dir.db());
    CHECK(store.Size() == 0);
    PersistNow(store, Created("c1", {}));
    PersistNow(store, Created("c2", {}));
    PersistNow(store, Turn("c1", 1, "hi", "hello", state));
    auto record = Turn("c1", 2, "I'm short of breath", "Call now", state);
    record.escalation = EscalationEvent{0, "c1", state.urgency, {"shortness_of_breath"}, "I'm short of breath", 1};
    auto stored = PersistNow(store, record);
    REQUIRE(stored);
    first_id = stored->id;
    CHECK(first_id > 0);
    record = Turn("c2", 1, "chest pain", "Call now", state);
    record.escalation = EscalationEvent{0, "c2", state.urgency, {"chest_pain"}, "chest pain", 2};
    PersistNow(store, record);
    CHECK(store.Unacknowledged().size() == 2);
    CHECK(AckNow(store, first_id));
    CHECK_FALSE(AckNow(store, first_id));  // once
    CHECK_FALSE(AckNow(store, 12345));
  }
  SqliteStore reopened(dir.db());
  REQUIRE(reopened.Size() == 2);
  auto c1 = reopened.Find("c1");
  REQUIRE(c1);
  CHECK(c1->seq == 2);
  CHECK(c1->state == state);
  REQUIRE(c1->history.size() == 4);
  CHECK(c1->history[0].role == "user");
  CHECK(c1->history[0].text == "hi");
  CHECK(c1->history[1].role == "assistant");
  CHECK(c1->history[3].text == "Call now");
  CHECK(c1->history[3].seq == 2);
  auto backlog = reopened.Unacknowledged();
  REQUIRE(backlog.size() == 1);  // the acknowledged one stays acknowledged
  CHECK(backlog[0].conversation == "c2");
  CHECK(backlog[0].flags == std::vector<std::string>{"chest_pain"});
  CHECK(backlog[0].id > first_id);
}

TEST_CASE("idle conversations are purged from the database too", "[sqlite]") {
  TempDir dir;
  backcheck::dialog::ConversationState state;
  state.state = "advising";
  {
    SqliteStore store(dir.db());
    PersistNow(store, Created("old", state));
    PersistNow(store, Turn("old", 1, "hi", "hello", state));
    store.Insert("old", state, Clock::now(), 10);
    CHECK(store.PurgeIdle(Clock::now() + std::chrono::hours(1), Clock::now()) == 1);
    CHECK_FALSE(store.Find("old"));
  }
  SqliteStore reopened(dir.db());
  CHECK(reopened.Size() == 0);
}

TEST_CASE("a file that is not a database is refused and left as it was", "[sqlite]") {
  TempDir dir;
  std::ofstream(dir.db()) << "this is not a database, it is a shopping list";
  CHECK_THROWS_WITH(SqliteStore(dir.db()), Catch::Contains("is not a valid SQLite database") &&
                                               Catch::Contains(dir.db().string()));
  std::ifstream in(dir.db());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text == "this is not a database, it is a shopping list");
}

TEST_CASE("a database from a newer server is refused", "[sqlite]") {
  TempDir dir;
  { SqliteStore store(dir.db()); }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(dir.db().c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "INSERT INTO schema_migrations (version, applied_at) VALUES (7, 0)", nullptr, nullptr,
                       nullptr) == SQLITE_OK);
  sqlite3_close(db);
  CHECK_THROWS_WITH(SqliteStore(dir.db()), Catch::Contains("schema version 7, newer than this server knows (" +
                                                        std::to_string(SqliteStore::kSchemaVersion) + ")"));
}

TEST_CASE("a turn computed on a seq the store does not hold writes nothing", "[sqlite]") {
  TempDir dir;
  backcheck::dialog::ConversationState state;
  state.state = "advising";
  {
    SqliteStore store(dir.db());
    PersistNow(store, Created("c1", state));
    PersistNow(store, Turn("c1", 1, "hi", "hello", state));
    // Seq 3 on top of 1: the turn with seq 2 never committed (e.g. the disk was full).
    auto gap = Turn("c1", 3, "I can't breathe", "Call now", state);
    gap.escalation = EscalationEvent{0, "c1", backcheck::knowledge::Urgency::kEmergency, {"shortness_of_breath"},
                                     "I can't breathe", 1};
    CHECK_FALSE(PersistNow(store, gap, /*expect_ok=*/false));
    PersistNow(store, Turn("c1", 2, "what is doms", "DOMS is...", state));
  }
  SqliteStore reopened(dir.db());
  auto c1 = reopened.Find("c1");
  REQUIRE(c1);
  CHECK(c1->seq == 2);
  REQUIRE(c1->history.size() == 4);
  CHECK(c1->history[3].seq == 2);
}

TEST_CASE("an escalation whose turn failed is retried alone and raises the urgency on load", "[sqlite]") {
  TempDir dir;
  backcheck::dialog::ConversationState state;
  state.state = "advising";
  std::promise<EscalationEvent> retried;
  {
    SqliteStore store(dir.db());
    store.SetRetriedEscalationListener([&](const EscalationEvent& e) { retried.set_value(e); });
    PersistNow(store, Created("c1", state));
    auto gap = Turn("c1", 2, "I can't breathe", "Call now", state);  // seq 1 is missing: fails
    gap.escalation = EscalationEvent{0, "c1", backcheck::knowledge::Urgency::kEmergency, {"shortness_of_breath"},
                                     "I can't breathe", 1};
    PersistNow(store, gap, /*expect_ok=*/false);
    auto event = retried.get_future().get();  // the writer retries it by itself
    CHECK(event.id > 0);
    CHECK(event.conversation == "c1");
    REQUIRE(store.Unacknowledged().size() == 1);
  }
  std::vector<std::string> raised;
  SqliteStore reopened(dir.db(), [&](backcheck::dialog::ConversationState& s, const EscalationEvent& e) {
    s.urgency = std::max(s.urgency, e.level);
    raised.push_back(e.conversation);
  });
  CHECK(raised == std::vector<std::string>{"c1"});
  auto c1 = reopened.Find("c1");
  REQUIRE(c1);
  CHECK(c1->seq == 0);  // the turn itself is not there
  CHECK(c1->state.urgency == backcheck::knowledge::Urgency::kEmergency);
  CHECK(c1->durable_state.urgency == backcheck::knowledge::Urgency::kEmergency);
}
