// Numbers and units -> words (issue 12, item 3): the normaliser's last stage, on normalised text.
// A body-temperature reading becomes "high temperature" (at or above 38.0 °C / 100.4 °F) or
// "normal temperature", a pain score of 7 or more becomes "severe pain" (1-3: "mild pain"), so
// that the red-flag detector, which reads words, reads them:
//   "my temp is 101.5"        -> "my temp is high temperature"
//   "thermometer says 37.2c"  -> "thermometer says normal temperature"
//   "pain is 9/10 rn"         -> "pain is severe pain rn"
//   "did 38 reps at 39 years old, 1/2 hour, on 9/10/2026" -> unchanged
// What counts as a reading or a score (units, cue words, thresholds, ranges, exclusions) is data:
// knowledge/data/quantities.jsonc, whose header comment gives the rules. Durations and weights
// are left alone.
//
// Text is read as words separated by single spaces, each maybe ending in punctuation (". , ; ! ?"
// end a clause, ":" does not), as the normaliser writes it. Cost: a message without a digit (and
// without the first word of an "out of" phrase, for "ten out of ten") is not looked at further;
// otherwise one pass over its words; the text is copied only when something is rewritten.
// Immutable after construction; Rewrite() is safe to call from many threads.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "knowledge/text_stages.hpp"

namespace backcheck::dialog {

class QuantityRewriter {
 public:
  QuantityRewriter() = default;  // rewrites nothing
  explicit QuantityRewriter(knowledge::QuantityTable table);

  // Writes the rewritten text to `out` and returns true, or returns false when nothing is
  // rewritten (then `out` is untouched).
  bool Rewrite(std::string_view text, std::string& out) const;
  std::string Apply(std::string_view text) const;

 private:
  struct Token {
    std::string_view core;   // the word without its trailing punctuation
    std::string_view punct;  // the trailing punctuation, maybe empty
    bool ends_clause = false;
  };
  struct Match {
    std::size_t first, last;  // the tokens replaced
    const std::string* words;
  };
  std::optional<Match> Temperature(const std::vector<Token>& t, std::size_t n) const;
  std::optional<Match> PainScore(const std::vector<Token>& t, std::size_t n) const;
  std::optional<double> NumberWord(std::string_view w) const;
  const std::string* Band(double score) const;
  bool InList(const std::vector<std::string>& list, std::string_view w) const;
  // The tokens from `at` spell `phrase` (and none but the last ends the clause).
  static bool PhraseAt(const std::vector<Token>& t, std::size_t at, const std::vector<std::string>& phrase);

  struct Unit {
    std::vector<std::string> words;  // "degrees", "celsius"
    char scale;
  };
  knowledge::QuantityTable table_;
  std::vector<Unit> units_;  // longest first
  std::vector<std::pair<std::string, int>> number_words_;
  bool active_ = false;
  std::vector<std::string> precheck_words_;  // first words of "out of" phrases
  std::vector<std::string> precheck_prefixes_;  // those none of the others is a prefix of
};

}  // namespace backcheck::dialog
