// Step 3 of a reply (Interpret -> Transition -> Compose): the reply's text, sources and quick
// replies, built from the parts the transition chose. Every word comes from the knowledge base;
// a part names what to say ("the guidance for this level", "screening question 2", "the topic of
// this intent"), never the words.
//
// Thread-compatible: a Composer is immutable after construction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "dialog/conversation.hpp"
#include "dialog/safety/red_flag_detector.hpp"
#include "knowledge/knowledge_base.hpp"

namespace backcheck::dialog {

// One piece of a reply. Which fields matter depends on `kind`.
struct Part {
  enum class Kind : std::uint8_t {
    kGuidance,            // what to do now at `level` (red_flags.jsonc guidance text)
    kExplanations,        // why each flag of `flags` matters, with its sources
    kAnswer,              // the answer to intent `index` in state `state`: the state's own, else the topic's
    kQuestions,           // the safety net's question about each flag of `flags`
    kConditionalGuidance, // what to do if so, at `level` (said with a question about an emergency)
    kThirdPartyGuidance,  // what someone else with a flag of `level` should do
    kPastClarify,         // "you mentioned X in the past: do you have it now?" for `flags`
    kText,                // the flow text named `name`
    kScreeningQuestion,   // flow screening question `index`
    kTailoring,           // the tailoring rules that fit the slots
    kRetrieval,           // article sentence `index`, introduced with its section
    kFallback,            // fallback wording `index` (modulo their number)
    kTopicQuickReplies,   // no text: offers the quick replies of intent `index`'s topic
  };
  Kind kind;
  std::size_t index = 0;
  FlagMask flags = 0;
  knowledge::Urgency level = knowledge::Urgency::kNone;
  const char* name = "";
  const knowledge::FlowState* state = nullptr;
};

// What the transition decided to say.
struct Plan {
  std::vector<Part> parts;
  // A named quick-reply set (flow.jsonc "quick_replies") that overrides the parts' own; empty:
  // the first part's that has some (an answer's), else the state's set, else "default".
  std::string quick_replies;
};

class Composer {
 public:
  explicit Composer(const knowledge::KnowledgeBase& kb);  // `kb` must outlive the Composer

  // Fills reply.text, reply.sources and reply.quick_replies; `state` is the conversation after
  // the transition (its slots fill the tailoring, its id picks the state's quick replies).
  // `said`, when given, receives the id of each piece of content the text is made of, in order:
  // "guidance:urgent", "explanation:numbness", "question:fever", "conditional:emergency",
  // "third_party:urgent", "past_clarify", "text:screening_intro", "screening:arm",
  // "answer:ice_heat" (a topic), "answer:escalated/thanks" (a state's own answer),
  // "tailoring:doms_window", "retrieval:12" (a sentence), "fallback:1" (a wording). Tests name
  // what must (not) be said by these ids, so rewording content does not blind them.
  void Compose(const Plan& plan, const ConversationState& state, Reply& reply,
               std::vector<std::string>* said = nullptr) const;

 private:
  struct Builder;
  void Add(const Part& part, const ConversationState& state, Builder& out) const;
  void Tailor(const Slots& slots, Builder& out) const;

  const knowledge::KnowledgeBase& kb_;
  std::vector<const knowledge::Topic*> topic_of_intent_;
  const std::vector<std::string>* default_quick_replies_;  // flow "default", looked up once, not per reply
};

}  // namespace backcheck::dialog
