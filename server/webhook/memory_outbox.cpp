#include "server/webhook/memory_outbox.hpp"

namespace backcheck::server {

void MemoryOutbox::Add(EscalationEvent event) {
  std::lock_guard lock(mutex_);
  if (delivered_.count(event.id)) return;
  const auto id = event.id;
  pending_.try_emplace(id, std::move(event));
}

void MemoryOutbox::Pending(std::int64_t after_id, std::size_t limit,
                           std::function<void(std::vector<EscalationEvent>)> done) {
  std::vector<EscalationEvent> page;
  {
    std::lock_guard lock(mutex_);
    for (auto it = pending_.upper_bound(after_id); it != pending_.end() && page.size() < limit; ++it) {
      page.push_back(it->second);
    }
  }
  done(std::move(page));  // outside the lock: `done` may call back into the outbox
}

void MemoryOutbox::MarkDelivered(std::int64_t id, std::function<void(bool ok)> done) {
  {
    std::lock_guard lock(mutex_);
    pending_.erase(id);
    delivered_.insert(id);
  }
  done(true);
}

bool MemoryOutbox::IsDelivered(std::int64_t id) const {
  std::lock_guard lock(mutex_);
  return delivered_.count(id) > 0;
}

std::size_t MemoryOutbox::PendingCount() const {
  std::lock_guard lock(mutex_);
  return pending_.size();
}

}  // namespace backcheck::server
