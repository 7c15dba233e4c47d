#include "dialog/intent_matcher.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "dialog/text/spelling.hpp"

namespace backcheck::dialog {
namespace {

constexpr std::size_t kMinCorrected = 5;  // shorter words are left alone

bool AllLower(std::string_view w) {
  return !w.empty() && std::all_of(w.begin(), w.end(), [](char c) { return c >= 'a' && c <= 'z'; });
}

RE2::Options PatternOptions() {
  RE2::Options options;
  options.set_log_errors(false);
  // Normalised text is lower-case; patterns are written lower-case.
  options.set_max_mem(IntentMatcher::kSetMaxMem);
  return options;
}

// The index of the letter pair starting at `at` (two letters a-z).
std::size_t PairAt(std::string_view w, std::size_t at) {
  return static_cast<std::size_t>(w[at] - 'a') * 26 + static_cast<std::size_t>(w[at + 1] - 'a');
}

}  // namespace

// Why the gate is exact (it never rules out a word the deletion index would correct): a word one
// edit (insertion, deletion, substitution or transposition) from a target has a length within
// one of the target's, and either the edit lies past the first two letters of both, so they
// share their first two letters, or it lies within the first three, and what follows it is the
// same in both: at least two letters, since both have 5 or more, so they share their last two.
void IntentMatcher::OneEditGate::Add(std::string_view target) {
  const std::size_t m = target.size();
  for (std::size_t n = m - 1; n <= std::min(m + 1, kMaxLength); ++n) {
    first_two[n].set(PairAt(target, 0));
    last_two[n].set(PairAt(target, m - 2));
  }
}

bool IntentMatcher::OneEditGate::MayPass(std::string_view word) const {
  const std::size_t n = word.size();
  return n <= kMaxLength && (first_two[n].test(PairAt(word, 0)) || last_two[n].test(PairAt(word, n - 2)));
}

IntentMatcher::IntentMatcher(const std::vector<knowledge::Intent>& intents, Strategy strategy)
    : intents_(&intents), strategy_(strategy) {
  const RE2::Options options = PatternOptions();
  if (strategy_ == Strategy::kSet) set_ = std::make_unique<RE2::Set>(options, RE2::UNANCHORED);
  for (std::size_t i = 0; i < intents.size(); ++i) {
    for (const auto& pattern : intents[i].patterns) {
      std::string error;
      if (strategy_ == Strategy::kSet) {
        if (set_->Add(pattern, &error) < 0) {
          throw std::runtime_error("intent '" + intents[i].id + "': pattern rejected: " + error);
        }
      } else {
        auto re = std::make_unique<RE2>(pattern, options);
        if (!re->ok()) throw std::runtime_error("intent '" + intents[i].id + "': " + re->error());
        sequential_.push_back(std::move(re));
      }
      pattern_intent_.push_back(i);
    }
  }
  if (set_ && !set_->Compile()) throw std::runtime_error("intent patterns: RE2::Set failed to compile");

  // Report-word correction (see the header): targets from the report intents' patterns.
  SpellerWords all, report;
  for (const auto& intent : intents) {
    for (const auto& pattern : intent.patterns) {
      AddPatternWords(pattern, all);
      if (intent.kind == knowledge::IntentKind::kReport) AddPatternWords(pattern, report);
    }
  }
  WordMap<bool> known;  // while building
  for (const auto* list : {&all.vocabulary, &all.stems}) {
    for (const auto& w : *list) known.emplace(w, true);
  }
  known_.Build(known);
  std::vector<std::string> targets;
  for (const auto& w : report.vocabulary) {
    if (w.size() >= kMinCorrected && AllLower(w)) targets.push_back(w);
  }
  std::sort(targets.begin(), targets.end());
  targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
  targets_ = std::move(targets);
  for (const auto& t : targets_) gate_.Add(t);
  WordMap<std::vector<std::uint32_t>> deletions;  // while building
  for (std::uint32_t t = 0; t < targets_.size(); ++t) {
    const std::string& w = targets_[t];
    deletions[w].push_back(t);
    for (std::size_t i = 0; i < w.size(); ++i) {
      std::string d = w.substr(0, i) + w.substr(i + 1);
      auto& ids = deletions[d];
      if (ids.empty() || ids.back() != t) ids.push_back(t);
    }
  }
  deletions_.Build(deletions);
}

std::optional<std::string_view> IntentMatcher::CorrectWord(std::string_view word) const {
  if (word.size() < kMinCorrected || !AllLower(word) || !gate_.MayPass(word)) return std::nullopt;
  // Not asked of the English word lists: the normaliser's speller may already have read a typo
  // as a real word of the red-flag lexicon ("crampeed" -> "clamped"), which is then one edit
  // from the report word ("cramped").
  const std::uint64_t hash = HashWord(word);
  if (known_.Find(word, hash) != nullptr) return std::nullopt;
  const std::string* best = nullptr;
  auto consider = [&](std::string_view key, std::uint64_t key_hash) {
    const auto* ids = deletions_.Find(key, key_hash);
    if (ids == nullptr) return;
    for (std::uint32_t t : *ids) {
      const std::string& target = targets_[t];
      if (EditDistance(word, target, 1) > 1) continue;
      // One keeping the first letter first, then the first in byte order (targets_ is sorted).
      const bool keeps = target[0] == word[0];
      if (!best || (keeps && (*best)[0] != word[0]) || (keeps == ((*best)[0] == word[0]) && target < *best)) {
        best = &target;
      }
    }
  };
  consider(word, hash);  // a letter left out of the target, or an extra one ("crammping")
  std::string d;
  for (std::size_t i = 0; i < word.size(); ++i) {
    d.assign(word.substr(0, i));
    d.append(word.substr(i + 1));
    consider(d, HashWord(d));  // a letter too many, or one changed ("wreckrd")
  }
  if (!best) return std::nullopt;
  return std::string_view(*best);
}

std::optional<std::string> IntentMatcher::CorrectReportWords(std::string_view normalised) const {
  if (targets_.empty()) return std::nullopt;
  std::string out;
  bool changed = false;
  std::size_t i = 0;
  while (i < normalised.size()) {
    std::size_t j = i;
    while (j < normalised.size() && normalised[j] >= 'a' && normalised[j] <= 'z') ++j;
    if (j > i) {
      const std::string_view word = normalised.substr(i, j - i);
      // Only a whole word: letters between the start or a space and a space, punctuation or the end.
      const bool starts = i == 0 || normalised[i - 1] == ' ';
      const bool ends = j == normalised.size() || !std::isalnum(static_cast<unsigned char>(normalised[j]));
      std::optional<std::string_view> fix;
      if (starts && ends) fix = CorrectWord(word);
      if (fix) {
        if (!changed) out.assign(normalised.substr(0, i));
        changed = true;
        out.append(*fix);
      } else if (changed) {
        out.append(word);
      }
      i = j;
    } else {
      if (changed) out.push_back(normalised[i]);
      ++i;
    }
  }
  if (!changed) return std::nullopt;
  return out;
}

void IntentMatcher::MatchPatterns(std::string_view text, std::vector<int>& patterns) const {
  if (set_ && patterns.empty()) {
    set_->Match(text, &patterns);  // no copy: RE2 fills the vector it is given
  } else if (set_) {
    std::vector<int> found;
    set_->Match(text, &found);
    patterns.insert(patterns.end(), found.begin(), found.end());
  } else {
    for (std::size_t p = 0; p < sequential_.size(); ++p) {
      if (RE2::PartialMatch(text, *sequential_[p])) patterns.push_back(static_cast<int>(p));
    }
  }
}

int IntentMatcher::PriorityIn(std::size_t intent, std::string_view state) const {
  const auto& sp = (*intents_)[intent].state_priority;
  for (const auto& [name, priority] : sp) {
    if (name == state) return priority;
  }
  return (*intents_)[intent].priority;
}

std::optional<std::vector<std::string>> IntentMatcher::SetPatterns() const {
  if (!set_) return std::nullopt;
  std::vector<std::string> out;
  for (const auto& intent : *intents_) out.insert(out.end(), intent.patterns.begin(), intent.patterns.end());
  return out;
}

std::vector<IntentMatcher::Match> IntentMatcher::MatchAll(std::string_view normalised,
                                                          std::string_view state) const {
  std::vector<int> patterns;
  MatchPatterns(normalised, patterns);
  return MatchAll(normalised, state, std::move(patterns));
}

std::vector<IntentMatcher::Match> IntentMatcher::MatchAll(std::string_view normalised, std::string_view state,
                                                          std::vector<int> patterns) const {
  // The typo pass exists to find a report the typo hid; when one matched as written, it is moot.
  const bool report = std::any_of(patterns.begin(), patterns.end(), [&](int p) {
    return (*intents_)[pattern_intent_[static_cast<std::size_t>(p)]].kind == knowledge::IntentKind::kReport;
  });
  if (!report) {
    if (auto corrected = CorrectReportWords(normalised)) MatchPatterns(*corrected, patterns);
  }
  std::vector<Match> matches;
  for (int p : patterns) {
    std::size_t intent = pattern_intent_[static_cast<std::size_t>(p)];
    if (std::none_of(matches.begin(), matches.end(), [&](const Match& m) { return m.intent == intent; })) {
      matches.push_back(Match{intent, PriorityIn(intent, state)});
    }
  }
  std::sort(matches.begin(), matches.end(), [](const Match& a, const Match& b) {
    return a.priority != b.priority ? a.priority > b.priority : a.intent < b.intent;
  });
  return matches;
}

}  // namespace backcheck::dialog
