// The conversation logic the transports share: start or resume a conversation, handle a message,
// end one. WebSocket sessions and POST /v1/messages both call this; it knows nothing of sockets.
//
// Each call updates the conversation in memory and returns at once; the store then makes the
// change durable and calls `durable(failure)`. A transport sends what the call returned only
// after `durable(std::nullopt)`, so no client ever sees a reply the store could lose. When the
// store fails, `durable` gets the error to send in its place (store_unavailable, with the safety
// guidance when the message raised a red flag) and the conversation in memory is rolled back to
// what the store holds; an escalation is kept by the store and retried until durable. An
// escalation is pushed to the escalation listener (the operators) once it is durable, before
// `durable` is called.
//
// Thread-safe: any number of threads may call it at once. Messages of one conversation are
// handled one at a time, in the order they arrive at the conversation's lock, and made durable
// in that order.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "dialog/engine.hpp"
#include "server/config.hpp"
#include "server/conversation_store.hpp"
#include "server/metrics.hpp"
#include "server/protocol.hpp"

namespace backcheck::server {

// A new conversation id: 128 bits from the kernel's CSPRNG, base64url without padding (22 chars).
std::string NewConversationId();

class ConversationService {
 public:
  using Durable = std::function<void(std::optional<Error> failure)>;
  using EscalationListener = std::function<void(const EscalationEvent&)>;

  ConversationService(const dialog::Engine& engine, ConversationStore& store, const Limits& limits, Metrics& metrics,
                      EscalationListener on_escalation = {});

  struct Started {
    std::string conversation;
    bool resumed = false;
    dialog::ConversationState state;
    HistoryPage history;  // the last --max-history-turns turns (before `history_before`)
  };
  // A new conversation, or the one `resume` names (unknown_conversation if there is none).
  std::variant<Started, Error> Start(const std::optional<std::string>& resume, Durable durable,
                                     std::optional<std::uint64_t> history_before = std::nullopt);

  struct Replied {
    std::string conversation;
    std::uint64_t seq = 0;
    dialog::Reply reply;
  };
  // text_too_long when `text` has more characters than the limit.
  std::optional<Error> CheckText(std::string_view text) const;

  // Handles one user message (text_too_long past the limit, unknown_conversation).
  std::variant<Replied, Error> Message(const std::string& conversation, std::string_view text,
                                       Clock::time_point received, Durable durable);

  // Ends a conversation: it stays resumable until it expires. One that never had a message is
  // deleted, so it stops counting against --max-conversations.
  std::optional<Error> End(const std::string& conversation, Durable durable);

  // The safety guidance for `text` without any conversation: what an error frame carries when a
  // message that raised a red flag cannot be handled (a full table, a limit, a store failure).
  std::optional<Guidance> Guide(std::string_view text) const;
  // `error` with the guidance for `text` added, when it raises a red flag.
  Error WithGuidance(Error error, std::string_view text) const;

  // unknown_conversation, for every transport alike.
  static Error UnknownConversation() {
    return Error{ErrorCode::kUnknownConversation, "no conversation with this id (it may have expired)"};
  }
  // The error for a change the store could not keep: store_unavailable, with `guidance`.
  Error StoreFailure(std::optional<Guidance> guidance) const;

  const dialog::Engine& engine() const { return engine_; }
  // The welcome and the banners every `started` frame carries, from the knowledge data.
  const StartedTexts& started_texts() const { return started_texts_; }

  bool Exists(const std::string& conversation) const { return store_.Find(conversation) != nullptr; }
  std::size_t Count() const { return store_.Size(); }
  bool Full() const { return store_.Size() >= limits_.max_conversations; }
  bool StoreHealthy() const { return store_.Healthy(); }
  // Drops conversations idle for longer than the expiry (or than the empty-conversation expiry,
  // for those without a message); returns how many.
  std::size_t PurgeExpired(Clock::time_point now = Clock::now());

 private:
  // A failed write: the conversation goes back to what the store holds, keeping the urgency of
  // the escalation the store retries (`lost`), so urgency never goes down.
  void RollBack(Conversation& conversation, std::uint64_t epoch, const std::optional<Guidance>& lost);

  const dialog::Engine& engine_;
  ConversationStore& store_;
  const Limits& limits_;
  Metrics& metrics_;
  EscalationListener on_escalation_;
  StartedTexts started_texts_;
};

}  // namespace backcheck::server
