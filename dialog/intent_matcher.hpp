// Intent matching: every intent pattern matched against a normalised message in one pass.
//
// All patterns of all intents are compiled into one RE2::Set, so the cost of a match grows with
// the length of the message, not with the number of patterns. When several intents match, the
// one with the highest priority in the current dialogue state wins (intents.jsonc `priority`,
// overridden per state by `state_priority`); ties go to the intent declared first.
//
// Typos of the report words. The normaliser's speller corrects typos only towards the red-flag
// lexicon; a report of one's own pain must also hold when its soreness or body-part word is
// mistyped ("traps wreckd after pull day", "crampng rhomboids"), or the safety screening never
// starts. So the words of the report intents' patterns (kind "report": describe_pain; letter runs
// of 5+ letters, as dialog/text/spelling.hpp's AddPatternWords reads them) are correction targets
// here: a word of the message of 5+ letters a-z that no intent pattern names is read as the target
// one edit away (Damerau-Levenshtein, optimal string alignment; one keeping the first letter first,
// then the first in byte order), found through a deletion index. When no report intent matched as
// written and a word was corrected, the patterns are matched on the corrected text too and the
// matches of both count. The matcher has no English word lists: a real word one edit from a
// target can be read as it ("fired" as "fried"), which matters only next to a body-part word, and
// a typo the normaliser's speller read as a real word ("crampeed" -> "clamped") is still found.
//
// Immutable after construction; MatchAll() is safe to call from many threads.
#pragma once

#include <re2/re2.h>
#include <re2/set.h>

#include <array>
#include <bitset>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dialog/word_table.hpp"

#include "knowledge/knowledge_base.hpp"

namespace backcheck::dialog {

class IntentMatcher {
 public:
  // kSet matches all patterns in one RE2::Set pass. kSequential tries the patterns one regex at a
  // time; it gives the same answers and exists so the benchmark can show what the set buys.
  enum class Strategy { kSet, kSequential };
  // What RE2 may use for the set (program and DFA cache): enough for its DFA not to fall back to
  // the slower NFA.
  static constexpr std::int64_t kSetMaxMem = 64 << 20;

  struct Match {
    std::size_t intent = 0;  // index into the intents given to the constructor
    int priority = 0;
  };

  // Compiles the patterns of `intents`, which the loader has validated. Throws std::runtime_error
  // when RE2 rejects the set anyway (e.g. it exceeds RE2's memory budget).
  IntentMatcher(const std::vector<knowledge::Intent>& intents, Strategy strategy = Strategy::kSet);

  // Every intent with a matching pattern, best first (see the ordering above). Empty when nothing
  // matches. `state` is the dialogue state the message arrives in.
  std::vector<Match> MatchAll(std::string_view normalised, std::string_view state) const;
  // The same, for a caller that has matched the patterns on `normalised` already (PatternPass):
  // `hits` is what the set answered, in its order.
  std::vector<Match> MatchAll(std::string_view normalised, std::string_view state, std::vector<int> hits) const;

  // The patterns in the order of the set's indices (for a PatternPass); nullopt for kSequential,
  // which is meant to match one regex at a time.
  std::optional<std::vector<std::string>> SetPatterns() const;

  // `normalised` with the typos of report words corrected (see above); nullopt when there were
  // none. MatchAll uses it; public for tests and explain.
  std::optional<std::string> CorrectReportWords(std::string_view normalised) const;

 private:
  int PriorityIn(std::size_t intent, std::string_view state) const;
  void MatchPatterns(std::string_view text, std::vector<int>& patterns) const;
  std::optional<std::string_view> CorrectWord(std::string_view word) const;

  const std::vector<knowledge::Intent>* intents_;
  Strategy strategy_;
  std::unique_ptr<RE2::Set> set_;
  std::vector<std::unique_ptr<RE2>> sequential_;
  std::vector<std::size_t> pattern_intent_;  // pattern index -> intent index

  // Report-word correction: the targets, every target and each of its one-letter deletions ->
  // the targets it comes from, and the words any intent pattern names (never corrected). Both
  // are WordTables: a message word costs one HashWord for both look-ups of the word itself and
  // one per deletion, each nearly always one probe of a table that stays in cache.
  std::vector<std::string> targets_;
  // Rules out most words before the deletion index is asked (see OneEditGate in the .cpp).
  struct OneEditGate {
    static constexpr std::size_t kMaxLength = 32;  // longer words are one edit from no target
    using PairBits = std::bitset<26 * 26>;         // bit per letter pair "aa".."zz"
    std::array<PairBits, kMaxLength + 1> first_two, last_two;  // per word length
    void Add(std::string_view target);
    bool MayPass(std::string_view word) const;
  };
  OneEditGate gate_;
  WordTable<std::vector<std::uint32_t>> deletions_;
  WordTable<bool> known_;
};

}  // namespace backcheck::dialog
