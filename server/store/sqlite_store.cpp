#include "server/store/sqlite_store.hpp"

#include "server/store/state_json.hpp"
#include "server/log.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <typeinfo>
#include <nlohmann/json.hpp>
#include <unordered_map>


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
    // 3: who acknowledged an escalation; a conversation's escalations are read when it loads.
    R"sql(
ALTER TABLE escalations ADD COLUMN acked_by TEXT;
CREATE INDEX escalations_by_conversation ON escalations (conversation, id);
)sql",
    // 4: a turn is one row appended to turn_log, in commit order (a batch's turns share pages),
    // holding the state after it; a conversation's row keeps only its seq and the row of its last
    // turn, and is no longer indexed by last_active (every turn moved that index entry). History
    // walks back from the last row through prev. The old rows are carried over; a conversation's
    // state is its last row's.
    R"sql(
CREATE TABLE turn_log (
  n            INTEGER PRIMARY KEY,
  conversation INTEGER NOT NULL,  -- conversations.n
  seq          INTEGER NOT NULL,
  prev         INTEGER NOT NULL,  -- n of this conversation's previous row; 0 for its first
  at           INTEGER NOT NULL,  -- Unix ms
  user_text    TEXT,              -- NULL on a row that only changes the state (an end, a creation)
  reply_text   TEXT,
  state        TEXT NOT NULL      -- the state after this row (state_json.hpp); '' on turns carried over
);
CREATE TABLE conversations_v4 (
  n           INTEGER PRIMARY KEY,
  id          TEXT NOT NULL UNIQUE,
  seq         INTEGER NOT NULL,  -- of the last turn
  created_at  INTEGER NOT NULL,  -- Unix ms
  last_active INTEGER NOT NULL,  -- Unix ms
  last_turn   INTEGER NOT NULL   -- turn_log.n of the last row
);
INSERT INTO conversations_v4 (n, id, seq, created_at, last_active, last_turn)
  SELECT rowid, id, seq, created_at, last_active, 0 FROM conversations;
INSERT INTO turn_log (conversation, seq, prev, at, user_text, reply_text, state)
  SELECT c.rowid, u.seq, 0, u.at, u.text, COALESCE(a.text, ''), ''
  FROM conversations c JOIN turns u ON u.conversation = c.id AND u.role = 'user'
  LEFT JOIN turns a ON a.conversation = c.id AND a.seq = u.seq AND a.role = 'assistant'
  ORDER BY c.rowid, u.seq;
INSERT INTO turn_log (conversation, seq, prev, at, state)
  SELECT rowid, seq, 0, last_active, state FROM conversations ORDER BY rowid;
CREATE INDEX turn_log_carry_over ON turn_log (conversation, n);
UPDATE turn_log SET prev = COALESCE(
  (SELECT MAX(p.n) FROM turn_log p WHERE p.conversation = turn_log.conversation AND p.n < turn_log.n), 0);
UPDATE conversations_v4 SET last_turn = (SELECT MAX(t.n) FROM turn_log t WHERE t.conversation = conversations_v4.n);
DROP INDEX turn_log_carry_over;
DROP TABLE turns;
DROP TABLE conversations;
ALTER TABLE conversations_v4 RENAME TO conversations;
-- A row appended moves its conversation to it: one statement a turn, not two.
CREATE TRIGGER turn_log_appended AFTER INSERT ON turn_log BEGIN
  UPDATE conversations SET seq = NEW.seq, last_active = NEW.at, last_turn = NEW.n WHERE n = NEW.conversation;
END;
)sql",
    // 5: idempotent messages and keyed conversations (issue 15). A turn keeps the client's id of
    // its message and, only then, its reply as JSON, so a repeated id is answered again without
    // the engine; the partial index holds only turns with an id. The secret keyed conversations'
    // ids are derived from is made once and kept here.
    R"sql(
ALTER TABLE turn_log ADD COLUMN client_id TEXT;  -- the client's id of the message, if it had one
ALTER TABLE turn_log ADD COLUMN reply TEXT;      -- the reply as JSON, with a client_id only
CREATE INDEX turn_log_client_id ON turn_log (conversation, client_id) WHERE client_id IS NOT NULL;
CREATE TABLE store_secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL);
)sql",
    // 6: people in the loop (issue 16). A reply an operator wrote names them; a message to the
    // operator has an empty reply, an operator's message an empty user text.
    R"sql(
ALTER TABLE turn_log ADD COLUMN author TEXT;  -- the operator who wrote the reply; NULL: the assistant
)sql",
    // 7: the escalation webhook's outbox (issue 16): when each escalation was delivered, so a
    // restart neither loses nor repeats one. What is still to send is what nobody has delivered
    // nor acknowledged (a page is for an escalation nobody has seen).
    R"sql(
ALTER TABLE escalations ADD COLUMN webhook_at INTEGER;  -- Unix ms of the 2xx; NULL: not delivered
CREATE INDEX escalations_webhook_pending ON escalations (id) WHERE webhook_at IS NULL;
)sql",
    // 8: the operators' audit (issue 16): who did what to a conversation, and when (claim, join,
    // say, leave, ack). Kept like the escalations (a purge of the conversation leaves them). seq:
    // the conversation's seq then, so a transcript shows each action after the turn it followed.
    R"sql(
CREATE TABLE operator_actions (
  id           INTEGER PRIMARY KEY,
  conversation TEXT NOT NULL,
  seq          INTEGER NOT NULL,
  action       TEXT NOT NULL CHECK (action IN ('claim', 'join', 'say', 'leave', 'ack')),
  by_operator  TEXT NOT NULL,     -- the operator's name; '' for the unnamed one
  at           INTEGER NOT NULL,  -- Unix ms
  escalation   INTEGER,           -- ack: the escalation acknowledged
  note         TEXT               -- ack: the operator's note, if any
);
CREATE INDEX operator_actions_conversation ON operator_actions (conversation, id);
ALTER TABLE escalations ADD COLUMN ack_note TEXT;
)sql",
    // 9: a reply's quick replies and sources (issue 16), so a restored reply shows them again.
    R"sql(
ALTER TABLE turn_log ADD COLUMN extras TEXT;  -- JSON {quick_replies, sources}; NULL: none
)sql",
    // 10: what people asked that it could not answer (issue 17, --review; server/store/review.hpp):
    // the message, when, the flow state it arrived in, the retrieval score (0: the fallback) and
    // the intent. No conversation: an entry outlives its conversation, until --review-days.
    R"sql(
CREATE TABLE review (
  id     INTEGER PRIMARY KEY,
  at     INTEGER NOT NULL,  -- Unix ms
  text   TEXT NOT NULL,
  state  TEXT NOT NULL,
  score  REAL NOT NULL,
  intent TEXT NOT NULL
);
CREATE INDEX review_at ON review (at);
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
  // SQLITE_STATIC: the text outlives the step (the caller owns it), so SQLite need not copy it.
  sqlite3_bind_text(s, i, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
}
void Bind(sqlite3_stmt* s, int i, std::int64_t value) { sqlite3_bind_int64(s, i, value); }
void Bind(sqlite3_stmt* s, int i, std::uint64_t value) { sqlite3_bind_int64(s, i, static_cast<std::int64_t>(value)); }

// Runs `call`, reporting what it throws: a completion that throws must not take a store thread
// (and every later turn) with it.
template <typename F>
void Guarded(const F& call) {
  try {
    call();
  } catch (const std::exception& e) {
    // The type only: an exception's message may quote what it was given.
    BACKCHECK_LOG(kError, "store_callback_failed").Str("store", "sqlite").Str("callback", "completion")
        .Str("type", typeid(e).name());
  } catch (...) {
    BACKCHECK_LOG(kError, "store_callback_failed").Str("store", "sqlite").Str("callback", "completion");
  }
}

}  // namespace

// One SQLite handle with its prepared statements, by SQL text. Used by one thread at a time.
class SqliteStore::Connection {
 public:
  explicit Connection(const std::filesystem::path& path) : path_(path) {
    // Before SQLite's first use in the process (later it is refused, harmlessly): no memory
    // statistics, which take a global mutex around every allocation.
    static const int configured = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    (void)configured;
    try {
      Open();
    } catch (...) {
      sqlite3_close(db_);  // a refused database leaves no open handle behind
      throw;
    }
  }
  ~Connection() {
    for (auto& [sql, s] : statements_) sqlite3_finalize(s);
    sqlite3_close(db_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  [[noreturn]] void Fail(const std::string& what) const { throw StoreError("database " + path_.string() + ": " + what); }

  void Exec(const char* sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
      std::string message = error ? error : sqlite3_errmsg(db_);
      sqlite3_free(error);
      Fail(message);
    }
  }

  // The statement for `sql`, prepared once and reset for this use. `sql` must be a literal.
  sqlite3_stmt* Statement(const char* sql) {
    auto it = statements_.find(sql);
    if (it != statements_.end()) {
      sqlite3_reset(it->second);
      sqlite3_clear_bindings(it->second);
      return it->second;
    }
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
      Fail(std::string("cannot prepare a statement (") + sqlite3_errmsg(db_) + ")");
    }
    statements_.emplace(sql, s);
    return s;
  }

  // Runs `sql` (a literal: no parameters, no rows), prepared once.
  void Run(const char* sql) { Step(Statement(sql)); }
  // Runs a write statement to completion.
  void Step(sqlite3_stmt* s) {
    const int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) Fail(std::string("a write failed (") + sqlite3_errstr(rc) + ")");
  }
  // The next row of a query: true with a row, false at the end; throws on an error.
  bool Row(sqlite3_stmt* s) {
    const int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    Fail(std::string("a read failed (") + sqlite3_errstr(rc) + ")");
  }
  int Changes() const { return sqlite3_changes(db_); }
  sqlite3* handle() const { return db_; }
  std::int64_t LastRowId() const { return sqlite3_last_insert_rowid(db_); }

 private:
  void Open() {
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
      Fail("is not a valid SQLite database (" + message +
           "); refusing to start rather than reset it: move it aside or restore a backup");
    }
    std::string journal = Column(mode, 0);
    sqlite3_finalize(mode);
    if (journal != "wal") Fail("cannot use write-ahead logging (journal mode is " + journal + ")");
    Exec("PRAGMA synchronous=FULL");
  }

  std::filesystem::path path_;
  sqlite3* db_ = nullptr;
  std::unordered_map<const char*, sqlite3_stmt*> statements_;  // by the literal's address
};

void SqliteStore::LockDataDir(const std::filesystem::path& dir) {
  const std::filesystem::path lock = dir / "lock";
  lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) throw StoreError("cannot open " + lock.string() + ": " + std::strerror(errno));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    std::string holder;
    std::ifstream(lock) >> holder;
    ::close(lock_fd_);
    lock_fd_ = -1;
    throw StoreError("data directory " + dir.string() + " is in use by another chat-server (pid " +
                     (holder.empty() ? std::string("unknown") : holder) +
                     "); refusing to start: stop it, or give this one its own --data-dir");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(lock_fd_, 0) != 0 || ::pwrite(lock_fd_, pid.data(), pid.size(), 0) < 0) {
    // The lock holds without the pid; a refused second server just cannot name us.
  }
}

SqliteStore::SqliteStore(const std::filesystem::path& data_dir, RaiseUrgency raise,
                         std::chrono::microseconds commit_delay)
    : path_(data_dir / "backcheck.db"), raise_(std::move(raise)), commit_delay_(commit_delay) {
  LockDataDir(data_dir);
  try {
    writer_db_ = std::make_unique<Connection>(path_);
    Connection& db = *writer_db_;
    db.Exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
    sqlite3_stmt* s = db.Statement("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    const int version = db.Row(s) ? sqlite3_column_int(s, 0) : 0;
    sqlite3_reset(s);
    if (version > kSchemaVersion) {
      db.Fail("has schema version " + std::to_string(version) + ", newer than this server knows (" +
              std::to_string(kSchemaVersion) + "); refusing to start: run a newer server or restore a backup");
    }
    for (int v = version + 1; v <= kMigrationCount; ++v) {
      db.Exec("BEGIN IMMEDIATE");
      db.Exec(kMigrations[v - 1]);
      const std::string record = "INSERT INTO schema_migrations (version, applied_at) VALUES (" + std::to_string(v) +
                                 ", " + std::to_string(UnixMillis()) + ")";
      db.Exec(record.c_str());
      db.Exec("COMMIT");
    }
    key_secret_ = ReadKeySecret(db);
    sqlite3_stmt* count = db.Statement("SELECT COUNT(*) FROM conversations");
    count_ = db.Row(count) ? sqlite3_column_int64(count, 0) : 0;
    sqlite3_reset(count);
    LoadBacklog();
    reader_db_ = std::make_unique<Connection>(path_);
    checkpoint_db_ = std::make_unique<Connection>(path_);
    // Checkpoints run on their own thread, not inside a commit (SQLite's automatic checkpoint
    // copies the WAL into the database and syncs it in the writer, stalling every reply behind
    // it for milliseconds). Setting the hook turns the automatic one off.
    sqlite3_wal_hook(writer_db_->handle(), &SqliteStore::OnWalCommit, this);
  } catch (...) {
    checkpoint_db_.reset();
    reader_db_.reset();
    writer_db_.reset();  // a refused database leaves no open handle behind
    ::close(lock_fd_);
    throw;
  }
  writer_ = std::thread([this] { WriterLoop(); });
  reader_ = std::thread([this] { ReaderLoop(); });
  checkpointer_ = std::thread([this] { CheckpointLoop(); });
}

SqliteStore::~SqliteStore() {
  {
    std::lock_guard lock(read_mutex_);
    reads_stopping_ = true;
  }
  read_cv_.notify_one();
  if (reader_.joinable()) reader_.join();
  {
    std::lock_guard lock(queue_mutex_);
    stopping_ = true;
  }
  queue_cv_.notify_one();
  if (writer_.joinable()) writer_.join();
  {
    std::lock_guard lock(checkpoint_mutex_);
    checkpoint_stopping_ = true;
  }
  checkpoint_cv_.notify_one();
  if (checkpointer_.joinable()) checkpointer_.join();
  checkpoint_db_.reset();
  reader_db_.reset();
  writer_db_.reset();  // the last connection to close checkpoints what is left
  ::close(lock_fd_);  // unlocks the data directory
}

// The keyed conversations' secret: made on first open, the same ever after.
std::string SqliteStore::ReadKeySecret(Connection& db) {
  const std::string fresh = RandomBytes(32);
  sqlite3_stmt* insert = db.Statement("INSERT OR IGNORE INTO store_secrets (name, value) VALUES ('conversation_keys', ?1)");
  sqlite3_bind_blob(insert, 1, fresh.data(), static_cast<int>(fresh.size()), SQLITE_STATIC);
  db.Step(insert);
  sqlite3_stmt* s = db.Statement("SELECT value FROM store_secrets WHERE name = 'conversation_keys'");
  std::string secret;
  if (db.Row(s)) {
    secret.assign(static_cast<const char*>(sqlite3_column_blob(s, 0)), static_cast<std::size_t>(sqlite3_column_bytes(s, 0)));
  }
  sqlite3_reset(s);
  if (secret.size() < 16) db.Fail("has no usable conversation-key secret (store_secrets)");
  return secret;
}

namespace {
// A row of `SELECT id, conversation, level, flags, text, at FROM escalations`.
EscalationEvent EscalationAt(sqlite3_stmt* s) {
  EscalationEvent e;
  e.id = sqlite3_column_int64(s, 0);
  e.conversation = Column(s, 1);
  e.level = knowledge::ParseUrgency(Column(s, 2)).value_or(knowledge::Urgency::kUrgent);
  e.flags = FlagsFromJson(Column(s, 3));
  e.text = Column(s, 4);
  e.at_ms = sqlite3_column_int64(s, 5);
  return e;
}
}  // namespace

void SqliteStore::LoadBacklog() {
  Connection& db = *writer_db_;
  sqlite3_stmt* s =
      db.Statement("SELECT id, conversation, level, flags, text, at FROM escalations WHERE acked_at IS NULL ORDER BY id");
  while (db.Row(s)) backlog_.Add(EscalationAt(s));
  sqlite3_reset(s);
}

void SqliteStore::Pending(std::int64_t after_id, std::size_t limit,
                          std::function<void(std::vector<EscalationEvent>)> done) {
  EnqueueRead([this, after_id, limit, done = std::move(done)] {
    std::vector<EscalationEvent> pending;
    try {
      Connection& db = *reader_db_;
      sqlite3_stmt* s = db.Statement(
          "SELECT id, conversation, level, flags, text, at FROM escalations "
          "WHERE webhook_at IS NULL AND acked_at IS NULL AND id > ?1 ORDER BY id LIMIT ?2");
      Bind(s, 1, after_id);
      Bind(s, 2, static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX)));
      while (db.Row(s)) pending.push_back(EscalationAt(s));
      sqlite3_reset(s);
    } catch (const StoreError& e) {
      BACKCHECK_LOG(kWarn, "store_read_failed").Str("store", "sqlite").Str("read", "webhook_pending")
          .Str("error", e.what()).Str("then", "the webhook asks again later");
    }
    done(std::move(pending));
  });
}

void SqliteStore::MarkDelivered(std::int64_t id, std::function<void(bool ok)> done) {
  Enqueue(Delivered{id, std::move(done)});
}

// ---- reads ------------------------------------------------------------------------------------

void SqliteStore::EnqueueRead(Read read) {
  {
    std::lock_guard lock(read_mutex_);
    reads_.push_back(std::move(read));
  }
  read_cv_.notify_one();
}

void SqliteStore::ReaderLoop() {
  std::vector<Read> batch;
  while (true) {
    {
      std::unique_lock lock(read_mutex_);
      read_cv_.wait(lock, [&] { return reads_stopping_ || !reads_.empty(); });
      if (reads_.empty()) return;  // stopping, and every read asked for is answered
      batch.swap(reads_);
    }
    for (auto& read : batch) Guarded(read);
    batch.clear();
  }
}

Loaded SqliteStore::ReadConversation(const std::string& id) {
  Connection& db = *reader_db_;
  Loaded loaded;
  try {
    sqlite3_stmt* s = db.Statement(
        "SELECT t.state, c.seq, c.last_active FROM conversations c JOIN turn_log t ON t.n = c.last_turn WHERE c.id = ?1");
    Bind(s, 1, id);
    if (!db.Row(s)) {
      sqlite3_reset(s);
      return loaded;
    }
    loaded.conversation.id = id;
    loaded.conversation.seq = static_cast<std::uint64_t>(sqlite3_column_int64(s, 1));
    loaded.conversation.last_active_ms = sqlite3_column_int64(s, 2);
    const std::string state = Column(s, 0);
    sqlite3_reset(s);
    try {
      loaded.conversation.state = nlohmann::json::parse(state).get<dialog::ConversationState>();
    } catch (const std::exception& e) {
      // Neither the id nor the parser's message (it quotes the state): the reference and the type.
      BACKCHECK_LOG(kError, "conversation_unreadable").Str("store", "sqlite")
          .Str("conversation", log::ConversationRef(id)).Str("type", typeid(e).name());
      loaded.status = Loaded::Status::kUnavailable;
      return loaded;
    }
    // Urgency never goes down: an escalation may be durable when the turn that raised it is not.
    if (raise_) {
      sqlite3_stmt* e = db.Statement("SELECT level, flags FROM escalations WHERE conversation = ?1 ORDER BY id");
      Bind(e, 1, id);
      while (db.Row(e)) {
        EscalationEvent event;
        event.conversation = id;
        event.level = knowledge::ParseUrgency(Column(e, 0)).value_or(knowledge::Urgency::kUrgent);
        event.flags = FlagsFromJson(Column(e, 1));
        raise_(loaded.conversation.state, event);
      }
      sqlite3_reset(e);
    }
    loaded.status = Loaded::Status::kFound;
  } catch (const StoreError& e) {
    BACKCHECK_LOG(kError, "store_read_failed").Str("store", "sqlite").Str("read", "conversation").Str("error", e.what());
    loaded.status = Loaded::Status::kUnavailable;
  }
  return loaded;
}

std::optional<HistoryPage> SqliteStore::ReadHistory(const std::string& id, std::optional<std::uint64_t> before,
                                                    std::size_t turns) {
  Connection& db = *reader_db_;
  try {
    sqlite3_stmt* s = db.Statement("SELECT seq, last_turn FROM conversations WHERE id = ?1");
    Bind(s, 1, id);
    std::uint64_t last = 0;
    std::int64_t row = 0;
    if (db.Row(s)) {
      last = static_cast<std::uint64_t>(sqlite3_column_int64(s, 0));
      row = sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    const HistoryRange range = RangeOf(last, before, turns);
    HistoryPage page;
    page.more = range.more;
    // Back from the last row, newest first; a page further back walks past the turns after it.
    sqlite3_stmt* t = db.Statement("SELECT seq, prev, user_text, reply_text, author, extras FROM turn_log WHERE n = ?1");
    while (row != 0) {
      Bind(t, 1, row);
      if (!db.Row(t)) break;  // a broken chain ends the history; nothing is made up
      const auto seq = static_cast<std::uint64_t>(sqlite3_column_int64(t, 0));
      row = sqlite3_column_int64(t, 1);
      if (seq < range.first) row = 0;
      if (seq >= range.first && seq < range.end && sqlite3_column_type(t, 2) != SQLITE_NULL) {
        // Newest first, reversed below: the reply, then the message it answers.
        AddTurn(page.entries, seq, Column(t, 2), Column(t, 3), Column(t, 4), /*reply_first=*/true, Column(t, 5));
      }
      sqlite3_reset(t);
    }
    sqlite3_reset(t);
    std::reverse(page.entries.begin(), page.entries.end());
    return page;
  } catch (const StoreError& e) {
    BACKCHECK_LOG(kError, "store_read_failed").Str("store", "sqlite").Str("read", "history").Str("error", e.what());
    return std::nullopt;
  }
}

void SqliteStore::Load(std::string id, std::function<void(Loaded)> done) {
  EnqueueRead([this, id = std::move(id), done = std::move(done)] { done(ReadConversation(id)); });
}

StoredReply SqliteStore::ReadReply(const std::string& id, const std::string& client_id) {
  Connection& db = *reader_db_;
  StoredReply found;
  try {
    sqlite3_stmt* s = db.Statement(
        "SELECT t.seq, t.reply FROM conversations c JOIN turn_log t ON t.conversation = c.n "
        "WHERE c.id = ?1 AND t.client_id = ?2 ORDER BY t.n LIMIT 1");
    Bind(s, 1, id);
    Bind(s, 2, client_id);
    if (db.Row(s)) {
      found.status = StoredReply::Status::kFound;
      found.seq = static_cast<std::uint64_t>(sqlite3_column_int64(s, 0));
      found.reply_json = Column(s, 1);
    }
    sqlite3_reset(s);
  } catch (const StoreError& e) {
    BACKCHECK_LOG(kError, "store_read_failed").Str("store", "sqlite").Str("read", "reply").Str("error", e.what());
    found.status = StoredReply::Status::kUnavailable;
  }
  return found;
}

void SqliteStore::FindReply(std::string id, std::string client_id, std::function<void(StoredReply)> done) {
  EnqueueRead([this, id = std::move(id), client_id = std::move(client_id), done = std::move(done)] {
    done(ReadReply(id, client_id));
  });
}

std::optional<std::vector<AuditEntry>> SqliteStore::ReadAudit(const std::string& id) {
  Connection& db = *reader_db_;
  try {
    sqlite3_stmt* s = db.Statement(
        "SELECT action, by_operator, seq, at, COALESCE(escalation, 0), COALESCE(note, '') FROM "
        "(SELECT * FROM operator_actions WHERE conversation = ?1 ORDER BY id DESC LIMIT ?2) ORDER BY id");
    Bind(s, 1, id);
    Bind(s, 2, static_cast<std::int64_t>(kMaxAuditEntries));
    std::vector<AuditEntry> entries;
    while (db.Row(s)) {
      entries.push_back(AuditEntry{id, Column(s, 0), Column(s, 1), static_cast<std::uint64_t>(sqlite3_column_int64(s, 2)),
                                   sqlite3_column_int64(s, 3), sqlite3_column_int64(s, 4), Column(s, 5)});
    }
    sqlite3_reset(s);
    return entries;
  } catch (const StoreError& e) {
    BACKCHECK_LOG(kError, "store_read_failed").Str("store", "sqlite").Str("read", "audit").Str("error", e.what());
    return std::nullopt;
  }
}

void SqliteStore::Audit(std::string id, std::function<void(std::optional<std::vector<AuditEntry>>)> done) {
  EnqueueRead([this, id = std::move(id), done = std::move(done)] { done(ReadAudit(id)); });
}

void SqliteStore::History(std::string id, std::optional<std::uint64_t> before, std::size_t turns,
                          std::function<void(std::optional<HistoryPage>)> done) {
  EnqueueRead([this, id = std::move(id), before, turns, done = std::move(done)] { done(ReadHistory(id, before, turns)); });
}

// ---- checkpoints ------------------------------------------------------------------------------

// Asks for one checkpoint per kCheckpointPages frames appended (not after every commit once the
// log is that long: under steady writes it restarts only when a checkpoint has just caught up).
int SqliteStore::OnWalCommit(void* self, sqlite3*, const char*, int wal_pages) {
  auto* store = static_cast<SqliteStore*>(self);
  if (wal_pages < store->wal_pages_) store->checkpointed_at_ = 0;  // the log started again
  store->wal_pages_ = wal_pages;
  if (wal_pages - store->checkpointed_at_ >= kCheckpointPages) {
    store->checkpointed_at_ = wal_pages;
    {
      std::lock_guard lock(store->checkpoint_mutex_);
      store->checkpoint_wanted_ = true;
    }
    store->checkpoint_cv_.notify_one();
  }
  return SQLITE_OK;
}

void SqliteStore::CheckpointLoop() {
  bool failing = false;
  while (true) {
    {
      std::unique_lock lock(checkpoint_mutex_);
      checkpoint_cv_.wait(lock, [&] { return checkpoint_stopping_ || checkpoint_wanted_; });
      if (checkpoint_stopping_) return;
      checkpoint_wanted_ = false;
    }
    // PASSIVE: copies what it can without waiting for the writer or the reader, which go on.
    int wal = 0, copied = 0;
    const int rc = sqlite3_wal_checkpoint_v2(checkpoint_db_->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &wal, &copied);
    if (rc == SQLITE_OK || rc == SQLITE_BUSY) {
      checkpoints_.fetch_add(1);
      failing = false;
    } else if (!failing) {  // said once; the next commit past the mark asks again
      failing = true;
      BACKCHECK_LOG(kWarn, "store_checkpoint_failed").Str("store", "sqlite").Str("database", path_.string())
          .Str("error", sqlite3_errstr(rc)).Str("then", "the write-ahead log grows until one succeeds");
    }
  }
}

// ---- writes -----------------------------------------------------------------------------------

void SqliteStore::Commit(TurnRecord record, CommitDone done) { Enqueue(Write{std::move(record), std::move(done)}); }

void SqliteStore::Purge(std::int64_t cutoff_ms, std::int64_t empty_cutoff_ms, std::int64_t review_cutoff_ms) {
  Enqueue(Purging{cutoff_ms, empty_cutoff_ms, review_cutoff_ms});
}

void SqliteStore::Acknowledge(std::int64_t id, std::string by, std::string note, std::function<void(bool found)> done) {
  Enqueue(Ack{id, std::move(by), std::move(note), std::move(done)});
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
      // Group commit under load (the last batch carried more than one record): wait a moment for
      // more, so one commit's page writes, locks and wake-ups carry many turns. A lone
      // conversation never waits.
      if (commit_delay_.count() > 0 && last_batch_ > 1 && healthy_.load() && !stopping_ &&
          queue_.size() < kEnoughToCommit) {
        lock.unlock();
        std::this_thread::sleep_for(commit_delay_);
        lock.lock();
      }
      batch.swap(queue_);
    }
    last_batch_ = batch.size();
    CommitBatch(batch);  // an empty batch is a retry or a probe; it may move the batch away
    batch.clear();
  }
}

void SqliteStore::InsertEscalation(EscalationEvent& e) {
  Connection& db = *writer_db_;
  sqlite3_stmt* s =
      db.Statement("INSERT INTO escalations (conversation, level, flags, text, at) VALUES (?1, ?2, ?3, ?4, ?5)");
  Bind(s, 1, e.conversation);
  Bind(s, 2, knowledge::UrgencyName(e.level));
  const std::string flags = nlohmann::json(e.flags).dump();  // bound static: lives past the step
  Bind(s, 3, flags);
  Bind(s, 4, e.text);
  Bind(s, 5, e.at_ms);
  db.Step(s);
  e.id = db.LastRowId();
}

// Appends the record's row to turn_log if the conversation's seq is `expected_seq` (the
// compare-and-set: one row or none); the schema's trigger points the conversation at it. The
// row holds the record's texts when `with_texts`, else only its state.
CommitResult SqliteStore::AppendRow(const TurnRecord& r, std::uint64_t expected_seq, bool with_texts) {
  Connection& db = *writer_db_;
  const std::string state = StateJson(r.state);  // bound static: lives past the step
  sqlite3_stmt* s = db.Statement(
      "INSERT INTO turn_log (conversation, seq, prev, at, user_text, reply_text, state, client_id, reply, author, extras) "
      "SELECT n, ?2, last_turn, ?3, ?4, ?5, ?6, ?8, ?9, ?10, ?11 FROM conversations WHERE id = ?1 AND seq = ?7");
  Bind(s, 1, r.conversation);
  Bind(s, 2, r.seq);
  Bind(s, 3, r.at_ms);
  if (with_texts) {
    Bind(s, 4, r.user_text);
    Bind(s, 5, r.reply_text);
    if (!r.client_id.empty()) {
      Bind(s, 8, r.client_id);
      Bind(s, 9, r.reply_json);
    }
    if (!r.reply_author.empty()) Bind(s, 10, r.reply_author);
    if (!r.reply_extras.empty()) Bind(s, 11, r.reply_extras);
  }  // else NULL: a row that only changes the state
  Bind(s, 6, state);
  Bind(s, 7, expected_seq);
  db.Step(s);
  // The trigger turn_log_appended has pointed the conversation at the row.
  return db.Changes() == 1 ? CommitResult::kCommitted : CommitResult::kConflict;  // else somebody came first
}

// Deletes a conversation's rows, newest first, following prev from `row`.
void SqliteStore::DeleteRows(std::int64_t row) {
  Connection& db = *writer_db_;
  sqlite3_stmt* s = db.Statement("DELETE FROM turn_log WHERE n = ?1 RETURNING prev");
  while (row != 0) {
    Bind(s, 1, row);
    row = db.Row(s) ? sqlite3_column_int64(s, 0) : 0;
    while (db.Row(s)) {
    }
    sqlite3_reset(s);
  }
}

// Deletes the conversations the query selects (n, last_turn) with their rows; how many.
std::int64_t SqliteStore::DeleteConversations(sqlite3_stmt* select) {
  Connection& db = *writer_db_;
  std::vector<std::pair<std::int64_t, std::int64_t>> gone;
  while (db.Row(select)) gone.emplace_back(sqlite3_column_int64(select, 0), sqlite3_column_int64(select, 1));
  sqlite3_reset(select);
  sqlite3_stmt* s = db.Statement("DELETE FROM conversations WHERE n = ?1");
  for (const auto& [n, last_turn] : gone) {
    DeleteRows(last_turn);
    Bind(s, 1, n);
    db.Step(s);
  }
  return static_cast<std::int64_t>(gone.size());
}

CommitResult SqliteStore::WriteRecord(TurnRecord& r, std::int64_t& counted) {
  Connection& db = *writer_db_;
  switch (r.kind) {
    case TurnRecord::Kind::kCreate: {
      sqlite3_stmt* s = db.Statement(
          "INSERT OR IGNORE INTO conversations (id, seq, created_at, last_active, last_turn) VALUES (?1, ?2, ?3, ?3, 0)");
      Bind(s, 1, r.conversation);
      Bind(s, 2, r.seq);
      Bind(s, 3, r.at_ms);
      db.Step(s);
      if (db.Changes() != 1) return CommitResult::kConflict;
      ++counted;
      return AppendRow(r, r.seq, /*with_texts=*/false);  // its first row: the state
    }
    case TurnRecord::Kind::kDelete: {
      sqlite3_stmt* s = db.Statement("SELECT n, last_turn FROM conversations WHERE id = ?1 AND seq = 0");
      Bind(s, 1, r.conversation);
      counted -= DeleteConversations(s);
      return CommitResult::kCommitted;
    }
    case TurnRecord::Kind::kUpdate:
      break;
  }
  const CommitResult result = AppendRow(r, r.expected_seq, r.has_turn);
  if (result == CommitResult::kCommitted && r.escalation) InsertEscalation(*r.escalation);
  if (result == CommitResult::kCommitted && r.audit) InsertAudit(*r.audit);
  if (result == CommitResult::kCommitted && r.review) InsertReview(*r.review);
  return result;
}

void SqliteStore::InsertReview(const ReviewEntry& r) {
  sqlite3_stmt* s =
      writer_db_->Statement("INSERT INTO review (at, text, state, score, intent) VALUES (?1, ?2, ?3, ?4, ?5)");
  Bind(s, 1, r.at_ms);
  Bind(s, 2, r.text);
  Bind(s, 3, r.state);
  sqlite3_bind_double(s, 4, r.score);
  Bind(s, 5, r.intent);
  writer_db_->Step(s);
}

void SqliteStore::InsertAudit(const AuditEntry& a) {
  sqlite3_stmt* s = writer_db_->Statement(
      "INSERT INTO operator_actions (conversation, seq, action, by_operator, at, escalation, note) "
      "VALUES (?1, ?2, ?3, ?4, ?5, NULLIF(?6, 0), NULLIF(?7, ''))");
  Bind(s, 1, a.conversation);
  Bind(s, 2, static_cast<std::int64_t>(a.seq));
  Bind(s, 3, a.action);
  Bind(s, 4, a.by);
  Bind(s, 5, a.at_ms);
  Bind(s, 6, a.escalation);
  Bind(s, 7, a.note);
  writer_db_->Step(s);
}

bool SqliteStore::WriteAck(const Ack& a) {
  Connection& db = *writer_db_;
  const std::int64_t now = UnixMillis();
  sqlite3_stmt* s = db.Statement(
      "UPDATE escalations SET acked_at = ?2, acked_by = ?3, ack_note = NULLIF(?4, '') WHERE id = ?1 AND acked_at IS NULL "
      "RETURNING conversation");
  Bind(s, 1, a.id);
  Bind(s, 2, now);
  Bind(s, 3, a.by);
  Bind(s, 4, a.note);
  std::optional<std::string> conversation;
  if (db.Row(s)) conversation = Column(s, 0);
  while (db.Row(s)) {
  }
  sqlite3_reset(s);
  if (!conversation) return false;
  sqlite3_stmt* q = db.Statement("SELECT seq FROM conversations WHERE id = ?1");
  Bind(q, 1, *conversation);
  const auto seq = db.Row(q) ? static_cast<std::uint64_t>(sqlite3_column_int64(q, 0)) : 0;
  sqlite3_reset(q);
  InsertAudit(AuditEntry{*conversation, "ack", a.by, seq, now, a.id, a.note});
  return true;
}

void SqliteStore::CommitBatch(std::vector<Job>& batch) {
  Connection& db = *writer_db_;
  bool full = !retry_.empty();
  for (const auto& job : batch) {
    if (std::holds_alternative<Ack>(job)) full = true;
    if (auto* w = std::get_if<Write>(&job); w && w->record.escalation) full = true;
  }
  std::vector<CommitResult> results(batch.size(), CommitResult::kUnavailable);
  std::vector<EscalationEvent> retried = retry_;
  std::int64_t counted = 0;  // conversations added less those removed, once committed
  bool ok = true;
  try {
    if (full != synchronous_full_) {
      db.Run(full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
      synchronous_full_ = full;
    }
    db.Run("BEGIN IMMEDIATE");
    for (auto& e : retried) InsertEscalation(e);
    if (batch.empty() || !healthy_.load()) {  // a probe: does a write work now?
      sqlite3_stmt* probe = db.Statement("INSERT OR REPLACE INTO store_probe (id, at) VALUES (1, ?1)");
      Bind(probe, 1, UnixMillis());
      db.Step(probe);
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (auto* w = std::get_if<Write>(&batch[i])) {
        results[i] = WriteRecord(w->record, counted);
      } else if (auto* a = std::get_if<Ack>(&batch[i])) {
        results[i] = WriteAck(*a) ? CommitResult::kCommitted : CommitResult::kConflict;
      } else if (auto* d = std::get_if<Delivered>(&batch[i])) {
        sqlite3_stmt* s = db.Statement("UPDATE escalations SET webhook_at = ?2 WHERE id = ?1");
        Bind(s, 1, d->id);
        Bind(s, 2, UnixMillis());
        db.Step(s);
        results[i] = CommitResult::kCommitted;
      } else if (auto* p = std::get_if<Purging>(&batch[i])) {
        // A scan: it runs once in a while, and an index on last_active would cost every turn.
        sqlite3_stmt* s = db.Statement(
            "SELECT n, last_turn FROM conversations WHERE last_active < ?1 OR (seq = 0 AND last_active < ?2)");
        Bind(s, 1, p->cutoff_ms);
        Bind(s, 2, p->empty_cutoff_ms);
        counted -= DeleteConversations(s);
        sqlite3_stmt* review = db.Statement("DELETE FROM review WHERE at < ?1");
        Bind(review, 1, p->review_cutoff_ms);
        db.Step(review);
      }
    }
    db.Run("COMMIT");
  } catch (const StoreError& e) {
    ok = false;
    if (healthy_.load()) {  // said once per outage; the writer retries quietly
      BACKCHECK_LOG(kError, "store_write_failed").Str("store", "sqlite").Str("database", path_.string())
          .Str("error", e.what())
          .Str("then", "replies are withheld and escalations kept for a retry until writes work again");
    }
    try {
      db.Exec("ROLLBACK");
    } catch (const StoreError&) {
      // No transaction was open (BEGIN failed): nothing to undo.
    }
  }
  if (ok) {
    commits_.fetch_add(1);
    count_.fetch_add(counted);
    if (!healthy_.exchange(true)) {
      BACKCHECK_LOG(kInfo, "store_recovered").Str("store", "sqlite").Str("database", path_.string())
          .Str("then", "writes work again");
    }
    retry_.clear();
  } else {
    healthy_.store(false);
  }
  Complete(batch, ok, std::move(results), retried);
}

void SqliteStore::Complete(std::vector<Job>& batch, bool ok, std::vector<CommitResult> results,
                           const std::vector<EscalationEvent>& retried) {
  if (ok) {
    for (const auto& e : retried) {
      backlog_.Add(e);
      if (listener_.escalation) Guarded([&] { listener_.escalation(e); });
    }
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (!ok) results[i] = CommitResult::kUnavailable;
    if (auto* w = std::get_if<Write>(&batch[i])) {
      auto& escalation = w->record.escalation;
      if (results[i] == CommitResult::kCommitted && escalation) {
        backlog_.Add(*escalation);
        if (listener_.escalation) Guarded([&] { listener_.escalation(*escalation); });
      }
      if (results[i] == CommitResult::kUnavailable && escalation) {
        escalation->id = 0;
        retry_.push_back(*escalation);  // the turn is lost; the operators must still hear of it
      }
    } else if (auto* a = std::get_if<Ack>(&batch[i])) {
      if (results[i] != CommitResult::kCommitted) continue;
      if (auto event = backlog_.Take(a->id); event && listener_.acknowledged) {
        Guarded([&] { listener_.acknowledged(*event, a->by); });
      }
    }
  }
  if (!complete_on_) return Settle(batch, results);
  struct Settled {
    std::vector<Job> batch;
    std::vector<CommitResult> results;
  };
  auto settled = std::make_shared<Settled>(Settled{std::move(batch), std::move(results)});
  complete_on_([settled] { Settle(settled->batch, settled->results); });
}

void SqliteStore::Settle(std::vector<Job>& batch, const std::vector<CommitResult>& results) {
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const bool written = results[i] == CommitResult::kCommitted;
    if (auto* w = std::get_if<Write>(&batch[i])) {
      Guarded([&] { w->done(results[i], written ? w->record.escalation : std::nullopt); });
    } else if (auto* a = std::get_if<Ack>(&batch[i])) {
      Guarded([&] { a->done(written); });
    } else if (auto* d = std::get_if<Delivered>(&batch[i])) {
      Guarded([&] { d->done(written); });
    }
  }
}

}  // namespace backcheck::server
