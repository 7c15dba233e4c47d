#include "server/store/postgres_outbox.hpp"

#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <typeinfo>
#include <nlohmann/json.hpp>

#include "server/log.hpp"
#include "server/store/pg_result.hpp"
#include "server/store/store.hpp"

namespace backcheck::server {
namespace {

// Unix ms on the database's clock: every instance compares leases against the same clock.
#define BACKCHECK_DB_NOW_MS "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"

// $1 after_id, $2 limit, $3 lease (ms), $4 this instance. Pending rows whose lease is free, ran
// out, or is ours (the webhook asks again only for what it no longer holds in memory), oldest
// first; SKIP LOCKED: rows another instance is claiming right now are left to it, not waited for
// (and re-checked once its claim commits: a row it took no longer qualifies).
constexpr const char* kClaimSql =
    "WITH now AS (SELECT " BACKCHECK_DB_NOW_MS " AS ms) "
    "UPDATE escalations e SET webhook_lease_until = now.ms + $3::bigint, webhook_lessee = $4 FROM now "
    "WHERE e.id IN (SELECT p.id FROM escalations p, now "
    "               WHERE p.webhook_at IS NULL AND p.acked_at IS NULL AND p.id > $1::bigint "
    "                 AND (p.webhook_lease_until IS NULL OR p.webhook_lease_until <= now.ms OR p.webhook_lessee = $4) "
    "               ORDER BY p.id LIMIT $2::bigint FOR UPDATE OF p SKIP LOCKED) "
    "RETURNING e.id, e.conversation, e.level, e.flags, e.at";

// $1 this instance, $2 lease (ms). Only rows still ours: one whose lease ran out and was taken by
// another instance stays theirs.
constexpr const char* kRenewSql =
    "UPDATE escalations SET webhook_lease_until = " BACKCHECK_DB_NOW_MS " + $2::bigint "
    "WHERE webhook_lessee = $1 AND webhook_at IS NULL AND acked_at IS NULL RETURNING id";

// $1 id. The first delivery's time is kept if two instances both delivered it.
constexpr const char* kMarkSql =
    "UPDATE escalations SET webhook_at = COALESCE(webhook_at, " BACKCHECK_DB_NOW_MS "), "
    "webhook_lease_until = NULL, webhook_lessee = NULL WHERE id = $1::bigint";

// $1 this instance.
constexpr const char* kReleaseSql =
    "UPDATE escalations SET webhook_lease_until = NULL, webhook_lessee = NULL "
    "WHERE webhook_lessee = $1 AND webhook_at IS NULL";

#undef BACKCHECK_DB_NOW_MS

using pg::Int;
using pg::Ok;
using pg::Result;
using pg::ResultError;
using pg::Value;

std::string DefaultInstance() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || !host[0]) std::snprintf(host, sizeof host, "%s", "host");
  return std::string(host) + "/" + std::to_string(getpid()) + "/" + HexOf(RandomBytes(4));
}

template <class F, class... Args>
void RunCallback(const F& done, Args&&... args) noexcept {
  try {
    if (done) done(std::forward<Args>(args)...);
  } catch (const std::exception& e) {
    BACKCHECK_LOG(kError, "store_callback_failed").Str("store", "webhook_outbox").Str("type", typeid(e).name());
  } catch (...) {
    BACKCHECK_LOG(kError, "store_callback_failed").Str("store", "webhook_outbox");
  }
}

}  // namespace

// One libpq connection with the store's connection defaults (keepalives, tcp_user_timeout: a
// database host that vanishes costs about 10 s, not TCP's minutes).
class PostgresWebhookOutbox::Connection {
 public:
  static std::unique_ptr<Connection> Open(const std::string& url, const PostgresOutboxOptions& o, std::string& error) {
    // Our defaults first: a value the URL gives wins (libpq keeps the last one processed).
    const std::string timeout = std::to_string(o.connect_timeout_s);
    const char* keys[] = {"connect_timeout", "keepalives_idle", "keepalives_interval", "keepalives_count",
                          "tcp_user_timeout", "application_name", "dbname", nullptr};
    const char* values[] = {timeout.c_str(), "5", "2", "3", "10000", "backcheck-webhook", url.c_str(), nullptr};
    std::unique_ptr<Connection> c(new Connection(PQconnectdbParams(keys, values, /*expand_dbname=*/1)));
    if (!c->conn_) {
      error = "out of memory";
      return nullptr;
    }
    if (PQstatus(c->conn_) != CONNECTION_OK) {
      error = c->Error();
      return nullptr;
    }
    PQsetNoticeProcessor(c->conn_, [](void*, const char*) {}, nullptr);
    return c;
  }
  ~Connection() { PQfinish(conn_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Closed by the server while idle (restarted, or shut down): an idle connection that listens to
  // nothing is only sent bad news, so anything waiting to be read means drop it and reconnect,
  // rather than failing the next statement.
  bool Stale() const {
    if (PQstatus(conn_) != CONNECTION_OK) return true;
    pollfd fd{PQsocket(conn_), POLLIN, 0};
    return poll(&fd, 1, 0) != 0;
  }
  bool Bad() const { return PQstatus(conn_) != CONNECTION_OK; }

  // Text-format parameters (a few small values per call: no prepared statements needed).
  Result Exec(const char* sql, std::initializer_list<std::string> params) {
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p.c_str());
    return Result(PQexecParams(conn_, sql, static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr, 0));
  }

  std::string Error() const {
    std::string message = PQerrorMessage(conn_);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    std::replace(message.begin(), message.end(), '\n', ' ');
    return message;
  }

 private:
  explicit Connection(PGconn* conn) : conn_(conn) {}
  PGconn* conn_;
};

PostgresWebhookOutbox::PostgresWebhookOutbox(std::string database_url, PostgresOutboxOptions options)
    : url_(std::move(database_url)),
      options_(std::move(options)),
      instance_(options_.instance.empty() ? DefaultInstance() : options_.instance) {
  worker_ = std::thread([this] { WorkerLoop(); });
}

PostgresWebhookOutbox::~PostgresWebhookOutbox() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_one();
  worker_.join();
}

void PostgresWebhookOutbox::Pending(std::int64_t after_id, std::size_t limit,
                                    std::function<void(std::vector<EscalationEvent>)> done) {
  Enqueue(PendingJob{after_id, limit, std::move(done)});
}

void PostgresWebhookOutbox::MarkDelivered(std::int64_t id, std::function<void(bool ok)> done) {
  Enqueue(MarkJob{id, std::move(done)});
}

void PostgresWebhookOutbox::Enqueue(Job job) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      queue_.push_back(std::move(job));
      cv_.notify_one();
      return;
    }
  }
  // Called after the destructor began (not by a webhook stopped first, as documented): answered
  // as if the database were away, on this thread since the worker is going.
  if (auto* p = std::get_if<PendingJob>(&job)) return RunCallback(p->done, std::vector<EscalationEvent>{});
  RunCallback(std::get<MarkJob>(job).done, false);
}

// Jobs in order, and the leases' renewal when due. On stopping: what is queued, then the leases
// given back.
void PostgresWebhookOutbox::WorkerLoop() {
  for (;;) {
    Job job;
    bool stopping = false;
    {
      std::unique_lock lock(mutex_);
      const auto ready = [&] { return stopping_ || !queue_.empty(); };
      if (held_.empty()) {
        cv_.wait(lock, ready);
      } else if (!cv_.wait_until(lock, next_renewal_, ready)) {
        lock.unlock();
        RenewLeases();
        continue;
      }
      if (queue_.empty()) break;  // stopping, nothing left
      job = std::move(queue_.front());
      queue_.pop_front();
      stopping = stopping_;
    }
    Run(job, stopping);
    if (!held_.empty() && std::chrono::steady_clock::now() >= next_renewal_) RenewLeases();
  }
  ReleaseLeases();
  conn_.reset();
}

void PostgresWebhookOutbox::Run(Job& job, bool stopping) {
  if (auto* mark = std::get_if<MarkJob>(&job)) {
    // At shutdown too, if still connected: a delivery the receiver took is not sent again.
    Connection* c = Connected(/*may_connect=*/!stopping);
    bool ok = false;
    if (c) {
      Result r = c->Exec(kMarkSql, {std::to_string(mark->id)});
      ok = Ok(r);
      if (ok) {
        held_.erase(mark->id);
      } else {
        BACKCHECK_LOG(kWarn, "webhook_outbox_failed").Str("step", "mark_delivered").Int("escalation", mark->id)
            .Str("error", ResultError(r)).Str("then", "retried");
        Failed();
      }
    }
    return RunCallback(mark->done, ok);
  }
  auto& pending = std::get<PendingJob>(job);
  std::vector<EscalationEvent> page;
  // Nothing is claimed on the way out: it would only be given back.
  if (Connection* c = stopping ? nullptr : Connected(/*may_connect=*/true)) {
    const std::size_t limit = std::clamp<std::size_t>(pending.limit, 1, 1000);
    Result r = c->Exec(kClaimSql, {std::to_string(pending.after_id), std::to_string(limit),
                                   std::to_string(options_.lease.count()), instance_});
    if (Ok(r)) {
      for (int i = 0; i < PQntuples(r.get()); ++i) {
        EscalationEvent e;
        e.id = Int(r, i, 0);
        e.conversation = Value(r, i, 1);
        e.level = knowledge::ParseUrgency(Value(r, i, 2)).value_or(knowledge::Urgency::kUrgent);
        e.flags = FlagsFromJson(Value(r, i, 3));
        e.at_ms = Int(r, i, 4);
        page.push_back(std::move(e));
      }
      // RETURNING has no order; the webhook delivers oldest first.
      std::sort(page.begin(), page.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
      if (!page.empty() && held_.empty()) next_renewal_ = std::chrono::steady_clock::now() + options_.lease / 3;
      for (const auto& e : page) held_.insert(e.id);
    } else {
      BACKCHECK_LOG(kWarn, "webhook_outbox_failed").Str("step", "read_pending").Str("error", ResultError(r))
          .Str("then", "swept again later");
      Failed();
    }
  }
  RunCallback(pending.done, std::move(page));
}

PostgresWebhookOutbox::Connection* PostgresWebhookOutbox::Connected(bool may_connect) {
  if (conn_ && conn_->Stale()) conn_.reset();
  if (conn_) return conn_.get();
  if (!may_connect || std::chrono::steady_clock::now() < next_connect_) return nullptr;
  std::string error;
  conn_ = Connection::Open(url_, options_, error);
  if (!conn_) {
    BACKCHECK_LOG(kWarn, "webhook_outbox_failed").Str("step", "connect").Str("error", error).Str("then", "retrying");
    Failed();
    return nullptr;
  }
  backoff_ = std::chrono::milliseconds(0);
  return conn_.get();
}

void PostgresWebhookOutbox::Failed() {
  if (conn_ && conn_->Bad()) conn_.reset();  // an error on a working connection keeps it
  backoff_ = backoff_.count() == 0 ? options_.backoff_min : std::min(backoff_ * 2, options_.backoff_max);
  next_connect_ = std::chrono::steady_clock::now() + backoff_;
}

// Every lease/3 while something is held: a page held through a receiver's long outage (the
// webhook retries for as long as it takes, up to 5 minutes apart) stays this instance's, so no
// other instance POSTs it too. What comes back is what is still ours to deliver.
void PostgresWebhookOutbox::RenewLeases() {
  next_renewal_ = std::chrono::steady_clock::now() + std::max(options_.lease / 3, std::chrono::milliseconds(1));
  Connection* c = Connected(/*may_connect=*/true);
  if (!c) return;  // tried again at the next renewal; past `lease` another instance may take them
  Result r = c->Exec(kRenewSql, {instance_, std::to_string(options_.lease.count())});
  if (!Ok(r)) {
    BACKCHECK_LOG(kWarn, "webhook_outbox_failed").Str("step", "renew_leases").Str("error", ResultError(r));
    return Failed();
  }
  held_.clear();
  for (int i = 0; i < PQntuples(r.get()); ++i) held_.insert(Int(r, i, 0));
}

// A graceful stop gives this instance's leases back, so the others (or this one restarted) take
// them at their next sweep instead of after the lease. Not reconnecting for it: a database that is
// away would hold the shutdown up; the leases then simply run out.
void PostgresWebhookOutbox::ReleaseLeases() {
  Connection* c = Connected(/*may_connect=*/false);
  if (!c) return;
  Result r = c->Exec(kReleaseSql, {instance_});
  if (!Ok(r)) {
    BACKCHECK_LOG(kWarn, "webhook_outbox_failed").Str("step", "release_leases").Str("error", ResultError(r));
  }
}

}  // namespace backcheck::server
