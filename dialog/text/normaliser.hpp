// Text normalisation: what every matcher sees instead of the raw message.
//
// Three stages, in order:
//
// 1. Emoji and emoticons (dialog/text/emoji.hpp, data knowledge/data/emoji.jsonc), on the raw
//    message: a symptom emoji becomes its word ("fever🤒" -> "fever", "🥶" -> "shivering"),
//    decoration ("💀", "🔥", ":)", "xD") goes, any other emoji is cut out of the word it is glued
//    to. It runs first because the folding below keeps non-ASCII inside words.
// 2. Words: lower-cases ASCII, folds Unicode quotes, dashes and spaces to ASCII, splits
//    hyphenated words ("shoulder-blades" -> "shoulder blades"), expands contractions and fixes
//    common misspellings from the rewrite table (language.jsonc), and collapses whitespace.
//    Punctuation . , ; : ! ? is kept, attached to the word before it, because clause boundaries
//    matter to red-flag scoping; between two digits "." "," and "/" stay in the number ("38.5",
//    "38,5", "9/10"), and a "/" between two numbers stays as a word of its own ("9 / 10").
//    With a Speller (dialog/text/spelling.hpp), a word the rewrite table does not know and that
//    is no English word is then read as the domain word it is a typo of ("numbnss" ->
//    "numbness", "coghing" -> "coughing"), before the phrase rewrites, so those apply to
//    corrected words too. Words of URLs and e-mail addresses (a whitespace-delimited chunk with
//    "://", "www.", a "host.tld/" or a "name@host.tld") are not corrected.
// 3. Numbers and units (dialog/text/quantities.hpp, data knowledge/data/quantities.jsonc), on the
//    normalised words: a body-temperature reading becomes "high temperature" or "normal
//    temperature", a pain score of 7/10 or more "severe pain" ("temp 38.5" -> "temp high
//    temperature", "pain 9/10" -> "pain severe pain"). Its words are never spell-corrected: the
//    speller ran before it.
//
// Example: "I  can’t breath—and my Sholder-blades HURT! temp 101f 🤒"
//       -> "i cannot breathe - and my shoulder blades hurt! temp high temperature fever"
//
// Immutable after construction; Normalise() is safe to call from many threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dialog/text/emoji.hpp"
#include "dialog/text/quantities.hpp"
#include "dialog/text/spelling.hpp"
#include "dialog/word_table.hpp"
#include "knowledge/knowledge_base.hpp"

namespace backcheck::dialog {

class Normaliser {
 public:
  // `speller` may be null (or inactive): then misspellings are fixed from the table only. The
  // emoji and quantity stages take their tables from `language` (empty tables: no rewrites).
  explicit Normaliser(const knowledge::Language& language, std::shared_ptr<const Speller> speller = nullptr);

  std::string Normalise(std::string_view text) const;

  const Speller* speller() const { return speller_.get(); }

 private:
  std::string NormaliseWords(std::string_view text) const;  // stage 2

  struct Rewrite {
    std::vector<std::string> from;  // words, the first one is the map key
    std::vector<std::string> to;
  };
  struct Entry {
    bool has_single = false;
    std::vector<std::string> single;  // the word's own rewrite
    std::vector<Rewrite> phrases;     // phrases starting with the word, longest first
  };
  WordTable<Entry> rewrites_;  // one lookup per word serves both passes
  std::shared_ptr<const Speller> speller_;  // null when spelling correction is off
  EmojiRewriter emoji_;                     // stage 1
  QuantityRewriter quantities_;             // stage 3
};

}  // namespace backcheck::dialog
