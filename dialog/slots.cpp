#include "dialog/slots.hpp"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <stdexcept>

namespace backcheck::dialog {

SlotExtractor::SlotExtractor(const knowledge::Language& language)
    : language_(&language), dates_(language.dates) {
  RE2::Options options;
  options.set_log_errors(false);
  set_ = std::make_unique<RE2::Set>(options, RE2::UNANCHORED);
  auto add = [&](Kind kind, std::size_t index, const std::string& pattern) {
    std::string error;
    if (set_->Add(pattern, &error) < 0) throw std::runtime_error("slot pattern '" + pattern + "': " + error);
    entries_.push_back(Entry{kind, index, std::make_unique<RE2>(pattern, options)});
  };
  for (std::size_t i = 0; i < language.exercises.size(); ++i) {
    for (const auto& p : language.exercises[i].patterns) add(Kind::kExercise, i, p);
  }
  for (std::size_t i = 0; i < language.qualities.size(); ++i) {
    for (const auto& p : language.qualities[i].patterns) add(Kind::kQuality, i, p);
  }
  for (std::size_t i = 0; i < language.times.size(); ++i) add(Kind::kTime, i, language.times[i].pattern);
  add(Kind::kDate, 0, dates_.MentionPattern());
  // Not in the set: asked only of a message that names a time and no exercise (most name none).
  for (const auto& p : language.training_patterns) {
    training_.push_back(std::make_unique<RE2>(p, options));
    if (!training_.back()->ok()) throw std::runtime_error("training pattern '" + p + "': " + training_.back()->error());
  }
  if (!set_->Compile()) throw std::runtime_error("slot patterns: RE2::Set failed to compile");
}

MessageTime LocalNow() {
  const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm local{};
  localtime_r(&t, &local);
  return MessageTime{now, std::chrono::minutes(local.tm_gmtoff / 60)};
}

std::vector<std::string> SlotExtractor::SetPatterns() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e.re->pattern());
  return out;
}

bool SlotExtractor::Extract(std::string_view normalised, Slots& slots, const std::optional<MessageTime>& now,
                            bool training_asked) const {
  // One pass: a message with a slot is not scanned twice.
  std::vector<int> hits;
  set_->Match(normalised, &hits);
  return Extract(normalised, std::move(hits), slots, now, training_asked);
}

bool SlotExtractor::Extract(std::string_view normalised, std::vector<int> hits, Slots& slots,
                            const std::optional<MessageTime>& now, bool training_asked) const {
  if (hits.empty()) return false;
  std::sort(hits.begin(), hits.end());  // declaration order: the first entry of a kind wins
  // Training context: the question about it was asked, or an exercise is known and its time is
  // not ("sore after deadlifts" ... "it was two days ago").
  bool exercise = false, quality = false, time = false;
  bool training = training_asked || (!slots.exercise.empty() && !slots.hours);
  std::optional<int> fixed, dated;
  for (int h : hits) {
    const Entry& e = entries_[static_cast<std::size_t>(h)];
    switch (e.kind) {
      case Kind::kExercise:
        if (exercise) break;
        slots.exercise = language_->exercises[e.index].value;
        slots.exercise_category = language_->exercises[e.index].category;
        exercise = true;
        break;
      case Kind::kQuality:
        if (quality) break;
        slots.quality = language_->qualities[e.index].value;
        quality = true;
        break;
      case Kind::kTime: {
        if (time) break;
        const auto& t = language_->times[e.index];
        if (e.re->NumberOfCapturingGroups() == 0) {
          fixed = t.hours;
          time = true;
          break;
        }
        std::string number;
        if (!RE2::PartialMatch(normalised, *e.re, &number)) break;
        int n = 0;
        auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), n);
        if (ec != std::errc() || end != number.data() + number.size()) {
          auto it = language_->numbers.find(number);
          if (it == language_->numbers.end()) break;
          n = it->second;
        }
        fixed = n * t.hours;
        time = true;
        break;
      }
      case Kind::kDate: {
        std::optional<std::chrono::local_seconds> local;
        if (now) local = std::chrono::local_seconds{now->utc.time_since_epoch() + now->utc_offset};
        dated = dates_.HoursSince(normalised, local);
        break;
      }
    }
  }
  if ((fixed || dated) && !exercise && !training) {
    training = std::any_of(training_.begin(), training_.end(), [&](const auto& re) { return RE2::PartialMatch(normalised, *re); });
    if (!training) fixed = dated = std::nullopt;  // a time of the pain, not of training
  }
  if (fixed || dated) slots.hours = std::max(fixed.value_or(0), dated.value_or(0));
  return exercise || quality || fixed || dated;
}

}  // namespace backcheck::dialog
