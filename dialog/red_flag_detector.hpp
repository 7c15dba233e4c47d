// Red-flag detection (SPEC section 5): which symptoms a message mentions, and whether the person
// affirms each one for themselves, now.
//
// A mention is found by the flag's patterns (red_flags.jsonc) in normalised text; `except`
// patterns cancel an overlapping mention ("numb the pain"), `requires` patterns must also match
// in the same sentence ("lost weight" needs "without trying"), and a mention inside a longer
// mention of an equally or more urgent flag is dropped ("legs are numb" is cord_signs, not
// numbness). Each mention is then attributed, from the cue phrase lists:
//
//   negated       a negation cue within `negation_window` words before it, in the same clause.
//                 Clauses end at . ! ? ; : and at clause breaks ("but", "although", "however",
//                 "because"...); "," and "and" end a clause only before a subject ("and my arm").
//                 Pseudo-negations ("not sure", "no idea") are not negation cues. Also negated:
//                 a short answer after it, past punctuation ("fever? no", "chest pain: none").
//   hypothetical  a hypothetical cue earlier in the sentence ("what if", "in case", "could i
//                 get"), or a concern cue ("worry about") unless the symptom is definite ("the
//                 numbness", "this tingling"), or reported speech earlier in the clause ("i read
//                 that chest pain...").
//   past          a past cue in the clause ("last year", "used to", "went away") and no
//                 continuing cue ("still", "started", "since").
//   other_person  the nearest person before it in the clause is someone else ("my friend", "he"),
//                 unless the mention itself names the person ("someone punched me in the back").
//   informational the sentence is a question or asks about signs/causes and has no first-person
//                 word ("is numbness serious?").
//   self          none of the above: the person reports it. Only these escalate.
//
// When a flag is mentioned more than once, a `self` mention wins; otherwise the first of past,
// other_person, hypothetical, informational, negated in that order.
//
// Immutable after construction; Detect() is safe to call from many threads.
#pragma once

#include <re2/re2.h>
#include <re2/set.h>

#include <array>
#include <cstdint>
#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "knowledge/knowledge_base.hpp"

namespace backcheck::dialog {

enum class Attribution : std::uint8_t { kSelf, kPast, kOtherPerson, kHypothetical, kInformational, kNegated };

const char* AttributionName(Attribution a);

using FlagMask = std::uint64_t;  // bit i: flag i of RedFlagLexicon::flags

struct FlagMention {
  std::size_t flag = 0;
  Attribution attribution = Attribution::kSelf;
  std::size_t begin = 0, end = 0;  // byte span in the normalised text
};

struct Detection {
  std::vector<FlagMention> mentions;  // one per flag, with its deciding attribution

  FlagMask Mask(Attribution a) const;
  bool Empty() const { return mentions.empty(); }
};

class RedFlagDetector {
 public:
  // Compiles the lexicon's patterns, which the loader has validated. Throws std::runtime_error
  // if RE2 fails to build the pattern set.
  // `set_max_mem`: the memory RE2 may use for the whole pattern set (program and DFA cache).
  // When the set does not fit, or its DFA runs out of memory on a message, the patterns are
  // matched one at a time instead (never "no match" by failure); tests make it tiny to force it.
  explicit RedFlagDetector(const knowledge::RedFlagLexicon& lexicon, std::int64_t set_max_mem = kSetMaxMem);
  static constexpr std::int64_t kSetMaxMem = 64 << 20;

  // How many messages RE2::Set could not decide (its DFA ran out of memory) and were matched
  // pattern by pattern instead. The detector fails closed: such a message is still checked.
  std::uint64_t SetFallbacks() const { return set_fallbacks_.load(std::memory_order_relaxed); }

  Detection Detect(std::string_view normalised) const;

  // Whether the normalised text asks something: it has a '?' or starts with a question word
  // (the cue list `question_starts`). "rows, two days ago" does not; "how do I row?" does.
  bool IsQuestion(std::string_view normalised) const;

 private:
  // The indices of the patterns that match `text`; false when none does.
  bool MatchPatterns(std::string_view text, std::vector<int>& hits) const;

  // The cue phrase lists, and one table from a word to the phrases of each list that start with
  // it, so each token is looked up once however many lists are consulted.
  enum Cue : std::size_t {
    kNegation, kPseudoNegation, kClauseBreak, kSoftBreak, kSubjectStart, kHypothetical, kConcern,
    kDefinite, kQuestionStart, kInformational, kFirstPerson, kThirdParty, kPast, kContinuing, kPostNegation,
    kReportedSpeech, kCueCount
  };
  using Phrase = std::vector<std::string>;
  struct CueEntry {
    std::array<std::vector<Phrase>, kCueCount> phrases;  // per list, longest first
  };
  struct Hash {  // lets the table be searched with a string_view
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Token {
    std::size_t begin, end;
    bool punct;
    const CueEntry* cue;  // phrases starting at this token, or nullptr
  };
  struct FlagPatterns {
    std::unique_ptr<RE2> except;     // the flag's `except` patterns as one alternation, or null
    std::vector<std::unique_ptr<RE2>> requires_;
  };

  void AddCues(Cue list, const std::vector<std::string>& phrases);
  // Length in tokens of the phrase of `list` starting at token t, or 0.
  std::size_t PhraseAt(Cue list, std::string_view text, const std::vector<Token>& tokens, std::size_t t) const;
  bool AnyPhraseIn(Cue list, std::string_view text, const std::vector<Token>& tokens, std::size_t from,
                   std::size_t to) const;
  Attribution Attribute(std::string_view text, const std::vector<Token>& tokens, std::size_t first,
                        std::size_t last) const;

  const knowledge::RedFlagLexicon* lexicon_;
  std::unique_ptr<RE2::Set> set_;
  mutable std::atomic<std::uint64_t> set_fallbacks_{0};
  std::vector<std::unique_ptr<RE2>> patterns_;  // set index -> pattern, for positions
  std::vector<std::size_t> pattern_flag_;       // set index -> flag index
  std::vector<FlagPatterns> flag_patterns_;     // per flag
  std::unordered_map<std::string, CueEntry, Hash, std::equal_to<>> cues_;
};

}  // namespace backcheck::dialog
