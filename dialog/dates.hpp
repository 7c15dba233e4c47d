// Dates: how many hours ago "on monday", "last night" or "the day before yesterday" was, for the
// message's local time.
//
// The rules (the words themselves are data: language.jsonc "dates"):
//   - a weekday ("monday", "on monday", "last tuesday") is the most recent such day before today;
//     today's own name means a week ago unless a `this_words` word comes first ("this friday"
//     said on a Friday is today);
//   - a `days` phrase counts back from today ("yesterday" 1, "the day before yesterday" 2);
//   - "weekend" is the latest of the weekend days before today ("this weekend" may be today);
//   - a part of the day after any of these ("sunday morning", "yesterday evening") sets the local
//     hour; a `part_days` word before one ("last night", "this morning") names the day;
//   - without a part of the day, a date N days back is N * 24 hours; today is `today_hours`;
//   - a date in the future ("this evening" said in the morning) gives nothing;
//   - several dates in one message: the earliest wins (training comes before the pain it causes).
// Without the message's time, a weekday or the weekend gives nothing (it would be a guess); the
// phrases counting back from today still do: "yesterday" is 24, "last night" 24, "this morning"
// `today_hours`.
//
// Ownership: a DateResolver refers to the DateWords it was built from, which must outlive it.
// Immutable after construction; safe to use from many threads. Pure: never reads the clock.
#pragma once

#include <re2/re2.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "knowledge/knowledge_base.hpp"

namespace backcheck::dialog {

class DateResolver {
 public:
  // Throws std::runtime_error when the words do not make valid patterns (the loader has already
  // checked them, so in practice never).
  explicit DateResolver(const knowledge::Language::DateWords& words);

  // Hours from the date `normalised` names to `local_now` (the message's time on the person's
  // local clock), or nullopt when it names none or none can be resolved.
  std::optional<int> HoursSince(std::string_view normalised,
                                const std::optional<std::chrono::local_seconds>& local_now) const;

  // An RE2 pattern matching wherever HoursSince could find a date; for a caller's RE2::Set, so that
  // messages without one cost nothing more.
  const std::string& MentionPattern() const { return mention_; }

 private:
  // The date a phrase names: days before today, and the local hour when a part of the day is said.
  struct Named {
    int days = 0;
    std::optional<int> hour;
    bool needs_now = false;  // a weekday or the weekend: no figure without the message's time
  };
  std::optional<int> Hours(const Named& date, const std::optional<std::chrono::local_seconds>& local_now) const;
  std::optional<int> Part(const std::string& word) const;

  const knowledge::Language::DateWords* words_;
  std::string mention_;
  std::unique_ptr<RE2> weekday_;  // (this)? (weekday form) (part)?
  std::unique_ptr<RE2> day_;      // (days phrase) (part)?
  std::unique_ptr<RE2> part_;     // (part_days word) (part)
  std::unique_ptr<RE2> weekend_;  // (this)? (weekend word) (part)?
};

}  // namespace backcheck::dialog
