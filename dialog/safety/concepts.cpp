#include "dialog/safety/concepts.hpp"

#include <algorithm>
#include <cstring>

#include "dialog/text/spelling.hpp"
#include "dialog/text/stems.hpp"
#include "dialog/words.hpp"

namespace backcheck::dialog {
namespace {

bool IsPunct(char c) { return c == '.' || c == ',' || c == ';' || c == ':' || c == '!' || c == '?' || c == '-'; }

}  // namespace

std::vector<TextToken> Tokenise(std::string_view text) {
  std::vector<TextToken> tokens;
  Tokenise(text, tokens);
  return tokens;
}

void Tokenise(std::string_view text, std::vector<TextToken>& tokens) {
  tokens.clear();
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] == ' ') {
      ++i;
    } else if (IsPunct(text[i])) {
      tokens.push_back(TextToken{i, i + 1, true, HashWord(text.substr(i, 1))});
      ++i;
    } else {
      std::size_t j = i;
      while (j < text.size() && text[j] != ' ' && !IsPunct(text[j])) ++j;
      tokens.push_back(TextToken{i, j, false, HashWord(text.substr(i, j - i))});
      i = j;
    }
  }
}

std::uint32_t ConceptMatcher::InternStem(const std::string& stem) {
  auto [it, added] = stems_.try_emplace(stem, static_cast<std::uint32_t>(stems_.size()));
  return it->second;
}

void ConceptMatcher::AddTerm(const std::string& text, std::uint32_t owner, std::uint32_t index, bool idiom,
                             WordMap<WordIds>& surface) {
  Term term{{}, owner, index, idiom};
  for (const auto& word : SplitWords(text)) {
    if (word == "*") {
      term.stems.push_back(kAnyWord);
      continue;
    }
    if (word.size() > 1 && word[0] == '=') {
      const std::uint32_t id = InternStem(word);
      surface[word.substr(1)].exact = id;
      term.stems.push_back(id);
      continue;
    }
    const std::uint32_t id = InternStem(Stem(word));
    for (auto& form : Forms(word)) {
      WordIds& ids = surface[std::move(form)];
      if (ids.stem == kNoStem) ids.stem = id;
    }
    term.stems.push_back(id);
  }
  if (term.stems.empty()) return;
  terms_.push_back(std::move(term));
}

ConceptMatcher::ConceptMatcher(const knowledge::RedFlagLexicon& lexicon, const Speller* speller) : speller_(speller) {
  for (const auto& c : lexicon.concepts) {
    const auto& ctx = lexicon.context_concepts;
    context_.push_back(std::find(ctx.begin(), ctx.end(), c.id) != ctx.end());
  }
  WordMap<WordIds> surface;  // surface form -> its ids, while building
  for (std::size_t c = 0; c < lexicon.concepts.size(); ++c) {
    const auto& terms = lexicon.concepts[c].terms;
    for (std::size_t t = 0; t < terms.size(); ++t) {
      AddTerm(terms[t], static_cast<std::uint32_t>(c), static_cast<std::uint32_t>(t), false, surface);
    }
  }
  for (std::size_t i = 0; i < lexicon.idioms.size(); ++i) {
    AddTerm(lexicon.idioms[i], static_cast<std::uint32_t>(i), 0, true, surface);
  }
  forms_.Build(surface);
  stem_keys_.assign(kStemKeys, false);
  for (const auto& [stem, id] : stems_) {
    if (stem.empty() || stem[0] == '=') continue;  // exact words are found through forms_ only
    // A stem of one or two bytes is the start of every key that begins with it, and so is the
    // two-byte start of a three-byte stem ending in 'e' ("aging" -> "age": see StemKey).
    const bool short_e = stem.size() == 3 && stem[2] == 'e';
    const std::size_t base = StemKey(short_e ? stem.substr(0, 2) : stem);
    const std::size_t span = stem.size() >= 3 && !short_e ? 1 : stem.size() == 1 ? 27 * 27 : 27;
    for (std::size_t k = 0; k < span; ++k) stem_keys_[base + k] = true;
  }
  // Terms by their first word's stem, longest first, in one array (stem id -> its range).
  std::vector<std::vector<Start>> by_stem(stems_.size());
  for (std::uint32_t t = 0; t < terms_.size(); ++t) {
    const auto& stems = terms_[t].stems;
    by_stem[stems.front()].push_back(Start{t, stems.size() > 1 ? stems[1] : kNoStem});
  }
  start_offsets_.push_back(0);
  for (auto& list : by_stem) {
    std::stable_sort(list.begin(), list.end(), [&](const Start& a, const Start& b) {
      return terms_[a.term].stems.size() > terms_[b.term].stems.size();
    });
    starts_.insert(starts_.end(), list.begin(), list.end());
    start_offsets_.push_back(static_cast<std::uint32_t>(starts_.size()));
  }
}

ConceptMatcher::WordIds ConceptMatcher::IdsOf(std::string_view word, std::uint64_t hash) const {
  if (const WordIds* ids = forms_.Find(word, hash)) return *ids;
  // An English word with no entry has a stem no term has (every regular form of every term word
  // is in forms_); a number neither, nor a word that starts unlike every term's stem. Anything
  // else (slang, an unusual form) is stemmed now.
  if (word.size() < 4 || (word[0] >= '0' && word[0] <= '9')) return {};
  if (!stem_keys_[StemKey(word)] && !StemsOutsideItsKey(word)) return {};
  if (speller_ != nullptr && speller_->IsKnown(word)) return {};
  if (auto it = stems_.find(Stem(word)); it != stems_.end()) return {it->second, kNoStem};
  return {};
}

void ConceptMatcher::Find(std::string_view text, const std::vector<TextToken>& tokens,
                          std::vector<ConceptMention>& concepts, std::vector<IdiomMention>* idioms_out) const {
  // Per word: its stem's id and, for a word some term names exactly, that id too. Scratch space
  // is kept per thread: this runs for every message.
  thread_local std::vector<WordIds> scratch;
  std::vector<WordIds>& ids = scratch;
  ids.assign(tokens.size(), WordIds{});
  bool any = false;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].punct) continue;
    ids[i] = IdsOf(text.substr(tokens[i].begin, tokens[i].end - tokens[i].begin), tokens[i].hash);
    any |= ids[i].stem != kNoStem || ids[i].exact != kNoStem;
  }
  if (!any) return;
  auto is = [&](std::uint32_t id, std::size_t at) { return id == ids[at].stem || (id == ids[at].exact && id != kNoStem); };

  const std::size_t first_new = concepts.size();
  std::vector<IdiomMention> idioms;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    for (std::uint32_t start : {ids[i].stem, ids[i].exact}) {
    if (start == kNoStem) continue;
    for (std::uint32_t n = start_offsets_[start]; n < start_offsets_[start + 1]; ++n) {
      const Start& st = starts_[n];
      if (st.second != kNoStem && st.second != kAnyWord &&
          (i + 1 >= tokens.size() || tokens[i + 1].punct || !is(st.second, i + 1))) {
        continue;
      }
      const Term& term = terms_[st.term];
      if (i + term.stems.size() > tokens.size()) continue;
      bool match = true;
      for (std::size_t k = 1; k < term.stems.size() && match; ++k) {
        const std::size_t at = i + k;
        match = !tokens[at].punct && (term.stems[k] == kAnyWord || is(term.stems[k], at));
      }
      if (!match) continue;
      const auto first = static_cast<std::uint32_t>(i);
      const auto last = static_cast<std::uint32_t>(i + term.stems.size() - 1);
      if (term.idiom) {
        idioms.push_back(IdiomMention{term.owner, first, last});
        continue;
      }
      // Terms are longest first: a shorter term of the same concept here adds nothing.
      const bool seen = std::any_of(concepts.begin() + static_cast<std::ptrdiff_t>(first_new), concepts.end(),
                                    [&](const ConceptMention& m) { return m.id == term.owner && m.first == first; });
      if (!seen) concepts.push_back(ConceptMention{term.owner, term.index, first, last});
    }
    }
  }
  if (!idioms.empty()) {
    concepts.erase(std::remove_if(concepts.begin() + static_cast<std::ptrdiff_t>(first_new), concepts.end(),
                                  [&](const ConceptMention& m) {
                                    if (context_[m.id]) return false;
                                    return std::any_of(idioms.begin(), idioms.end(), [&](const IdiomMention& d) {
                                      return m.first <= d.last && d.first <= m.last;
                                    });
                                  }),
                   concepts.end());
  }
  if (idioms_out) idioms_out->insert(idioms_out->end(), idioms.begin(), idioms.end());
}

}  // namespace backcheck::dialog
