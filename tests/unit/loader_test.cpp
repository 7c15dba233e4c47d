// The loader refuses a bad knowledge base with a message naming the file, the item and the
// problem. Each test copies the built-in knowledge base, breaks one thing, and loads it.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "kb_copy.hpp"
#include "knowledge/loader.hpp"

namespace fs = std::filesystem;
using backcheck::knowledge::KnowledgeError;
using backcheck::knowledge::LoadKnowledgeBase;

using backcheck::test::KbCopy;

TEST_CASE("the built-in knowledge base loads", "[loader]") {
  auto kb = LoadKnowledgeBase(BACKCHECK_DEFAULT_KB_DIR);
  CHECK(kb->topics.size() == kb->intents.size());  // one topic per intent, finer ones included
  CHECK(kb->intents.size() >= backcheck::knowledge::RequiredIntents().size());
  CHECK(kb->red_flags.flags.size() >= backcheck::knowledge::RequiredFlags().size());
  CHECK(kb->article.sections().size() == 5);
}

TEST_CASE("an unmodified copy loads, so every refusal below is caused by its one change", "[loader]") {
  KbCopy kb;
  CHECK_NOTHROW(LoadKnowledgeBase(kb.dir()));
}

TEST_CASE("a source naming an unknown section is refused", "[loader]") {
  KbCopy kb;
  kb.Replace("topics.jsonc", "\"section\": \"Common Muscular Causes of Upper Back Pain\"",
             "\"section\": \"Common Muscle Causes\"");
  auto error = kb.Error();
  CHECK_THAT(error, Catch::Contains("topics.jsonc: topic '"));
  CHECK_THAT(error, Catch::Contains("unknown section 'Common Muscle Causes'"));
}

TEST_CASE("a quote that is not verbatim in the article is refused", "[loader]") {
  KbCopy kb;
  kb.Replace("topics.jsonc", "composed of twelve vertebrae", "composed of thirteen vertebrae");
  auto error = kb.Error();
  CHECK_THAT(error, Catch::Contains("topics.jsonc: topic 'anatomy'"));
  CHECK_THAT(error, Catch::Contains("quote not found in section"));
  CHECK_THAT(error, Catch::Contains("thirteen vertebrae"));
}

TEST_CASE("a quote from the right article but the wrong section is refused", "[loader]") {
  KbCopy kb;
  kb.Replace("red_flags.jsonc", "\"section\": \"Warning Signs That Require Professional Attention\"",
             "\"section\": \"Immediate Self-Care and Recovery Techniques\"");
  CHECK_THAT(kb.Error(), Catch::Contains("red_flags.jsonc: flag 'arm_radiation': source 1: quote not found in section"));
}

TEST_CASE("an intent without a topic is refused", "[loader]") {
  KbCopy kb;
  kb.Replace("intents.jsonc", "\"intents\": [", "\"intents\": [ { \"id\": \"weather_chat\", \"as\": \"out_of_scope\", \"kind\": \"other\", \"patterns\": [\"weather\"] },");
  CHECK_THAT(kb.Error(), Catch::Contains("topics.jsonc: intent 'weather_chat' has no topic"));
}

TEST_CASE("a topic for an intent that does not exist is refused", "[loader]") {
  KbCopy kb;
  kb.Replace("topics.jsonc", "\"id\": \"anatomy\"", "\"id\": \"anatomyy\"");
  CHECK_THAT(kb.Error(), Catch::Contains("topics.jsonc: topic 'anatomyy': no intent with this id"));
}

TEST_CASE("a missing intent of the specification is refused", "[loader]") {
  KbCopy kb;
  kb.Replace("intents.jsonc", "\"id\": \"medication\"", "\"id\": \"medicine\"");
  CHECK_THAT(kb.Error(), Catch::Contains("intents.jsonc: missing intent 'medication'"));
}

TEST_CASE("an intent pattern RE2 rejects is refused", "[loader]") {
  KbCopy kb;
  kb.Replace("intents.jsonc", "\"\\\\bdoms\\\\b\"", "\"\\\\bdoms(\\\\b\"");
  auto error = kb.Error();
  CHECK_THAT(error, Catch::Contains("intents.jsonc: intent 'doms': pattern 1 rejected by RE2"));
  CHECK_THAT(error, Catch::Contains("missing )"));
}

TEST_CASE("a red-flag pattern RE2 rejects is refused", "[loader]") {
  KbCopy kb;
  kb.Replace("red_flags.jsonc", "\"\\\\bpins and needles\\\\b\"", "\"\\\\bpins and needles[\"");
  CHECK_THAT(kb.Error(), Catch::Contains("red_flags.jsonc: flag 'tingling': pattern 2 rejected by RE2"));
}

TEST_CASE("a flow state without a way out is refused", "[loader]") {
  KbCopy kb;
  kb.Replace("flow.jsonc", "\"on\": { \"red_flag\": \"escalated\", \"start_screening\": \"screening\", \"goodbye\": \"ended\", \"message\": \"advising\" }",
             "\"on\": { \"goodbye\": \"ended\" }");
  CHECK_THAT(kb.Error(), Catch::Contains("flow.jsonc: state 'ended': no way out"));
}

TEST_CASE("a transition to an unknown state is refused", "[loader]") {
  KbCopy kb;
  kb.Replace("flow.jsonc", "\"screening_passed\": \"advising\"", "\"screening_passed\": \"advice\"");
  CHECK_THAT(kb.Error(), Catch::Contains("flow.jsonc: state 'screening': event 'screening_passed' leads to unknown state 'advice'"));
}

TEST_CASE("a transition on an unknown event is refused", "[loader]") {
  KbCopy kb;
  kb.Replace("flow.jsonc", "\"screening_passed\": \"advising\"", "\"screening_done\": \"advising\"");
  CHECK_THAT(kb.Error(), Catch::Contains("flow.jsonc: state 'screening': unknown event 'screening_done'"));
}

TEST_CASE("a screening question about an unknown flag is refused", "[loader]") {
  KbCopy kb;
  kb.Replace("flow.jsonc", "\"flags\": [\"fever\", \"chills\", \"weight_loss\"]", "\"flags\": [\"fever\", \"cold\"]");
  CHECK_THAT(kb.Error(), Catch::Contains("flow.jsonc: screening question 'systemic': unknown flag 'cold'"));
}

TEST_CASE("an unknown urgency level is refused", "[loader]") {
  KbCopy kb;
  kb.Replace("red_flags.jsonc", "\"level\": \"emergency\", \"origin\": \"article\"", "\"level\": \"critical\", \"origin\": \"article\"");
  CHECK_THAT(kb.Error(), Catch::Contains("red_flags.jsonc: flag 'breathing_pain': unknown level 'critical'"));
}

TEST_CASE("invalid JSON is refused with the file named", "[loader]") {
  KbCopy kb;
  kb.Replace("topics.jsonc", "\"topics\": [", "\"topics\": [[");
  CHECK_THAT(kb.Error(), Catch::StartsWith("topics.jsonc: invalid JSON"));
}

TEST_CASE("a missing data file is refused with the file named", "[loader]") {
  KbCopy kb;
  fs::remove(kb.dir() / "data" / "flow.jsonc");
  CHECK_THAT(kb.Error(), Catch::StartsWith("flow.jsonc: cannot be read"));
}

TEST_CASE("an article without headings is refused", "[loader]") {
  KbCopy kb;
  std::ofstream(kb.dir() / "article.txt", std::ios::trunc) << "Just one paragraph of text. It has no heading line at all.\n";
  CHECK_THAT(kb.Error(), Catch::StartsWith("article.txt:"));
}
