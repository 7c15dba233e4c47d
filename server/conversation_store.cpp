#include "server/conversation_store.hpp"

#include <ctime>

#include "server/json_writer.hpp"

namespace backcheck::server {

std::int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string EscalationJson(const EscalationEvent& e) {
  // Written by the one frame writer (server/json_writer.hpp), like every frame we send.
  // ISO 8601 in UTC with milliseconds: "2026-11-23T20:31:07.123Z".
  std::time_t seconds = static_cast<std::time_t>(e.at_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char at[32];
  std::size_t n = std::strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(at + n, sizeof at - n, ".%03dZ", static_cast<int>(e.at_ms % 1000));
  return JsonObject(e.text.size() + 192)
      .String("type", "escalation")
      .Int("id", e.id)
      .String("conversation", e.conversation)
      .String("level", knowledge::UrgencyName(e.level))
      .Strings("flags", e.flags)
      .String("text", e.text)
      .String("at", at)
      .Done();
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

std::vector<EscalationEvent> EscalationBacklog::Page(std::int64_t after_id, std::size_t limit) const {
  std::lock_guard lock(mutex_);
  std::vector<EscalationEvent> out;
  for (auto it = events_.upper_bound(after_id); it != events_.end() && out.size() < limit; ++it) {
    out.push_back(it->second);
  }
  return out;
}

std::size_t EscalationBacklog::Size() const {
  std::lock_guard lock(mutex_);
  return events_.size();
}

void MemoryStore::Persist(TurnRecord record, Done done) {
  if (record.kind == TurnRecord::Kind::kDelete) Erase(record.conversation);
  if (record.escalation) {
    std::lock_guard lock(escalation_mutex_);
    record.escalation->id = ++next_escalation_;
    backlog_.Add(*record.escalation);
  }
  done(true, record.escalation);
}

void MemoryStore::Erase(std::string_view id) {
  std::lock_guard lock(mutex_);
  if (auto it = conversations_.find(id); it != conversations_.end()) conversations_.erase(it);
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

std::size_t MemoryStore::PurgeIdle(Clock::time_point cutoff, Clock::time_point empty_cutoff) {
  std::lock_guard lock(mutex_);
  return std::erase_if(conversations_, [&](const auto& entry) {
    const Conversation& c = *entry.second;
    std::unique_lock busy(entry.second->mutex, std::try_to_lock);
    if (!busy.owns_lock()) return false;  // never purge one being used
    return c.last_active < cutoff || (c.seq == 0 && c.last_active < empty_cutoff);
  });
}

}  // namespace backcheck::server
