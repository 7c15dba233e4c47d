#include "server/conversation_store.hpp"

namespace backcheck::server {

std::shared_ptr<Conversation> MemoryStore::Insert(std::string id, dialog::ConversationState state,
                                                  Clock::time_point now, std::size_t capacity) {
  auto conversation = std::make_shared<Conversation>(id);
  conversation->state = std::move(state);
  conversation->last_active = now;
  std::lock_guard lock(mutex_);
  if (conversations_.size() >= capacity) return nullptr;
  auto [it, inserted] = conversations_.emplace(std::move(id), conversation);
  return inserted ? conversation : nullptr;
}

std::shared_ptr<Conversation> MemoryStore::Find(std::string_view id) const {
  std::lock_guard lock(mutex_);
  auto it = conversations_.find(id);
  return it == conversations_.end() ? nullptr : it->second;
}

std::size_t MemoryStore::Size() const {
  std::lock_guard lock(mutex_);
  return conversations_.size();
}

std::size_t MemoryStore::PurgeIdle(Clock::time_point cutoff) {
  std::lock_guard lock(mutex_);
  return std::erase_if(conversations_, [&](const auto& entry) {
    std::unique_lock busy(entry.second->mutex, std::try_to_lock);
    return busy.owns_lock() && entry.second->last_active < cutoff;  // never purge one being used
  });
}

}  // namespace backcheck::server
