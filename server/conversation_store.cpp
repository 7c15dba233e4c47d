#include "server/conversation_store.hpp"

#include <ctime>
#include <nlohmann/json.hpp>

namespace backcheck::server {

std::int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string EscalationJson(const EscalationEvent& e) {
  // ISO 8601 in UTC with milliseconds: "2026-11-23T20:31:07.123Z".
  std::time_t seconds = static_cast<std::time_t>(e.at_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char at[32];
  std::size_t n = std::strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(at + n, sizeof at - n, ".%03dZ", static_cast<int>(e.at_ms % 1000));
  return nlohmann::json{{"type", "escalation"}, {"id", e.id},           {"conversation", e.conversation},
                        {"level", knowledge::UrgencyName(e.level)},       {"flags", e.flags},
                        {"text", e.text}, {"at", at}}
      .dump();
}

void EscalationBacklog::Add(const EscalationEvent& event) {
  std::lock_guard lock(mutex_);
  events_[event.id] = event;
}

bool EscalationBacklog::Remove(std::int64_t id) {
  std::lock_guard lock(mutex_);
  return events_.erase(id) > 0;
}

bool EscalationBacklog::Contains(std::int64_t id) const {
  std::lock_guard lock(mutex_);
  return events_.count(id) > 0;
}

std::vector<EscalationEvent> EscalationBacklog::All() const {
  std::lock_guard lock(mutex_);
  std::vector<EscalationEvent> out;
  for (const auto& [id, event] : events_) out.push_back(event);
  return out;
}

void MemoryStore::Persist(TurnRecord record, Done done) {
  if (record.escalation) {
    record.escalation->id = ++next_escalation_;
    backlog_.Add(*record.escalation);
  }
  done(true, record.escalation);
}

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
