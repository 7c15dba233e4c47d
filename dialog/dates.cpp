#include "dialog/dates.hpp"

#include <algorithm>
#include <stdexcept>
#include <vector>

namespace backcheck::dialog {
namespace {

// "a|b c|d", longest first so that a phrase wins over a shorter one it starts with.
std::string Alternatives(std::vector<std::string> words) {
  std::sort(words.begin(), words.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() > b.size() : a < b;
  });
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += '|';
    out += RE2::QuoteMeta(w);
  }
  return out;
}

template <class Map>
std::vector<std::string> Keys(const Map& m) {
  std::vector<std::string> out;
  for (const auto& [k, v] : m) out.push_back(k);
  return out;
}

std::unique_ptr<RE2> Compile(const std::string& pattern) {
  RE2::Options options;
  options.set_log_errors(false);
  auto re = std::make_unique<RE2>(pattern, options);
  if (!re->ok()) throw std::runtime_error("date pattern '" + pattern + "': " + re->error());
  return re;
}

// Days back from `today` to the latest of `days` (0 Monday .. 6 Sunday) before it, or today when
// `today_allowed` and it is one of them.
int DaysBack(int today, const std::vector<int>& days, bool today_allowed) {
  int best = 8;
  for (int d : days) {
    int back = ((today - d) % 7 + 7) % 7;
    if (back == 0 && !today_allowed) back = 7;
    best = std::min(best, back);
  }
  return best;
}

}  // namespace

DateResolver::DateResolver(const knowledge::Language::DateWords& words) : words_(&words) {
  std::vector<std::string> forms;
  for (const auto& day : words.weekdays) forms.insert(forms.end(), day.begin(), day.end());
  const std::string weekday = Alternatives(forms);
  const std::string this_words = Alternatives(words.this_words);
  const std::string days = Alternatives(Keys(words.days));
  const std::string parts = Alternatives(Keys(words.day_parts));
  const std::string part_days = Alternatives(Keys(words.part_days));
  const std::string weekend = Alternatives(words.weekend_words);
  const std::string part = "(?: (" + parts + "))?\\b";
  weekday_ = Compile("\\b(?:(" + this_words + ") )?(" + weekday + ")\\b" + part);
  day_ = Compile("\\b(" + days + ")\\b" + part);
  part_ = Compile("\\b(" + part_days + ") (" + parts + ")\\b");
  weekend_ = Compile("\\b(?:(" + this_words + ") )?(" + weekend + ")\\b" + part);
  mention_ = "\\b(?:" + weekday + "|" + days + "|" + weekend + "|(?:" + part_days + ") (?:" + parts + "))\\b";
}

std::optional<int> DateResolver::Part(const std::string& word) const {
  if (word.empty()) return std::nullopt;
  auto it = words_->day_parts.find(word);
  if (it == words_->day_parts.end()) return std::nullopt;
  return it->second;
}

std::optional<int> DateResolver::Hours(const Named& date,
                                       const std::optional<std::chrono::local_seconds>& local_now) const {
  using namespace std::chrono;
  if (!local_now) {
    if (date.needs_now) return std::nullopt;
    return date.days == 0 ? words_->today_hours : date.days * 24;
  }
  if (!date.hour) return date.days == 0 ? words_->today_hours : date.days * 24;
  const auto today = floor<days>(*local_now);
  const auto then = today - days(date.days) + hours(*date.hour);
  const auto since = floor<minutes>(*local_now - then);
  if (since < minutes(0)) return std::nullopt;  // a time still to come
  return static_cast<int>(duration_cast<hours>(since).count());
}

std::optional<int> DateResolver::HoursSince(std::string_view normalised,
                                            const std::optional<std::chrono::local_seconds>& local_now) const {
  std::optional<int> today;  // 0 Monday .. 6 Sunday
  if (local_now) {
    const std::chrono::weekday wd{std::chrono::floor<std::chrono::days>(*local_now)};
    today = static_cast<int>(wd.iso_encoding()) - 1;
  }
  std::optional<int> best;
  auto consider = [&](const Named& date) {
    auto h = Hours(date, local_now);
    if (h && (!best || *h > *best)) best = h;
  };
  std::string first, second, third;
  re2::StringPiece in(normalised.data(), normalised.size());
  while (RE2::FindAndConsume(&in, *weekday_, &first, &second, &third)) {
    Named date{0, Part(third), true};
    if (today) {
      int index = 0;
      for (std::size_t i = 0; i < words_->weekdays.size(); ++i) {
        const auto& f = words_->weekdays[i];
        if (std::find(f.begin(), f.end(), second) != f.end()) index = static_cast<int>(i);
      }
      date.days = DaysBack(*today, {index}, !first.empty());
    }
    consider(date);
  }
  in = re2::StringPiece(normalised.data(), normalised.size());
  while (RE2::FindAndConsume(&in, *day_, &first, &second)) {
    consider(Named{words_->days.at(first), Part(second), false});
  }
  in = re2::StringPiece(normalised.data(), normalised.size());
  while (RE2::FindAndConsume(&in, *part_, &first, &second)) {
    consider(Named{words_->part_days.at(first), Part(second), false});
  }
  in = re2::StringPiece(normalised.data(), normalised.size());
  while (RE2::FindAndConsume(&in, *weekend_, &first, &second, &third)) {
    Named date{0, Part(third), true};
    if (today) date.days = DaysBack(*today, words_->weekend_days, !first.empty());
    consider(date);
  }
  return best;
}

}  // namespace backcheck::dialog
