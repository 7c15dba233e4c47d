// The embedded durable store: what is committed comes back after reopening; bad files, newer
// schemas and a second process on the same data directory are refused. Every callback runs on
// one of the store's threads: the tests wait for it through a future.
#include <sqlite3.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <random>
#include <thread>

#include "server/store/sqlite_store.hpp"

namespace fs = std::filesystem;
using namespace backcheck::server;
using backcheck::dialog::ConversationState;
using backcheck::knowledge::Urgency;

namespace {

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("backcheck-store-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  fs::path db() const { return path_ / "backcheck.db"; }

 private:
  fs::path path_;
};

// A callback's value, waited for with a bound (a lost callback fails the test instead of
// hanging it; nothing here is timed).
template <typename T>
T Wait(std::future<T> future) {
  REQUIRE(future.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  return future.get();
}

struct Committed {
  CommitResult result;
  std::optional<EscalationEvent> escalation;
};
Committed CommitNow(ConversationStore& store, TurnRecord record) {
  std::promise<Committed> done;
  store.Commit(std::move(record), [&](CommitResult r, const std::optional<EscalationEvent>& e) { done.set_value({r, e}); });
  return Wait(done.get_future());
}
Loaded LoadNow(ConversationStore& store, const std::string& id) {
  std::promise<Loaded> done;
  store.Load(id, [&](Loaded l) { done.set_value(std::move(l)); });
  return Wait(done.get_future());
}
StoredConversation Found(ConversationStore& store, const std::string& id) {
  Loaded loaded = LoadNow(store, id);
  REQUIRE(loaded.status == Loaded::Status::kFound);
  CHECK(loaded.conversation.id == id);
  return loaded.conversation;
}
HistoryPage HistoryNow(ConversationStore& store, const std::string& id, std::size_t turns = 100,
                       std::optional<std::uint64_t> before = std::nullopt) {
  std::promise<std::optional<HistoryPage>> done;
  store.History(id, before, turns, [&](std::optional<HistoryPage> p) { done.set_value(std::move(p)); });
  auto page = Wait(done.get_future());
  REQUIRE(page);
  return *page;
}
bool AckNow(EscalationLog& log, std::int64_t id, const std::string& by = "", const std::string& note = "") {
  std::promise<bool> done;
  log.Acknowledge(id, by, note, [&](bool found) { done.set_value(found); });
  return Wait(done.get_future());
}

// The unacknowledged escalations, oldest first (through the interface, whose defaults are all of them).
std::vector<EscalationEvent> Backlog(ConversationStore& store) { return store.escalations().Unacknowledged(); }

// A new conversation's record.
TurnRecord Created(const std::string& id, const ConversationState& state, std::int64_t at_ms = UnixMillis()) {
  TurnRecord r;
  r.kind = TurnRecord::Kind::kCreate;
  r.conversation = id;
  r.state = state;
  r.at_ms = at_ms;
  return r;
}
// A turn computed on seq - 1.
TurnRecord Turn(const std::string& id, std::uint64_t seq, const std::string& user, const std::string& reply,
                const ConversationState& state, std::int64_t at_ms = UnixMillis()) {
  TurnRecord r;
  r.conversation = id;
  r.seq = seq;
  r.expected_seq = seq - 1;
  r.has_turn = true;
  r.user_text = user;
  r.reply_text = reply;
  r.state = state;
  r.at_ms = at_ms;
  return r;
}
TurnRecord Deleted(const std::string& id) {
  TurnRecord r;
  r.kind = TurnRecord::Kind::kDelete;
  r.conversation = id;
  r.at_ms = UnixMillis();
  return r;
}

ConversationState Advising() {
  ConversationState s;
  s.state = "advising";
  return s;
}

// Runs SQL on the database behind the store's back (another connection of this process).
void Sql(const fs::path& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(db_path.c_str(), &db) == SQLITE_OK);
  sqlite3_busy_timeout(db, 10000);
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  INFO(sql << ": " << (error ? error : ""));
  sqlite3_free(error);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}
std::string SqlText(const fs::path& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(db_path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
  std::string out;
  if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0)) out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

// What the escalation listener heard, from the writer thread.
struct Heard {
  std::mutex mutex;
  std::vector<EscalationEvent> escalations;
  std::vector<std::pair<std::int64_t, std::string>> acks;
  std::promise<EscalationEvent> first_escalation;
  EscalationLog::Listener Listener() {
    return {[this](const EscalationEvent& e) {
              std::lock_guard lock(mutex);
              if (escalations.empty()) first_escalation.set_value(e);
              escalations.push_back(e);
            },
            [this](const EscalationEvent& e, const std::string& by) {
              std::lock_guard lock(mutex);
              acks.emplace_back(e.id, by);
            }};
  }
};

}  // namespace

TEST_CASE("conversations, turns and unacknowledged escalations come back after reopening", "[sqlite]") {
  TempDir dir;
  ConversationState state;
  state.state = "escalated";
  state.urgency = Urgency::kEmergency;
  state.flags = {"shortness_of_breath"};
  std::int64_t first_id = 0;
  {
    SqliteStore store(dir.path());
    CHECK(store.Count() == 0);
    CHECK(CommitNow(store, Created("c1", {})).result == CommitResult::kCommitted);
    CHECK(CommitNow(store, Created("c2", {})).result == CommitResult::kCommitted);
    CHECK(CommitNow(store, Turn("c1", 1, "hi", "hello", state)).result == CommitResult::kCommitted);
    auto record = Turn("c1", 2, "I'm short of breath", "Call now", state);
    record.escalation = EscalationEvent{0, "c1", state.urgency, {"shortness_of_breath"}, "I'm short of breath", 1};
    auto stored = CommitNow(store, record);
    REQUIRE(stored.result == CommitResult::kCommitted);
    REQUIRE(stored.escalation);
    first_id = stored.escalation->id;
    CHECK(first_id > 0);
    record = Turn("c2", 1, "chest pain", "Call now", state);
    record.escalation = EscalationEvent{0, "c2", state.urgency, {"chest_pain"}, "chest pain", 2};
    CHECK(CommitNow(store, record).result == CommitResult::kCommitted);
    CHECK(Backlog(store).size() == 2);
    CHECK(AckNow(store, first_id));
    CHECK(store.Count() == 2);
  }
  SqliteStore reopened(dir.path());
  CHECK(reopened.Count() == 2);
  const StoredConversation c1 = Found(reopened, "c1");
  CHECK(c1.seq == 2);
  CHECK(c1.state == state);
  const HistoryPage history = HistoryNow(reopened, "c1");
  REQUIRE(history.entries.size() == 4);
  CHECK(history.entries[0].role == "user");
  CHECK(history.entries[0].text == "hi");
  CHECK(history.entries[0].seq == 1);
  CHECK(history.entries[1].role == "assistant");
  CHECK(history.entries[1].text == "hello");
  CHECK(history.entries[2].text == "I'm short of breath");
  CHECK(history.entries[3].text == "Call now");
  CHECK(history.entries[3].seq == 2);
  CHECK_FALSE(history.more);
  // A bounded page: the last turn, and word that there is more.
  const HistoryPage last = HistoryNow(reopened, "c1", 1);
  REQUIRE(last.entries.size() == 2);
  CHECK(last.entries[0].seq == 2);
  CHECK(last.more);
  CHECK(LoadNow(reopened, "nope").status == Loaded::Status::kNotFound);

  auto backlog = Backlog(reopened);
  REQUIRE(backlog.size() == 1);  // the acknowledged one stays acknowledged
  CHECK(backlog[0].conversation == "c2");
  CHECK(backlog[0].flags == std::vector<std::string>{"chest_pain"});
  CHECK(backlog[0].text == "chest pain");
  CHECK(backlog[0].level == Urgency::kEmergency);
  CHECK(backlog[0].id > first_id);
  CHECK_FALSE(AckNow(reopened, first_id));
}

StoredReply FindReplyNow(ConversationStore& store, const std::string& id, const std::string& client_id) {
  std::promise<StoredReply> done;
  store.FindReply(id, client_id, [&](StoredReply r) { done.set_value(std::move(r)); });
  return Wait(done.get_future());
}

TEST_CASE("a turn's reply is found by its client id after reopening, per conversation; the key secret is kept",
          "[sqlite]") {
  TempDir dir;
  std::string secret;
  {
    SqliteStore store(dir.path());
    secret = store.KeySecret();
    CHECK(secret.size() == 32);
    REQUIRE(CommitNow(store, Created("c1", {})).result == CommitResult::kCommitted);
    REQUIRE(CommitNow(store, Created("c2", {})).result == CommitResult::kCommitted);
    auto record = Turn("c1", 1, "yes", "Thanks.", Advising());
    record.client_id = "Ev1";
    record.reply_json = R"({"text":"Thanks."})";
    REQUIRE(CommitNow(store, record).result == CommitResult::kCommitted);
    REQUIRE(CommitNow(store, Turn("c1", 2, "no id", "ok", Advising())).result == CommitResult::kCommitted);
    const StoredReply found = FindReplyNow(store, "c1", "Ev1");
    CHECK(found.status == StoredReply::Status::kFound);
    CHECK(found.seq == 1);
    CHECK(found.reply_json == R"({"text":"Thanks."})");
  }
  SqliteStore reopened(dir.path());
  CHECK(reopened.KeySecret() == secret);
  const StoredReply found = FindReplyNow(reopened, "c1", "Ev1");
  CHECK(found.status == StoredReply::Status::kFound);
  CHECK(found.seq == 1);
  CHECK(found.reply_json == R"({"text":"Thanks."})");
  CHECK(FindReplyNow(reopened, "c2", "Ev1").status == StoredReply::Status::kNotFound);  // another conversation's id
  CHECK(FindReplyNow(reopened, "c1", "Ev2").status == StoredReply::Status::kNotFound);
  // An id is stored with its turn: a turn that conflicted left none.
  auto stale = Turn("c1", 1, "late", "x", Advising());
  stale.client_id = "Ev3";
  stale.reply_json = "{}";
  CHECK(CommitNow(reopened, stale).result == CommitResult::kConflict);
  CHECK(FindReplyNow(reopened, "c1", "Ev3").status == StoredReply::Status::kNotFound);
  // Another data directory has its own secret.
  TempDir other;
  CHECK(SqliteStore(other.path()).KeySecret() != secret);
}

TEST_CASE("an operator's turns keep their author; a message to the operator has no reply", "[sqlite]") {
  TempDir dir;
  {
    SqliteStore store(dir.path());
    REQUIRE(CommitNow(store, Created("c1", {})).result == CommitResult::kCommitted);
    REQUIRE(CommitNow(store, Turn("c1", 1, "my back hurts", "Does it spread?", Advising())).result ==
            CommitResult::kCommitted);
    auto said = Turn("c1", 2, "", "Hi, I am Alice from the clinic.", Advising());
    said.reply_author = "alice";
    REQUIRE(CommitNow(store, said).result == CommitResult::kCommitted);
    REQUIRE(CommitNow(store, Turn("c1", 3, "thanks Alice", "", Advising())).result == CommitResult::kCommitted);
  }
  SqliteStore reopened(dir.path());
  const HistoryPage page = HistoryNow(reopened, "c1");
  REQUIRE(page.entries.size() == 4);
  std::vector<std::string> lines;
  for (const auto& e : page.entries) lines.push_back(std::to_string(e.seq) + ":" + e.role + ":" + e.text);
  CHECK(lines == std::vector<std::string>{"1:user:my back hurts", "1:assistant:Does it spread?",
                                                "2:operator:Hi, I am Alice from the clinic.", "3:user:thanks Alice"});
  CHECK(page.entries[2].operator_name == "alice");
  CHECK(page.entries[1].operator_name.empty());
}

TEST_CASE("idle conversations are purged from the database too", "[sqlite]") {
  TempDir dir;
  const std::int64_t now = UnixMillis();
  const std::int64_t hour = 3600 * 1000;
  {
    SqliteStore store(dir.path());
    CHECK(CommitNow(store, Created("old", Advising(), now - 3 * hour)).result == CommitResult::kCommitted);
    CHECK(CommitNow(store, Turn("old", 1, "hi", "hello", Advising(), now - 2 * hour)).result == CommitResult::kCommitted);
    CHECK(CommitNow(store, Created("empty", Advising(), now - hour / 2)).result == CommitResult::kCommitted);
    CHECK(CommitNow(store, Created("recent", Advising(), now - hour / 2)).result == CommitResult::kCommitted);
    CHECK(CommitNow(store, Turn("recent", 1, "hi", "hello", Advising(), now - hour / 2)).result ==
          CommitResult::kCommitted);
    // Idle for an hour, or empty for ten minutes: "old" and "empty" go, "recent" stays.
    store.Purge(now - hour, now - hour / 6, 0);
  }  // the store commits what is queued before it closes
  SqliteStore reopened(dir.path());
  CHECK(reopened.Count() == 1);
  CHECK(LoadNow(reopened, "old").status == Loaded::Status::kNotFound);
  CHECK(LoadNow(reopened, "empty").status == Loaded::Status::kNotFound);
  CHECK(HistoryNow(reopened, "old").entries.empty());
  CHECK(Found(reopened, "recent").seq == 1);
  CHECK(HistoryNow(reopened, "recent").entries.size() == 2);
  // Their rows went with them: every row left is one of "recent"'s.
  CHECK(SqlText(dir.db(), "SELECT COUNT(*) FROM turn_log WHERE conversation NOT IN (SELECT n FROM conversations)") == "0");
  CHECK(SqlText(dir.db(), "SELECT COUNT(*) FROM turn_log") != "0");
}

TEST_CASE("Count follows creations, deletions and purges", "[sqlite]") {
  TempDir dir;
  const std::int64_t now = UnixMillis();
  SqliteStore store(dir.path());
  for (const char* id : {"a", "b", "c"}) CHECK(CommitNow(store, Created(id, Advising())).result == CommitResult::kCommitted);
  CHECK(store.Count() == 3);
  CHECK(CommitNow(store, Created("a", Advising())).result == CommitResult::kConflict);  // taken: not counted twice
  CHECK(store.Count() == 3);
  CHECK(CommitNow(store, Turn("a", 1, "hi", "hello", Advising())).result == CommitResult::kCommitted);
  CHECK(CommitNow(store, Deleted("b")).result == CommitResult::kCommitted);  // never had a message: deleted
  CHECK(store.Count() == 2);
  CHECK(CommitNow(store, Deleted("a")).result == CommitResult::kCommitted);  // had one: kept
  CHECK(store.Count() == 2);
  CHECK(LoadNow(store, "a").status == Loaded::Status::kFound);
  CHECK(LoadNow(store, "b").status == Loaded::Status::kNotFound);
  store.Purge(now + 3600 * 1000, now + 3600 * 1000, 0);  // everything is idle past this cutoff
  // Purges run on the writer in the order they were asked for, like commits: once a later write
  // is answered the purge is done.
  CHECK_FALSE(AckNow(store, 424242));
  CHECK(store.Count() == 0);
  CHECK(LoadNow(store, "a").status == Loaded::Status::kNotFound);
}

TEST_CASE("a file that is not a database is refused and left as it was", "[sqlite]") {
  TempDir dir;
  std::ofstream(dir.db()) << "this is not a database, it is a shopping list";
  CHECK_THROWS_WITH(SqliteStore(dir.path()), Catch::Contains("is not a valid SQLite database") &&
                                                 Catch::Contains(dir.db().string()));
  std::ifstream in(dir.db());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text == "this is not a database, it is a shopping list");
  // The refusal let go of the data directory: asking again gets the same answer, not "in use".
  CHECK_THROWS_WITH(SqliteStore(dir.path()), Catch::Contains("is not a valid SQLite database"));
}

TEST_CASE("a database from a newer server is refused", "[sqlite]") {
  TempDir dir;
  { SqliteStore store(dir.path()); }
  const std::string newer = std::to_string(SqliteStore::kSchemaVersion + 1);
  Sql(dir.db(), "INSERT INTO schema_migrations (version, applied_at) VALUES (" + newer + ", 0)");
  CHECK_THROWS_WITH(SqliteStore(dir.path()), Catch::Contains("schema version " + newer + ", newer than this server knows (" +
                                                             std::to_string(SqliteStore::kSchemaVersion) + ")"));
}

TEST_CASE("a turn computed on a seq the store does not hold conflicts and writes nothing", "[sqlite]") {
  TempDir dir;
  {
    SqliteStore store(dir.path());
    CHECK(CommitNow(store, Created("c1", Advising())).result == CommitResult::kCommitted);
    CHECK(CommitNow(store, Turn("c1", 1, "hi", "hello", Advising())).result == CommitResult::kCommitted);
    // Another instance's view: seq 3 on top of 2, but the store holds 1.
    auto ahead = Turn("c1", 3, "I can't breathe", "Call now", Advising());
    ahead.escalation = EscalationEvent{0, "c1", Urgency::kEmergency, {"shortness_of_breath"}, "I can't breathe", 1};
    auto result = CommitNow(store, ahead);
    CHECK(result.result == CommitResult::kConflict);
    CHECK_FALSE(result.escalation);
    // ...and on top of 0, when the store already has 1.
    CHECK(CommitNow(store, Turn("c1", 1, "again", "again", Advising())).result == CommitResult::kConflict);
    CHECK(CommitNow(store, Turn("nope", 1, "hi", "hello", Advising())).result == CommitResult::kConflict);
    CHECK(store.Healthy());  // a conflict is not a failure
    CHECK(Backlog(store).empty());
    CHECK(CommitNow(store, Turn("c1", 2, "what is doms", "DOMS is...", Advising())).result == CommitResult::kCommitted);
    CHECK(store.Count() == 1);
  }
  SqliteStore reopened(dir.path());
  CHECK(Found(reopened, "c1").seq == 2);
  const HistoryPage history = HistoryNow(reopened, "c1");
  REQUIRE(history.entries.size() == 4);
  CHECK(history.entries[2].text == "what is doms");
  CHECK(history.entries[3].seq == 2);
  CHECK(Backlog(reopened).empty());  // the conflicting turn's escalation was not written
  CHECK(LoadNow(reopened, "nope").status == Loaded::Status::kNotFound);
}

TEST_CASE("an escalation whose turn failed is retried alone and raises the urgency on load", "[sqlite]") {
  TempDir dir;
  const auto raise = [](ConversationState& s, const EscalationEvent& e) { s.urgency = std::max(s.urgency, e.level); };
  Heard heard;
  {
    SqliteStore store(dir.path(), raise);
    store.Subscribe(heard.Listener());
    CHECK(CommitNow(store, Created("c1", Advising())).result == CommitResult::kCommitted);
    CHECK(CommitNow(store, Turn("c1", 1, "hi", "hello", Advising())).result == CommitResult::kCommitted);
    // Writing a turn now fails (as on a full disk or an I/O error): the transaction is rolled back.
    Sql(dir.db(),
        "CREATE TRIGGER fail_turns BEFORE INSERT ON turn_log BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END");
    auto record = Turn("c1", 2, "I can't breathe", "Call now", Advising());
    record.escalation = EscalationEvent{0, "c1", Urgency::kEmergency, {"shortness_of_breath"}, "I can't breathe", 1};
    auto failed = CommitNow(store, record);
    CHECK(failed.result == CommitResult::kUnavailable);
    CHECK_FALSE(failed.escalation);
    CHECK_FALSE(store.Healthy());
    CHECK(Backlog(store).empty());
    // Writes work again; the next write (or the writer's own probe) carries the kept escalation.
    Sql(dir.db(), "DROP TRIGGER fail_turns");
    CHECK(CommitNow(store, Created("c2", Advising())).result == CommitResult::kCommitted);
    const EscalationEvent event = Wait(heard.first_escalation.get_future());
    CHECK(event.id > 0);
    CHECK(event.conversation == "c1");
    CHECK(event.level == Urgency::kEmergency);
    CHECK(event.text == "I can't breathe");
    CHECK(store.Healthy());
    REQUIRE(Backlog(store).size() == 1);
    CHECK(Backlog(store)[0].id == event.id);
    // The turn itself is not there, but its urgency is.
    const StoredConversation c1 = Found(store, "c1");
    CHECK(c1.seq == 1);
    CHECK(c1.state.urgency == Urgency::kEmergency);
    CHECK(HistoryNow(store, "c1").entries.size() == 2);
  }
  {
    std::lock_guard lock(heard.mutex);
    CHECK(heard.escalations.size() == 1);  // once
  }
  SqliteStore reopened(dir.path(), raise);
  CHECK(Backlog(reopened).size() == 1);
  const StoredConversation c1 = Found(reopened, "c1");
  CHECK(c1.seq == 1);
  CHECK(c1.state.urgency == Urgency::kEmergency);
  CHECK(Found(reopened, "c2").state.urgency == Urgency::kNone);  // only the conversation it belongs to
}

TEST_CASE("an acknowledgement names who made it, is heard once and is kept", "[sqlite]") {
  TempDir dir;
  Heard heard;
  std::int64_t id = 0;
  {
    SqliteStore store(dir.path());
    store.Subscribe(heard.Listener());
    CHECK(CommitNow(store, Created("c1", Advising())).result == CommitResult::kCommitted);
    auto record = Turn("c1", 1, "chest pain", "Call now", Advising());
    record.escalation = EscalationEvent{0, "c1", Urgency::kEmergency, {"chest_pain"}, "chest pain", 1};
    auto committed = CommitNow(store, record);
    REQUIRE(committed.escalation);
    id = committed.escalation->id;
    REQUIRE(Backlog(store).size() == 1);

    CHECK(AckNow(store, id, "ana"));
    {
      std::lock_guard lock(heard.mutex);
      CHECK(heard.acks == std::vector<std::pair<std::int64_t, std::string>>{{id, "ana"}});
    }
    CHECK(Backlog(store).empty());
    CHECK_FALSE(AckNow(store, id, "ben"));  // once
    CHECK_FALSE(AckNow(store, 12345, "ana"));
    std::lock_guard lock(heard.mutex);
    CHECK(heard.acks.size() == 1);
    CHECK(heard.escalations.size() == 1);
  }
  CHECK(SqlText(dir.db(), "SELECT acked_by FROM escalations WHERE id = " + std::to_string(id)) == "ana");
  SqliteStore reopened(dir.path());
  CHECK(Backlog(reopened).empty());
  CHECK_FALSE(AckNow(reopened, id, "ana"));
}

TEST_CASE("a second store on the same data directory is refused, naming the process that holds it", "[sqlite]") {
  TempDir dir;
  const std::string pid = "pid " + std::to_string(::getpid());
  {
    SqliteStore first(dir.path());
    CHECK(CommitNow(first, Created("c1", Advising())).result == CommitResult::kCommitted);
    CHECK_THROWS_AS(SqliteStore(dir.path()), StoreError);
    CHECK_THROWS_WITH(SqliteStore(dir.path()), Catch::Contains(pid) && Catch::Contains(dir.path().string()));
    // The refused one took nothing from the first: it still works, and still holds the lock.
    CHECK(CommitNow(first, Turn("c1", 1, "hi", "hello", Advising())).result == CommitResult::kCommitted);
    CHECK_THROWS_WITH(SqliteStore(dir.path()), Catch::Contains(pid));
  }
  SqliteStore next(dir.path());  // the first one is closed: the directory is free
  CHECK(Found(next, "c1").seq == 1);
}

// The seqs and texts of a history page, as "seq:role:text" lines.
std::vector<std::string> Lines(const HistoryPage& page) {
  std::vector<std::string> out;
  for (const auto& e : page.entries) out.push_back(std::to_string(e.seq) + ":" + e.role + ":" + e.text);
  return out;
}

TEST_CASE("history pages back past turns and skips changes that had no message", "[sqlite]") {
  TempDir dir;
  SqliteStore store(dir.path());
  REQUIRE(CommitNow(store, Created("c", {})).result == CommitResult::kCommitted);
  REQUIRE(CommitNow(store, Turn("c", 1, "one", "first", Advising())).result == CommitResult::kCommitted);
  REQUIRE(CommitNow(store, Turn("c", 2, "two", "second", Advising())).result == CommitResult::kCommitted);
  TurnRecord ended;  // a state change without a message (an end): seq stays 2
  ended.conversation = "c";
  ended.expected_seq = 2;
  ended.seq = 2;
  ended.state.state = "ended";
  ended.at_ms = UnixMillis();
  REQUIRE(CommitNow(store, ended).result == CommitResult::kCommitted);
  CHECK(Found(store, "c").state.state == "ended");
  REQUIRE(CommitNow(store, Turn("c", 3, "three", "third", Advising())).result == CommitResult::kCommitted);

  CHECK(Lines(HistoryNow(store, "c")) == std::vector<std::string>{"1:user:one", "1:assistant:first", "2:user:two",
                                                                   "2:assistant:second", "3:user:three",
                                                                   "3:assistant:third"});
  const HistoryPage before_three = HistoryNow(store, "c", 1, 3);
  CHECK(Lines(before_three) == std::vector<std::string>{"2:user:two", "2:assistant:second"});
  CHECK(before_three.more);
  const HistoryPage oldest = HistoryNow(store, "c", 5, 2);
  CHECK(Lines(oldest) == std::vector<std::string>{"1:user:one", "1:assistant:first"});
  CHECK_FALSE(oldest.more);
  CHECK(Found(store, "c").seq == 3);
}

TEST_CASE("a database of schema version 3 is carried over: states, turns in order, escalations", "[sqlite]") {
  TempDir dir;
  // Version 3 as it was written (migrations 1-3), with two conversations.
  Sql(dir.db(), R"sql(
CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);
INSERT INTO schema_migrations VALUES (1, 0), (2, 0), (3, 0);
CREATE TABLE conversations (id TEXT PRIMARY KEY, state TEXT NOT NULL, seq INTEGER NOT NULL,
  created_at INTEGER NOT NULL, last_active INTEGER NOT NULL);
CREATE TABLE turns (conversation TEXT NOT NULL, seq INTEGER NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('user', 'assistant')), text TEXT NOT NULL, at INTEGER NOT NULL,
  PRIMARY KEY (conversation, seq, role)) WITHOUT ROWID;
CREATE TABLE escalations (id INTEGER PRIMARY KEY AUTOINCREMENT, conversation TEXT NOT NULL, level TEXT NOT NULL,
  flags TEXT NOT NULL, text TEXT NOT NULL, at INTEGER NOT NULL, acked_at INTEGER);
CREATE INDEX escalations_unacked ON escalations (id) WHERE acked_at IS NULL;
CREATE INDEX conversations_idle ON conversations (last_active);
CREATE TABLE store_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL);
ALTER TABLE escalations ADD COLUMN acked_by TEXT;
CREATE INDEX escalations_by_conversation ON escalations (conversation, id);
INSERT INTO conversations VALUES
  ('b', '{"asked_training":false,"flags":[],"pending_flags":[],"screened":true,"screening_step":3,"slots":{"exercise":"rows"},"state":"advising","turns":2,"urgency":"none"}', 2, 1000, 5000),
  ('a', '{"asked_training":false,"flags":["chest_pain"],"pending_flags":[],"screened":false,"screening_step":0,"slots":{},"state":"escalated","turns":1,"urgency":"emergency"}', 1, 900, 4000),
  ('empty', '{"asked_training":false,"flags":[],"pending_flags":[],"screened":false,"screening_step":0,"slots":{},"state":"welcome","turns":0,"urgency":"none"}', 0, 800, 800);
INSERT INTO turns VALUES ('b', 2, 'user', 'b two', 3000), ('b', 1, 'assistant', 'b reply one', 2000),
  ('a', 1, 'user', 'my chest hurts', 4000), ('b', 1, 'user', 'b one', 2000), ('a', 1, 'assistant', 'Call now', 4000),
  ('b', 2, 'assistant', 'b reply two', 3000);
INSERT INTO escalations (conversation, level, flags, text, at) VALUES ('a', 'emergency', '["chest_pain"]', 'my chest hurts', 4000);
)sql");
  SqliteStore store(dir.path());
  CHECK(store.Count() == 3);
  const StoredConversation b = Found(store, "b");
  CHECK(b.seq == 2);
  CHECK(b.last_active_ms == 5000);
  CHECK(b.state.state == "advising");
  CHECK(b.state.slots.exercise == "rows");
  CHECK(Lines(HistoryNow(store, "b")) ==
        std::vector<std::string>{"1:user:b one", "1:assistant:b reply one", "2:user:b two", "2:assistant:b reply two"});
  const StoredConversation a = Found(store, "a");
  CHECK(a.state.urgency == Urgency::kEmergency);
  CHECK(Lines(HistoryNow(store, "a")) == std::vector<std::string>{"1:user:my chest hurts", "1:assistant:Call now"});
  CHECK(Found(store, "empty").seq == 0);
  CHECK(HistoryNow(store, "empty").entries.empty());
  REQUIRE(Backlog(store).size() == 1);
  CHECK(Backlog(store)[0].conversation == "a");
  // It goes on where it was: the next turn follows the carried-over ones.
  CHECK(CommitNow(store, Turn("b", 2, "stale", "x", Advising())).result == CommitResult::kConflict);
  REQUIRE(CommitNow(store, Turn("b", 3, "b three", "b reply three", Advising())).result == CommitResult::kCommitted);
  CHECK(Lines(HistoryNow(store, "b", 2)) ==
        std::vector<std::string>{"2:user:b two", "2:assistant:b reply two", "3:user:b three", "3:assistant:b reply three"});
  CHECK(SqlText(dir.db(), "SELECT MAX(version) FROM schema_migrations") == std::to_string(SqliteStore::kSchemaVersion));
  CHECK(SqlText(dir.db(), "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('turns', 'conversations_idle')") == "0");
}

TEST_CASE("the write-ahead log is checkpointed by the store's own thread, and nothing is lost", "[sqlite]") {
  TempDir dir;
  const std::string reply(600, 'r');
  std::uint64_t turns = 0;
  {
    SqliteStore store(dir.path(), {}, std::chrono::microseconds(0));
    REQUIRE(CommitNow(store, Created("c", {})).result == CommitResult::kCommitted);
    // Each commit appends at least a page to the log: this passes kCheckpointPages.
    while (turns < static_cast<std::uint64_t>(SqliteStore::kCheckpointPages) + 200) {
      ++turns;
      std::string user = "u";
      user += std::to_string(turns);
      REQUIRE(CommitNow(store, Turn("c", turns, user, reply, Advising())).result ==
              CommitResult::kCommitted);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (store.Checkpoints() == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    CHECK(store.Checkpoints() > 0);
  }
  SqliteStore reopened(dir.path());
  CHECK(Found(reopened, "c").seq == turns);
  const HistoryPage page = HistoryNow(reopened, "c", 2);
  std::string expected = std::to_string(turns - 1);
  expected += ":user:u";
  expected += std::to_string(turns - 1);
  CHECK(Lines(page).front() == expected);
}
