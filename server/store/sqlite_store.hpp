// The durable conversation store: SQLite in WAL mode, one writer thread with group commit.
//
// Reads are served from memory (the MemoryStore this extends); every change is queued to the
// writer, which commits all pending changes of all conversations in one transaction and then
// calls their completions in order, so a reply is released only once its turn is on disk.
// A batch holding an escalation or an acknowledgement commits with synchronous=FULL (it
// survives power loss); other batches with synchronous=NORMAL, which in WAL mode survives the
// process being killed (kill -9), the promise for turns.
//
// Schema versions are recorded in schema_migrations; opening a database that is corrupt, newer
// than this code or not writable throws StoreError and changes nothing.
//
// When a commit fails (a full disk, an I/O error) every record of the batch is reported failed
// and nothing of it is kept; the store turns unhealthy (Healthy() false) and the writer probes
// about once a second until a write succeeds. The escalations of failed records are not dropped:
// they are retried until durable and then handed to the retried-escalation listener, so an
// operator is always told. A conversation's urgency never goes down across a restart: on load it
// is raised to its highest stored escalation (through `raise`), whether or not the turn that
// made the escalation was committed.
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
  static constexpr int kSchemaVersion = 2;
  // Raises a loaded state's urgency to a stored escalation's (dialog::Engine::Escalate).
  using Raise = std::function<void(dialog::ConversationState& state, const EscalationEvent& escalation)>;
  static constexpr auto kProbeInterval = std::chrono::seconds(1);

  // Opens or creates the database at `path` and loads every conversation and unacknowledged
  // escalation into memory.
  explicit SqliteStore(const std::filesystem::path& path, Raise raise = {});
  ~SqliteStore() override;  // commits what is queued, then closes

  std::size_t PurgeIdle(Clock::time_point cutoff, Clock::time_point empty_cutoff) override;
  void Persist(TurnRecord record, Done done) override;
  bool KeepsRecords() const override { return true; }
  void Acknowledge(std::int64_t id, std::function<void(bool found)> done) override;
  bool Healthy() const override { return healthy_.load(); }
  void SetRetriedEscalationListener(EscalationListener listener) override { retried_ = std::move(listener); }

  // For tests and benchmarks: how many transactions the writer has committed.
  std::uint64_t Commits() const { return commits_.load(); }

 private:
  struct Purge {
    std::int64_t cutoff_ms;
    std::int64_t empty_cutoff_ms;
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
  void Load(const Raise& raise);
  void Close() noexcept;
  void Enqueue(Job job);
  void WriterLoop();
  void Commit(std::vector<Job>& batch);
  // Calls the batch's completions once its commit has succeeded or failed.
  void Complete(std::vector<Job>& batch, bool ok, const std::vector<bool>& done_ok,
                const std::vector<EscalationEvent>& retried);
  // Writes one record inside the open transaction. False: the conversation's stored seq is not
  // the one the record expects (an earlier turn failed), nothing of it was written. Throws
  // StoreError when a statement fails (the transaction is then rolled back).
  bool WriteRecord(TurnRecord& r);
  void InsertEscalation(EscalationEvent& e);
  void Step(sqlite3_stmt* s);
  void Exec(const char* sql);
  sqlite3_stmt* Prepare(const char* sql);
  [[noreturn]] void Fail(const std::string& what) const;

  std::filesystem::path path_;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_conversation_ = nullptr;
  sqlite3_stmt* update_conversation_ = nullptr;
  sqlite3_stmt* delete_empty_ = nullptr;
  sqlite3_stmt* probe_ = nullptr;
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
  std::atomic<bool> healthy_{true};
  std::vector<EscalationEvent> retry_;  // escalations whose records failed; writer thread only
  EscalationListener retried_;
  std::thread writer_;
};

}  // namespace backcheck::server
