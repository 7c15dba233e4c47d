// The escalation webhook's outbox in PostgreSQL (--store postgres --escalation-webhook URL), for
// any number of server instances on one database: each escalation is POSTed by one instance.
//
// Contract (WebhookOutbox): Pending hands out undelivered, unacknowledged escalations, oldest
// first; MarkDelivered records a delivery durably (escalations.webhook_at, schema 6 of
// PostgresStore, which migrates the database before this is made). Several instances share the
// rows through a lease: Pending *claims* what it returns, in one statement
//   UPDATE escalations SET webhook_lease_until = now + lease, webhook_lessee = <this instance>
//   WHERE id IN (SELECT id ... pending, lease free or run out, or ours ... ORDER BY id LIMIT n
//                FOR UPDATE SKIP LOCKED) RETURNING ...
// so two instances sweeping at once (every instance is woken by every escalation) get disjoint
// rows instead of waiting on each other or both taking one. An instance renews the leases it
// holds every lease/3 until they are delivered or acknowledged, and gives them back when it is
// destroyed (a graceful stop), so another instance (or this one restarted) takes them at its
// next sweep. Times are the database's clock, so instances whose clocks differ agree on when a
// lease ran out.
//
// Delivery is exactly once under normal operation and at least once otherwise: an instance that
// dies between the receiver's 2xx and MarkDelivered, or that cannot renew its leases for longer
// than `lease` (the database was away) while another instance can, lets that escalation be POSTed
// again. The payload carries the escalation's id (X-Backcheck-Delivery) for receivers to
// deduplicate by (docs/webhook.md). The person's text is never read from the table: the webhook
// does not send it (EscalationEvent::text is left empty).
//
// Threads: one worker thread owns the libpq connection (its own, apart from the store's). Pending
// and MarkDelivered only queue and return at once, from any thread; their callbacks run on the
// worker, never on the caller's thread (the webhook posts them to its strand), and an exception
// they throw is caught and logged. When the database is away, Pending answers empty and
// MarkDelivered false (the webhook sweeps and marks again later) while the worker reconnects
// with back-off; nothing blocks on it but the worker itself.
//
// Ownership: the server owns it beside the webhook; the webhook (which calls it from its strand)
// must be stopped and destroyed first. The destructor runs the marks still queued (a delivery the
// receiver took is recorded if the database is there), answers queued Pending calls empty
// without claiming anything, gives this instance's leases back, then joins the worker.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <variant>

#include "server/webhook/webhook_outbox.hpp"

namespace backcheck::server {

struct PostgresOutboxOptions {
  // How long a claim holds while nobody renews it. Renewed every lease/3, so it runs out only
  // when the holder died or lost the database for about two renewals; it must also be longer than
  // one delivery attempt (WebhookOptions::request_timeout, 10 s) plus a reconnect back-off, so a
  // POST started just before a missed renewal is over before the row can be taken. A shorter
  // lease hands an escalation to another instance sooner after a crash, at the price of duplicates
  // during a database hiccup; 60 s is a minute's delay for a page after a kill -9.
  std::chrono::milliseconds lease{60 * 1000};
  std::chrono::milliseconds backoff_min{100};   // first reconnect delay after a failure
  std::chrono::milliseconds backoff_max{5000};  // the delay doubles up to this
  int connect_timeout_s = 3;                    // libpq connect_timeout, unless the URL sets one
  // Names this instance in webhook_lessee; empty: "host/pid/random" (a restarted process is a new
  // lessee, and an operator can tell which instance holds a row).
  std::string instance;
};

class PostgresWebhookOutbox final : public WebhookOutbox {
 public:
  // `database_url`: the store's (a libpq URI or keyword string). Connects on the worker, lazily:
  // never throws for an unreachable database (the first sweeps then answer empty).
  explicit PostgresWebhookOutbox(std::string database_url, PostgresOutboxOptions options = {});
  ~PostgresWebhookOutbox() override;
  PostgresWebhookOutbox(const PostgresWebhookOutbox&) = delete;
  PostgresWebhookOutbox& operator=(const PostgresWebhookOutbox&) = delete;

  // Claims (leases) what it returns; see above. Escalations' `text` is empty.
  void Pending(std::int64_t after_id, std::size_t limit, std::function<void(std::vector<EscalationEvent>)> done) override;
  // Sets webhook_at and frees the lease, whoever holds it now (the receiver has it either way).
  // An id that does not exist is ok: there is nothing to retry.
  void MarkDelivered(std::int64_t id, std::function<void(bool ok)> done) override;

  const std::string& instance() const { return instance_; }

  class Connection;  // the worker's libpq connection (postgres_outbox.cpp)

 private:
  struct PendingJob {
    std::int64_t after_id;
    std::size_t limit;
    std::function<void(std::vector<EscalationEvent>)> done;
  };
  struct MarkJob {
    std::int64_t id;
    std::function<void(bool)> done;
  };
  using Job = std::variant<PendingJob, MarkJob>;

  void Enqueue(Job job);
  void WorkerLoop();
  void Run(Job& job, bool stopping);
  Connection* Connected(bool may_connect);  // the connection, reconnected when due; null if away
  void Failed();                            // drops a broken connection; the back-off grows
  void RenewLeases();
  void ReleaseLeases();

  const std::string url_;
  const PostgresOutboxOptions options_;
  const std::string instance_;

  std::mutex mutex_;  // guards queue_ and stopping_
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;

  // Worker thread only.
  std::unique_ptr<Connection> conn_;
  std::chrono::milliseconds backoff_{0};
  std::chrono::steady_clock::time_point next_connect_{};
  std::set<std::int64_t> held_;  // ids claimed and not yet known delivered, acknowledged or lost
  std::chrono::steady_clock::time_point next_renewal_{};

  std::thread worker_;
};

}  // namespace backcheck::server
