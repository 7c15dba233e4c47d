// The durable conversation store: SQLite in WAL mode, one writer thread with group commit.
//
// Reads are served from memory (the MemoryStore this extends); every change is queued to the
// writer, which commits all pending changes of all conversations in one transaction and then
// calls their completions in order, so a reply is released only once its turn is on disk.
// A batch holding an escalation or an acknowledgement commits with synchronous=FULL (it
// survives power loss); other batches with synchronous=NORMAL, which in WAL mode survives the
// process being killed (kill -9), the promise for turns.
//
// Schema versions are recorded in schema_migrations; opening a database that is corrupt or
// newer than this code throws StoreError and changes nothing.
#pragma once

#include <condition_variable>
#include <filesystem>
#include <stdexcept>
#include <thread>
#include <variant>

#include "server/conversation_store.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace backcheck::server {

class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class SqliteStore final : public MemoryStore {
 public:
  static constexpr int kSchemaVersion = 1;

  // Opens or creates the database at `path` and loads every conversation and unacknowledged
  // escalation into memory. `now` anchors the stored idle times to the steady clock.
  explicit SqliteStore(const std::filesystem::path& path);
  ~SqliteStore() override;  // commits what is queued, then closes

  std::size_t PurgeIdle(Clock::time_point cutoff) override;
  void Persist(TurnRecord record, Done done) override;
  bool KeepsRecords() const override { return true; }
  void Acknowledge(std::int64_t id, std::function<void(bool found)> done) override;

  // For tests and benchmarks: how many transactions the writer has committed.
  std::uint64_t Commits() const { return commits_.load(); }

 private:
  struct Purge {
    std::int64_t cutoff_ms;
  };
  struct Ack {
    std::int64_t id;
    std::function<void(bool)> done;
  };
  struct Write {
    TurnRecord record;
    Done done;
  };
  using Job = std::variant<Write, Ack, Purge>;

  void Open();
  void Migrate();
  void Load();
  void Enqueue(Job job);
  void WriterLoop();
  void Commit(std::vector<Job>& batch);
  void Exec(const char* sql);
  sqlite3_stmt* Prepare(const char* sql);
  [[noreturn]] void Fail(const std::string& what) const;

  std::filesystem::path path_;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* upsert_conversation_ = nullptr;
  sqlite3_stmt* insert_turn_ = nullptr;
  sqlite3_stmt* insert_escalation_ = nullptr;
  sqlite3_stmt* ack_escalation_ = nullptr;
  sqlite3_stmt* purge_turns_ = nullptr;
  sqlite3_stmt* purge_conversations_ = nullptr;

  std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::vector<Job> queue_;
  bool stopping_ = false;
  std::atomic<std::uint64_t> commits_{0};
  std::thread writer_;
};

}  // namespace backcheck::server
