#include "server/store/escalation_backlog.hpp"

namespace backcheck::server {

bool EscalationBacklog::Add(const EscalationEvent& event) {
  std::lock_guard lock(mutex_);
  return events_.emplace(event.id, event).second;
}

std::optional<EscalationEvent> EscalationBacklog::Take(std::int64_t id) {
  std::lock_guard lock(mutex_);
  auto node = events_.extract(id);
  if (node.empty()) return std::nullopt;
  return std::move(node.mapped());
}

bool EscalationBacklog::Contains(std::int64_t id) const {
  std::lock_guard lock(mutex_);
  return events_.count(id) > 0;
}

std::vector<EscalationEvent> EscalationBacklog::Page(std::int64_t after_id, std::size_t limit) const {
  std::lock_guard lock(mutex_);
  std::vector<EscalationEvent> out;
  for (auto it = events_.upper_bound(after_id); it != events_.end() && out.size() < limit; ++it) {
    out.push_back(it->second);
  }
  return out;
}

std::vector<std::int64_t> EscalationBacklog::Ids() const {
  std::lock_guard lock(mutex_);
  std::vector<std::int64_t> out;
  out.reserve(events_.size());
  for (const auto& [id, event] : events_) out.push_back(id);
  return out;
}

std::size_t EscalationBacklog::Size() const {
  std::lock_guard lock(mutex_);
  return events_.size();
}

}  // namespace backcheck::server
