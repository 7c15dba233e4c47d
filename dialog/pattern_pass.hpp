// One RE2::Set pass over a normalised message for the patterns of the intents, the red flags and
// the slots together.
//
// The interpreter asks all three of every message. Each has its own RE2::Set, and matching
// a set costs a scan of the message plus a fixed part (the DFA's set-up, the set of matches);
// one set of all the patterns scans the message once: 560 -> 250 ns a dev-set message. A
// pattern matches in a set whatever else the set holds, so the hits are the same as each set's
// own, and in the same order (checked over every message of the tests). When the pass cannot
// answer (its DFA ran out of memory), each set is asked on its own, as before.
//
// Immutable after construction; Match() is safe to call from many threads.
#pragma once

#include <re2/re2.h>
#include <re2/set.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace backcheck::dialog {

class PatternPass {
 public:
  // What each group's own set would answer: indices into the group's patterns.
  struct Hits {
    std::vector<int> intents, red_flags, slots;
  };

  // The patterns of each group, in the order of that group's own set. `max_mem`: what the three
  // sets may use together (program and DFA cache). When the patterns do not compile as one set,
  // active() is false.
  PatternPass(const std::vector<std::string>& intents, const std::vector<std::string>& red_flags,
              const std::vector<std::string>& slots, std::int64_t max_mem);

  bool active() const { return set_ != nullptr; }

  // Fills `hits` (cleared first). False when the pass could not answer (inactive, or its DFA ran
  // out of memory): the groups must then be matched on their own.
  bool Match(std::string_view text, Hits& hits) const;

 private:
  std::unique_ptr<RE2::Set> set_;
  int red_flags_begin_ = 0, slots_begin_ = 0;  // set index of each group's first pattern
};

}  // namespace backcheck::dialog
