// The webhook's side of the store: which escalations still have to be POSTed to
// --escalation-webhook. Kept apart from EscalationLog (acknowledgement by an operator) because a
// page sent is not a page seen: an escalation can be delivered and unacknowledged, or the reverse.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "server/store/store.hpp"

namespace backcheck::server {

// Escalations not yet delivered to the webhook, kept durably by the store (a column on its
// escalations table), so a restart neither loses nor repeats one that was delivered.
class WebhookOutbox {
 public:
  virtual ~WebhookOutbox() = default;
  // Undelivered escalations with an id above `after_id`, oldest first, at most `limit`; `done` may run on any thread.
  virtual void Pending(std::int64_t after_id, std::size_t limit, std::function<void(std::vector<EscalationEvent>)> done) = 0;
  // Marks it delivered, durably; `done(ok)`, ok false when the store could not write it (the webhook retries later).
  virtual void MarkDelivered(std::int64_t id, std::function<void(bool ok)> done) = 0;
};

}  // namespace backcheck::server
