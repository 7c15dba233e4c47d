// Spelling that tolerates people (issue 12, item 1): a token that is not an English word is read
// as the word of the domain vocabulary it is a typo of, so that "numbnes", "tinglng" or "coghing"
// reach the red-flag detector as "numbness", "tingling" and "coughing".
//
// - The domain vocabulary (the correction targets) is every word of at least 4 letters that
//   occurs literally in the red-flag lexicon (red_flags.jsonc): the maximal runs of ASCII letters
//   of each pattern, `requires` and `except` source (a letter after a backslash is an escape, not
//   a letter), and the words of the cue phrases. Words a pattern spells out count too: a group of
//   letter alternatives after a run (`numb(ness|ed)?`: numbness, numbed, numb), an optional last
//   letter (`shocks?`: shocks, shock). A run the pattern goes on after otherwise (`cough\w*`,
//   `tingl\w*`) is a stem: the English words that begin with it and are at most 4 letters longer
//   are targets ("coughing", "tingling"), and the stem itself only when it is an English word
//   ("cough", not "tingl"). Letters after a group or quantifier ("ing" in `gett?ing`) are no word.
// - English words come from Debian's word lists `wamerican` and `wbritish`
//   (/usr/share/dict/american-english, british-english), lower-cased, possessive "'s" dropped and
//   other apostrophes removed (the normaliser removes them from tokens too: "didn't" -> "didnt").
//   A token that is an English word, a vocabulary word or a word of the other data (intents and
//   language.jsonc: "doms", "ohp") is never corrected: "numbers" stays, "breath" stays.
// - A token is corrected when it is within Damerau-Levenshtein distance 1 of a target, 2 when the
//   token has 7 letters or more (the optimal-string-alignment distance: an adjacent transposition
//   counts 1). Of several targets the one at the smaller distance wins; at equal distance one that
//   keeps the token's first letter, then the first in byte order ("card" before "cart").
// - A letter three or more times in a row is squeezed to two, then one: a target so found is the
//   answer ("bloood" -> "blood", "chilllls" -> "chills"), a known word means the word was drawn
//   out and it is left alone ("hiii", "sooo").
// - Tokens shorter than 4 letters, or with anything but a-z in them (digits, non-ASCII), are left
//   alone; the normaliser also leaves the words of URLs and e-mail addresses alone.
// - Look-up is SymSpell's: every deletion of up to 2 letters of every target is indexed (by its
//   64-bit hash, in an open-addressing table); a token's own deletions of up to its maximum
//   distance are looked up and each candidate verified with the true distance; the two-letter
//   deletions only when no target one edit away was found. Known words are one probe of a set of
//   64-bit hashes (a non-word passing for a word: odds of about 4e-15; it is then not corrected).
// - When a word list cannot be read the speller is inactive and corrects nothing: without telling
//   real words from typos it would guess.
//
// Immutable after construction; Correct() is safe to call from many threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "knowledge/knowledge_base.hpp"

namespace backcheck::dialog {

// Where the vocabulary and the never-corrected words come from.
struct SpellerWords {
  std::vector<std::string> vocabulary;  // whole words: correction targets
  std::vector<std::string> stems;       // the pattern went on after these (see above)
  std::vector<std::string> forms;       // targets only when English words (inflections of concept terms)
  std::vector<std::string> known;       // never corrected, never a target
  std::vector<std::string> context;     // words of context concepts (DomainWords adds them to known)
};

// Adds the ASCII letter runs of one RE2 pattern's source, lower-cased, of at least 4 letters, to
// `words` or (when the pattern goes on after the run) `stems`. `shocks?` adds "shocks" and "shock".
void AddPatternWords(std::string_view pattern, SpellerWords& out);

// The red-flag lexicon's words (vocabulary and stems), and the words of the intents' patterns and
// of language.jsonc as known words.
SpellerWords DomainWords(const knowledge::KnowledgeBase& kb);

// Damerau-Levenshtein distance (optimal string alignment) of `a` and `b`, or `max + 1` when it is
// larger than `max`.
int EditDistance(std::string_view a, std::string_view b, int max);

class Speller {
 public:
  // /usr/share/dict/american-english and /usr/share/dict/british-english.
  static std::vector<std::string> DefaultDictionaries();

  Speller(const SpellerWords& words, const std::vector<std::string>& dictionaries);

  // False when a dictionary could not be read: then Correct() corrects nothing.
  bool active() const { return active_; }
  const std::vector<std::string>& unreadable() const { return unreadable_; }

  // The vocabulary word `token` (lower-case) is a typo of, or nothing when it is a known word, too
  // short, not all a-z, or not close to any target. The view points into the speller.
  std::optional<std::string_view> Correct(std::string_view token) const;

  bool IsKnown(std::string_view token) const;   // an English, vocabulary or data word
  bool IsTarget(std::string_view word) const;   // a word tokens may be corrected into
  std::size_t targets() const { return targets_.size(); }

  // The most letters any deletion index entry removes, and the token lengths that use it.
  static constexpr int kMaxDistance = 2;
  static constexpr std::size_t kMinLetters = 4;     // shorter tokens are left alone
  static constexpr std::size_t kLongLetters = 7;    // tokens this long may be 2 edits away

 private:
  // An open-addressing set of words' 64-bit hashes (0: empty; one probe per look-up).
  static std::uint64_t Key(std::string_view word);
  void Reserve(std::size_t words);
  void Insert(std::string_view word);
  bool Contains(std::uint64_t key) const;
  struct StemSet {
    std::unordered_set<std::string_view> stems, prefixes;  // prefixes: the stems' first 4 letters
    std::size_t longest = 0;
    bool Continues(std::string_view word) const;
  };
  void LoadDictionary(std::string_view text, const StemSet& stems, std::vector<std::string>& continued);

  bool active_ = false;
  std::vector<std::string> unreadable_;
  std::vector<std::uint64_t> slots_;
  std::size_t used_ = 0;
  std::vector<std::string> targets_;  // sorted, unique
  // The deletion index: an open-addressing table from a deletion's hash to its run of target
  // ids in ids_ (count 0: empty).
  struct Bucket {
    std::uint64_t hash = 0;
    std::uint32_t begin = 0, count = 0;
  };
  std::vector<Bucket> buckets_;
  std::vector<std::uint32_t> ids_;
  std::size_t max_target_ = 0;  // letters of the longest target
};

}  // namespace backcheck::dialog
