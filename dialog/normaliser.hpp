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
  // Lets the maps be searched with a string_view, without building a std::string per word.
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  template <typename V>
  using WordMap = std::unordered_map<std::string, V, Hash, std::equal_to<>>;

  struct Entry {
    bool has_single = false;
    std::vector<std::string> single;  // the word's own rewrite
    std::vector<Rewrite> phrases;     // phrases starting with the word, longest first
  };
  WordMap<Entry> rewrites_;  // one lookup per word serves both passes
};

}  // namespace backcheck::dialog
