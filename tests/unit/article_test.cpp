#include <catch2/catch.hpp>

#include "knowledge/article.hpp"
#include "test_support.hpp"

using backcheck::knowledge::Article;

TEST_CASE("headings open sections and paragraphs split into sentences", "[article]") {
  auto a = Article::Parse("Title Here?\n\nFirst sentence. Second one!\nStill second? Third.\n\nA Heading\n\nLast sentence.");
  REQUIRE(a.sections().size() == 2);
  CHECK(a.sections()[0].heading == "Title Here?");
  CHECK(a.sections()[1].heading == "A Heading");
  REQUIRE(a.sentences().size() == 5);
  CHECK(a.sentences()[0].text == "First sentence.");
  CHECK(a.sentences()[1].text == "Second one!");
  CHECK(a.sentences()[2].text == "Still second?");
  CHECK(a.sentences()[4].text == "Last sentence.");
  CHECK(a.sentences()[4].section == 1);
}

TEST_CASE("a quote is found only in the body of the section named", "[article]") {
  auto a = Article::Parse("One\n\nAlpha beta gamma.\n\nTwo\n\nDelta epsilon.");
  CHECK(a.FindQuote(0, "beta gamma"));
  CHECK_FALSE(a.FindQuote(1, "beta gamma"));
  CHECK_FALSE(a.FindQuote(0, "Two"));  // a heading is not part of a section body
  auto span = a.FindQuote(1, "Delta");
  REQUIRE(span);
  CHECK(a.SentencesIn(span->first, span->second) == std::vector<std::size_t>{1});
}

TEST_CASE("the built-in article has its five sections and every sentence", "[article]") {
  const auto& a = backcheck::test::BuiltInKb()->article;
  REQUIRE(a.sections().size() == 5);
  CHECK(a.sections()[0].heading == "Why Does My Upper Back Hurt After Working Out?");
  CHECK(a.sections()[4].heading == "Warning Signs That Require Professional Attention");
  CHECK(a.sentences().size() == 33);
  CHECK(a.sentences().back().text ==
        "If the pain worsens when taking a deep breath, or if you experience shortness of breath, seek urgent medical "
        "consultation.");
}

TEST_CASE("text without a heading or without a sentence is refused", "[article]") {
  CHECK_THROWS_AS(Article::Parse(""), std::invalid_argument);
  CHECK_THROWS_AS(Article::Parse("A Heading Only"), std::invalid_argument);
  CHECK_THROWS_AS(Article::Parse("A long paragraph that ends with a period.\n\nHeading"), std::invalid_argument);
}
