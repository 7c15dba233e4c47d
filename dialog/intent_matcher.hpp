// Intent matching: every intent pattern matched against a normalised message in one pass.
//
// All patterns of all intents are compiled into one RE2::Set, so the cost of a match grows with
// the length of the message, not with the number of patterns. When several intents match, the
// one with the highest priority in the current dialogue state wins (intents.jsonc `priority`,
// overridden per state by `state_priority`); ties go to the intent declared first.
//
// Immutable after construction; Match() is safe to call from many threads.
#pragma once

#include <re2/re2.h>
#include <re2/set.h>

#include <memory>
#include <string_view>
#include <vector>

#include "knowledge/knowledge_base.hpp"

namespace backcheck::dialog {

class IntentMatcher {
 public:
  // kSet matches all patterns in one RE2::Set pass. kSequential tries the patterns one regex at a
  // time; it gives the same answers and exists so the benchmark can show what the set buys.
  enum class Strategy { kSet, kSequential };

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

 private:
  int PriorityIn(std::size_t intent, std::string_view state) const;

  const std::vector<knowledge::Intent>* intents_;
  Strategy strategy_;
  std::unique_ptr<RE2::Set> set_;
  std::vector<std::unique_ptr<RE2>> sequential_;
  std::vector<std::size_t> pattern_intent_;  // pattern index -> intent index
};

}  // namespace backcheck::dialog
