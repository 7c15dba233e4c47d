// Concepts (issue 12, item 5): which lay words for which idea a message holds. The lexicon
// (concepts.jsonc) says, per concept, the terms people use ("BLOOD": blood, bleeding, bloody...);
// flags are rules over concepts found together (red_flags.jsonc `rules`, RedFlagDetector).
//
// Terms match on stems (dialog/text/stems.hpp): each term word is expanded at construction into
// the surface forms that share its stem, so a message word is one hash look-up; a word no table
// knows and the speller does not know as English (slang, a rare form) is stemmed on the spot.
// "*" in a term is any one word; "=word" is that form only. A term never spans punctuation.
//
// Idioms (concepts.jsonc `idioms`) are terms too: a concept mention that overlaps an idiom
// ("blood pressure", "took my breath away") is not a mention, unless it is a context concept
// (concepts.jsonc `context_concepts`: "arm day" cancels ARM, not the EXERTION it is).
//
// Immutable after construction; Find() is safe to call from many threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dialog/word_table.hpp"
#include "knowledge/knowledge_base.hpp"

namespace backcheck::dialog {

class Speller;

// One word or punctuation mark of normalised text.
struct TextToken {
  std::size_t begin, end;  // bytes
  bool punct;              // one of . , ; : ! ? -
  std::uint64_t hash;      // HashWord of the word (dialog/word_table.hpp): each table it is looked up in reuses it
};

// The tokens of normalised text: words split at spaces and at the punctuation above.
std::vector<TextToken> Tokenise(std::string_view normalised);
void Tokenise(std::string_view normalised, std::vector<TextToken>& out);  // into `out`, cleared first

struct ConceptMention {
  std::uint32_t id;       // index into RedFlagLexicon::concepts
  std::uint32_t term;     // index into that concept's terms
  std::uint32_t first, last;  // token indices, inclusive
};

struct IdiomMention {
  std::uint32_t idiom;  // index into RedFlagLexicon::idioms
  std::uint32_t first, last;
};

class ConceptMatcher {
 public:
  // `speller` (may be null) tells English words from others: only the others are stemmed at run
  // time. It must outlive the matcher.
  ConceptMatcher(const knowledge::RedFlagLexicon& lexicon, const Speller* speller);

  // Appends the concept mentions of `text` (tokens from Tokenise) that overlap no idiom, and the
  // idioms found (for explain); both in token order. Of one concept's terms starting at one
  // token only the longest is kept.
  void Find(std::string_view text, const std::vector<TextToken>& tokens, std::vector<ConceptMention>& concepts,
            std::vector<IdiomMention>* idioms = nullptr) const;

 private:
  static constexpr std::uint32_t kNoStem = 0xFFFFFFFF;
  static constexpr std::uint32_t kAnyWord = 0xFFFFFFFE;
  struct Term {
    std::vector<std::uint32_t> stems;  // kAnyWord for "*"
    std::uint32_t owner;               // concept index, or idiom index when `idiom`
    std::uint32_t index;               // term index within the concept
    bool idiom;
  };
  struct WordIds {
    std::uint32_t stem = kNoStem;   // the id of the word's stem, when some term has it
    std::uint32_t exact = kNoStem;  // the id of "=word", when some term names the word exactly
  };

  std::uint32_t InternStem(const std::string& stem);
  // Adds a term; its words' surface forms go to `surface` (built into forms_ at the end).
  void AddTerm(const std::string& text, std::uint32_t owner, std::uint32_t index, bool idiom,
               WordMap<WordIds>& surface);
  WordIds IdsOf(std::string_view word, std::uint64_t hash) const;  // hash: HashWord(word)

  const Speller* speller_;
  std::vector<bool> context_;  // per concept: a context concept, which idioms do not cancel
  WordMap<std::uint32_t> stems_;  // stem -> id ("=word" for a term word that matches only itself)
  WordTable<WordIds> forms_;      // the same, for look-ups (one hash per word of a message)
  // Per StemKey (dialog/text/stems.hpp): some term's stem starts so. A word whose key is not here cannot stem to a term's
  // stem, and skips the dictionary look-up and the stemmer (most words of most messages).
  std::vector<bool> stem_keys_;
  std::vector<Term> terms_;
  struct Start {
    std::uint32_t term;
    std::uint32_t second;  // the term's second word's stem id (kNoStem: one word; kAnyWord: "*")
  };
  // stem id -> the terms starting with it, longest first; the second word is kept here so that
  // most terms are ruled out without touching them ("cannot" starts 33).
  std::vector<Start> starts_;
  std::vector<std::uint32_t> start_offsets_;  // stem id s: starts_[start_offsets_[s], start_offsets_[s + 1])
};

}  // namespace backcheck::dialog
