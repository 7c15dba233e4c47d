// Where conversations live. The service reads and updates conversations through this interface;
// this file has the in-memory store, the durable one implements the same interface.
#pragma once

#include <chrono>
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
};

class MemoryStore final : public ConversationStore {
 public:
  std::shared_ptr<Conversation> Insert(std::string id, dialog::ConversationState state, Clock::time_point now,
                                       std::size_t capacity) override;
  std::shared_ptr<Conversation> Find(std::string_view id) const override;
  std::size_t Size() const override;
  std::size_t PurgeIdle(Clock::time_point cutoff) override;

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<Conversation>, Hash, std::equal_to<>> conversations_;
};

}  // namespace backcheck::server
