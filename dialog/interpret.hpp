// Step 1 of a reply (Interpret -> Transition -> Compose): what a message says, read in the
// context of the conversation so far, as a value. Nothing here decides what to do about it.
//
// The context matters: "yes" affirms whatever the pending question asked about, "no numbness"
// answers a question about numbness as a "no", a question asked while the safety net's question
// is open leaves it open, and a symptom reported for someone else or for the past is answered as
// a warning sign rather than matched as a topic.
//
// Thread-compatible: an Interpreter is immutable after construction.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dialog/conversation.hpp"
#include "dialog/intent_matcher.hpp"
#include "dialog/pattern_pass.hpp"
#include "dialog/safety/red_flag_detector.hpp"
#include "dialog/slots.hpp"
#include "dialog/text/normaliser.hpp"
#include "knowledge/knowledge_base.hpp"
#include "knowledge/retrieval.hpp"

namespace backcheck::dialog {

// Indices of the intents the engine itself reasons about (the loader guarantees they exist).
struct CoreIntents {
  std::size_t fallback = 0, affirm = 0, deny = 0, describe_pain = 0, warning_signs = 0;
  explicit CoreIntents(const knowledge::KnowledgeBase& kb);
  CoreIntents() = default;
};

// What one message says.
struct Reading {
  std::string normalised;
  std::size_t intent = 0;  // index into kb.intents, after the context was taken into account
  FlagMask self = 0;       // flags the person affirms for themselves, now ("yes" included)
  FlagMask other = 0;      // ...for someone else (only when none for themselves)
  FlagMask past = 0;       // ...as a past episode of theirs (only when none of the above)
  FlagMask possible = 0;   // partial evidence: flags to ask about (not yet filtered by the state)
  bool in_screening = false;     // a screening question was pending
  // In screening, but the question the person saw is gone (a knowledge-base reload removed it):
  // the message answers no screening question, and the one now due is asked (Engine::Adopt).
  bool screening_reask = false;
  bool past_pending = false;     // a question about pending flags (past or possible) was open
  bool possible_pending = false; // ...and it was the safety net's
  Slots slots;                   // the conversation's slots with this message's added
  bool slots_found = false;      // this message named at least one slot
  bool asks = false;             // phrased as a question ("?", "should i", "what")
  bool reports_pain = false;     // a report of their own pain matched, even where a question won
  std::optional<std::size_t> passage;  // an article sentence retrieval found, when nothing matched (not once escalated)
  double passage_score = 0;            // ...its retrieval score
};

class Interpreter {
 public:
  // All references must outlive the Interpreter (the Engine owns them all).
  Interpreter(const knowledge::KnowledgeBase& kb, const Normaliser& normaliser, const IntentMatcher& matcher,
              const RedFlagDetector& detector, const SlotExtractor& slots, const knowledge::PassageIndex& passages,
              const CoreIntents& core);

  Reading Read(const ConversationState& state, std::string_view text, const std::optional<MessageTime>& now,
               bool question_gone = false) const;

  // The intent that answers a retrieved sentence (the first topic citing it), if any.
  std::optional<std::size_t> IntentOfSentence(std::size_t sentence) const;

  // The flags of `ids` as a mask.
  FlagMask MaskOf(const std::vector<std::string>& ids) const;

 private:
  // Whether the message reports the person's own pain in a clause of its own (see the .cpp).
  bool ReportsPain(std::string_view normalised, std::string_view state,
                   const std::vector<IntentMatcher::Match>& matches) const;
  // "yes", "no numbness", "no fever" to the arm question: the intent a reply to `asked` has.
  void ReadAnswer(FlagMask asked, const Detection& detection, Reading& r) const;

  const knowledge::KnowledgeBase& kb_;
  const Normaliser& normaliser_;
  const IntentMatcher& matcher_;
  const RedFlagDetector& detector_;
  const SlotExtractor& slots_;
  const knowledge::PassageIndex& passages_;
  const CoreIntents& core_;
  std::vector<std::optional<std::size_t>> intent_of_sentence_;
  // The intents', red flags' and slots' patterns in one pass; null when one of them does not
  // match through a set (the benchmark's one regex at a time, a red-flag set too large to build).
  std::unique_ptr<const PatternPass> pass_;
};

}  // namespace backcheck::dialog
