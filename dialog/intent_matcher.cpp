#include "dialog/intent_matcher.hpp"

#include <algorithm>
#include <stdexcept>

namespace backcheck::dialog {
namespace {

RE2::Options PatternOptions() {
  RE2::Options options;
  options.set_log_errors(false);
  // Normalised text is lower-case; patterns are written lower-case. 64 MiB lets a large set
  // compile its DFA without falling back to the slower NFA.
  options.set_max_mem(64 << 20);
  return options;
}

}  // namespace

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
}

int IntentMatcher::PriorityIn(std::size_t intent, std::string_view state) const {
  const auto& sp = (*intents_)[intent].state_priority;
  for (const auto& [name, priority] : sp) {
    if (name == state) return priority;
  }
  return (*intents_)[intent].priority;
}

std::vector<IntentMatcher::Match> IntentMatcher::MatchAll(std::string_view normalised,
                                                          std::string_view state) const {
  std::vector<int> patterns;
  if (set_) {
    set_->Match(normalised, &patterns);
  } else {
    for (std::size_t p = 0; p < sequential_.size(); ++p) {
      if (RE2::PartialMatch(normalised, *sequential_[p])) patterns.push_back(static_cast<int>(p));
    }
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
