#include "dialog/text/stems.hpp"

#include <libstemmer.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace backcheck::dialog {
namespace {

struct StemmerDeleter {
  void operator()(sb_stemmer* s) const { sb_stemmer_delete(s); }
};

sb_stemmer* ThreadStemmer() {
  // libstemmer keeps its working buffer in the stemmer object: one per thread.
  thread_local std::unique_ptr<sb_stemmer, StemmerDeleter> stemmer(sb_stemmer_new("english", "UTF_8"));
  return stemmer.get();
}

bool IsLowerAscii(std::string_view w) {
  return !w.empty() && std::all_of(w.begin(), w.end(), [](char c) { return c >= 'a' && c <= 'z'; });
}

bool IsVowel(char c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

}  // namespace

std::string Stem(std::string_view word) {
  if (!IsLowerAscii(word)) return std::string(word);
  sb_stemmer* s = ThreadStemmer();
  if (s == nullptr) return std::string(word);  // out of memory: exact matching still works
  const sb_symbol* out = sb_stemmer_stem(s, reinterpret_cast<const sb_symbol*>(word.data()),
                                         static_cast<int>(word.size()));
  if (out == nullptr) return std::string(word);
  return std::string(reinterpret_cast<const char*>(out), static_cast<std::size_t>(sb_stemmer_length(s)));
}

namespace {

std::vector<std::string> ComputeForms(std::string_view word);

}  // namespace

std::vector<std::string> Forms(std::string_view word) {
  // Each lexicon word is expanded by the speller's domain words and by the concept matcher, and
  // many words recur across terms; a stemmer call per candidate form made this half the start-up.
  // The memo is bounded (it holds lexicon words only, a few thousand; cleared if ever larger).
  static std::mutex mutex;
  static std::unordered_map<std::string, std::vector<std::string>> memo;
  constexpr std::size_t kMaxMemo = 50000;
  {
    std::lock_guard lock(mutex);
    if (auto it = memo.find(std::string(word)); it != memo.end()) return it->second;
  }
  std::vector<std::string> forms = ComputeForms(word);
  std::lock_guard lock(mutex);
  if (memo.size() >= kMaxMemo) memo.clear();
  memo.emplace(std::string(word), forms);
  return forms;
}

namespace {

std::vector<std::string> ComputeForms(std::string_view word) {
  std::vector<std::string> out{std::string(word)};
  if (!IsLowerAscii(word)) return out;
  static constexpr std::string_view kSuffixes[] = {"s", "es", "ed", "d", "ing", "er", "ers", "y", "ly", "ness", "ier",
                                                   "iest", "ily", "iness", "ies", "ied", "e", "ings"};
  const std::string stem = Stem(word);
  std::vector<std::string> bases{std::string(word), stem};
  auto add_base = [&](std::string b) {
    if (!b.empty() && std::find(bases.begin(), bases.end(), b) == bases.end()) bases.push_back(std::move(b));
  };
  for (std::size_t i = 0, n = bases.size(); i < n; ++i) {
    const std::string b = bases[i];
    if (b.size() > 2 && (b.back() == 'e' || b.back() == 'y' || b.back() == 'i')) add_base(b.substr(0, b.size() - 1));
    // A doubled final consonant after a short vowel: "throb" -> "throbb(ing)".
    if (b.size() >= 3 && !IsVowel(b.back()) && IsVowel(b[b.size() - 2]) && !IsVowel(b[b.size() - 3]) &&
        b.back() != 'w' && b.back() != 'x' && b.back() != 'y') {
      add_base(b + b.back());
    }
  }
  // "-le" verbs make "-ly" adjectives whose stem differs (tingle/tingly, prickle/prickly).
  if (word.size() > 3 && word.substr(word.size() - 2) == "le") {
    out.push_back(std::string(word.substr(0, word.size() - 1)) + "y");
  }
  for (const auto& b : bases) {
    for (std::string_view suffix : kSuffixes) {
      std::string form = b + std::string(suffix);
      if (std::find(out.begin(), out.end(), form) == out.end() && Stem(form) == stem) out.push_back(std::move(form));
    }
    if (b != word && std::find(out.begin(), out.end(), b) == out.end() && Stem(b) == stem) out.push_back(b);
  }
  return out;
}

}  // namespace

std::size_t StemKey(std::string_view word) {
  std::size_t key = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    char c = i < word.size() ? word[i] : '\0';
    if (c == 'y') c = 'i';
    key = key * 27 + (c >= 'a' && c <= 'z' ? static_cast<std::size_t>(c - 'a' + 1) : 0);
  }
  return key;
}

bool StemsOutsideItsKey(std::string_view word) { return word == "dying" || word == "lying" || word == "tying"; }

}  // namespace backcheck::dialog
