// The conversation engine: one call takes a conversation's state and a message and gives the
// reply and the next state. No sockets, no threads, no globals: the server, the CLI, the tests
// and the benchmark all drive the same code.
//
// Each message goes through three steps, each a class of its own:
//   Interpret (dialog/interpret.hpp): normalise (with spelling correction) -> red-flag detection
//     -> intent matching (one RE2::Set pass) -> slots and dates -> the context of the pending
//     question; gives a Reading, a value;
//   Transition (dialog/policy.hpp): safety first, then the policy of the state's role (flow.jsonc
//     "role") picks the next state and the parts of the reply;
//   Compose (dialog/compose.hpp): the parts become text, sources and quick replies, every word
//     from the knowledge base.
//
// The flow names transitions by event. Events, besides intent ids:
//   red_flag          the message raised the conversation's urgency
//   start_screening   the person described their own pain and has not been screened yet
//   screening_passed  the last screening question was answered "no"
//   question          any intent of kind "question" (used when the intent id has no transition)
//   message           any message (used when nothing more specific has a transition)
//
// Thread-compatible: an Engine is immutable after construction, so any number of threads may
// call Respond() at once, each with its own conversation state.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dialog/compose.hpp"
#include "dialog/conversation.hpp"
#include "dialog/interpret.hpp"
#include "dialog/intent_matcher.hpp"
#include "dialog/text/normaliser.hpp"
#include "dialog/safety/red_flag_detector.hpp"
#include "dialog/policy.hpp"
#include "dialog/slots.hpp"
#include "knowledge/knowledge_base.hpp"
#include "knowledge/retrieval.hpp"

namespace backcheck::dialog {

struct EngineOptions {
  IntentMatcher::Strategy matcher = IntentMatcher::Strategy::kSet;
  // Spelling correction (dialog/text/spelling.hpp) from these word lists. When one cannot be
  // read, the engine says so once on stderr and corrects from the rewrite table only.
  bool spelling = true;
  std::vector<std::string> dictionaries = Speller::DefaultDictionaries();
};

struct Turn {
  Reply reply;
  ConversationState state;
  // What the reply is made of, by content id (see Composer::Compose), when Respond was asked for it.
  std::vector<std::string> said;
  // What the server's --review keeps: the reply is the fallback (nothing understood), or an
  // article sentence retrieval found when no intent matched (its score). Neither when an
  // operator had joined (the operator answers).
  bool fell_back = false;
  std::optional<double> retrieval_score;
};

class Engine {
 public:
  // `kb` must come from knowledge::LoadKnowledgeBase (validated). Throws std::runtime_error if a
  // pattern set cannot be compiled.
  explicit Engine(std::shared_ptr<const knowledge::KnowledgeBase> kb, EngineOptions options = {});

  // A new conversation, in the flow's initial state, and the welcome it opens with: the flow's
  // "greeting" text and its "welcome" quick replies (every client shows these same words).
  ConversationState Start() const;
  const std::string& Greeting() const;
  struct Welcome {
    std::string text;
    std::vector<std::string> quick_replies;
  };
  Welcome WelcomeReply() const;

  // Handles one message. `text` is any UTF-8 the person wrote; length limits are the caller's.
  // `now`, when known, is when it was written: relative dates ("on monday") are resolved against
  // it (the server passes its clock; tests and scripts fix it).
  // `trace`: also fill Turn::said (for tests and `backcheck explain`; costs a few strings).
  Turn Respond(const ConversationState& state, std::string_view text,
               const std::optional<MessageTime>& now = std::nullopt, bool trace = false) const;

  // The state as this engine reads it, whichever knowledge base wrote it (a reload may have
  // changed the screening questions): in screening, the pending question is found by its id
  // (screening_question) wherever it now is. A state without the id (stored before it existed)
  // keeps its position. When the question is gone, `question_gone` is set and the position
  // stays (the questions answered so far), within the questions there are: Respond then takes
  // the message as an answer to no question and asks the one at that position, so the
  // conversation goes on and no unseen question counts as answered. Respond calls it itself.
  ConversationState Adopt(const ConversationState& state, bool* question_gone = nullptr) const;

  // Handoff to a person of the care team: while `operator_name` has joined, Respond says only
  // what safety needs (a new or higher red flag, the safety net's question: at once, and it
  // escalates as ever); other messages get an empty reply marked `to_operator` and leave the
  // flow where it was. Leave hands the conversation back to the assistant.
  ConversationState Join(const ConversationState& state, const std::string& operator_name) const;
  ConversationState Leave(const ConversationState& state) const;

  // The state after the person (or their client) ends the conversation without a message: the
  // flow's "goodbye" transition, so an escalated conversation stays escalated.
  ConversationState End(const ConversationState& state) const;

  // The state with `flags` affirmed at `level` without a message, as a red flag in a message
  // would leave it: urgency raised (never lowered), the flags added, and the flow's "red_flag"
  // transition taken when the urgency rose. The server uses it when an escalation is durable but
  // the turn that raised it is not (a failed write), so urgency never goes down.
  ConversationState Escalate(const ConversationState& state, knowledge::Urgency level,
                             const std::vector<std::string>& flags) const;

  const knowledge::KnowledgeBase& kb() const { return *kb_; }
  const Normaliser& normaliser() const { return normaliser_; }
  const RedFlagDetector& detector() const { return detector_; }
  // The three steps of Respond, each usable (and tested) on its own.
  const Interpreter& interpreter() const { return interpreter_; }
  const Policy& policy() const { return policy_; }
  const Composer& composer() const { return composer_; }
  const CoreIntents& core_intents() const { return core_; }

 private:
  Turn Answer(const ConversationState& state, std::string_view text, const std::optional<MessageTime>& now,
              bool trace, bool question_gone) const;  // the assistant's answer, as if nobody had joined
  void Stamp(ConversationState& state) const;  // this knowledge version and the pending question's id

  std::shared_ptr<const knowledge::KnowledgeBase> kb_;
  Normaliser normaliser_;
  IntentMatcher matcher_;
  RedFlagDetector detector_;
  SlotExtractor slots_;
  knowledge::PassageIndex passages_;
  CoreIntents core_;
  Interpreter interpreter_;  // the three steps; they refer to the members above
  Policy policy_;
  Composer composer_;
};

}  // namespace backcheck::dialog
