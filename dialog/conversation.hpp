// The values the engine takes and gives: a conversation's state, and a reply.
//
// ConversationState is small and self-contained, so a server can store it (as JSON, see
// to_json/from_json below) and hand it back on the next message or after a restart.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "dialog/slots.hpp"
#include "knowledge/knowledge_base.hpp"

namespace backcheck::dialog {

struct ConversationState {
  std::string state;  // a flow state id: "welcome", "screening", "advising", "escalated", "ended"
  knowledge::Urgency urgency = knowledge::Urgency::kNone;  // never goes down
  std::vector<std::string> flags;          // red flags affirmed so far, in the order reported
  std::uint32_t screening_step = 0;        // the pending screening question, while screening
  // ...by its id (flow.jsonc "screening"), which a knowledge-base reload keeps: the engine reads
  // the position from it (Engine::Adopt). Empty in a state stored before it existed (the
  // position then counts) and outside screening.
  std::string screening_question;
  std::string kb_version;  // the knowledge version (KnowledgeBase::version) of the last answer
  bool screened = false;                   // every screening question was answered "no"
  bool asked_training = false;             // the assistant asked when and what they trained
  std::vector<std::string> pending_flags;  // a past symptom asked about: "do you have it now?"
  bool pending_possible = false;           // ...or the safety net's question about them
  Slots slots;
  std::uint32_t turns = 0;  // messages handled
  std::uint32_t fallbacks_said = 0;  // picks the next fallback wording, so none comes twice in a row
  std::uint32_t misses_in_row = 0;   // messages not understood in a row (the second offers the topics)
  // The care-team operator who has joined the conversation (empty: the assistant answers). While
  // one has, the person's messages go to them and the assistant says only the safety guidance.
  std::string operator_name;
  std::string claimed_by;  // the operator who has claimed its escalation (others see it taken)

  bool operator==(const ConversationState&) const = default;
};

struct Reply {
  std::string text;
  std::string intent;
  std::string state;
  knowledge::Urgency urgency = knowledge::Urgency::kNone;  // the conversation's level
  std::vector<std::string> red_flags;  // flags affirmed in this message
  // Flags the reply asks about because the message holds only part of the evidence for them
  // (the safety net, SPEC section 5): not affirmed, urgency unchanged; a "yes" affirms them.
  std::vector<std::string> possible_flags;
  bool escalated = false;              // this message raised the urgency
  std::vector<std::string> quick_replies;
  std::vector<knowledge::Source> sources;
  // An operator has joined: the message went to them and the assistant said nothing (text empty).
  bool to_operator = false;
};

// JSON forms. from_json throws nlohmann::json::exception (type_error / out_of_range) or
// std::invalid_argument on a malformed value, e.g. an unknown urgency name.
void to_json(nlohmann::json& j, const ConversationState& s);
void from_json(const nlohmann::json& j, ConversationState& s);
void to_json(nlohmann::json& j, const Reply& r);
void from_json(const nlohmann::json& j, Reply& r);  // a stored reply, answered again for a repeated message id

}  // namespace backcheck::dialog
