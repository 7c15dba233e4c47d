// Slot extraction: what the conversation remembers about the person's training (hours since
// training, exercise and its category, pain quality), from normalised text.
#include <catch2/catch.hpp>

#include <optional>
#include <string>

#include "test_support.hpp"

using backcheck::dialog::SlotExtractor;
using backcheck::dialog::Slots;
using backcheck::test::TestEngine;

namespace {

const SlotExtractor& Extractor() {
  static SlotExtractor extractor(TestEngine().kb().language);
  return extractor;
}

std::string Norm(const std::string& text) { return TestEngine().normaliser().Normalise(text); }

// The slots a single message sets, starting from none.
Slots From(const std::string& text, bool* found = nullptr) {
  Slots s;
  bool f = Extractor().Extract(Norm(text), s);
  if (found) *found = f;
  return s;
}

// The hours a message sets as the answer to "when did you train?" (the time vocabulary alone).
std::optional<int> Hours(const std::string& text) {
  Slots s;
  Extractor().Extract(Norm(text), s, std::nullopt, /*training_asked=*/true);
  return s.hours;
}

}  // namespace

TEST_CASE("hours since training", "[slots]") {
  struct Case {
    std::string text;
    int hours;
  };
  const Case cases[] = {
      {"I trained yesterday", 24},
      {"Yesterday.", 24},
      {"last night", 24},
      {"2 days ago", 48},
      {"I did it 2 days ago and it hurts", 48},
      {"three days ago", 72},
      {"Three days ago!", 72},
      {"a day ago", 24},
      {"a couple of days ago", 48},
      {"a few days ago", 72},
      {"5 hours ago", 5},
      {"an hour ago", 1},
      {"12 hours ago", 12},
      {"this morning", 4},
      {"earlier today", 4},
      {"last week", 168},
      {"two weeks ago", 336},
      {"eleven days ago", 264},
      {"day before yesterday", 48},
      {"the day before yesterday", 48},
      {"rows, two days ago", 48},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text, Norm(c.text));
    auto h = Hours(c.text);
    REQUIRE(h.has_value());
    CHECK(*h == c.hours);
  }
}

TEST_CASE("without the message's time a weekday or the weekend sets no hours", "[slots]") {
  for (std::string text : {"on Monday", "over the weekend", "last tuesday"}) {
    CAPTURE(text);
    CHECK_FALSE(Hours(text).has_value());
  }
}

TEST_CASE("the time said about training wins over the time the pain started", "[slots]") {
  // Both times are mentioned; the longer ago wins.
  CHECK(Hours("I trained 2 days ago and it started hurting this morning") == 48);
  CHECK(Hours("it started yesterday, I trained three days ago") == 72);
}

TEST_CASE("exercise and its category", "[slots]") {
  struct Case {
    std::string text, exercise, category;
  };
  const Case cases[] = {
      {"I did rows", "rows", "pull"},
      {"barbell rows", "rows", "pull"},
      {"seated cable row", "rows", "pull"},
      {"some rowing", "rows", "pull"},
      {"I rowed", "rows", "pull"},
      {"bent-over row", "rows", "pull"},
      {"row, two days ago", "rows", "pull"},
      {"lat pull-downs", "pull-downs", "pull"},
      {"pull-downs", "pull-downs", "pull"},
      {"pulldowns", "pull-downs", "pull"},
      {"Pull-ups", "pull-ups", "pull"},
      {"pullups", "pull-ups", "pull"},
      {"chin-ups", "pull-ups", "pull"},
      {"overhead press", "overhead press", "overhead"},
      {"Shoulder press", "overhead press", "overhead"},
      {"military press", "overhead press", "overhead"},
      {"OHP", "overhead press", "overhead"},
      {"heavy OHP yesterday", "overhead press", "overhead"},
      {"deadlifts", "deadlifts", "other"},
      {"Deadlift", "deadlifts", "other"},
      {"dead lifts", "deadlifts", "other"},
      {"bench press", "bench press", "other"},
      {"bench", "bench press", "other"},
      {"squats", "squats", "other"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text, Norm(c.text));
    bool found = false;
    Slots s = From(c.text, &found);
    CHECK(found);
    CHECK(s.exercise == c.exercise);
    CHECK(s.exercise_category == c.category);
  }
}

TEST_CASE("'in a row' is not the exercise rows", "[slots]") {
  for (std::string text : {"it has hurt three days in a row", "I trained two days in a row"}) {
    CAPTURE(text);
    Slots s = From(text);
    CHECK(s.exercise.empty());
    CHECK(s.exercise_category.empty());
  }
}

TEST_CASE("pain quality", "[slots]") {
  struct Case {
    std::string text, quality;
  };
  const Case cases[] = {
      {"a sharp pain", "sharp"},   {"Stabbing pain", "sharp"},     {"it's a burning feeling", "burning"},
      {"it burns", "burning"},     {"a dull ache", "ache"},        {"it aches", "ache"},
      {"my back is sore", "ache"}, {"aching between my shoulder blades", "ache"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text, Norm(c.text));
    CHECK(From(c.text).quality == c.quality);
  }
}

TEST_CASE("one message can fill every slot", "[slots]") {
  bool found = false;
  Slots s = From("Sharp pain in my upper back since rows yesterday", &found);
  CHECK(found);
  CHECK(s.hours == 24);
  CHECK(s.exercise == "rows");
  CHECK(s.exercise_category == "pull");
  CHECK(s.quality == "sharp");
}

TEST_CASE("nothing found returns false and leaves the slots unchanged", "[slots]") {
  Slots s;
  s.hours = 48;
  s.exercise = "rows";
  s.exercise_category = "pull";
  s.quality = "ache";
  const Slots before = s;
  for (std::string text : {"hello", "what is DOMS?", "", "no", "should I use ice or heat?", "my friend has a cold"}) {
    CAPTURE(text);
    CHECK_FALSE(Extractor().Extract(Norm(text), s));
    CHECK(s == before);
  }
  Slots empty;
  CHECK_FALSE(Extractor().Extract(Norm("thanks"), empty));
  CHECK(empty == Slots{});
}

TEST_CASE("a later mention updates only the slots it names", "[slots]") {
  Slots s;
  REQUIRE(Extractor().Extract(Norm("a dull ache after rows yesterday"), s));
  CHECK(s.hours == 24);
  CHECK(s.exercise == "rows");
  CHECK(s.quality == "ache");

  REQUIRE(Extractor().Extract(Norm("actually it was overhead press, 3 days ago"), s));
  CHECK(s.hours == 72);
  CHECK(s.exercise == "overhead press");
  CHECK(s.exercise_category == "overhead");
  CHECK(s.quality == "ache");  // not mentioned: kept

  REQUIRE(Extractor().Extract(Norm("now it feels sharp"), s));
  CHECK(s.quality == "sharp");
  CHECK(s.hours == 72);
  CHECK(s.exercise == "overhead press");
}

TEST_CASE("the engine keeps slots across turns", "[slots]") {
  const auto& engine = TestEngine();
  auto t1 = engine.Respond(engine.Start(), "my upper back is sore after deadlifts");
  CHECK(t1.state.slots.exercise == "deadlifts");
  CHECK(t1.state.slots.quality == "ache");
  CHECK_FALSE(t1.state.slots.hours.has_value());
  auto t2 = engine.Respond(t1.state, "no");
  CHECK(t2.state.slots == t1.state.slots);  // a plain "no" changes nothing
  auto t3 = engine.Respond(t2.state, "it was two days ago");
  CHECK(t3.state.slots.hours == 48);
  CHECK(t3.state.slots.exercise == "deadlifts");
}
