// Tells the connections of this instance about a handoff event (ConversationEvent, issue 16):
// every operator hears of a claim, a join and a leave; the operator who joined hears the
// person's messages (user_message); the person hears of the claim (a notice), the join and the
// leave (handoff) and the operator's messages (operator_message).
//
// An event made on this instance comes with its text. One from another instance on the same
// store (ConversationStore::OnOtherInstances) comes without: its text is read from its turn
// first, and only when a connection here needs it. Thread-safe; never blocks.
#pragma once

#include <memory>
#include <string>

#include "server/conversation_connections.hpp"
#include "server/operator_hub.hpp"
#include "server/store/store.hpp"

namespace backcheck::server {

class HandoffFanout {
 public:
  // `claimed_text`: what the person is told when an operator claims their escalation (knowledge
  // data). The references must outlive every call.
  HandoffFanout(ConversationStore& store, OperatorHub& operators, ConversationConnections& pushes,
                std::string claimed_text);

  // An event made here; `text` is the person's message (kHandedOff) or the operator's (kSaid).
  void Announce(const ConversationEvent& event, const std::string& text);
  // An event another instance committed.
  void FromOtherInstance(const ConversationEvent& event);

 private:
  void Deliver(const ConversationEvent& event, const std::string& text);  // Announce without the log line

  ConversationStore& store_;
  OperatorHub& operators_;
  ConversationConnections& pushes_;
  const std::shared_ptr<const PushedNotice> claimed_;
};

}  // namespace backcheck::server
