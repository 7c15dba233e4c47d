#include "server/conversation_connections.hpp"

#include <algorithm>

namespace backcheck::server {

void ConversationConnections::Attach(const std::string& conversation, const std::shared_ptr<PushTarget>& target) {
  std::lock_guard lock(mutex_);
  auto& entries = targets_[conversation];
  if (std::none_of(entries.begin(), entries.end(), [&](const Entry& e) { return e.first == target.get(); })) {
    entries.emplace_back(target.get(), target);
  }
}

void ConversationConnections::Detach(const std::string& conversation, const PushTarget* target) {
  std::lock_guard lock(mutex_);
  auto it = targets_.find(conversation);
  if (it == targets_.end()) return;
  std::erase_if(it->second, [&](const Entry& e) { return e.first == target; });
  if (it->second.empty()) targets_.erase(it);
}

std::size_t ConversationConnections::Notify(const std::string& conversation, std::shared_ptr<const PushedNotice> notice) {
  std::vector<std::shared_ptr<PushTarget>> live;
  {
    std::lock_guard lock(mutex_);
    auto it = targets_.find(conversation);
    if (it == targets_.end()) return 0;
    std::erase_if(it->second, [&](const Entry& e) {
      auto target = e.second.lock();
      if (!target) return true;  // gone without a Detach: forget it now
      live.push_back(std::move(target));
      return false;
    });
    if (it->second.empty()) targets_.erase(it);
  }
  // Outside the lock: a target's Push may Attach or Detach.
  for (const auto& target : live) target->Push(conversation, notice);
  return live.size();
}

bool ConversationConnections::Holds(const std::string& conversation) const {
  std::lock_guard lock(mutex_);
  return targets_.count(conversation) > 0;
}

std::size_t ConversationConnections::Size() const {
  std::lock_guard lock(mutex_);
  return targets_.size();
}

}  // namespace backcheck::server
