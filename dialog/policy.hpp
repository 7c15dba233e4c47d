// Step 2 of a reply (Interpret -> Transition -> Compose): given what a message says (a Reading),
// the conversation's next state and the plan of what to say (parts, not words).
//
// What is common to every state comes first and in this order, because safety never waits:
//   1. flags the person affirms raise the urgency (never lowered); a rise is the "red_flag" event;
//   2. an escalated conversation leads every reply with the guidance for its level and why each
//      new flag matters;
//   3. an escalation now, the safety net's question, someone else's symptom, a past symptom, and
//      a "no" to a pending question about a symptom are handled the same way in every state.
// The rest is a policy per state role (flow.jsonc "role"): welcome, advising and ended converse
// (topics, tailoring, retrieval, the fallback), screening asks its questions one at a time,
// escalated answers within the escalation (its own per-intent answers, its own quick replies,
// never tailored self-care). The next state is the flow's: the first of the event, the intent
// id, "question" (question intents) and "message" that the current state has a transition for.
//
// Thread-compatible: a Policy is immutable after construction.
#pragma once

#include <memory>
#include <string>

#include "dialog/compose.hpp"
#include "dialog/conversation.hpp"
#include "dialog/interpret.hpp"
#include "knowledge/knowledge_base.hpp"

namespace backcheck::dialog {

struct Decision {
  ConversationState state;  // the conversation after this message
  Plan plan;                // what to say
  std::size_t intent = 0;   // the intent the reply answers (index into kb.intents)
  FlagMask affirmed = 0;    // flags affirmed by this message
  FlagMask asked = 0;       // flags the reply asks about (the safety net), urgency unchanged
  bool escalated = false;   // this message raised the urgency
  std::string event;        // the flow event it raised ("" when none)
};

class RolePolicy;  // one per state role; see policy.cpp

class Policy {
 public:
  Policy(const knowledge::KnowledgeBase& kb, const CoreIntents& core);  // both must outlive it
  ~Policy();
  Policy(const Policy&) = delete;
  Policy& operator=(const Policy&) = delete;

  Decision Decide(const ConversationState& state, const Reading& reading) const;

 private:
  const knowledge::KnowledgeBase& kb_;
  const CoreIntents& core_;
  std::unique_ptr<const RolePolicy> roles_[5];  // indexed by knowledge::StateRole
};

}  // namespace backcheck::dialog
