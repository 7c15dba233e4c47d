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
  // What the store holds: a failed write rolls the fields above back to these, so memory is never
  // ahead of the disk. `epoch` counts rollbacks: a completion from before one changes nothing.
  dialog::ConversationState durable_state;
  std::uint64_t durable_seq = 0;
  std::uint64_t epoch = 0;
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

// What one change to a conversation writes: a new conversation, a turn, an end, or a deletion.
struct TurnRecord {
  enum class Kind { kCreate, kUpdate, kDelete } kind = Kind::kUpdate;
  std::string conversation;
  // The store applies an update only if the conversation's stored seq is `expected_seq`: a turn
  // computed on top of a turn that failed to commit fails too, instead of leaving a gap.
  std::uint64_t expected_seq = 0;
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
  // Removes conversations idle since before `cutoff`, and those that never had a message idle
  // since before `empty_cutoff`; returns how many.
  virtual std::size_t PurgeIdle(Clock::time_point cutoff, Clock::time_point empty_cutoff) = 0;
  // Forgets a conversation in memory at once (its stored row goes with a kDelete record).
  virtual void Erase(std::string_view id) = 0;

  // Makes `record` durable, then calls `done` with whether it worked and the escalation as
  // stored (with its id). Records are made durable, and `done` called, in the order given; call
  // it with the conversation's lock held so a conversation's turns keep their order. `done` may
  // run on another thread (a durable store's writer) or before Persist returns.
  using Done = std::function<void(bool ok, const std::optional<EscalationEvent>& escalation)>;
  virtual void Persist(TurnRecord record, Done done) = 0;
  // Whether Persist writes the record's state and texts anywhere; when not, callers may leave
  // them empty and save the serialisation.
  virtual bool KeepsRecords() const = 0;

  // Escalations no operator has acknowledged with an id above `after_id`, oldest first, at most
  // `limit` of them: operators page through a long backlog.
  virtual std::vector<EscalationEvent> Unacknowledged(std::int64_t after_id = 0,
                                                      std::size_t limit = SIZE_MAX) const = 0;
  // Marks an escalation acknowledged, durably, then calls `done(found)`; found is false when no
  // unacknowledged escalation has this id.
  virtual void Acknowledge(std::int64_t id, std::function<void(bool found)> done) = 0;

  // False while writes fail (e.g. a full disk); a store that can fail probes by itself and turns
  // healthy again once a write succeeds.
  virtual bool Healthy() const { return true; }
  // Called (on the store's thread) for an escalation whose record failed to commit and that a
  // later retry made durable: it must still reach the operators. Set before the first Persist.
  using EscalationListener = std::function<void(const EscalationEvent&)>;
  virtual void SetRetriedEscalationListener(EscalationListener) {}
};

// The unacknowledged escalations, in memory; thread-safe. Both stores keep one.
class EscalationBacklog {
 public:
  void Add(const EscalationEvent& event);
  bool Remove(std::int64_t id);
  bool Contains(std::int64_t id) const;
  std::vector<EscalationEvent> Page(std::int64_t after_id, std::size_t limit) const;
  std::size_t Size() const;

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
  std::size_t PurgeIdle(Clock::time_point cutoff, Clock::time_point empty_cutoff) override;
  void Erase(std::string_view id) override;
  void Persist(TurnRecord record, Done done) override;
  bool KeepsRecords() const override { return false; }
  std::vector<EscalationEvent> Unacknowledged(std::int64_t after_id = 0, std::size_t limit = SIZE_MAX) const override {
    return backlog_.Page(after_id, limit);
  }
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
  std::mutex escalation_mutex_;  // ids are handed out and added in one step: the backlog grows in id order
  std::int64_t next_escalation_ = 0;
};

}  // namespace backcheck::server
