// Red-flag detection (SPEC section 5): which symptoms a message mentions, and whether the person
// affirms each one for themselves, now. A pipeline of small stages over normalised text (the
// normaliser has already fixed typos, dialog/text/spelling.hpp):
//
//   1. concepts   lay words for one idea each, matched on stems (dialog/safety/concepts.hpp,
//                 concepts.jsonc); a concept inside an idiom ("blood pressure") is dropped.
//   2. mentions   a flag is mentioned where one of its `rules` finds its concepts together in one
//                 clause or sentence ("COUGH + BLOOD"), or one of its fixed `patterns` (RE2, one
//                 RE2::Set pass) matches. `except` patterns cancel an overlapping mention ("numb
//                 the pain"), `requires` patterns must also match in the same sentence as a
//                 pattern's mention ("lost weight" needs "without trying"), and a mention inside a longer mention of an
//                 equally or more urgent flag is dropped ("legs are numb" is cord_signs).
//   3. context    each mention is attributed from the cue phrase lists (ConText-style triggers,
//                 pseudo-triggers, terminations and scopes, all in red_flags.jsonc `cues`); a
//                 rule's mention takes the strongest context of its concepts ("no cough, no
//                 blood" is negated even if only "blood" is governed by "no"):
//   negated       a negation cue within `negation_window` words before it, in the same clause.
//                 Clauses end at . ! ? ; : and at clause breaks ("but", "although", "however",
//                 "because"...); "," and "and" end a clause only before a subject ("and my arm").
//                 Pseudo-negations ("not sure", "no idea") are not negation cues. Also negated:
//                 a short answer after it, past punctuation ("fever? no", "chest pain: none").
//   hypothetical  a hypothetical cue earlier in the sentence ("what if", "in case", "could i
//                 get"), or a concern cue ("worry about") unless the symptom is definite ("the
//                 numbness", "this tingling"), or reported speech earlier in the clause ("i read
//                 that chest pain...").
//   past          a past cue in the sentence ("last year", "used to", "went away") and no
//                 continuing cue ("still", "started", "since yesterday") outside the past cues
//                 ("gone now" is past: its "now" does not make it current).
//   other_person  the nearest person before it in the clause is someone else ("my friend", "he"),
//                 unless the mention itself names the person ("someone punched me in the back").
//   informational the sentence is a question or asks about signs/causes and has no first-person
//                 word ("is numbness serious?").
//   effort        a flag of `effort_flags` (out of breath, shaking) with hard exercise in the
//                 sentence ("after the sprint") and a cue that it passed ("back to normal now").
//   self          none of the above: the person reports it. Only these escalate.
//   4. the safety net: a flag no mention decides, whose `ask` rule finds its (partial) evidence
//                 for the person now ("BLOOD" alone), is a possible flag: the engine asks.
//
// When a flag is mentioned more than once, a `self` mention wins; otherwise the first of effort,
// past, other_person, hypothetical, informational, negated in that order.
//
// Immutable after construction; Detect() is safe to call from many threads.
#pragma once

#include <re2/re2.h>
#include <re2/set.h>

#include <array>
#include <cstdint>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dialog/safety/concepts.hpp"
#include "dialog/word_table.hpp"
#include "knowledge/knowledge_base.hpp"

namespace backcheck::dialog {

enum class Attribution : std::uint8_t { kSelf, kPast, kOtherPerson, kHypothetical, kInformational, kNegated, kEffort };

const char* AttributionName(Attribution a);

using FlagMask = std::uint64_t;  // bit i: flag i of RedFlagLexicon::flags

struct FlagMention {
  std::size_t flag = 0;
  Attribution attribution = Attribution::kSelf;
  std::size_t begin = 0, end = 0;  // byte span in the normalised text
};

struct Detection {
  std::vector<FlagMention> mentions;  // one per flag, with its deciding attribution
  FlagMask possible = 0;              // flags the safety net asks about (no mention of them)

  FlagMask Mask(Attribution a) const;
  bool Empty() const { return mentions.empty() && possible == 0; }
};

// Why Detect() decided what it did, for `backcheck explain` and the lexicon coverage check.
// Filled only when asked for (it allocates strings).
struct DetectionTrace {
  struct Concept {
    std::string id, term;            // the concept id and the term as written in concepts.jsonc
    std::uint32_t term_index;
    std::size_t begin, end;          // bytes of the normalised text
  };
  struct Idiom {
    std::string idiom;
    std::uint32_t index;
    std::size_t begin, end;
  };
  struct Candidate {
    std::string flag;
    std::string by;                  // "rule COUGH + BLOOD", "pattern 3", "ask COUGH"
    int pattern = -1;                // index into the flag's patterns, or -1
    int rule = -1;                   // index into its rules (or ask_when when `ask`), or -1
    bool ask = false;
    std::size_t begin, end;
    std::string dropped;             // why it does not count ("except", "requires", "inside ..."), or ""
    Attribution attribution = Attribution::kSelf;
    std::string cue;                 // the cue phrase that decided a non-self attribution, or ""
    std::string cue_list;            // the list it is from ("negation", "past"...)
  };
  std::vector<Concept> concepts;
  std::vector<Idiom> idioms;
  std::vector<Candidate> candidates;
};

class RedFlagDetector {
 public:
  // Compiles the lexicon's patterns, which the loader has validated. Throws std::runtime_error
  // if RE2 fails to build the pattern set.
  // `set_max_mem`: the memory RE2 may use for the whole pattern set (program and DFA cache).
  // When the set does not fit, or its DFA runs out of memory on a message, the patterns are
  // matched one at a time instead (never "no match" by failure); tests make it tiny to force it.
  // `speller` (may be null; must outlive the detector) lets concept matching skip stemming
  // English words no concept has.
  explicit RedFlagDetector(const knowledge::RedFlagLexicon& lexicon, std::int64_t set_max_mem = kSetMaxMem,
                           const Speller* speller = nullptr);
  static constexpr std::int64_t kSetMaxMem = 64 << 20;

  // How many messages RE2::Set could not decide (its DFA ran out of memory) and were matched
  // pattern by pattern instead. The detector fails closed: such a message is still checked.
  std::uint64_t SetFallbacks() const { return set_fallbacks_.load(std::memory_order_relaxed); }

  // `trace`, when given, receives why (see DetectionTrace).
  Detection Detect(std::string_view normalised, DetectionTrace* trace = nullptr) const;
  // The same, for a caller that has matched the patterns on `normalised` already (PatternPass):
  // `pattern_hits` is what the set answered, in its order.
  Detection Detect(std::string_view normalised, const std::vector<int>& pattern_hits) const;

  // The patterns in the order of the set's indices (for a PatternPass); nullopt when there are
  // patterns but the set could not be built (they are then matched one at a time).
  std::optional<std::vector<std::string>> SetPatterns() const;

  const ConceptMatcher& concepts() const { return concepts_; }

  // Whether the normalised text asks something: it has a '?' or starts with a question word
  // (the cue list `question_starts`). "rows, two days ago" does not; "how do I row?" does.
  bool IsQuestion(std::string_view normalised) const;

 private:
  // The indices of the patterns that match `text`; false when none does.
  bool MatchPatterns(std::string_view text, std::vector<int>& hits) const;
  // Detect(), with the pattern hits given (`given`) or matched here (null).
  Detection DetectWith(std::string_view normalised, const std::vector<int>* given, DetectionTrace* trace) const;

  // The cue phrase lists, and one table from a word to the phrases of each list that start with
  // it, so each token is looked up once however many lists are consulted.
  enum Cue : std::size_t {
    kNegation, kPseudoNegation, kClauseBreak, kSoftBreak, kSubjectStart, kHypothetical, kConcern,
    kDefinite, kQuestionStart, kInformational, kFirstPerson, kThirdParty, kPast, kContinuing, kPostNegation,
    kReportedSpeech, kEffortActivity, kEffortPassed, kCueCount
  };
  using Phrase = std::vector<std::string>;
  struct CueEntry {
    std::array<std::vector<Phrase>, kCueCount> phrases;  // per list, longest first
    std::uint32_t lists = 0;                             // bit per list that has phrases here
  };
  static_assert(kCueCount <= 32, "CueEntry::lists has a bit per cue list");
  struct Token {
    std::size_t begin, end;
    bool punct;
    std::uint32_t lists;  // the cue lists with a phrase starting at this token (its cue's `lists`)
    const CueEntry* cue;  // phrases starting at this token, or nullptr
  };
  struct FlagPatterns {
    std::unique_ptr<RE2> except;     // the flag's `except` patterns as one alternation, or null
    std::vector<std::unique_ptr<RE2>> requires_;
  };
  // An attribution and the cue that decided it (tokens [cue, cue + cue_length) of list `list`).
  struct Why {
    Attribution attribution = Attribution::kSelf;
    std::size_t cue = 0, cue_length = 0;
    Cue list = kCueCount;
  };
  struct Message;  // one message's tokens, concepts and segments (red_flag_detector.cpp)
  struct Candidate;

  void AddCues(Cue list, const std::vector<std::string>& phrases);
  // Length in tokens of the phrase of `list` starting at token t, or 0. Inline: it is called for
  // most tokens of a sentence for several lists, and nearly always answers 0 from the bits alone.
  std::size_t PhraseAt(Cue list, std::string_view text, const std::vector<Token>& tokens, std::size_t t) const {
    if (t >= tokens.size() || ((tokens[t].lists >> list) & 1) == 0) return 0;
    return LongestPhraseAt(list, text, tokens, t);
  }
  std::size_t LongestPhraseAt(Cue list, std::string_view text, const std::vector<Token>& tokens, std::size_t t) const;
  // The first token of a phrase of `list` wholly inside [from, to), or `to` when there is none.
  std::size_t FindPhrase(Cue list, std::string_view text, const std::vector<Token>& tokens, std::size_t from,
                         std::size_t to) const;
  bool AnyPhraseIn(Cue list, std::string_view text, const std::vector<Token>& tokens, std::size_t from,
                   std::size_t to) const {
    return FindPhrase(list, text, tokens, from, to) < to;
  }
  // The context of the mention at tokens [first, last]. Negation cues inside `others` (the other
  // concepts of one rule's mention: "no" of "no feeling" before "down there") do not count.
  Why Attribute(std::string_view text, const std::vector<Token>& tokens, std::size_t first, std::size_t last,
                const std::vector<std::pair<std::size_t, std::size_t>>* others = nullptr) const;
  // The candidates of the fixed patterns and of the concept rules.
  void PatternCandidates(const Message& m, const std::vector<int>& hits, std::vector<Candidate>& out) const;
  void RuleCandidates(const Message& m, std::vector<Candidate>& out, bool ask) const;
  void Filter(const Message& m, std::vector<Candidate>& candidates) const;
  void Decide(const Message& m, Candidate& c) const;

  const knowledge::RedFlagLexicon* lexicon_;
  ConceptMatcher concepts_;
  std::unique_ptr<RE2::Set> set_;
  mutable std::atomic<std::uint64_t> set_fallbacks_{0};
  std::vector<std::unique_ptr<RE2>> patterns_;  // set index -> pattern, for positions
  std::vector<std::size_t> pattern_flag_;       // set index -> flag index
  std::vector<int> pattern_index_;              // set index -> index in the flag's patterns
  std::vector<FlagPatterns> flag_patterns_;     // per flag
  FlagMask effort_flags_ = 0;
  // Which concepts a message has, as bits (at most kMaxConcepts, the loader's limit), and per
  // rule the concepts each part accepts: a rule whose parts are not all in the message is
  // skipped with a few AND operations, and a message that satisfies no rule and no pattern is
  // done before any cue look-up.
  using ConceptSet = std::array<std::uint64_t, 2>;
  struct RuleMasks {
    std::uint32_t begin = 0, end = 0;  // its parts' sets in rule_parts_
    std::uint32_t index = 0;           // in every_rule_
    std::uint32_t flag = 0, rule = 0;  // which rule of which flag (of its `rules` or `ask_when`)
    bool ask = false;
  };
  bool Satisfies(const ConceptSet& present, const RuleMasks& rule) const;
  // Marks in m.satisfied the rules whose concepts are all in the message; false if none is.
  bool SatisfiedRules(Message& m) const;
  std::vector<ConceptSet> rule_parts_;  // every rule's parts, one after another (one cache-friendly array)
  std::vector<RuleMasks> every_rule_;  // rules and ask rules of all flags, by flag, rules before asks
  // Per concept: the rules (every_rule_ indices) whose first part accepts it. A satisfied rule has
  // a concept of the message in its first part, so only these are checked (a few per message).
  std::vector<std::vector<std::uint32_t>> rules_by_anchor_;
  WordMap<CueEntry> cues_;          // while building
  WordTable<CueEntry> cue_table_;  // the same, for the look-up of every word of a message
};

}  // namespace backcheck::dialog
