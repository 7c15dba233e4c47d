#include "server/sqlite_store.hpp"

#include <sqlite3.h>

#include <iostream>
#include <nlohmann/json.hpp>

namespace backcheck::server {
namespace {

// Migration i (1-based) takes the schema from version i-1 to version i. Append; never edit.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE conversations (
  id          TEXT PRIMARY KEY,
  state       TEXT NOT NULL,     -- the engine's ConversationState as JSON
  seq         INTEGER NOT NULL,  -- of the last turn
  created_at  INTEGER NOT NULL,  -- Unix ms
  last_active INTEGER NOT NULL   -- Unix ms
);
CREATE TABLE turns (
  conversation TEXT NOT NULL,
  seq          INTEGER NOT NULL,
  role         TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
  text         TEXT NOT NULL,
  at           INTEGER NOT NULL,
  PRIMARY KEY (conversation, seq, role)
) WITHOUT ROWID;
CREATE TABLE escalations (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  conversation TEXT NOT NULL,
  level        TEXT NOT NULL,
  flags        TEXT NOT NULL,     -- JSON array of flag ids
  text         TEXT NOT NULL,     -- the message that raised the urgency
  at           INTEGER NOT NULL,  -- Unix ms
  acked_at     INTEGER            -- Unix ms, NULL until an operator acknowledges it
);
CREATE INDEX escalations_unacked ON escalations (id) WHERE acked_at IS NULL;
CREATE INDEX conversations_idle ON conversations (last_active);
)sql",
    // 2: a row the writer rewrites to find out whether writes work again after a failure.
    R"sql(
CREATE TABLE store_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL);
)sql",
};
constexpr int kMigrationCount = static_cast<int>(std::size(kMigrations));
static_assert(kMigrationCount == SqliteStore::kSchemaVersion);

std::string Column(sqlite3_stmt* s, int i) {
  const auto* text = sqlite3_column_text(s, i);
  return text ? std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(sqlite3_column_bytes(s, i)))
              : std::string();
}

void Bind(sqlite3_stmt* s, int i, std::string_view text) {
  // SQLITE_STATIC: the text outlives the step (the batch owns it), so SQLite need not copy it.
  sqlite3_bind_text(s, i, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
}

// A stored JSON array of flag ids; anything unreadable in it is skipped, never thrown.
std::vector<std::string> FlagList(const std::string& json) {
  std::vector<std::string> out;
  auto flags = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!flags.is_array()) return out;
  for (const auto& f : flags) {
    if (f.is_string()) out.push_back(f.get<std::string>());
  }
  return out;
}

}  // namespace

SqliteStore::SqliteStore(const std::filesystem::path& path, Raise raise) : path_(path) {
  try {
    Open();
    Migrate();
    insert_conversation_ = Prepare(
        "INSERT INTO conversations (id, state, seq, created_at, last_active) VALUES (?1, ?2, ?3, ?4, ?4)");
    update_conversation_ = Prepare(
        "UPDATE conversations SET state = ?2, seq = ?3, last_active = ?4 WHERE id = ?1 AND seq = ?5");
    delete_empty_ = Prepare("DELETE FROM conversations WHERE id = ?1 AND seq = 0");
    probe_ = Prepare("INSERT OR REPLACE INTO store_probe (id, at) VALUES (1, ?1)");
    insert_turn_ = Prepare("INSERT INTO turns (conversation, seq, role, text, at) VALUES (?1, ?2, ?3, ?4, ?5)");
    insert_escalation_ =
        Prepare("INSERT INTO escalations (conversation, level, flags, text, at) VALUES (?1, ?2, ?3, ?4, ?5)");
    ack_escalation_ = Prepare("UPDATE escalations SET acked_at = ?2 WHERE id = ?1 AND acked_at IS NULL");
    purge_turns_ = Prepare(
        "DELETE FROM turns WHERE conversation IN "
        "(SELECT id FROM conversations WHERE last_active < ?1 OR (seq = 0 AND last_active < ?2))");
    purge_conversations_ = Prepare("DELETE FROM conversations WHERE last_active < ?1 OR (seq = 0 AND last_active < ?2)");
    Load(raise);
  } catch (...) {
    Close();  // a refused database leaves no open handle behind
    throw;
  }
  writer_ = std::thread([this] { WriterLoop(); });
}

SqliteStore::~SqliteStore() {
  {
    std::lock_guard lock(queue_mutex_);
    stopping_ = true;
  }
  queue_cv_.notify_one();
  if (writer_.joinable()) writer_.join();
  Close();
}

void SqliteStore::Close() noexcept {
  for (auto** s : {&insert_conversation_, &update_conversation_, &delete_empty_, &probe_, &insert_turn_,
                   &insert_escalation_, &ack_escalation_, &purge_turns_, &purge_conversations_}) {
    sqlite3_finalize(*s);
    *s = nullptr;
  }
  sqlite3_close(db_);
  db_ = nullptr;
}

void SqliteStore::Fail(const std::string& what) const {
  throw StoreError("database " + path_.string() + ": " + what);
}

void SqliteStore::Open() {
  if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    Fail("cannot be opened (" + message + ")");
  }
  sqlite3_busy_timeout(db_, 5000);
  // SQLite opens a file it may not write read-only without saying so; every turn would then
  // fail. Refuse at start-up instead.
  if (sqlite3_db_readonly(db_, "main") != 0) Fail("is not writable by this user; refusing to start");
  // The first statement reads the header: a file that is not a database fails here, untouched.
  sqlite3_stmt* mode = nullptr;
  if (sqlite3_prepare_v2(db_, "PRAGMA journal_mode=WAL", -1, &mode, nullptr) != SQLITE_OK ||
      sqlite3_step(mode) != SQLITE_ROW) {
    std::string message = sqlite3_errmsg(db_);
    sqlite3_finalize(mode);
    sqlite3_close(db_);
    db_ = nullptr;
    Fail("is not a valid SQLite database (" + message +
         "); refusing to start rather than reset it: move it aside or restore a backup");
  }
  std::string journal = Column(mode, 0);
  sqlite3_finalize(mode);
  if (journal != "wal") Fail("cannot use write-ahead logging (journal mode is " + journal + ")");

  Exec("PRAGMA synchronous=FULL");
}

void SqliteStore::Exec(const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error ? error : sqlite3_errmsg(db_);
    sqlite3_free(error);
    Fail(message);
  }
}

sqlite3_stmt* SqliteStore::Prepare(const char* sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
    Fail(std::string("cannot prepare a statement (") + sqlite3_errmsg(db_) + ")");
  }
  return s;
}

void SqliteStore::Migrate() {
  Exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
  sqlite3_stmt* s = Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  sqlite3_step(s);
  const int version = sqlite3_column_int(s, 0);
  sqlite3_finalize(s);
  if (version > kSchemaVersion) {
    Fail("has schema version " + std::to_string(version) + ", newer than this server knows (" +
         std::to_string(kSchemaVersion) + "); refusing to start: run a newer server or restore a backup");
  }
  for (int v = version + 1; v <= kMigrationCount; ++v) {
    Exec("BEGIN IMMEDIATE");
    Exec(kMigrations[v - 1]);
    const std::string record = "INSERT INTO schema_migrations (version, applied_at) VALUES (" + std::to_string(v) +
                               ", " + std::to_string(UnixMillis()) + ")";
    Exec(record.c_str());
    Exec("COMMIT");
  }
}

void SqliteStore::Load(const Raise& raise) {
  const std::int64_t now_ms = UnixMillis();
  const auto now = Clock::now();
  sqlite3_stmt* conversations = Prepare("SELECT id, state, seq, last_active FROM conversations");
  while (sqlite3_step(conversations) == SQLITE_ROW) {
    const std::string id = Column(conversations, 0);
    dialog::ConversationState state;
    try {
      state = nlohmann::json::parse(Column(conversations, 1)).get<dialog::ConversationState>();
    } catch (const std::exception& e) {
      sqlite3_finalize(conversations);
      Fail("conversation " + id + " has an unreadable state (" + e.what() + ")");
    }
    const auto idle = std::chrono::milliseconds(std::max<std::int64_t>(0, now_ms - sqlite3_column_int64(conversations, 3)));
    auto conversation = MemoryStore::Insert(id, std::move(state), now - idle, SIZE_MAX);
    conversation->seq = static_cast<std::uint64_t>(sqlite3_column_int64(conversations, 2));
    conversation->durable_seq = conversation->seq;
    conversation->durable_state = conversation->state;
  }
  sqlite3_finalize(conversations);

  // Turns in order: by conversation and seq, the user's message before the reply.
  sqlite3_stmt* turns = Prepare("SELECT conversation, seq, role, text FROM turns ORDER BY conversation, seq, role DESC");
  std::shared_ptr<Conversation> current;
  while (sqlite3_step(turns) == SQLITE_ROW) {
    const std::string id = Column(turns, 0);
    if (!current || current->id != id) current = MemoryStore::Find(id);
    if (!current) continue;
    current->history.push_back(
        HistoryEntry{Column(turns, 2), Column(turns, 3), static_cast<std::uint64_t>(sqlite3_column_int64(turns, 1))});
  }
  sqlite3_finalize(turns);

  sqlite3_stmt* escalations =
      Prepare("SELECT id, conversation, level, flags, text, at FROM escalations WHERE acked_at IS NULL ORDER BY id");
  while (sqlite3_step(escalations) == SQLITE_ROW) {
    EscalationEvent e;
    e.id = sqlite3_column_int64(escalations, 0);
    e.conversation = Column(escalations, 1);
    e.level = knowledge::ParseUrgency(Column(escalations, 2)).value_or(knowledge::Urgency::kUrgent);
    e.flags = FlagList(Column(escalations, 3));
    e.text = Column(escalations, 4);
    e.at_ms = sqlite3_column_int64(escalations, 5);
    backlog_.Add(e);
  }
  sqlite3_finalize(escalations);

  // Urgency never goes down: an escalation may be durable when the turn that raised it is not
  // (its write failed and the escalation was retried alone).
  if (!raise) return;
  sqlite3_stmt* all = Prepare("SELECT conversation, level, flags FROM escalations ORDER BY id");
  while (sqlite3_step(all) == SQLITE_ROW) {
    EscalationEvent e;
    e.conversation = Column(all, 0);
    auto conversation = MemoryStore::Find(e.conversation);
    if (!conversation) continue;
    e.level = knowledge::ParseUrgency(Column(all, 1)).value_or(knowledge::Urgency::kUrgent);
    e.flags = FlagList(Column(all, 2));
    raise(conversation->state, e);
    conversation->durable_state = conversation->state;
  }
  sqlite3_finalize(all);
}

std::size_t SqliteStore::PurgeIdle(Clock::time_point cutoff, Clock::time_point empty_cutoff) {
  const auto now = Clock::now();
  const auto to_unix = [&](Clock::time_point t) {
    return UnixMillis() - std::chrono::duration_cast<std::chrono::milliseconds>(now - t).count();
  };
  Enqueue(Purge{to_unix(cutoff), to_unix(empty_cutoff)});
  return MemoryStore::PurgeIdle(cutoff, empty_cutoff);
}

void SqliteStore::Persist(TurnRecord record, Done done) { Enqueue(Write{std::move(record), std::move(done)}); }

void SqliteStore::Acknowledge(std::int64_t id, std::function<void(bool found)> done) {
  Enqueue(Ack{id, std::move(done)});
}

void SqliteStore::Enqueue(Job job) {
  {
    std::lock_guard lock(queue_mutex_);
    queue_.push_back(std::move(job));
  }
  queue_cv_.notify_one();
}

void SqliteStore::WriterLoop() {
  std::vector<Job> batch;
  while (true) {
    {
      std::unique_lock lock(queue_mutex_);
      // While writes fail, wake up by ourselves to probe; an escalation left over from a record
      // that could not be written (while writes work) is retried at once.
      const auto ready = [&] { return stopping_ || !queue_.empty(); };
      if (!healthy_.load()) {
        queue_cv_.wait_for(lock, kProbeInterval, ready);
      } else if (retry_.empty()) {
        queue_cv_.wait(lock, ready);
      }
      if (queue_.empty() && stopping_) return;  // everything queued is committed
      batch.swap(queue_);
    }
    Commit(batch);  // an empty batch is a retry or a probe
    batch.clear();
  }
}

void SqliteStore::Step(sqlite3_stmt* s) {
  const int rc = sqlite3_step(s);
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  if (rc != SQLITE_DONE) Fail(std::string("a write failed (") + sqlite3_errstr(rc) + ")");
}

void SqliteStore::InsertEscalation(EscalationEvent& e) {
  Bind(insert_escalation_, 1, e.conversation);
  Bind(insert_escalation_, 2, knowledge::UrgencyName(e.level));
  const std::string flags = nlohmann::json(e.flags).dump();  // bound static: lives past the step
  Bind(insert_escalation_, 3, flags);
  Bind(insert_escalation_, 4, e.text);
  sqlite3_bind_int64(insert_escalation_, 5, e.at_ms);
  Step(insert_escalation_);
  e.id = sqlite3_last_insert_rowid(db_);
}

bool SqliteStore::WriteRecord(TurnRecord& r) {
  switch (r.kind) {
    case TurnRecord::Kind::kCreate:
      Bind(insert_conversation_, 1, r.conversation);
      Bind(insert_conversation_, 2, r.state_json);
      sqlite3_bind_int64(insert_conversation_, 3, static_cast<std::int64_t>(r.seq));
      sqlite3_bind_int64(insert_conversation_, 4, r.at_ms);
      Step(insert_conversation_);
      return true;
    case TurnRecord::Kind::kDelete:
      Bind(delete_empty_, 1, r.conversation);
      Step(delete_empty_);
      return true;
    case TurnRecord::Kind::kUpdate:
      break;
  }
  Bind(update_conversation_, 1, r.conversation);
  Bind(update_conversation_, 2, r.state_json);
  sqlite3_bind_int64(update_conversation_, 3, static_cast<std::int64_t>(r.seq));
  sqlite3_bind_int64(update_conversation_, 4, r.at_ms);
  sqlite3_bind_int64(update_conversation_, 5, static_cast<std::int64_t>(r.expected_seq));
  Step(update_conversation_);
  if (sqlite3_changes(db_) != 1) return false;  // not the seq it was computed on: a turn before it failed
  if (r.has_turn) {
    for (auto [role, text] : {std::pair<const char*, const std::string*>{"user", &r.user_text},
                              std::pair<const char*, const std::string*>{"assistant", &r.reply_text}}) {
      Bind(insert_turn_, 1, r.conversation);
      sqlite3_bind_int64(insert_turn_, 2, static_cast<std::int64_t>(r.seq));
      Bind(insert_turn_, 3, role);
      Bind(insert_turn_, 4, *text);
      sqlite3_bind_int64(insert_turn_, 5, r.at_ms);
      Step(insert_turn_);
    }
  }
  if (r.escalation) InsertEscalation(*r.escalation);
  return true;
}

void SqliteStore::Commit(std::vector<Job>& batch) {
  bool full = !retry_.empty();
  for (const auto& job : batch) {
    if (std::holds_alternative<Ack>(job)) full = true;
    if (auto* w = std::get_if<Write>(&job); w && w->record.escalation) full = true;
  }
  std::vector<bool> done_ok(batch.size(), false);  // per job: written (Write) or found (Ack)
  std::vector<EscalationEvent> retried = retry_;
  bool ok = true;
  try {
    Exec(full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    Exec("BEGIN IMMEDIATE");
    for (auto& e : retried) InsertEscalation(e);
    if (batch.empty() || !healthy_.load()) {  // a probe: does a write work now?
      sqlite3_bind_int64(probe_, 1, UnixMillis());
      Step(probe_);
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (auto* w = std::get_if<Write>(&batch[i])) {
        done_ok[i] = WriteRecord(w->record);
      } else if (auto* a = std::get_if<Ack>(&batch[i])) {
        sqlite3_bind_int64(ack_escalation_, 1, a->id);
        sqlite3_bind_int64(ack_escalation_, 2, UnixMillis());
        Step(ack_escalation_);
        done_ok[i] = sqlite3_changes(db_) > 0;
      } else if (auto* p = std::get_if<Purge>(&batch[i])) {
        for (auto* s : {purge_turns_, purge_conversations_}) {
          sqlite3_bind_int64(s, 1, p->cutoff_ms);
          sqlite3_bind_int64(s, 2, p->empty_cutoff_ms);
          Step(s);
        }
      }
    }
    Exec("COMMIT");
  } catch (const StoreError& e) {
    ok = false;
    if (healthy_.load()) {  // said once per outage; the writer retries quietly
      std::cerr << "chat-server: " << e.what() << "; replies are withheld and escalations kept for a retry until "
                << "writes work again\n";
    }
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  if (ok) {
    commits_.fetch_add(1);
    if (!healthy_.exchange(true)) std::cerr << "chat-server: database " << path_.string() << ": writes work again\n";
    retry_.clear();
  } else {
    healthy_.store(false);
  }
  Complete(batch, ok, done_ok, retried);
}

void SqliteStore::Complete(std::vector<Job>& batch, bool ok, const std::vector<bool>& done_ok,
                           const std::vector<EscalationEvent>& retried) {
  // A completion that throws must not take the writer (and every later turn) with it.
  const auto guarded = [](const auto& call) {
    try {
      call();
    } catch (const std::exception& e) {
      std::cerr << "chat-server: a store completion failed: " << e.what() << "\n";
    } catch (...) {
      std::cerr << "chat-server: a store completion failed\n";
    }
  };
  if (ok) {
    for (const auto& e : retried) {
      backlog_.Add(e);
      if (retried_) guarded([&] { retried_(e); });
    }
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (auto* w = std::get_if<Write>(&batch[i])) {
      const bool written = ok && done_ok[i];
      auto& escalation = w->record.escalation;
      if (written && escalation) backlog_.Add(*escalation);
      if (!written && escalation) {
        escalation->id = 0;
        retry_.push_back(*escalation);  // the turn is lost; the operators must still hear of it
      }
      guarded([&] { w->done(written, written ? escalation : std::nullopt); });
    } else if (auto* a = std::get_if<Ack>(&batch[i])) {
      const bool found = ok && done_ok[i];
      if (found) backlog_.Remove(a->id);
      guarded([&] { a->done(found); });
    }
  }
}

}  // namespace backcheck::server
