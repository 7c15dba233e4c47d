// Dates resolved against the message's local time (dialog/dates.hpp): weekdays, days counted back
// from today, parts of the day, the weekend; and what is left unknown without the time. The
// hours of the parts of the day and "today_hours" are read from the loaded words, not copied.
#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <string>

#include "dialog/dates.hpp"
#include "dialog/slots.hpp"
#include "test_support.hpp"

using backcheck::dialog::DateResolver;
using backcheck::dialog::MessageTime;
using backcheck::dialog::SlotExtractor;
using backcheck::dialog::Slots;
using backcheck::test::TestEngine;
using namespace std::chrono;

namespace {

const auto& Words() { return TestEngine().kb().language.dates; }

const DateResolver& Resolver() {
  static DateResolver resolver(Words());
  return resolver;
}

// 2026-11-30 is a Monday: Day(0) is Monday, Day(3) Thursday, Day(6) Sunday, Day(7) the next Monday.
local_seconds Day(int n, int hour = 18, int minute = 0) {
  return local_days{year{2026} / November / 30} + days(n) + hours(hour) + minutes(minute);
}

std::optional<int> At(const std::string& text, std::optional<local_seconds> now) {
  return Resolver().HoursSince(TestEngine().normaliser().Normalise(text), now);
}

int Part(const char* name) { return Words().day_parts.at(name); }

}  // namespace

TEST_CASE("a weekday is the most recent such day before today", "[dates]") {
  CHECK(At("on monday", Day(1)) == 24);   // said on Tuesday
  CHECK(At("on monday", Day(2)) == 48);   // Wednesday
  CHECK(At("on monday", Day(3)) == 72);   // Thursday
  CHECK(At("on monday", Day(6)) == 144);  // Sunday
  CHECK(At("Monday", Day(4)) == 96);
  CHECK(At("last tuesday", Day(3)) == 48);
  CHECK(At("I did rows on Sunday and it still hurts", Day(3)) == 96);
  CHECK(At("since spin on thurs", Day(5)) == 48);  // short forms
  CHECK(At("friday", Day(0)) == 72);                // across the week's start
}

TEST_CASE("today's own weekday name is a week ago unless 'this'", "[dates]") {
  CHECK(At("on monday", Day(7)) == 168);
  CHECK(At("last monday", Day(7)) == 168);
  CHECK(At("this monday", Day(7)) == Words().today_hours);
  CHECK(At("this monday morning", Day(7, 18)) == 18 - Part("morning"));
  CHECK(At("this monday", Day(3)) == 72);  // not today: the most recent one
}

TEST_CASE("a part of the day sets the local hour", "[dates]") {
  CHECK(At("sunday morning", Day(7, 18)) == 24 + 18 - Part("morning"));
  CHECK(At("monday night", Day(3, 18)) == 72 + 18 - Part("night"));
  CHECK(At("yesterday evening", Day(3, 20)) == 24 + 20 - Part("evening"));
  CHECK(At("last night", Day(3, 18)) == 24 + 18 - Part("night"));
  CHECK(At("last night", Day(3, 1)) == 24 + 1 - Part("night"));  // just after midnight
  CHECK(At("this morning", Day(3, 18)) == 18 - Part("morning"));
  CHECK(At("the day before yesterday in the afternoon", Day(3, 18)) == 48);  // no part right after: whole days
  CHECK(At("the day before yesterday afternoon", Day(3, 18)) == 48 + 18 - Part("afternoon"));
}

TEST_CASE("a time still to come names no date", "[dates]") {
  CHECK_FALSE(At("this evening", Day(3, Part("evening") - 1)).has_value());
  CHECK_FALSE(At("this morning", Day(3, Part("morning") - 1, 59)).has_value());
}

TEST_CASE("days counted back from today", "[dates]") {
  for (std::optional<local_seconds> now : {std::optional<local_seconds>(Day(3)), std::optional<local_seconds>()}) {
    CAPTURE(now.has_value());
    CHECK(At("yesterday", now) == 24);
    CHECK(At("the day before yesterday", now) == 48);
    CHECK(At("day before yesterday", now) == 48);
    CHECK(At("earlier today", now) == Words().today_hours);
  }
}

TEST_CASE("the weekend is the latest weekend day before today", "[dates]") {
  CHECK(At("over the weekend", Day(7)) == 24);  // Monday: Sunday
  CHECK(At("at the weekend", Day(3)) == 96);    // Thursday: Sunday
  CHECK(At("at the weekend", Day(6)) == 24);    // Sunday: Saturday
  CHECK(At("this weekend", Day(6)) == Words().today_hours);
  CHECK(At("last weekend", Day(5)) == 144);     // Saturday: the Sunday before
}

TEST_CASE("without the message's time a weekday or the weekend is not guessed", "[dates]") {
  for (std::string text : {"on monday", "monday", "last tuesday", "sunday morning", "this friday", "over the weekend"}) {
    CAPTURE(text);
    CHECK_FALSE(At(text, std::nullopt).has_value());
  }
  CHECK(At("last night", std::nullopt) == 24);
  CHECK(At("this morning", std::nullopt) == Words().today_hours);
  CHECK(At("yesterday morning", std::nullopt) == 24);
}

TEST_CASE("several dates: the earliest wins", "[dates]") {
  CHECK(At("trained on monday and it hurt from yesterday", Day(3)) == 72);
  CHECK(At("it started this morning, I lifted last night", Day(3, 18)) == 24 + 18 - Part("night"));
}

TEST_CASE("no date named", "[dates]") {
  for (std::string text : {"hello", "my upper back hurts", "mondays are the worst", "is it serious", "", "one day"}) {
    CAPTURE(text);
    CHECK_FALSE(At(text, Day(3)).has_value());
  }
}

TEST_CASE("the slot extractor resolves dates on the person's local clock", "[dates][slots]") {
  const SlotExtractor extractor(TestEngine().kb().language);
  auto slot_hours = [&](const std::string& text, std::optional<MessageTime> now) {
    Slots s;
    extractor.Extract(TestEngine().normaliser().Normalise(text), s, now, /*training_asked=*/true);
    return s.hours;
  };
  // 2026-12-01T23:30Z is Tuesday in UTC and already Wednesday 00:30 at UTC+1.
  const sys_seconds instant = sys_days{year{2026} / December / 1} + hours(23) + minutes(30);
  CHECK(slot_hours("on monday", MessageTime{instant, minutes(0)}) == 24);
  CHECK(slot_hours("on monday", MessageTime{instant, minutes(60)}) == 48);
  CHECK_FALSE(slot_hours("on monday", std::nullopt).has_value());
  // A fixed figure and a date: the longer ago wins.
  CHECK(slot_hours("two days ago, or on monday", MessageTime{instant, minutes(60)}) == 48);
  CHECK(slot_hours("3 days ago, it started on monday", MessageTime{instant, minutes(60)}) == 72);
  CHECK(slot_hours("I trained 2 days ago and it started hurting this morning", std::nullopt) == 48);
}
