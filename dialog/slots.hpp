// Slots: what the conversation remembers about the person's training, pulled from their words.
#pragma once

#include <re2/re2.h>
#include <re2/set.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dialog/dates.hpp"
#include "knowledge/knowledge_base.hpp"

namespace backcheck::dialog {

struct Slots {
  std::optional<int> hours;       // hours since training: "yesterday" -> 24, "3 days ago" -> 72
  std::string exercise;           // "rows", "overhead press", "deadlifts"...
  std::string exercise_category;  // "pull", "overhead", "hinge"...
  std::string quality;            // "ache", "sharp", "burning"

  bool operator==(const Slots&) const = default;
};

// When a message was written: the UTC instant and the offset of the person's (in practice the
// server's) local time, so that "on monday" or "last night" can be resolved to hours since.
struct MessageTime {
  std::chrono::sys_seconds utc;
  std::chrono::minutes utc_offset{0};
};

// This machine's clock and local time zone now.
MessageTime LocalNow();

// Extracts slots with the vocabularies of language.jsonc. Immutable after construction; safe to
// use from many threads.
class SlotExtractor {
 public:
  explicit SlotExtractor(const knowledge::Language& language);

  // Sets the slots `normalised` mentions, leaving the others as they are. Returns true when it
  // set at least one. The first matching entry of each vocabulary wins, except for the hours:
  // a fixed `times` figure ("2 days ago") and a date (dialog/dates.hpp: "on monday", "last
  // night") may both be named, and the longer ago wins (training comes before the pain).
  // `now` (when known) resolves dates against the message's local time; without it a weekday or
  // the weekend sets no hours. The hours are set only from a message that speaks of training (an
  // exercise, or a word of language.jsonc "training"), when `training_asked` (the message
  // answers "when did you train?"), or when `slots` has an exercise but no hours yet: "it
  // started hurting this morning", said before any of that, dates the pain.
  bool Extract(std::string_view normalised, Slots& slots, const std::optional<MessageTime>& now = std::nullopt,
               bool training_asked = false) const;
  // The same, for a caller that has matched the patterns on `normalised` already (PatternPass):
  // `hits` is what the set answered.
  bool Extract(std::string_view normalised, std::vector<int> hits, Slots& slots,
               const std::optional<MessageTime>& now, bool training_asked) const;

  // The patterns in the order of the set's indices (for a PatternPass).
  std::vector<std::string> SetPatterns() const;

 private:
  enum class Kind { kExercise, kQuality, kTime, kDate };
  struct Entry {
    Kind kind;
    std::size_t index;  // into the vocabulary of its kind
    std::unique_ptr<RE2> re;
  };
  std::vector<std::unique_ptr<RE2>> training_;  // language.jsonc "training"
  const knowledge::Language* language_;
  DateResolver dates_;
  std::unique_ptr<RE2::Set> set_;
  std::vector<Entry> entries_;  // set index -> entry
};

}  // namespace backcheck::dialog
