// The quantities stage (dialog/text/quantities.hpp) over the shipped quantities.jsonc: body
// temperatures and pain scores become words, every other number stays; and the loader refuses
// a bad quantities.jsonc naming the item and the problem.
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "dialog/text/normaliser.hpp"
#include "dialog/text/quantities.hpp"
#include "knowledge/load_text_stages.hpp"
#include "knowledge/loader.hpp"

using backcheck::dialog::QuantityRewriter;
using backcheck::knowledge::KnowledgeError;
using backcheck::knowledge::LoadQuantities;
using nlohmann::json;

namespace {

json ShippedQuantities() {
  std::ifstream in(std::string(BACKCHECK_DEFAULT_KB_DIR) + "/data/quantities.jsonc");
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str(), nullptr, true, /*ignore_comments=*/true);
}

const QuantityRewriter& Q() {
  static const QuantityRewriter q(LoadQuantities(ShippedQuantities()));
  return q;
}

// Through the whole normaliser (raw text in), with only the text stages' tables.
std::string N(const std::string& text) {
  static const backcheck::dialog::Normaliser n([] {
    backcheck::knowledge::Language lang;
    lang.quantities = LoadQuantities(ShippedQuantities());
    return lang;
  }());
  return n.Normalise(text);
}

std::string LoadError(json doc) {
  try {
    LoadQuantities(doc);
  } catch (const KnowledgeError& e) {
    return e.what();
  }
  FAIL("quantities.jsonc was accepted");
  return {};
}

}  // namespace

TEST_CASE("a temperature with each kind of unit is read", "[quantities]") {
  CHECK(Q().Apply("38.5c") == "high temperature");
  CHECK(Q().Apply("it is 38.5 °c") == "it is high temperature");
  CHECK(Q().Apply("38.5°c now") == "high temperature now");
  CHECK(Q().Apply("38.5° c") == "high temperature");
  CHECK(Q().Apply("38.5℃") == "high temperature");
  CHECK(Q().Apply("38.5 celsius") == "high temperature");
  CHECK(Q().Apply("38.5 degrees celsius") == "high temperature");
  CHECK(Q().Apply("38.5 deg c") == "high temperature");
  CHECK(Q().Apply("101f") == "high temperature");
  CHECK(Q().Apply("101 °f") == "high temperature");
  CHECK(Q().Apply("101℉") == "high temperature");
  CHECK(Q().Apply("102 fahrenheit") == "high temperature");
  CHECK(Q().Apply("102 degrees f") == "high temperature");
  CHECK(Q().Apply("101.3 degrees") == "high temperature");  // no scale: 101.3 is Fahrenheit
  CHECK(Q().Apply("38.6 degrees") == "high temperature");   // ... 38.6 Celsius
  CHECK(Q().Apply("38.5°") == "high temperature");
}

TEST_CASE("a temperature without a unit is read next to a cue", "[quantities]") {
  CHECK(Q().Apply("my temp is 101.5") == "my temp is high temperature");
  CHECK(Q().Apply("temp 38.5") == "temp high temperature");
  CHECK(Q().Apply("temperature of 39") == "temperature of high temperature");
  CHECK(Q().Apply("thermometer says 100.8") == "thermometer says high temperature");
  CHECK(Q().Apply("running 101") == "running high temperature");
  CHECK(Q().Apply("my temperature went up to 38.9 overnight") == "my temperature went up to high temperature overnight");
  CHECK(Q().Apply("fever of 102, back aches") == "fever of high temperature, back aches");
  CHECK(Q().Apply("temp: 38,5!") == "temp: high temperature!");  // decimal comma; ":" is no clause end
}

TEST_CASE("temperature thresholds: 38.0 C and 100.4 F are high, just below is normal", "[quantities]") {
  CHECK(Q().Apply("temp 37.9") == "temp normal temperature");
  CHECK(Q().Apply("temp 38.0") == "temp high temperature");
  CHECK(Q().Apply("temp 38") == "temp high temperature");
  CHECK(Q().Apply("37.9c") == "normal temperature");
  CHECK(Q().Apply("38c") == "high temperature");
  CHECK(Q().Apply("temp 100.3") == "temp normal temperature");
  CHECK(Q().Apply("temp 100.4") == "temp high temperature");
  CHECK(Q().Apply("100.3f") == "normal temperature");
  CHECK(Q().Apply("100.4f") == "high temperature");
  CHECK(Q().Apply("temp 36.6") == "temp normal temperature");
  CHECK(Q().Apply("98.6 f") == "normal temperature");
  // The edges of the body range: below it, or out of it, is not a reading.
  CHECK(Q().Apply("temp 35") == "temp normal temperature");
  CHECK(Q().Apply("temp 34.9") == "temp 34.9");
  CHECK(Q().Apply("temp 60") == "temp 60");
  CHECK(Q().Apply("temp 95") == "temp normal temperature");
  CHECK(Q().Apply("120f") == "120f");
  CHECK(Q().Apply("101c") == "101c");  // Celsius out of the body range
}

TEST_CASE("numbers that are not temperatures are left alone", "[quantities]") {
  for (const char* text :
       {"did 38 reps", "101 kg deadlift", "at 39 years old", "i am 39", "temp is fine, did 38 reps",
        "temp was fine. 39 sets later", "it was 104 degrees outside", "sauna at 90c", "bent 90 degrees",
        "lost 5 kg in 3 days", "for 3 days", "lost 2.5 kg", "running 38 minutes", "temp 38kg",
        "at 38 i started lifting", "101"}) {
    CAPTURE(text);
    CHECK(Q().Apply(text) == text);
  }
}

TEST_CASE("a pain score of 7 or more is severe pain", "[quantities]") {
  CHECK(Q().Apply("pain 9/10") == "pain severe pain");
  CHECK(Q().Apply("9 / 10 pain") == "severe pain pain");
  CHECK(Q().Apply("10 out of 10") == "severe pain");
  CHECK(Q().Apply("8 outta 10 today.") == "severe pain today.");
  CHECK(Q().Apply("ten out of ten") == "severe pain");
  CHECK(Q().Apply("pain is a 9") == "pain is a severe pain");
  CHECK(Q().Apply("pain level 8") == "pain level severe pain");
  CHECK(Q().Apply("pain is like a 7 rn") == "pain is like a severe pain rn");
  CHECK(Q().Apply("it is 7.5/10") == "it is severe pain");
  CHECK(Q().Apply("honestly 11/10") == "honestly severe pain");
  CHECK(Q().Apply("pain 7/10") == "pain severe pain");
  CHECK(Q().Apply("pain 6/10") == "pain 6/10");   // the edge
  CHECK(Q().Apply("pain is a 6") == "pain is a 6");
  CHECK(Q().Apply("pain 3/10") == "pain mild pain");
  CHECK(Q().Apply("pain 4/10") == "pain 4/10");
  CHECK(Q().Apply("pain 0/10") == "pain 0/10");
}

TEST_CASE("dates, fractions and other numbers are not pain scores", "[quantities]") {
  for (const char* text :
       {"took 1/2 hour", "on 9/10/2026 it started", "since 9/10 it hurts", "9/10 times it is fine",
        "9/10 of my sets", "pain for 9 days", "pain 8 weeks now", "did 9 reps", "9 / 10 / 2026",
        "9/10/26", "pain is a 12", "level 10 kg", "1/2", "9 out of 12", "pain is not a 9"}) {
    CAPTURE(text);
    CHECK(Q().Apply(text) == text);
  }
}

TEST_CASE("the normaliser keeps numbers whole for the stage, then applies it", "[quantities][normaliser]") {
  CHECK(N("My Temp is 38.5°C!") == "my temp is high temperature!");
  CHECK(N("Pain 9 / 10") == "pain severe pain");
  CHECK(N("pain 9/ 10") == "pain severe pain");
  CHECK(N("running 101F, back is killing me") == "running high temperature, back is killing me");
  CHECK(N("lost 2.5 kg") == "lost 2.5 kg");
  CHECK(N("took 1/2 hour") == "took 1/2 hour");
  CHECK(N("sets of 10,12,15") == "sets of 10,12,15");
  CHECK(N("a/b test") == "a b test");  // a slash between letters still goes
  CHECK(N("the end. 5 sets") == "the end. 5 sets");
  // Idempotent: the words it writes are no numbers.
  CHECK(N(N("temp 39 and pain 9/10")) == N("temp 39 and pain 9/10"));
}

TEST_CASE("text without a digit is returned untouched", "[quantities]") {
  std::string out = "unchanged";
  CHECK_FALSE(Q().Rewrite("my upper back hurts after rows", out));
  CHECK(out == "unchanged");
  CHECK_FALSE(Q().Rewrite("", out));
  CHECK_FALSE(QuantityRewriter().Rewrite("temp 39", out));  // no table: nothing
}

TEST_CASE("the shipped quantities.jsonc loads", "[quantities][loader]") {
  auto t = LoadQuantities(ShippedQuantities());
  CHECK(t.fever_c == 38.0);
  CHECK(t.fever_f == 100.4);
  CHECK(t.high_words == "high temperature");
  CHECK_FALSE(t.units.empty());
}

TEST_CASE("a bad quantities.jsonc is refused, naming the item and the problem", "[quantities][loader]") {
  json doc = ShippedQuantities();
  SECTION("unknown scale") {
    doc["temperature"]["units"][0]["scale"] = "k";
    auto e = LoadError(doc);
    CHECK_THAT(e, Catch::Contains("quantities.jsonc: temperature: unit '°c'"));
    CHECK_THAT(e, Catch::Contains("scale must be"));
  }
  SECTION("threshold outside the body range") {
    doc["temperature"]["fever_at"]["c"] = 50.0;
    CHECK_THAT(LoadError(doc), Catch::Contains("fever_at.c must lie inside body_range.c"));
  }
  SECTION("C and F thresholds disagree") {
    doc["temperature"]["fever_at"]["f"] = 101.0;
    CHECK_THAT(LoadError(doc), Catch::Contains("must be the same temperature"));
  }
  SECTION("a cue that is not normalised text") {
    doc["temperature"]["cues"][0]["words"] = "Temp.";
    CHECK_THAT(LoadError(doc), Catch::Contains("cue 'Temp.'"));
  }
  SECTION("a duplicate unit") {
    doc["temperature"]["units"].push_back({{"text", "°c"}, {"scale", "c"}});
    CHECK_THAT(LoadError(doc), Catch::Contains("unit '°c': duplicate unit"));
  }
  SECTION("overlapping bands") {
    doc["pain"]["bands"].push_back({{"min", 6}, {"max", 8}, {"words", "bad pain"}});
    CHECK_THAT(LoadError(doc), Catch::Contains("pain: band 'bad pain': overlaps band 'severe pain'"));
  }
  SECTION("output words with capitals") {
    doc["temperature"]["high"] = "High temperature";
    CHECK_THAT(LoadError(doc), Catch::Contains("high 'High temperature'"));
  }
  SECTION("a unit that is also an other unit") {
    doc["other_units"].push_back("celsius");
    CHECK_THAT(LoadError(doc), Catch::Contains("'celsius' is also a temperature unit"));
  }
  SECTION("missing field") {
    doc["pain"].erase("bands");
    CHECK_THAT(LoadError(doc), Catch::Contains("quantities.jsonc: pain: missing field 'bands'"));
  }
}
