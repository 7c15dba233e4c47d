// The embedded durable store (--store sqlite, the default): SQLite in WAL mode, for one process.
//
// Writes: one writer thread with group commit takes every queued record of every conversation
// and commits them in one transaction, then calls their completions in order, so a reply is
// released only once its turn is on disk. Under load it first waits a moment (commit_delay, like
// PostgreSQL's commit_delay) so that one commit carries many turns. A turn is one row appended
// to turn_log with the state after it; the conversation's row points at its last row. A batch
// holding an escalation or an acknowledgement commits with synchronous=FULL (it survives power
// loss); other batches with synchronous=NORMAL, which in WAL mode survives the process being
// killed (kill -9), the promise for turns.
// Reads (Load, History): one reader thread with its own connection, so a read never waits for
// a commit's fsync. Checkpoints: a third thread and connection, asked by the writer once the WAL
// passes kCheckpointPages, so no commit waits for one. Nothing is loaded at start-up but the
// count and the unacknowledged escalations: a conversation is read when it is used.
//
// The data directory is locked (flock on DIR/lock, holding the owner's pid) for the store's
// lifetime: a second server on the same directory is refused with StoreError naming the pid.
// Schema versions are recorded in schema_migrations; opening a database that is corrupt, newer
// than this code or not writable throws StoreError and changes nothing.
//
// When a commit fails (a full disk, an I/O error) every record of the batch is reported
// kUnavailable and nothing of it is kept; the store turns unhealthy and the writer probes about
// once a second until a write succeeds. The escalations of failed records are not dropped: they
// are retried until durable and then handed to the escalation listener, so an operator is
// always told; Load raises a conversation's urgency to its stored escalations'.
#pragma once

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>
#include <variant>

#include "server/store/escalation_backlog.hpp"
#include "server/store/store.hpp"
#include "server/webhook/webhook_outbox.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace backcheck::server {

class SqliteStore final : public ConversationStore, public EscalationLog, public WebhookOutbox {
 public:
  static constexpr int kSchemaVersion = 10;
  static constexpr auto kProbeInterval = std::chrono::seconds(1);
  static constexpr auto kDefaultCommitDelay = std::chrono::microseconds(200);
  static constexpr std::size_t kEnoughToCommit = 256;  // a batch this big commits without waiting
  static constexpr int kCheckpointPages = 1000;         // a WAL this long (4 MiB) is checkpointed

  // Locks `data_dir`, opens or creates DIR/backcheck.db and migrates it. Under load the writer
  // waits `commit_delay` before each commit for more records to join it (0: never waits).
  explicit SqliteStore(const std::filesystem::path& data_dir, RaiseUrgency raise = {},
                       std::chrono::microseconds commit_delay = kDefaultCommitDelay);
  ~SqliteStore() override;  // commits what is queued, then closes and unlocks

  void Load(std::string id, std::function<void(Loaded)> done) override;
  void Commit(TurnRecord record, CommitDone done) override;
  void History(std::string id, std::optional<std::uint64_t> before, std::size_t turns,
               std::function<void(std::optional<HistoryPage>)> done) override;
  void FindReply(std::string id, std::string client_id, std::function<void(StoredReply)> done) override;
  void Audit(std::string id, std::function<void(std::optional<std::vector<AuditEntry>>)> done) override;
  void Purge(std::int64_t cutoff_ms, std::int64_t empty_cutoff_ms, std::int64_t review_cutoff_ms) override;
  const std::string& KeySecret() const override { return key_secret_; }
  std::size_t Count() const override { return static_cast<std::size_t>(std::max<std::int64_t>(0, count_.load())); }
  bool Healthy() const override { return healthy_.load(); }
  EscalationLog& escalations() override { return *this; }
  void CompleteOn(Post post) override { complete_on_ = std::move(post); }

  std::vector<EscalationEvent> Unacknowledged(std::int64_t after_id, std::size_t limit) const override {
    return backlog_.Page(after_id, limit);
  }
  std::size_t UnacknowledgedCount() const override { return backlog_.Size(); }
  void Acknowledge(std::int64_t id, std::string by, std::string note, std::function<void(bool found)> done) override;
  void Subscribe(Listener listener) override { listener_ = std::move(listener); }

  // WebhookOutbox: pending ones are read on the reader thread; a delivery is marked by the writer.
  void Pending(std::int64_t after_id, std::size_t limit, std::function<void(std::vector<EscalationEvent>)> done) override;
  void MarkDelivered(std::int64_t id, std::function<void(bool ok)> done) override;

  // For tests and benchmarks: how many transactions the writer has committed.
  std::uint64_t Commits() const { return commits_.load(); }
  // ...and how many checkpoints its checkpointer has run.
  std::uint64_t Checkpoints() const { return checkpoints_.load(); }

 private:
  struct Purging {
    std::int64_t cutoff_ms;
    std::int64_t empty_cutoff_ms;
    std::int64_t review_cutoff_ms;
  };
  struct Ack {
    std::int64_t id;
    std::string by;
    std::string note;
    std::function<void(bool)> done;
  };
  struct Write {
    TurnRecord record;
    CommitDone done;
  };
  struct Delivered {  // the webhook's 2xx for an escalation
    std::int64_t id;
    std::function<void(bool)> done;
  };
  using Job = std::variant<Write, Ack, Purging, Delivered>;
  using Read = std::function<void()>;  // runs on the reader thread

  class Connection;  // one sqlite3 handle and its prepared statements (sqlite_store.cpp)

  void LockDataDir(const std::filesystem::path& dir);
  void LoadBacklog();
  void Enqueue(Job job);
  void EnqueueRead(Read read);
  void WriterLoop();
  void ReaderLoop();
  void CheckpointLoop();
  // SQLite's WAL hook on the writer's connection: after each commit, the WAL's length in pages.
  static int OnWalCommit(void* self, sqlite3* db, const char* name, int wal_pages);
  void CommitBatch(std::vector<Job>& batch);
  // Once the batch's commit has succeeded or failed: tells the escalation listener (here, before
  // any reply), then calls the completions, here or through complete_on_.
  void Complete(std::vector<Job>& batch, bool ok, std::vector<CommitResult> results,
                const std::vector<EscalationEvent>& retried);
  static void Settle(std::vector<Job>& batch, const std::vector<CommitResult>& results);
  // Writes one record inside the open transaction; kConflict when the stored seq (or the id)
  // is not the one the record expects, nothing of it written. Throws StoreError when a
  // statement fails (the transaction is then rolled back).
  // `counted` gains the conversations the record adds, less those it deletes.
  CommitResult WriteRecord(TurnRecord& r, std::int64_t& counted);
  CommitResult AppendRow(const TurnRecord& r, std::uint64_t expected_seq, bool with_texts);
  void DeleteRows(std::int64_t row);
  std::int64_t DeleteConversations(sqlite3_stmt* select);
  void InsertEscalation(EscalationEvent& e);
  void InsertAudit(const AuditEntry& a);
  void InsertReview(const ReviewEntry& r);
  bool WriteAck(const Ack& a);  // false: no unacknowledged escalation has the id
  std::optional<std::vector<AuditEntry>> ReadAudit(const std::string& id);
  Loaded ReadConversation(const std::string& id);
  StoredReply ReadReply(const std::string& id, const std::string& client_id);
  static std::string ReadKeySecret(Connection& db);
  std::optional<HistoryPage> ReadHistory(const std::string& id, std::optional<std::uint64_t> before, std::size_t turns);

  std::filesystem::path path_;
  std::string key_secret_;
  int lock_fd_ = -1;
  RaiseUrgency raise_;
  std::unique_ptr<Connection> writer_db_;
  std::unique_ptr<Connection> reader_db_;
  std::unique_ptr<Connection> checkpoint_db_;

  std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::vector<Job> queue_;
  bool stopping_ = false;
  std::mutex read_mutex_;
  std::condition_variable read_cv_;
  std::vector<Read> reads_;
  bool reads_stopping_ = false;

  std::mutex checkpoint_mutex_;
  std::condition_variable checkpoint_cv_;
  bool checkpoint_wanted_ = false;
  int wal_pages_ = 0;        // the WAL's length after the last commit; writer thread only
  int checkpointed_at_ = 0;  // its length when a checkpoint was last asked for; writer thread only
  bool checkpoint_stopping_ = false;

  std::atomic<std::uint64_t> commits_{0};
  std::atomic<std::uint64_t> checkpoints_{0};
  std::atomic<std::int64_t> count_{0};
  std::atomic<bool> healthy_{true};
  std::vector<EscalationEvent> retry_;  // escalations whose records failed; writer thread only
  std::size_t last_batch_ = 0;          // records in the last commit; writer thread only
  bool synchronous_full_ = true;        // the writer connection's synchronous setting (it opens FULL)
  std::chrono::microseconds commit_delay_;
  EscalationBacklog backlog_;
  Listener listener_;
  Post complete_on_;
  std::thread writer_;
  std::thread reader_;
  std::thread checkpointer_;
};

}  // namespace backcheck::server
