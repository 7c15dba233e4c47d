// The shared store: PostgreSQL through libpq, for several server instances on one database
// (--store postgres --database-url postgresql://...).
//
// Correctness rests on the database, never on a lock's lifetime: a commit is one transaction that
// updates the conversation's row only where its seq is the expected one (else kConflict, nothing
// of it written), inserts the turn's two rows (the message, its reply) and the escalation if any,
// and NOTIFYs the operators' channel; `done(kCommitted)` runs only after COMMIT succeeded.
//
// Threads and connections (each thread owns its connection; nothing else touches it):
//   - one writer: takes every queued commit, acknowledgement and purge and runs them as one
//     transaction per batch, pipelined (pipeline mode: one round trip per batch, not per
//     statement). The batch's turns are set-based: one statement applies every record of the
//     batch (their fields as arrays), and says which were written; a record not written is a
//     conflict, which fails only itself (a conversation with several records in a batch takes
//     one statement per record of it, in order). When a
//     batch fails with an error while the connection still works (a deadlock between instances,
//     a text the database refuses) its records are run again one transaction each, so one bad
//     record does not fail the others.
//   - `readers` readers (Load, History), so a slow batch does not delay a resume.
//   - one listener: LISTEN backcheck_escalations and backcheck_acks. A notification is only the
//     wake-up; the table is the truth: the listener re-reads the unacknowledged escalations and
//     the acknowledgements of those it holds, on every notification and every `poll_interval`
//     (a safety net for notifications missed while reconnecting), and keeps this instance's
//     in-memory copy of the log current. Listener.escalation and .acknowledged run once per id.
//
// Failure: when the database goes away the writer turns unhealthy (Healthy() false); from then
// on Commit completes at once with kUnavailable, Acknowledge with false, and a purge is skipped,
// so no client waits on a database that is not there. The writer reconnects with back-off
// (`backoff_min` doubling to `backoff_max`) and turns healthy once a write (a probe row) commits.
// Readers reconnect on demand with the same back-off and answer kUnavailable / nullopt meanwhile.
// The escalations of records that failed are kept and retried until durable, then delivered to
// the listener, so an operator is always told. A commit whose outcome is unknown (the connection
// broke after COMMIT was sent) is reported kUnavailable: the client is never told of a turn that
// might not be durable; its escalation may then be stored twice, never not at all.
// A database that does not answer at all (a hung host rather than a stopped server) holds the
// writer until TCP gives up (keepalives and tcp_user_timeout are set: about 10 s over TCP).
//
// Start-up: the constructor connects every connection, applies the migrations (in one
// transaction under an advisory lock, so two instances starting at once do not race), loads the
// unacknowledged escalations and the conversation count, and throws StoreError, changing
// nothing, when the database cannot be reached or its schema is newer than this code or foreign.
//
// Callbacks run on the store's threads (or inline, when failing fast); an exception they throw
// is caught and logged, never let out of a thread. Listener.escalation runs on the writer thread
// for an escalation committed here (before the commit's `done`), and on the listener thread for
// one seen in the table (made on another instance). Message texts are never logged.
//
// Healthy() turns false when a write fails, or when the listener's connection drops and the
// writer then cannot connect: /healthz tells before a turn finds out.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <variant>

#include "server/store/escalation_backlog.hpp"
#include "server/store/store.hpp"

namespace backcheck::server {

struct PostgresOptions {
  std::chrono::milliseconds backoff_min{100};   // first reconnect delay after a failure
  std::chrono::milliseconds backoff_max{5000};  // the delay doubles up to this
  std::chrono::milliseconds poll_interval{3000};    // the listener re-reads the log at least this often
  std::chrono::milliseconds count_interval{10000};  // Count() is re-read from the table this often
  std::size_t max_batch = 256;  // records per transaction (and per pipeline round trip)
  std::size_t readers = 1;      // threads (each with a connection) serving Load and History
  int connect_timeout_s = 3;    // libpq connect_timeout, unless the URL sets one
};

class PostgresStore final : public ConversationStore, public EscalationLog {
 public:
  static constexpr int kSchemaVersion = 8;

  // `database_url`: a libpq connection URI or keyword string. Throws StoreError (see above).
  explicit PostgresStore(std::string database_url, RaiseUrgency raise = {}, PostgresOptions options = {});
  ~PostgresStore() override;  // commits what is queued (if it can), then closes every connection
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  // ConversationStore
  void Load(std::string id, std::function<void(Loaded)> done) override;
  void Commit(TurnRecord record, CommitDone done) override;
  void History(std::string id, std::optional<std::uint64_t> before, std::size_t turns,
               std::function<void(std::optional<HistoryPage>)> done) override;
  void FindReply(std::string id, std::string client_id, std::function<void(StoredReply)> done) override;
  void Audit(std::string id, std::function<void(std::optional<std::vector<AuditEntry>>)> done) override;
  void Purge(std::int64_t cutoff_ms, std::int64_t empty_cutoff_ms, std::int64_t review_cutoff_ms) override;
  const std::string& KeySecret() const override { return key_secret_; }
  std::size_t Count() const override { return count_.load(); }
  bool Healthy() const override { return healthy_.load(); }
  EscalationLog& escalations() override { return *this; }
  // The writer hands each batch's completions to `post` at once (after its escalations reached
  // the listener, on the writer); without it they run on the writer.
  void CompleteOn(Post post) override { complete_on_ = std::move(post); }

  // EscalationLog
  std::vector<EscalationEvent> Unacknowledged(std::int64_t after_id = 0,
                                              std::size_t limit = SIZE_MAX) const override;
  std::size_t UnacknowledgedCount() const override;
  void Acknowledge(std::int64_t id, std::string by, std::string note, std::function<void(bool found)> done) override;
  void Subscribe(Listener listener) override;
  void OnOtherInstances(std::function<void(const ConversationEvent&)> listener) override;

  // For tests and benchmarks: transactions the writer committed, and records in them.
  std::uint64_t Commits() const { return commits_.load(); }
  std::uint64_t CommittedRecords() const { return committed_records_.load(); }

  class Connection;  // one libpq connection and its prepared statements (postgres_store.cpp)
  struct Arrays;      // a batch statement's array parameters, reused by the writer (postgres_store.cpp)

 private:
  struct Write {
    TurnRecord record;
    CommitDone done;
  };
  struct Ack {
    std::int64_t id;
    std::string by;
    std::string note;
    std::function<void(bool)> done;
  };
  struct PurgeJob {
    std::int64_t cutoff_ms;
    std::int64_t empty_cutoff_ms;
    std::int64_t review_cutoff_ms;
  };
  struct Finished {};  // a job whose completion has run
  using Job = std::variant<Write, Ack, PurgeJob, Finished>;
  struct LoadJob {
    std::string id;
    std::function<void(Loaded)> done;
  };
  struct HistoryJob {
    std::string id;
    std::optional<std::uint64_t> before;
    std::size_t turns;
    std::function<void(std::optional<HistoryPage>)> done;
  };
  struct ReplyJob {
    std::string id;
    std::string client_id;
    std::function<void(StoredReply)> done;
  };
  struct AuditJob {
    std::string id;
    std::function<void(std::optional<std::vector<AuditEntry>>)> done;
  };
  using ReadJob = std::variant<LoadJob, HistoryJob, ReplyJob, AuditJob>;
  // Back-off between connection attempts; owned by one thread.
  struct Backoff {
    std::chrono::milliseconds delay{0};
    Clock::time_point next{};
    void Failed(const PostgresOptions& o);
    void Succeeded() { delay = std::chrono::milliseconds(0); next = {}; }
    bool Due() const { return Clock::now() >= next; }
  };

  // Start-up (constructor thread).
  std::unique_ptr<Connection> ConnectOrThrow(bool prepare);
  void Migrate(Connection& c);

  // Writer thread.
  void Enqueue(Job job);
  void WriterLoop();
  void WriteBatch(std::vector<Job>& batch);
  // `jobs`: writes in conversation order (stable), then acks and purges. False: nothing of it
  // committed.
  bool CommitChunk(std::vector<Job*>& jobs);
  bool WriterConnected();  // reconnects a connection found closed before anything is sent
  bool CommitAlone(Job& job);  // false: failed (kUnavailable), not a conflict or a commit
  void Recover();        // reconnect, probe, retry escalations; healthy again on success
  void RetryEscalations();
  void FailJob(Job& job);
  void Settle();  // runs (or hands off) the completions gathered in settling_
  void SetUnhealthy(const std::string& why);
  void RefreshCount(Connection& c);
  void RequestProbe();  // any thread: the writer checks its connection soon

  // Reader threads.
  void ReaderLoop(std::unique_ptr<Connection> c);
  void RunRead(std::unique_ptr<Connection>& c, Backoff& backoff, ReadJob& job);

  // Listener thread.
  void ListenerLoop();
  void OtherInstanceEvent(std::string_view payload);  // a backcheck_events notification
  bool Refresh(Connection& c);  // false: the connection failed
  bool StartListening(Connection& c);

  // The in-memory copy of the log (any thread).
  bool Deliver(const EscalationEvent& event);           // false: seen already
  void Acknowledged(std::int64_t id, const std::string& by);

  const std::string url_;
  const RaiseUrgency raise_;
  const PostgresOptions options_;
  std::string where_;  // "database NAME on HOST:PORT", for messages (never the password)
  std::string key_secret_;  // store_secrets conversation_keys, read once at start-up
  // Names this process's ConversationEvents, so that it skips its own when they come back.
  const std::string instance_ = HexOf(RandomBytes(8));

  std::mutex queue_mutex_;  // guards queue_, stopping_, probe_requested_, retry_, and healthy_'s changes
  std::condition_variable queue_cv_;
  std::vector<Job> queue_;
  bool stopping_ = false;
  bool probe_requested_ = false;  // by the listener, on losing its connection
  std::vector<EscalationEvent> retry_;  // of records that failed: inserted alone until durable
  std::atomic<bool> healthy_{true};
  std::unique_ptr<Connection> writer_conn_;  // writer thread only (after start-up)
  Backoff writer_backoff_;                   // writer thread only
  Backoff retry_backoff_;                    // writer thread only
  std::vector<std::unique_ptr<Arrays>> arrays_;  // writer thread only: one per statement of a batch
  // A finished job's completion, gathered by the writer until its batch is done (Settle).
  struct Settling {
    CommitDone done;                          // a commit's, or
    std::function<void(bool)> acknowledged;   // an acknowledgement's (found: kCommitted)
    CommitResult result;
    std::optional<EscalationEvent> escalation;
  };
  std::vector<Settling> settling_;  // writer thread only
  Post complete_on_;                // set before the first Commit
  std::atomic<std::uint64_t> commits_{0};
  std::atomic<std::uint64_t> committed_records_{0};
  std::atomic<std::size_t> count_{0};

  std::mutex read_mutex_;  // guards reads_ and reads_stopping_
  std::condition_variable read_cv_;
  std::deque<ReadJob> reads_;
  bool reads_stopping_ = false;

  std::mutex log_mutex_;  // guards acked_ and listener_
  std::mutex publish_mutex_;  // held while an escalation or an ack is added and announced (Deliver, Acknowledged)
  EscalationBacklog backlog_;  // unacknowledged, by id; Deliver and Acknowledged change it under publish_mutex_
  // Acknowledged ids, kept a while so that a re-read begun before the ack does not announce
  // the escalation again.
  std::unordered_map<std::int64_t, Clock::time_point> acked_;
  Listener listener_;
  std::function<void(const ConversationEvent&)> events_listener_;  // guarded by log_mutex_

  std::unique_ptr<Connection> listen_conn_;  // listener thread only (after start-up)
  int wake_[2] = {-1, -1};                   // a pipe: wakes the listener to stop

  std::vector<std::thread> readers_;
  std::thread listener_thread_;
  std::thread writer_;
};

}  // namespace backcheck::server
