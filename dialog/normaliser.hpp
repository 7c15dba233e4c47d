// Text normalisation: what every matcher sees instead of the raw message.
//
// Lower-cases ASCII, folds Unicode quotes, dashes and spaces to ASCII, splits hyphenated words
// ("shoulder-blades" -> "shoulder blades"), expands contractions and fixes common misspellings
// from the rewrite table (language.jsonc), and collapses whitespace. Punctuation . , ; : ! ? is
// kept, attached to the word before it, because clause boundaries matter to red-flag scoping.
//
// With a Speller (dialog/text/spelling.hpp), a word the rewrite table does not know and that is
// no English word is then read as the domain word it is a typo of ("numbnss" -> "numbness",
// "coghing" -> "coughing"), before the phrase rewrites, so those apply to corrected words too.
// Words of URLs and e-mail addresses (a whitespace-delimited chunk with "://", "www.", a
// "host.tld/" or a "name@host.tld") are not corrected.
//
// Example: "I  can’t breath—and my Sholder-blades HURT!" -> "i cannot breathe - and my shoulder blades hurt!"
//
// Immutable after construction; Normalise() is safe to call from many threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dialog/text/spelling.hpp"
#include "knowledge/knowledge_base.hpp"

namespace backcheck::dialog {

class Normaliser {
 public:
  // `speller` may be null (or inactive): then misspellings are fixed from the table only.
  explicit Normaliser(const knowledge::Language& language, std::shared_ptr<const Speller> speller = nullptr);

  std::string Normalise(std::string_view text) const;

  const Speller* speller() const { return speller_.get(); }

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
  std::shared_ptr<const Speller> speller_;  // null when spelling correction is off
};

}  // namespace backcheck::dialog
