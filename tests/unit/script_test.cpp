// Conversation scripts (cli/script.hpp): the `possible flags:` expectation (and the JSONL
// `possible_flags` field) are parsed like `red flags:`, refused with a clear message when the
// value is not a list of flag ids, and checked against Reply::possible_flags as a set.
#include <catch2/catch.hpp>

#include "cli/script.hpp"

using backcheck::cli::Check;
using backcheck::cli::Expectation;
using backcheck::cli::ParseLabelledJsonl;
using backcheck::cli::ParseScript;
using backcheck::cli::ScriptError;

namespace {

// The one expectation of a one-message script whose expectation line is `line`.
Expectation Only(const std::string& line) {
  auto s = ParseScript("> I noticed some blood this morning\n  " + line + "\n", "t.convo");
  REQUIRE(s.turns.size() == 1);
  REQUIRE(s.turns[0].expectations.size() == 1);
  return s.turns[0].expectations[0];
}

backcheck::dialog::Reply WithPossible(std::vector<std::string> flags) {
  backcheck::dialog::Reply r;
  r.possible_flags = std::move(flags);
  return r;
}

}  // namespace

TEST_CASE("'possible flags:' parses a list of flag ids, or none", "[script]") {
  auto e = Only("possible flags: coughing_blood");
  CHECK(e.kind == Expectation::Kind::kPossibleFlags);
  CHECK(e.list == std::vector<std::string>{"coughing_blood"});
  CHECK(e.line == 2);
  CHECK(e.source == "possible flags: coughing_blood");

  CHECK(Only("Possible Flags:  chest_pain ,coughing_blood ").list == std::vector<std::string>{"chest_pain", "coughing_blood"});
  CHECK(Only("possible flags: none").list.empty());
  CHECK(Only("possible flags: NONE").list.empty());
  CHECK(Only("possible flags: tingling, cord_signs2").list == std::vector<std::string>{"tingling", "cord_signs2"});
}

TEST_CASE("'possible flags:' refuses what is not a list of flag ids, naming the file and line", "[script]") {
  auto parse = [](const std::string& line) { return ParseScript("name: x\n> hi\n  " + line + "\n", "bad.convo"); };
  CHECK_THROWS_AS(parse("possible flags:"), ScriptError);
  CHECK_THROWS_WITH(parse("possible flags:"), "bad.convo:3: 'possible flags:' has no value (flag ids, or none)");
  CHECK_THROWS_WITH(parse("possible flags: coughing blood"),
                    Catch::StartsWith("bad.convo:3: 'possible flags': 'coughing blood' is not a flag id"));
  CHECK_THROWS_WITH(parse("possible flags: Coughing_Blood"), Catch::Contains("'Coughing_Blood' is not a flag id"));
  CHECK_THROWS_WITH(parse("possible flags: coughing-blood"), Catch::Contains("'coughing-blood' is not a flag id"));
  CHECK_THROWS_WITH(parse("possible flags: [\"coughing_blood\"]"), Catch::Contains("is not a flag id"));
  CHECK_THROWS_WITH(parse("possible flags: none, fever"),
                    "bad.convo:3: 'possible flags': 'none' stands alone (no flag); it cannot be listed with flags");
  CHECK_THROWS_WITH(parse("possible flag: fever"), Catch::Contains("unknown expectation 'possible flag'"));
  // The error for an unknown key lists the new key among the known ones.
  CHECK_THROWS_WITH(parse("possible flag: fever"), Catch::Contains("possible flags"));
}

TEST_CASE("'possible flags:' holds when the reply asks about exactly those flags, in any order", "[script]") {
  auto s = ParseScript("> x\n  possible flags: chest_pain, coughing_blood\n> y\n  possible flags: none\n", "t.convo");
  const auto& two = s.turns[0];
  const auto& none = s.turns[1];
  CHECK(Check(two, WithPossible({"coughing_blood", "chest_pain"})).empty());
  CHECK(Check(none, WithPossible({})).empty());

  auto missing = Check(two, WithPossible({"coughing_blood"}));
  REQUIRE(missing.size() == 1);
  CHECK(missing[0].expected == "chest_pain, coughing_blood");
  CHECK(missing[0].actual == "coughing_blood");
  auto extra = Check(none, WithPossible({"coughing_blood"}));
  REQUIRE(extra.size() == 1);
  CHECK(extra[0].expected == "none");
  CHECK(extra[0].actual == "coughing_blood");

  // Red flags and possible flags are different fields: an affirmed flag does not meet a possible one.
  backcheck::dialog::Reply affirmed;
  affirmed.red_flags = {"coughing_blood"};
  CHECK(Check(ParseScript("> x\n  possible flags: coughing_blood\n", "t.convo").turns[0], affirmed).size() == 1);
}

TEST_CASE("JSONL 'possible_flags' is an array of flag ids, [] for none", "[script]") {
  auto scripts = ParseLabelledJsonl(R"({"text": "I noticed some blood this morning", "possible_flags": ["coughing_blood"], "red_flags": []})"
                                    "\n"
                                    R"({"text": "hi", "possible_flags": []})",
                                    "t.jsonl");
  REQUIRE(scripts.size() == 2);
  const auto& first = scripts[0].turns[0].expectations;
  REQUIRE(first.size() == 2);
  CHECK(first[0].kind == Expectation::Kind::kRedFlags);
  CHECK(first[1].kind == Expectation::Kind::kPossibleFlags);
  CHECK(first[1].list == std::vector<std::string>{"coughing_blood"});
  CHECK(first[1].source == "possible flags: coughing_blood");
  CHECK(Check(scripts[0].turns[0], WithPossible({"coughing_blood"})).empty());
  CHECK(scripts[1].turns[0].expectations[0].list.empty());
  CHECK(Check(scripts[1].turns[0], WithPossible({"fever"})).size() == 1);

  auto parse = [](const std::string& line) { return ParseLabelledJsonl(line, "bad.jsonl"); };
  CHECK_THROWS_WITH(parse(R"({"text": "hi", "possible_flags": "coughing_blood"})"),
                    "bad.jsonl:1: 'possible_flags' must be an array of strings (flag ids; [] for none)");
  CHECK_THROWS_WITH(parse(R"({"text": "hi", "possible_flags": [1]})"), Catch::Contains("must be an array of strings"));
  CHECK_THROWS_WITH(parse(R"({"text": "hi", "possible_flags": ["coughing blood"]})"),
                    Catch::StartsWith("bad.jsonl:1: 'possible_flags': 'coughing blood' is not a flag id"));
  CHECK_THROWS_WITH(parse(R"({"text": "hi", "possible_flags": ["none"]})"), Catch::Contains("'none' stands alone"));
  CHECK_THROWS_WITH(parse(R"({"turns": [{"text": "hi", "posible_flags": []}]})"), Catch::Contains("unknown field 'posible_flags'"));
}
