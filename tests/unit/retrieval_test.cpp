#include <catch2/catch.hpp>

#include "knowledge/retrieval.hpp"
#include "test_support.hpp"

using backcheck::knowledge::PassageIndex;

namespace {
const PassageIndex& Index() {
  static PassageIndex index(backcheck::test::BuiltInKb()->article, backcheck::test::BuiltInKb()->language.stopwords);
  return index;
}
std::string BestSentence(const std::string& query) {
  auto hit = Index().Best(query);
  REQUIRE(hit);
  return backcheck::test::BuiltInKb()->article.sentences()[hit->sentence].text;
}
}  // namespace

TEST_CASE("retrieval finds the sentence that answers a query", "[retrieval]") {
  CHECK_THAT(BestSentence("levator scapulae taking over"), Catch::Contains("levator scapulae"));
  CHECK_THAT(BestSentence("eccentric loading lowering phase"), Catch::Contains("eccentric loading"));
  CHECK_THAT(BestSentence("blood flow muscle relaxation"), Catch::Contains("moist heat"));
}

TEST_CASE("suffixes are stemmed so word forms meet", "[retrieval]") {
  CHECK_THAT(BestSentence("stabilizing stabilize"), Catch::Contains("stabiliz"));
  CHECK(Index().Terms("rows rowing") == std::vector<std::string>{"row", "row"});
}

TEST_CASE("a query with no article word finds nothing", "[retrieval]") {
  CHECK_FALSE(Index().Best("xylophone quantum"));
  CHECK_FALSE(Index().Best("what is the of and"));  // stopwords only
  CHECK_FALSE(Index().Best(""));
}

TEST_CASE("unmatched messages below the threshold get the fallback, above it a cited passage", "[retrieval]") {
  auto gibberish = backcheck::test::FirstReply("flibber jabber wocky");
  CHECK(gibberish.intent == "fallback");
  CHECK(gibberish.sources.empty());
  auto passage = backcheck::test::FirstReply("tell me about eccentric loading in the lowering phase");
  CHECK(passage.intent != "fallback");
  REQUIRE_FALSE(passage.sources.empty());
  CHECK_THAT(passage.text, Catch::Contains("eccentric loading"));
}
