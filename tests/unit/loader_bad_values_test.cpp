// The loader refuses a value of the wrong type, an unknown key, a tailoring rule naming an
// exercise category or pain quality language.jsonc does not define, a state_priority for a state
// the flow does not have, and hours_unknown combined with hours: each with a KnowledgeError (the
// loader's error type: the server and the CLI print it and exit 2) naming the file and the item.
// Never an nlohmann exception (which aborted the process before). A rewrite that can never apply
// is only a warning. Each test copies the built-in knowledge base, changes one value, and loads it.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "kb_copy.hpp"
#include "knowledge/loader.hpp"

namespace fs = std::filesystem;
using backcheck::knowledge::KnowledgeError;
using backcheck::knowledge::LoadKnowledgeBase;

namespace {

using backcheck::test::KbCopy;

// Loads `kb` with std::cerr captured; returns what was written to it.
std::string LoadCapturingStderr(const KbCopy& kb, std::shared_ptr<const backcheck::knowledge::KnowledgeBase>& out) {
  std::ostringstream captured;
  auto* old = std::cerr.rdbuf(captured.rdbuf());
  try {
    out = LoadKnowledgeBase(kb.dir());
  } catch (...) {
    std::cerr.rdbuf(old);
    throw;
  }
  std::cerr.rdbuf(old);
  return captured.str();
}

}  // namespace

// ---- a value of the wrong type, in each file ------------------------------------------------

TEST_CASE("a value of the wrong type is refused, naming file and item, in intents.jsonc", "[loader][bad_values]") {
  SECTION("a string for an integer") {
    KbCopy kb;
    kb.Replace("intents.jsonc", "{ \"id\": \"greeting\", \"kind\": \"social\", \"priority\": 10,",
               "{ \"id\": \"greeting\", \"kind\": \"social\", \"priority\": \"10\",");
    const auto error = kb.Error();
    CHECK_THAT(error, Catch::StartsWith("intents.jsonc: intent 'greeting':"));
    CHECK_THAT(error, Catch::Contains("'priority'"));
  }
  SECTION("an object for an array") {
    KbCopy kb;
    kb.Replace("intents.jsonc", "{ \"id\": \"fallback\", \"kind\": \"fallback\" }",
               "{ \"id\": \"fallback\", \"kind\": \"fallback\", \"patterns\": {} }");
    const auto error = kb.Error();
    CHECK_THAT(error, Catch::StartsWith("intents.jsonc: intent 'fallback':"));
    CHECK_THAT(error, Catch::Contains("'patterns'"));
  }
  SECTION("a string for a state priority") {
    KbCopy kb;
    kb.Replace("intents.jsonc", "\"state_priority\": { \"screening\": 95 }", "\"state_priority\": { \"screening\": \"95\" }");
    CHECK_THAT(kb.Error(), Catch::StartsWith("intents.jsonc: intent 'affirm': state_priority 'screening'"));
  }
  SECTION("a number for an id") {
    KbCopy kb;
    kb.Replace("intents.jsonc", "\"id\": \"greeting\"", "\"id\": 7");
    CHECK_THAT(kb.Error(), Catch::StartsWith("intents.jsonc: intent 1: field 'id'"));
  }
}

TEST_CASE("a value of the wrong type is refused in topics.jsonc", "[loader][bad_values]") {
  SECTION("a number in an array of strings") {
    KbCopy kb;
    kb.Replace("topics.jsonc", "\"quick_replies\": [\"My upper back hurts after training\",",
               "\"quick_replies\": [1, \"My upper back hurts after training\",");
    CHECK_THAT(kb.Error(), Catch::StartsWith("topics.jsonc: topic 'greeting': field 'quick_replies'"));
  }
  SECTION("an object for the sources array") {
    KbCopy kb;
    kb.Replace("topics.jsonc", "\"sources\": [", "\"sources\": { \"list\": [");
    kb.Replace("topics.jsonc", "      ],\n      \"quick_replies\"", "      ] },\n      \"quick_replies\"");
    const auto error = kb.Error();
    CHECK_THAT(error, Catch::StartsWith("topics.jsonc: topic '"));
    CHECK_THAT(error, Catch::Contains("field 'sources' must be an array"));
  }
}

TEST_CASE("a value of the wrong type is refused in red_flags.jsonc and concepts.jsonc", "[loader][bad_values]") {
  SECTION("a string for the negation window") {
    KbCopy kb;
    kb.Replace("red_flags.jsonc", "\"negation_window\": 8", "\"negation_window\": \"8\"");
    CHECK_THAT(kb.Error(), Catch::StartsWith("red_flags.jsonc: cues: field 'negation_window'"));
  }
  SECTION("a number for a flag's name") {
    KbCopy kb;
    kb.Replace("red_flags.jsonc", "\"name\": \"a fever\"", "\"name\": 1");
    CHECK_THAT(kb.Error(), Catch::StartsWith("red_flags.jsonc: flag 'fever': field 'name'"));
  }
  SECTION("a string for a concept's terms") {
    KbCopy kb;
    kb.Replace("concepts.jsonc", "\"ARM\": [ \"arm\",", "\"ARM\": \"arm\", \"ARM_TOO\": [ \"arm\",");
    CHECK_THAT(kb.Error(), Catch::StartsWith("concepts.jsonc: concept 'ARM': field 'ARM' must be an array"));
  }
}

TEST_CASE("a value of the wrong type is refused in flow.jsonc", "[loader][bad_values]") {
  SECTION("a string for hours_min (this aborted the process before)") {
    KbCopy kb;
    kb.Replace("flow.jsonc", "\"hours_min\": 12", "\"hours_min\": \"12\"");
    const auto error = kb.Error();
    CHECK_THAT(error, Catch::StartsWith("flow.jsonc: tailoring rule 'doms_window':"));
    CHECK_THAT(error, Catch::Contains("'hours_min'"));
  }
  SECTION("a fraction for hours_max") {
    KbCopy kb;
    kb.Replace("flow.jsonc", "\"hours_max\": 11", "\"hours_max\": 11.5");
    CHECK_THAT(kb.Error(), Catch::StartsWith("flow.jsonc: tailoring rule 'too_soon_for_doms': field 'hours_max'"));
  }
  SECTION("a string for terminal") {
    KbCopy kb;
    kb.Replace("flow.jsonc", "\"terminal\": true", "\"terminal\": \"yes\"");
    CHECK_THAT(kb.Error(), Catch::StartsWith("flow.jsonc: state 'escalated': field 'terminal'"));
  }
  SECTION("a number for a text") {
    KbCopy kb;
    kb.Replace("flow.jsonc", "\"tailoring_intro\": \"Based on what you told me:\"", "\"tailoring_intro\": 3");
    CHECK_THAT(kb.Error(), Catch::StartsWith("flow.jsonc: text 'tailoring_intro'"));
  }
  SECTION("an array for a transition") {
    KbCopy kb;
    kb.Replace("flow.jsonc", "\"screening_passed\": \"advising\"", "\"screening_passed\": [\"advising\"]");
    CHECK_THAT(kb.Error(), Catch::StartsWith("flow.jsonc: state 'screening': transition 'screening_passed'"));
  }
  SECTION("a string for hours_unknown") {
    KbCopy kb;
    kb.Replace("flow.jsonc", "{ \"id\": \"pull_form\",", "{ \"id\": \"pull_form\", \"hours_unknown\": \"yes\",");
    CHECK_THAT(kb.Error(), Catch::StartsWith("flow.jsonc: tailoring rule 'pull_form': field 'hours_unknown'"));
  }
}

TEST_CASE("a value of the wrong type is refused in language.jsonc", "[loader][bad_values]") {
  SECTION("a string for a time's hours") {
    KbCopy kb;
    kb.Replace("language.jsonc", "\"hours\": 168 },\n", "\"hours\": \"168\" },\n");
    CHECK_THAT(kb.Error(), Catch::StartsWith("language.jsonc: time '"));
  }
  SECTION("a string for an exercise's patterns") {
    KbCopy kb;
    kb.Replace("language.jsonc", "{ \"value\": \"shrugs\", \"category\": \"pull\", \"patterns\": [\"\\\\bshrugs\\\\b\"] }",
               "{ \"value\": \"shrugs\", \"category\": \"pull\", \"patterns\": \"\\\\bshrugs\\\\b\" }");
    CHECK_THAT(kb.Error(), Catch::StartsWith("language.jsonc: exercise 'shrugs': field 'patterns'"));
  }
  SECTION("a string for the retrieval threshold") {
    KbCopy kb;
    kb.Replace("language.jsonc", "\"min_score\": 3.0", "\"min_score\": \"3\"");
    CHECK_THAT(kb.Error(), Catch::StartsWith("language.jsonc: retrieval: field 'min_score'"));
  }
  SECTION("a number for a weekday form") {
    KbCopy kb;
    kb.Replace("language.jsonc", "[\"monday\", \"mon\"]", "[\"monday\", 2]");
    CHECK_THAT(kb.Error(), Catch::StartsWith("language.jsonc: dates: weekday 1:"));
  }
  SECTION("a string for a number word") {
    KbCopy kb;
    kb.Replace("language.jsonc", "\"twelve\": 12,", "\"twelve\": \"12\",");
    CHECK_THAT(kb.Error(), Catch::StartsWith("language.jsonc: number 'twelve'"));
  }
}

TEST_CASE("a value of the wrong type is refused in quantities.jsonc and emoji.jsonc", "[loader][bad_values]") {
  SECTION("a string for a cue's before") {
    KbCopy kb;
    kb.Replace("quantities.jsonc", "{ \"words\": \"running\", \"before\": 1 }", "{ \"words\": \"running\", \"before\": \"1\" }");
    CHECK_THAT(kb.Error(), Catch::StartsWith("quantities.jsonc: temperature: cue 'running': field 'before'"));
  }
  SECTION("a string for the pain scale") {
    KbCopy kb;
    kb.Replace("quantities.jsonc", "\"scale\": 10,", "\"scale\": \"10\",");
    CHECK_THAT(kb.Error(), Catch::StartsWith("quantities.jsonc: pain: field 'scale'"));
  }
  SECTION("a number for an emoji group's words") {
    KbCopy kb;
    kb.Replace("emoji.jsonc", "{ \"words\": \"fever\",", "{ \"words\": 5,");
    CHECK_THAT(kb.Error(), Catch::StartsWith("emoji.jsonc: emoji group "));
  }
}

// ---- unknown keys ---------------------------------------------------------------------------

TEST_CASE("an unknown key is refused, naming file, item and key", "[loader][bad_values]") {
  struct Case {
    const char* file;
    const char* from;
    const char* to;
    const char* expected;
  };
  const Case cases[] = {
      {"intents.jsonc", "{ \"id\": \"greeting\", \"kind\": \"social\", \"priority\": 10,",
       "{ \"id\": \"greeting\", \"kind\": \"social\", \"priorty\": 10,", "intents.jsonc: intent 'greeting': unknown field 'priorty'"},
      {"intents.jsonc", "\"intents\": [", "\"intent\": [], \"intents\": [", "intents.jsonc: unknown field 'intent'"},
      {"topics.jsonc", "\"id\": \"greeting\",", "\"id\": \"greeting\", \"answers\": \"x\",",
       "topics.jsonc: topic 'greeting': unknown field 'answers'"},
      {"topics.jsonc", "\"section\": \"", "\"sectoin\": \"x\", \"section\": \"", "topics.jsonc: topic '"},
      {"red_flags.jsonc", "{ \"id\": \"fever\", \"level\": \"urgent\",", "{ \"id\": \"fever\", \"levle\": \"urgent\", \"level\": \"urgent\",",
       "red_flags.jsonc: flag 'fever': unknown field 'levle'"},
      {"red_flags.jsonc", "\"negation_window\": 8", "\"negation_windw\": 8", "red_flags.jsonc: cues: unknown field 'negation_windw'"},
      {"red_flags.jsonc", "{ \"level\": \"emergency\",", "{ \"level\": \"emergency\", \"txt\": \"\",",
       "red_flags.jsonc: guidance 1: unknown field 'txt'"},
      {"concepts.jsonc", "\"context_concepts\":", "\"idiom\": [], \"context_concepts\":", "concepts.jsonc: unknown field 'idiom'"},
      {"flow.jsonc", "\"hours_min\": 12", "\"hour_min\": 12", "flow.jsonc: tailoring rule 'doms_window': unknown field 'hour_min'"},
      {"flow.jsonc", "\"terminal\": true", "\"terminal\": true, \"terminl\": true",
       "flow.jsonc: state 'escalated': unknown field 'terminl'"},
      {"flow.jsonc", "{ \"id\": \"arm\",", "{ \"id\": \"arm\", \"flag\": [],", "flow.jsonc: screening question 'arm': unknown field 'flag'"},
      {"flow.jsonc", "\"fallbacks\": [", "\"fallback\": [], \"fallbacks\": [", "flow.jsonc: unknown field 'fallback'"},
      {"language.jsonc", "{ \"value\": \"shrugs\", \"category\": \"pull\",", "{ \"value\": \"shrugs\", \"categry\": \"pull\", \"category\": \"pull\",",
       "language.jsonc: exercise 'shrugs': unknown field 'categry'"},
      {"language.jsonc", "{ \"value\": \"burning\",", "{ \"value\": \"burning\", \"pattern\": [],",
       "language.jsonc: quality 'burning': unknown field 'pattern'"},
      {"language.jsonc", "\"min_score\": 3.0", "\"min_score\": 3.0, \"max_score\": 9", "language.jsonc: retrieval: unknown field 'max_score'"},
      {"language.jsonc", "\"today_hours\": 4", "\"today_hours\": 4, \"tomorrow\": 1", "language.jsonc: dates: unknown field 'tomorrow'"},
      {"quantities.jsonc", "{ \"words\": \"running\", \"before\": 1 }", "{ \"words\": \"running\", \"befor\": 1 }",
       "quantities.jsonc: temperature: cue 'running': unknown field 'befor'"},
      {"quantities.jsonc", "\"scale\": 10,", "\"scale\": 10, \"scales\": 10,", "quantities.jsonc: pain: unknown field 'scales'"},
      {"emoji.jsonc", "{ \"words\": \"fever\",", "{ \"word\": \"x\", \"words\": \"fever\",", "emoji.jsonc: emoji group 'fever': unknown field 'word'"},
  };
  for (const auto& c : cases) {
    INFO(c.file << ": " << c.to);
    KbCopy kb;
    kb.Replace(c.file, c.from, c.to);
    CHECK_THAT(kb.Error(), Catch::StartsWith(c.expected));
  }
}

// ---- references from flow.jsonc and intents.jsonc ---------------------------------------------

TEST_CASE("a tailoring rule's exercise category must be one language.jsonc defines", "[loader][bad_values]") {
  KbCopy kb;
  kb.Replace("flow.jsonc", "\"exercise_category\": \"pull\"", "\"exercise_category\": \"pulling\"");
  const auto error = kb.Error();
  CHECK_THAT(error, Catch::StartsWith("flow.jsonc: tailoring rule 'pull_form': exercise_category 'pulling'"));
  CHECK_THAT(error, Catch::Contains("language.jsonc"));
}

TEST_CASE("a category defined only by the data itself is enough", "[loader][bad_values]") {
  KbCopy kb;
  kb.Replace("language.jsonc", "{ \"value\": \"climbing\", \"category\": \"other\"", "{ \"value\": \"climbing\", \"category\": \"climb\"");
  kb.Replace("flow.jsonc", "\"exercise_category\": \"other\"", "\"exercise_category\": \"climb\"");
  CHECK_NOTHROW(LoadKnowledgeBase(kb.dir()));
}

TEST_CASE("a tailoring rule's quality must be a quality the slot extractor can produce", "[loader][bad_values]") {
  SECTION("quality") {
    KbCopy kb;
    kb.Replace("flow.jsonc", "\"quality\": \"sharp\"", "\"quality\": \"stabbing\"");
    const auto error = kb.Error();
    CHECK_THAT(error, Catch::StartsWith("flow.jsonc: tailoring rule 'sharp_quality': quality 'stabbing'"));
    CHECK_THAT(error, Catch::Contains("language.jsonc"));
  }
  SECTION("quality_not") {
    KbCopy kb;
    kb.Replace("flow.jsonc", "\"quality_not\": \"sharp\"", "\"quality_not\": \"Sharp\"");
    CHECK_THAT(kb.Error(), Catch::StartsWith("flow.jsonc: tailoring rule 'doms_window': quality_not 'Sharp'"));
  }
  SECTION("a quality removed from language.jsonc") {
    KbCopy kb;
    kb.Replace("language.jsonc", "{ \"value\": \"sharp\",", "{ \"value\": \"pointy\",");
    CHECK_THAT(kb.Error(), Catch::StartsWith("flow.jsonc: tailoring rule 'doms_window': quality_not 'sharp'"));
  }
}

TEST_CASE("a state_priority key must be a flow state", "[loader][bad_values]") {
  KbCopy kb;
  kb.Replace("intents.jsonc", "\"state_priority\": { \"screening\": 95 }", "\"state_priority\": { \"screenin\": 95 }");
  const auto error = kb.Error();
  CHECK_THAT(error, Catch::StartsWith("intents.jsonc: intent 'affirm': state_priority 'screenin'"));
  CHECK_THAT(error, Catch::Contains("flow.jsonc"));
}

// ---- hours_unknown ----------------------------------------------------------------------------

TEST_CASE("hours_unknown is loaded, and refused with hours_min or hours_max", "[loader][bad_values]") {
  SECTION("loaded") {
    KbCopy kb;
    kb.Replace("flow.jsonc", "{ \"id\": \"pull_form\",", "{ \"id\": \"pull_form\", \"hours_unknown\": true,");
    auto loaded = LoadKnowledgeBase(kb.dir());
    auto rule = [&](const std::string& id) {
      for (const auto& r : loaded->flow.tailoring) {
        if (r.id == id) return r;
      }
      FAIL("no tailoring rule " << id);
      return backcheck::knowledge::TailoringRule{};
    };
    CHECK(rule("pull_form").hours_unknown);
    CHECK_FALSE(rule("doms_window").hours_unknown);
  }
  SECTION("with hours_min") {
    KbCopy kb;
    kb.Replace("flow.jsonc", "\"hours_min\": 73", "\"hours_min\": 73, \"hours_unknown\": true");
    const auto error = kb.Error();
    CHECK_THAT(error, Catch::StartsWith("flow.jsonc: tailoring rule 'lingering':"));
    CHECK_THAT(error, Catch::Contains("hours_unknown"));
  }
  SECTION("with hours_max") {
    KbCopy kb;
    kb.Replace("flow.jsonc", "\"hours_max\": 11", "\"hours_max\": 11, \"hours_unknown\": true");
    CHECK_THAT(kb.Error(), Catch::StartsWith("flow.jsonc: tailoring rule 'too_soon_for_doms':"));
  }
}

// ---- flow texts -------------------------------------------------------------------------------

TEST_CASE("flow texts: the ones the dialogue reads are required, any other is refused", "[loader][bad_values]") {
  SECTION("a required text missing") {
    KbCopy kb;
    kb.Replace("flow.jsonc", "\"tailoring_intro\": \"Based on what you told me:\",", "");
    CHECK_THAT(kb.Error(), Catch::StartsWith("flow.jsonc: texts: missing text 'tailoring_intro'"));
  }
  SECTION("a text no code reads") {
    KbCopy kb;
    kb.Replace("flow.jsonc", "\"texts\": {", "\"texts\": {\n    \"goodbye_text\": \"Bye!\",");
    CHECK_THAT(kb.Error(), Catch::StartsWith("flow.jsonc: texts: unknown text 'goodbye_text'"));
  }
  SECTION("texts kept for the dialogue engine being rewritten are neither required nor refused") {
    KbCopy kb;
    kb.Replace("flow.jsonc", "\"escalated_prefix\": \"Your safety comes first.\",", "");
    auto loaded = LoadKnowledgeBase(kb.dir());
    CHECK(loaded->flow.Text("escalated_prefix").empty());
    CHECK_FALSE(loaded->flow.Text("extension_note").empty());
  }
}

// ---- rewrites that can never apply -------------------------------------------------------------

TEST_CASE("a rewrite the normaliser can never apply is a warning naming file and rewrite", "[loader][bad_values]") {
  KbCopy kb;
  kb.Replace("language.jsonc", "\"rewrites\": {", "\"rewrites\": {\n    \"lat-pull\": \"lat pull\", \"dont know\": \"do not know\",");
  std::shared_ptr<const backcheck::knowledge::KnowledgeBase> loaded;
  const std::string err = LoadCapturingStderr(kb, loaded);
  REQUIRE(loaded);
  CHECK_THAT(err, Catch::Contains("language.jsonc: rewrite 'lat-pull'"));
  CHECK_THAT(err, Catch::Contains("language.jsonc: rewrite 'dont know'"));
  auto count = [&](const std::string& needle) {
    return std::count_if(loaded->warnings.begin(), loaded->warnings.end(),
                         [&](const std::string& w) { return w.find(needle) != std::string::npos; });
  };
  CHECK(count("rewrite 'lat-pull'") == 1);
  CHECK(count("rewrite 'dont know'") == 1);
  // One line per warning on stderr.
  CHECK(static_cast<std::size_t>(std::count(err.begin(), err.end(), '\n')) == loaded->warnings.size());
}

TEST_CASE("rewrites the normaliser can apply are not warned about", "[loader][bad_values]") {
  KbCopy kb;
  kb.Replace("language.jsonc", "\"rewrites\": {", "\"rewrites\": {\n    \"latpull\": \"lat pull\", \"do not know\": \"unsure\", \"9/10\": \"nine\",");
  std::shared_ptr<const backcheck::knowledge::KnowledgeBase> loaded;
  const std::string err = LoadCapturingStderr(kb, loaded);
  REQUIRE(loaded);
  for (const auto& w : loaded->warnings) {
    CHECK_THAT(w, !Catch::Contains("'latpull'") && !Catch::Contains("'do not know'") && !Catch::Contains("'9/10'"));
  }
}
