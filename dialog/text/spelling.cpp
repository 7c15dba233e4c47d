#include "dialog/text/spelling.hpp"

#include "dialog/text/stems.hpp"
#include "dialog/word_table.hpp"
#include "dialog/words.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <unordered_set>

namespace backcheck::dialog {
namespace {

bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsAsciiLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Calls f(deletion) for each string made by deleting `from`..`to` letters of `word` (0: the word
// itself; repeats included: "aab" gives "ab" twice). Deletions shorter than `min_size` are
// skipped.
template <typename F>
void ForEachDeletion(std::string_view word, int from, int to, std::size_t min_size, F&& f) {
  std::array<char, 64> buf{};
  const std::size_t n = word.size();
  if (n > buf.size()) return;
  if (from <= 0 && to >= 0 && n >= min_size) f(word);
  if (from <= 1 && to >= 1 && n >= 1 && n - 1 >= min_size) {
    for (std::size_t i = 0; i < n; ++i) {
      std::size_t k = 0;
      for (std::size_t x = 0; x < n; ++x) {
        if (x != i) buf[k++] = word[x];
      }
      f(std::string_view(buf.data(), k));
    }
  }
  if (from <= 2 && to >= 2 && n >= 2 && n - 2 >= min_size) {
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = i + 1; j < n; ++j) {
        std::size_t k = 0;
        for (std::size_t x = 0; x < n; ++x) {
          if (x != i && x != j) buf[k++] = word[x];
        }
        f(std::string_view(buf.data(), k));
      }
    }
  }
}

void AddLetterRuns(std::string_view phrase, std::vector<std::string>& out) {
  std::size_t i = 0;
  while (i < phrase.size()) {
    if (!IsAsciiLetter(phrase[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    std::string run;
    while (j < phrase.size() && IsAsciiLetter(phrase[j])) run.push_back(Lower(phrase[j++]));
    if (run.size() >= Speller::kMinLetters) out.push_back(std::move(run));
    i = j;
  }
}

// Whether the letters starting at p[i] continue a word the pattern began before them.
bool ContinuesWord(std::string_view p, std::size_t i) {
  std::size_t k = i;
  if (k > 0 && p[k - 1] == '}') {  // a counted quantifier: {2} {0,3}
    std::size_t open = p.rfind('{', k - 1);
    if (open == std::string_view::npos) return false;
    k = open;
  } else if (k > 0 && (p[k - 1] == '?' || p[k - 1] == '*' || p[k - 1] == '+')) {
    --k;
  }
  if (k == 0) return false;
  const char c = p[k - 1];
  if (c == ']') return true;
  if (c == ')') return k >= 2 && p[k - 2] != ' ' && p[k - 2] != '|';
  if (IsAsciiLetter(c)) {
    if (k >= 2 && p[k - 2] == '\\') return c == 'w' || c == 'd';  // \b or \s: a boundary
    return true;
  }
  return false;
}

}  // namespace

void AddPatternWords(std::string_view p, SpellerWords& out) {
  const std::size_t n = p.size();
  std::size_t i = 0;
  // Open groups; true for one right after a letter, whose alternatives are suffixes of the run
  // before it ("numb(ness|ed)": "ness" is no word of its own).
  std::vector<bool> groups;
  bool after_letters = false;  // the last thing read was a run of literal letters
  auto in_suffix_group = [&] { return std::find(groups.begin(), groups.end(), true) != groups.end(); };
  auto add = [&](std::string word, bool stem) {
    if (word.size() < Speller::kMinLetters) return;
    (stem ? out.stems : out.vocabulary).push_back(std::move(word));
  };
  while (i < n) {
    const char c = p[i];
    if (c == '\\') {  // an escape: the letter after the backslash is not a letter of the text
      if (i + 2 < n && (p[i + 1] == 'p' || p[i + 1] == 'P' || p[i + 1] == 'x') && p[i + 2] == '{') {
        std::size_t close = p.find('}', i + 2);
        i = close == std::string_view::npos ? n : close + 1;
      } else {
        i += 2;
      }
      after_letters = false;
      continue;
    }
    if (c == '[') {  // a character class: its letters are not a word
      std::size_t j = i + 1;
      if (j < n && p[j] == '^') ++j;
      if (j < n && p[j] == ']') ++j;
      while (j < n && p[j] != ']') j += (p[j] == '\\') ? 2 : 1;
      i = j + 1;
      after_letters = false;
      continue;
    }
    if (!IsAsciiLetter(c)) {
      if (c == '(') groups.push_back(after_letters);
      if (c == ')' && !groups.empty()) groups.pop_back();
      after_letters = false;
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < n && IsAsciiLetter(p[j])) ++j;
    std::string run;
    for (std::size_t k = i; k < j; ++k) run.push_back(Lower(p[k]));
    // A run right after a letter with a quantifier ("gett?ing": "ing"), a class, \w or a group
    // that does not end in a space, or inside a group of suffixes, is the end of a word whose
    // start we cannot see; it is no word of its own.
    const bool fragment = ContinuesWord(p, i) || in_suffix_group();
    const char next = j < n ? p[j] : ' ';
    auto continues = [&](std::size_t k) {  // does the word go on at p[k]?
      return k < n && (IsAsciiLetter(p[k]) || p[k] == '(' || p[k] == '[' || (p[k] == '\\' && k + 1 < n && p[k + 1] == 'w'));
    };
    if (!fragment && next == '(') {
      // A group of letter alternatives spells its words out: "numb(ness|ed)?" is numbness,
      // numbed and numb.
      const std::size_t close = p.find(')', j);
      const std::string_view body = close == std::string_view::npos ? std::string_view() : p.substr(j + 1, close - j - 1);
      const bool letters = !body.empty() && std::all_of(body.begin(), body.end(), [](char x) {
        return IsAsciiLetter(x) || x == '|';
      });
      if (letters) {
        std::size_t after = close + 1;
        const bool optional = after < n && p[after] == '?';
        if (optional) ++after;
        const bool goes_on = continues(after);
        std::size_t a = 0;
        while (a <= body.size()) {
          std::size_t bar = body.find('|', a);
          if (bar == std::string_view::npos) bar = body.size();
          std::string word = run;
          for (char x : body.substr(a, bar - a)) word.push_back(Lower(x));
          add(std::move(word), goes_on);
          a = bar + 1;
        }
        if (optional) add(run, goes_on);
        i = j;  // the alternatives themselves are skipped as suffixes (the group stack)
        after_letters = true;
        continue;
      }
    }
    bool stem = next == '(' || next == '[' || next == '*' || next == '+' || next == '{' ||
                (next == '\\' && j + 1 < n && p[j + 1] == 'w');
    const bool optional_last = next == '?';
    if (optional_last && j + 1 < n && IsAsciiLetter(p[j + 1])) stem = true;  // the word goes on
    if (!fragment) {
      if (optional_last) {
        std::string shorter = run.substr(0, run.size() - 1);
        add(std::move(run), stem);
        add(std::move(shorter), stem);
      } else {
        add(std::move(run), stem);
      }
    }
    i = j;
    after_letters = true;
  }
}

SpellerWords DomainWords(const knowledge::KnowledgeBase& kb) {
  SpellerWords w;
  const auto& lex = kb.red_flags;
  for (const auto& flag : lex.flags) {
    for (const auto& p : flag.patterns) AddPatternWords(p, w);
    for (const auto& p : flag.except) AddPatternWords(p, w);
    for (const auto& p : flag.requires_) AddPatternWords(p, w);
  }
  const auto& c = lex.cues;
  for (const auto* list : {&c.negation, &c.pseudo_negation, &c.post_negation, &c.clause_breaks, &c.soft_breaks,
                           &c.subject_starts, &c.hypothetical, &c.concern, &c.definite, &c.question_starts,
                           &c.informational, &c.reported_speech, &c.first_person, &c.third_party, &c.past,
                           &c.continuing}) {
    for (const auto& phrase : *list) AddLetterRuns(phrase, w.vocabulary);
  }
  // Concept terms match on stems: a term word is a target, and so is each of its regular forms
  // that is an English word ("tingly"; not the stem "tingl").
  for (const auto& c2 : lex.concepts) {
    // A context concept's words are never targets, and never corrected ("knurling" stays).
    if (std::find(lex.context_concepts.begin(), lex.context_concepts.end(), c2.id) != lex.context_concepts.end()) {
      for (const auto& term : c2.terms) AddLetterRuns(term, w.context);
      continue;
    }
    for (const auto& term : c2.terms) {
      for (const auto& word : SplitWords(term)) {
        if (word[0] == '=') continue;  // an exact form is there for precision, not reach
        AddLetterRuns(word, w.vocabulary);
        for (const auto& form : Forms(word)) AddLetterRuns(form, w.forms);
      }
    }
  }
  // (Idioms are not targets: "vhest" is "chest", never the "vest" of "weight vest".)
  // The other data's words: what intents and slots recognise is never rewritten into a symptom.
  SpellerWords data;
  for (const auto& intent : kb.intents) {
    for (const auto& p : intent.patterns) AddPatternWords(p, data);
  }
  const auto& lang = kb.language;
  for (const auto& [from, to] : lang.rewrites) AddLetterRuns(to, data.vocabulary);
  for (const auto& e : lang.exercises) {
    AddLetterRuns(e.value, data.vocabulary);
    for (const auto& p : e.patterns) AddPatternWords(p, data);
  }
  for (const auto& q : lang.qualities) {
    AddLetterRuns(q.value, data.vocabulary);
    for (const auto& p : q.patterns) AddPatternWords(p, data);
  }
  for (const auto& t : lang.times) AddPatternWords(t.pattern, data);
  for (const auto& [word, value] : lang.numbers) AddLetterRuns(word, data.vocabulary);
  for (const auto& s : lang.stopwords) AddLetterRuns(s, data.vocabulary);
  w.known = std::move(data.vocabulary);
  w.known.insert(w.known.end(), std::make_move_iterator(data.stems.begin()),
                 std::make_move_iterator(data.stems.end()));
  w.known.insert(w.known.end(), w.context.begin(), w.context.end());
  return w;
}

int EditDistance(std::string_view a, std::string_view b, int max) {
  const int la = static_cast<int>(a.size()), lb = static_cast<int>(b.size());
  if (std::abs(la - lb) > max) return max + 1;
  if (la == 0 || lb == 0) return std::max(la, lb) <= max ? std::max(la, lb) : max + 1;
  std::array<int, 3 * 65> small;
  std::vector<int> large;
  int* rows = small.data();
  if (lb + 1 > 65) {
    large.resize(3 * static_cast<std::size_t>(lb + 1));
    rows = large.data();
  }
  int* prev2 = rows;
  int* prev = prev2 + lb + 1;
  int* cur = prev + lb + 1;
  for (int j = 0; j <= lb; ++j) prev[j] = j;
  for (int i = 1; i <= la; ++i) {
    cur[0] = i;
    int row_min = i;
    for (int j = 1; j <= lb; ++j) {
      const int cost = a[i - 1] == b[j - 1] ? 0 : 1;
      int v = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) v = std::min(v, prev2[j - 2] + 1);
      cur[j] = v;
      row_min = std::min(row_min, v);
    }
    if (row_min > max) return max + 1;
    int* t = prev2;
    prev2 = prev;
    prev = cur;
    cur = t;
  }
  return prev[lb] <= max ? prev[lb] : max + 1;
}

std::vector<std::string> Speller::DefaultDictionaries() {
  return {"/usr/share/dict/american-english", "/usr/share/dict/british-english"};
}

void Speller::Reserve(std::size_t words) {
  std::size_t cap = 1024;
  while (cap < words * 2) cap <<= 1;
  slots_.assign(cap, 0);
  used_ = 0;
}

// The set holds a word's 64-bit hash, not its letters: two words with one hash are one word to
// it. With ~80,000 words a token that is no word has a chance of about 4e-15 of passing for one
// (and then it is only not corrected); in return a look-up reads one 8-byte slot.
std::uint64_t Speller::Key(std::string_view word) {
  return HashWord(word);  // never 0: 0 marks an empty slot
}

void Speller::Insert(std::string_view word) {
  if (word.empty()) return;
  if ((used_ + 1) * 2 > slots_.size()) {  // keep the table at most half full
    std::vector<std::uint64_t> old = std::move(slots_);
    slots_.assign(std::max<std::size_t>(old.size() * 2, 1024), 0);
    const std::size_t mask = slots_.size() - 1;
    for (std::uint64_t key : old) {
      if (key == 0) continue;
      std::size_t k = key & mask;
      while (slots_[k] != 0) k = (k + 1) & mask;
      slots_[k] = key;
    }
  }
  const std::uint64_t key = Key(word);
  const std::size_t mask = slots_.size() - 1;
  std::size_t k = key & mask;
  while (slots_[k] != 0) {
    if (slots_[k] == key) return;
    k = (k + 1) & mask;
  }
  slots_[k] = key;
  ++used_;
}

bool Speller::Contains(std::uint64_t key) const {
  if (slots_.empty()) return false;
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t k = key & mask;; k = (k + 1) & mask) {
    if (slots_[k] == key) return true;
    if (slots_[k] == 0) return false;
  }
}

bool Speller::IsKnown(std::string_view token) const { return Contains(Key(token)); }

bool Speller::IsTarget(std::string_view word) const {
  return std::binary_search(targets_.begin(), targets_.end(), word,
                            [](std::string_view a, std::string_view b) { return a < b; });
}

// The whole of a word list, or nothing when it cannot be read or is empty.
std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad() || text.empty()) return std::nullopt;
  return text;
}

// One word a line. Lower-cased; a possessive "'s" dropped and other apostrophes removed; words
// with anything else than letters (accented ones) left out, since such tokens are never checked.
void Speller::LoadDictionary(std::string_view text, const StemSet& stems, std::vector<std::string>& continued) {
  std::array<char, 64> word{};
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t e = text.find('\n', i);
    if (e == std::string_view::npos) e = text.size();
    std::string_view line = text.substr(i, e - i);
    i = e + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > 2 && line.substr(line.size() - 2) == "'s") line.remove_suffix(2);
    if (line.size() > word.size()) continue;
    std::size_t n = 0;
    bool ok = true;
    for (char c : line) {
      if (c == '\'') continue;
      if (!IsAsciiLetter(c)) {
        ok = false;
        break;
      }
      word[n++] = Lower(c);
    }
    if (!ok || n == 0) continue;
    const std::string_view w(word.data(), n);
    Insert(w);
    if (stems.Continues(w)) continued.emplace_back(w);
  }
}

// Whether an English word continues a stem by at most 4 letters ("coughing": "cough").
bool Speller::StemSet::Continues(std::string_view w) const {
  if (w.size() < kMinLetters || !prefixes.count(w.substr(0, kMinLetters))) return false;
  for (std::size_t len = kMinLetters; len <= std::min(longest, w.size()); ++len) {
    if (w.size() <= len + 4 && stems.count(w.substr(0, len))) return true;
  }
  return false;
}

Speller::Speller(const SpellerWords& words, const std::vector<std::string>& dictionaries) {
  std::vector<std::string> texts;
  std::size_t lines = 0;
  for (const auto& path : dictionaries) {
    if (auto text = ReadFile(path)) {
      // The lists share most of their words: the longest one sizes the table (it grows if need be).
      lines = std::max(lines, static_cast<std::size_t>(std::count(text->begin(), text->end(), '\n')) + 1);
      texts.push_back(std::move(*text));
    } else {
      unreadable_.push_back(path);
    }
  }
  active_ = !dictionaries.empty() && unreadable_.empty();
  if (!active_) return;  // no guessing: without the word lists every token is left as it is

  Reserve(lines + words.vocabulary.size() + words.known.size() + 4096);
  // Targets: the vocabulary, the stems that are words, and the English words that continue a
  // stem by at most 4 letters.
  StemSet stems;
  for (const auto& st : words.stems) {
    stems.stems.insert(st);
    stems.prefixes.insert(std::string_view(st).substr(0, kMinLetters));
    stems.longest = std::max(stems.longest, st.size());
  }
  targets_ = words.vocabulary;
  for (const auto& t : texts) LoadDictionary(t, stems, targets_);
  texts.clear();
  for (const auto* list : {&words.stems, &words.forms}) {
    for (const auto& st : *list) {
      if (IsKnown(st)) targets_.push_back(st);  // only English words are in the set yet
    }
  }
  std::sort(targets_.begin(), targets_.end());
  targets_.erase(std::unique(targets_.begin(), targets_.end()), targets_.end());
  for (const auto& t : targets_) {
    Insert(t);
    max_target_ = std::max(max_target_, t.size());
  }
  for (const auto& k : words.known) Insert(k);

  // SymSpell's deletion index. A token of kMinLetters letters at distance 1 shares a deletion of
  // kMinLetters - 1 letters with its target, so shorter deletions are never looked up. Each
  // deletion's hash maps to a run of target ids in ids_.
  std::vector<std::pair<std::uint64_t, std::uint32_t>> deletes;
  for (std::uint32_t id = 0; id < targets_.size(); ++id) {
    ForEachDeletion(targets_[id], 0, kMaxDistance, kMinLetters - 1,
                    [&](std::string_view d) { deletes.emplace_back(HashWord(d), id); });
  }
  std::sort(deletes.begin(), deletes.end());
  deletes.erase(std::unique(deletes.begin(), deletes.end()), deletes.end());
  std::size_t groups = 0;
  for (std::size_t k = 0; k < deletes.size(); ++k) groups += (k == 0 || deletes[k].first != deletes[k - 1].first);
  std::size_t cap = 1024;
  while (cap < groups * 2) cap <<= 1;
  buckets_.assign(cap, Bucket{});
  ids_.reserve(deletes.size());
  for (std::size_t k = 0; k < deletes.size();) {
    const std::uint64_t dh = deletes[k].first;
    const auto begin = static_cast<std::uint32_t>(ids_.size());
    for (; k < deletes.size() && deletes[k].first == dh; ++k) ids_.push_back(deletes[k].second);
    std::size_t b = dh & (cap - 1);
    while (buckets_[b].count != 0) b = (b + 1) & (cap - 1);
    buckets_[b] = Bucket{dh, begin, static_cast<std::uint32_t>(ids_.size()) - begin};
  }
}

namespace {

// `target` is `token` with one letter of a doubled pair dropped ("weeak" -> "weak"): of two
// words equally close, the likelier reading, since a key pressed twice is a common slip.
bool DropsADoubledLetter(std::string_view token, std::string_view target) {
  if (token.size() != target.size() + 1) return false;
  for (std::size_t i = 0; i + 1 < token.size(); ++i) {
    if (token[i] == token[i + 1] && token.substr(0, i) == target.substr(0, i) &&
        token.substr(i + 1) == target.substr(i)) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::optional<std::string_view> Speller::Correct(std::string_view token) const {
  if (!active_ || token.size() < kMinLetters) return std::nullopt;
  bool triple = false;  // a letter three times in a row: drawn out ("hiii", "sooo") or a slip
  for (std::size_t k = 0; k < token.size(); ++k) {
    const char c = token[k];
    if (!IsLower(c)) return std::nullopt;  // digits, apostrophes, non-ASCII: left alone
    if (k >= 2 && c == token[k - 1] && c == token[k - 2]) triple = true;
  }
  // One hash, one probe: a real word (or one of ours) is never corrected.
  if (Contains(Key(token))) return std::nullopt;
  if (triple) {
    // Runs of 3+ letters squeezed to two, then to one: a target is the answer ("bloood",
    // "chilllls"); a known word means the word was drawn out ("hiii", "sooo"): left alone.
    for (std::size_t keep : {2, 1}) {
      std::string squeezed;
      for (std::size_t k = 0; k < token.size();) {
        std::size_t e = k;
        while (e < token.size() && token[e] == token[k]) ++e;
        squeezed.append(e - k >= 3 ? keep : e - k, token[k]);  // doubled letters stay doubled
        k = e;
      }
      auto t = std::lower_bound(targets_.begin(), targets_.end(), squeezed);
      if (t != targets_.end() && *t == squeezed) return std::string_view(*t);
      if (IsKnown(squeezed)) return std::nullopt;
    }
  }
  if (token.size() > max_target_ + kMaxDistance) return std::nullopt;

  const int max = token.size() >= kLongLetters ? 2 : 1;
  std::array<std::uint32_t, 64> seen{};
  std::size_t n_seen = 0;
  std::uint32_t best = 0;
  int best_distance = max + 1;
  bool best_first = false;
  bool tied = false;  // another target as close by every rule but byte order, of another word
  const std::size_t mask = buckets_.size() - 1;
  auto visit = [&](std::string_view d) {
    const std::uint64_t dh = HashWord(d);
    std::size_t b = dh & mask;
    while (buckets_[b].count != 0 && buckets_[b].hash != dh) b = (b + 1) & mask;
    const Bucket& bucket = buckets_[b];
    for (std::uint32_t x = bucket.begin; x < bucket.begin + bucket.count; ++x) {
      const std::uint32_t id = ids_[x];
      if (std::find(seen.begin(), seen.begin() + n_seen, id) != seen.begin() + n_seen) continue;
      if (n_seen < seen.size()) seen[n_seen++] = id;
      const std::string& target = targets_[id];
      const int distance = EditDistance(token, target, max);
      if (distance > max) continue;
      const bool first = target[0] == token[0];
      // Smaller distance, then keeping the first letter, then a letter missing or extra before a
      // letter mistyped ("feer" is "fever" before "feel", "numbb" is "numb" before "numbs"),
      // then the longer target (people drop letters more than they add them: "beath" is
      // "breath" before "bath"), then byte order (targets_ is sorted).
      auto gap = [&](std::size_t n) { return n > token.size() ? n - token.size() : token.size() - n; };
      const std::size_t best_size = best_distance > max ? 0 : targets_[best].size();
      const std::size_t g = gap(target.size()), best_g = best_distance > max ? 0 : gap(best_size);
      const bool same = distance == best_distance && first == best_first;
      const bool even = same && g == best_g && target.size() == best_size;  // only byte order left
      if (even) {
        // Two words equally close: a guess, unless one drops a doubled letter ("weeak" is "weak",
        // not "week"). Harmless between forms of one word ("numbs", "numbed"), not between words
        // of different meaning ("hirting": "hitting" or "hurting"?).
        const bool doubled = DropsADoubledLetter(token, target), best_doubled = DropsADoubledLetter(token, targets_[best]);
        if (doubled != best_doubled) {
          if (doubled) {
            best = id;
            tied = false;  // it wins over every even candidate before it
          }
        } else {
          if (targets_[best].compare(0, kMinLetters, target, 0, kMinLetters) != 0) tied = true;
          if (id < best) best = id;
        }
      } else if (distance < best_distance || (distance == best_distance && first && !best_first) ||
                 (same && g > best_g) || (same && g == best_g && target.size() > best_size)) {
        best = id;
        best_distance = distance;
        best_first = first;
        tied = false;
      }
    }
  };
  // Every target one edit away shares with the token a deletion of at most one letter of each,
  // so when the token's own deletions of one letter found one, two-letter deletions (the costly
  // part) cannot find a better one.
  ForEachDeletion(token, 0, 1, kMinLetters - 1, visit);
  if (max >= 2 && best_distance > 1) ForEachDeletion(token, 2, 2, kMinLetters - 1, visit);
  if (best_distance > max || tied) return std::nullopt;  // tied: left for the intent matcher to read
  return std::string_view(targets_[best]);
}

}  // namespace backcheck::dialog
