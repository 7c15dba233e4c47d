// WebhookOutbox in memory: for the memory store (nothing survives a restart there anyway) and
// the tests. Thread-safe; callbacks run inline, before the call returns, outside the lock.
#pragma once

#include <map>
#include <mutex>
#include <set>

#include "server/webhook/webhook_outbox.hpp"

namespace backcheck::server {

class MemoryOutbox : public WebhookOutbox {
 public:
  // A new escalation to deliver (the store calls it when one is committed). An id already held
  // or already delivered is ignored: the store's listener may report one twice.
  void Add(EscalationEvent event);

  void Pending(std::int64_t after_id, std::size_t limit,
               std::function<void(std::vector<EscalationEvent>)> done) override;
  // An id not pending (delivered before, or never added) is ok: marking is idempotent.
  void MarkDelivered(std::int64_t id, std::function<void(bool ok)> done) override;

  bool IsDelivered(std::int64_t id) const;
  std::size_t PendingCount() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::int64_t, EscalationEvent> pending_;  // by id: oldest first
  std::set<std::int64_t> delivered_;
};

}  // namespace backcheck::server
