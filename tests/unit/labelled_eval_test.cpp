#include <catch2/catch.hpp>
#include <sstream>

#include "cli/labelled_eval.hpp"
#include "test_support.hpp"

using backcheck::cli::EvalFormatError;
using backcheck::cli::RunLabelledEval;

namespace {
backcheck::cli::EvalSummary Run(const std::string& jsonl) {
  std::istringstream in(jsonl);
  return RunLabelledEval(backcheck::test::TestEngine(), in, "test.jsonl");
}
}  // namespace

TEST_CASE("passing lines report no failure", "[eval]") {
  auto s = Run(R"({"text": "hi", "intent": "greeting", "red_flags": []})"
               "\n\n"
               R"({"name": "two turns", "turns": [{"text": "My upper back hurts after rows", "state": "screening"}, {"text": "yes", "urgency": "urgent", "facts": ["today"]}]})");
  CHECK(s.conversations == 2);
  CHECK(s.messages == 3);
  CHECK(s.expectations == 5);
  CHECK(s.failures.empty());
}

TEST_CASE("each failed expectation is reported with what was expected and what came back", "[eval]") {
  auto s = Run(R"({"text": "hi", "intent": "goodbye", "state": "ended", "red_flags": ["fever"], "facts": ["zebra"]})");
  REQUIRE(s.failures.size() == 4);
  CHECK(s.failures[0].field == "intent");
  CHECK(s.failures[0].expected == "goodbye");
  CHECK(s.failures[0].actual == "greeting");
  CHECK(s.failures[1].field == "state");
  CHECK(s.failures[2].field == "red_flags");
  CHECK(s.failures[2].expected == "fever");
  CHECK(s.failures[2].actual == "none");
  CHECK(s.failures[3].field == "facts");
  std::ostringstream out;
  backcheck::cli::PrintFailure(out, s.failures[0]);
  CHECK(out.str() == "line 1 (hi), message 1 \"hi\": intent: expected goodbye, got greeting\n");
}

TEST_CASE("red flags compare as sets", "[eval]") {
  auto s = Run(R"({"text": "I have a fever and chills", "red_flags": ["chills", "fever"]})");
  CHECK(s.failures.empty());
}

TEST_CASE("malformed lines are refused with the file and line named", "[eval]") {
  CHECK_THROWS_WITH(Run("{\"text\": \"hi\"}\nnot json"), Catch::StartsWith("test.jsonl:2: invalid JSON"));
  CHECK_THROWS_WITH(Run(R"({"intent": "greeting"})"), Catch::Contains("test.jsonl:1: a line needs 'text' or 'turns'"));
  CHECK_THROWS_WITH(Run(R"({"text": "hi", "intnet": "greeting"})"), Catch::Contains("unknown field 'intnet'"));
  CHECK_THROWS_WITH(Run(R"({"text": "hi", "facts": ["(unclosed"]})"), Catch::Contains("fact '(unclosed'"));
  CHECK_THROWS_AS(Run(R"({"turns": []})"), EvalFormatError);
}
