// Where conversations live. The service reads and updates conversations through this interface;
// this file has the in-memory store, the durable one implements the same interface.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dialog/conversation.hpp"
#include "server/protocol.hpp"

namespace backcheck::server {

using Clock = std::chrono::steady_clock;

// One conversation. `mutex` guards every field below it and is held while a message is handled,
// so the messages of one conversation are handled one at a time, in the order they take the lock,
// whatever connection they come from.
struct Conversation {
  explicit Conversation(std::string conversation_id) : id(std::move(conversation_id)) {}

  const std::string id;
  std::mutex mutex;
  dialog::ConversationState state;
  std::vector<HistoryEntry> history;  // every turn: the user's message and the reply share a seq
  std::uint64_t seq = 0;              // of the last reply
  Clock::time_point last_active;
};

// An escalation event (SPEC section 5): stored durably, then pushed to every operator.
struct EscalationEvent {
  std::int64_t id = 0;  // assigned by the store when it is made durable
  std::string conversation;
  knowledge::Urgency level = knowledge::Urgency::kNone;
  std::vector<std::string> flags;
  std::string text;        // the message that raised the urgency: what an operator needs
  std::int64_t at_ms = 0;  // Unix time, milliseconds
};
std::string EscalationJson(const EscalationEvent& event);

// What one change to a conversation writes: a new conversation, a turn, or an end.
struct TurnRecord {
  std::string conversation;
  std::uint64_t seq = 0;  // the conversation's seq after the change
  bool has_turn = false;  // a message and its reply (seq), or only a state change (created, ended)
  std::string user_text;
  std::string reply_text;
  std::string state_json;  // the engine's state after the change
  std::int64_t at_ms = 0;  // Unix time, milliseconds
  std::optional<EscalationEvent> escalation;
};

std::int64_t UnixMillis();

class ConversationStore {
 public:
  virtual ~ConversationStore() = default;

  // Adds a conversation unless `capacity` conversations exist already (then returns nullptr).
  virtual std::shared_ptr<Conversation> Insert(std::string id, dialog::ConversationState state, Clock::time_point now,
                                               std::size_t capacity) = 0;
  // The conversation with this id, or nullptr.
  virtual std::shared_ptr<Conversation> Find(std::string_view id) const = 0;
  virtual std::size_t Size() const = 0;
  // Removes conversations idle since before `cutoff`; returns how many.
  virtual std::size_t PurgeIdle(Clock::time_point cutoff) = 0;

  // Makes `record` durable, then calls `done` with whether it worked and the escalation as
  // stored (with its id). Records are made durable, and `done` called, in the order given; call
  // it with the conversation's lock held so a conversation's turns keep their order. `done` may
  // run on another thread (a durable store's writer) or before Persist returns.
  using Done = std::function<void(bool ok, const std::optional<EscalationEvent>& escalation)>;
  virtual void Persist(TurnRecord record, Done done) = 0;
  // Whether Persist writes the record's state and texts anywhere; when not, callers may leave
  // them empty and save the serialisation.
  virtual bool KeepsRecords() const = 0;

  // Escalations no operator has acknowledged, oldest first.
  virtual std::vector<EscalationEvent> Unacknowledged() const = 0;
  // Marks an escalation acknowledged, durably, then calls `done(found)`; found is false when no
  // unacknowledged escalation has this id.
  virtual void Acknowledge(std::int64_t id, std::function<void(bool found)> done) = 0;
};

// The unacknowledged escalations, in memory; thread-safe. Both stores keep one.
class EscalationBacklog {
 public:
  void Add(const EscalationEvent& event);
  bool Remove(std::int64_t id);
  bool Contains(std::int64_t id) const;
  std::vector<EscalationEvent> All() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::int64_t, EscalationEvent> events_;
};

// Conversations in memory only: fast, and lost on restart (--store memory).
class MemoryStore : public ConversationStore {
 public:
  std::shared_ptr<Conversation> Insert(std::string id, dialog::ConversationState state, Clock::time_point now,
                                       std::size_t capacity) override;
  std::shared_ptr<Conversation> Find(std::string_view id) const override;
  std::size_t Size() const override;
  std::size_t PurgeIdle(Clock::time_point cutoff) override;
  void Persist(TurnRecord record, Done done) override;
  bool KeepsRecords() const override { return false; }
  std::vector<EscalationEvent> Unacknowledged() const override { return backlog_.All(); }
  void Acknowledge(std::int64_t id, std::function<void(bool found)> done) override { done(backlog_.Remove(id)); }

 protected:
  EscalationBacklog backlog_;

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<Conversation>, Hash, std::equal_to<>> conversations_;
  std::atomic<std::int64_t> next_escalation_{0};
};

}  // namespace backcheck::server
