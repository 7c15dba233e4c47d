// Text normalisation: what every matcher sees instead of the raw message.
//
// Lower-cases ASCII, folds Unicode quotes, dashes and spaces to ASCII, splits hyphenated words
// ("shoulder-blades" -> "shoulder blades"), expands contractions and fixes common misspellings
// from the rewrite table (language.jsonc), and collapses whitespace. Punctuation . , ; : ! ? is
// kept, attached to the word before it, because clause boundaries matter to red-flag scoping.
//
// Example: "I  can’t breath—and my Sholder-blades HURT!" -> "i cannot breathe - and my shoulder blades hurt!"
//
// Immutable after construction; Normalise() is safe to call from many threads.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "knowledge/knowledge_base.hpp"

namespace backcheck::dialog {

class Normaliser {
 public:
  explicit Normaliser(const knowledge::Language& language);

  std::string Normalise(std::string_view text) const;

 private:
  struct Rewrite {
    std::vector<std::string> from;  // words, the first one is the map key
    std::vector<std::string> to;
  };
  std::unordered_map<std::string, std::vector<std::string>> single_;  // one word -> words
  // Multi-word phrases keyed by their first word; longer phrases first.
  std::unordered_map<std::string, std::vector<Rewrite>> phrases_;
};

}  // namespace backcheck::dialog
