// Concepts (issue 12, item 5): dialog/safety/concepts.hpp over a small lexicon written here, so
// each rule of term matching is seen on its own: stems, "*", "=word", no spanning punctuation,
// idioms, the longest term at a position, and words no term has.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "dialog/safety/concepts.hpp"
#include "dialog/text/stems.hpp"

using backcheck::dialog::ConceptMatcher;
using backcheck::dialog::ConceptMention;
using backcheck::dialog::IdiomMention;
using backcheck::dialog::TextToken;
using backcheck::dialog::Stem;
using backcheck::dialog::Tokenise;
using backcheck::knowledge::Concept;
using backcheck::knowledge::RedFlagLexicon;

namespace {

const RedFlagLexicon& Lexicon() {
  static const RedFlagLexicon lex = [] {
    RedFlagLexicon l;
    l.concepts = {
        Concept{"TINGLE", {"tingle", "pins and needles"}},                 // 0
        Concept{"BLOOD", {"=blood", "=bleeding"}},                        // 1
        Concept{"SHIVER", {"=chills", "shiver"}},                         // 2
        Concept{"PRESSURE", {"weight", "weight on * chest", "band"}},     // 3
        Concept{"BREATH", {"breathe"}},                                   // 4
        Concept{"NUMB", {"numb"}},                                        // 5
        Concept{"COUGH", {"cough", "cough up"}},                          // 6
    };
    l.idioms = {"blood pressure", "took my breath away", "heavy weight"};
    return l;
  }();
  return lex;
}

const ConceptMatcher& M() {
  static const ConceptMatcher m(Lexicon(), nullptr);
  return m;
}

struct Found {
  std::vector<ConceptMention> concepts;
  std::vector<IdiomMention> idioms;
  std::vector<TextToken> tokens;
};

Found Find(const std::string& text) {
  Found f;
  f.tokens = Tokenise(text);
  M().Find(text, f.tokens, f.concepts, &f.idioms);
  return f;
}

// "ID:term index:words" per mention, in order: "TINGLE:0:tingling".
std::vector<std::string> Show(const std::string& text) {
  const Found f = Find(text);
  std::vector<std::string> out;
  for (const auto& c : f.concepts) {
    const std::size_t begin = f.tokens[c.first].begin, end = f.tokens[c.last].end;
    out.push_back(Lexicon().concepts[c.id].id + ":" + std::to_string(c.term) + ":" + text.substr(begin, end - begin));
  }
  return out;
}

using V = std::vector<std::string>;

}  // namespace

TEST_CASE("terms match on stems: one entry finds every regular form", "[concepts]") {
  CHECK(Show("tingle") == V{"TINGLE:0:tingle"});
  CHECK(Show("my fingers are tingling") == V{"TINGLE:0:tingling"});
  CHECK(Show("it tingles") == V{"TINGLE:0:tingles"});
  CHECK(Show("it tingled") == V{"TINGLE:0:tingled"});
  CHECK(Show("it is hard to breathe") == V{"BREATH:0:breathe"});
  CHECK(Show("breathing hurts") == V{"BREATH:0:breathing"});
  CHECK(Show("numbness in my hand") == V{"NUMB:0:numbness"});
  CHECK(Show("coughing all night") == V{"COUGH:0:coughing"});
  // Each word of a multi-word term on its stem too.
  CHECK(Show("coughed up stuff") == V{"COUGH:1:coughed up"});
}

TEST_CASE("'*' in a term is any one word, and exactly one", "[concepts]") {
  CHECK(Show("a weight on my chest") == V{"PRESSURE:1:weight on my chest"});
  CHECK(Show("a weight on the chest") == V{"PRESSURE:1:weight on the chest"});
  // No word, or two words, where '*' stands: only the shorter term "weight" is found.
  CHECK(Show("a weight on chest") == V{"PRESSURE:0:weight"});
  CHECK(Show("a weight on my whole chest") == V{"PRESSURE:0:weight"});
}

TEST_CASE("'=word' matches only that form, not the others of its stem", "[concepts]") {
  CHECK(Show("i have chills") == V{"SHIVER:0:chills"});
  // "chill", "chilling", "chilled" share the stem of "chills", but "=chills" is that form only.
  for (const char* w : {"chill", "chilling", "chilled"}) {
    INFO(w);
    CHECK(Stem(w) == Stem("chills"));
    CHECK(Show(std::string("just ") + w).empty());
  }
  CHECK(Show("blood") == V{"BLOOD:0:blood"});
  CHECK(Show("bleeding") == V{"BLOOD:1:bleeding"});
  CHECK(Show("bloods").empty());
  CHECK(Show("bleeds").empty());
  // The plain term of the same concept still works on stems.
  CHECK(Show("i keep shivering") == V{"SHIVER:1:shivering"});
}

TEST_CASE("a multi-word term does not span punctuation", "[concepts]") {
  CHECK(Show("pins and needles") == V{"TINGLE:1:pins and needles"});
  CHECK(Show("pins, and needles").empty());
  CHECK(Show("pins and. needles").empty());
  CHECK(Show("a weight on my. chest") == V{"PRESSURE:0:weight"});
  CHECK(Show("a weight on - chest") == V{"PRESSURE:0:weight"});
  CHECK(Show("cough, up") == V{"COUGH:0:cough"});
}

TEST_CASE("an idiom removes the concept mentions it overlaps, and only those", "[concepts]") {
  const Found f = Find("my blood pressure is fine");
  CHECK(f.concepts.empty());
  REQUIRE(f.idioms.size() == 1);
  CHECK(Lexicon().idioms[f.idioms[0].idiom] == "blood pressure");
  CHECK(f.idioms[0].first == 1);
  CHECK(f.idioms[0].last == 2);

  CHECK(Show("my blood pressure is fine but there is blood in my spit") == V{"BLOOD:0:blood"});
  CHECK(Find("my blood pressure is fine but there is blood in my spit").concepts[0].first == 8);
  CHECK(Show("the view took my breath away").empty());  // "breath" shares the stem of "breathe"
  CHECK(Show("i can hardly breathe") == V{"BREATH:0:breathe"});
  CHECK(Show("lifting a heavy weight").empty());
  CHECK(Show("a heavy weight on my chest").empty());  // the idiom overlaps the longer term as well
  // An idiom cut by punctuation is not an idiom.
  CHECK(Show("high blood. pressure in my chest") == V{"BLOOD:0:blood"});
}

TEST_CASE("of one concept's terms starting at one word, the longest wins", "[concepts]") {
  const Found f = Find("weight on my chest");
  REQUIRE(f.concepts.size() == 1);
  CHECK(f.concepts[0].term == 1);
  CHECK(f.concepts[0].first == 0);
  CHECK(f.concepts[0].last == 3);
  CHECK(Show("i cough up a lot") == V{"COUGH:1:cough up"});
}

TEST_CASE("several concepts in one message, in token order", "[concepts]") {
  CHECK(Show("coughing and blood, then chills and pins and needles") ==
        V{"COUGH:0:coughing", "BLOOD:0:blood", "SHIVER:0:chills", "TINGLE:1:pins and needles"});
}

TEST_CASE("a word no term has finds nothing", "[concepts]") {
  CHECK(Show("hello there").empty());
  CHECK(Show("my upper back is sore after rows").empty());
  CHECK(Show("tangle number bread").empty());  // near misses of term stems
  CHECK(Show("38 100.4 9/10").empty());
  CHECK(Show("").empty());
  CHECK(Show(" , . ? ").empty());
}

TEST_CASE("Find appends to what the caller holds", "[concepts]") {
  const std::string a = "numb", b = "tingling";
  std::vector<ConceptMention> out;
  M().Find(a, Tokenise(a), out);
  M().Find(b, Tokenise(b), out);
  REQUIRE(out.size() == 2);
  CHECK(Lexicon().concepts[out[0].id].id == "NUMB");
  CHECK(Lexicon().concepts[out[1].id].id == "TINGLE");
}

TEST_CASE("Tokenise splits words at spaces and punctuation", "[concepts]") {
  const std::string text = "fever? no, chest-pain;it hurts: now!  ok.";
  const auto tokens = Tokenise(text);
  std::vector<std::string> words;
  std::vector<bool> punct;
  for (const auto& t : tokens) {
    words.push_back(text.substr(t.begin, t.end - t.begin));
    punct.push_back(t.punct);
  }
  CHECK(words == V{"fever", "?", "no", ",", "chest", "-", "pain", ";", "it", "hurts", ":", "now", "!", "ok", "."});
  CHECK(punct == std::vector<bool>{false, true, false, true, false, true, false, true, false, false, true, false,
                                   true, false, true});
  CHECK(Tokenise("").empty());
  CHECK(Tokenise("   ").empty());
  // Other characters stay inside words: digits with '.' and '/', apostrophes, non-ASCII.
  const std::string t2 = "temp 38.5 pain 9/10 café";
  std::vector<std::string> w2;
  for (const auto& t : Tokenise(t2)) w2.push_back(t2.substr(t.begin, t.end - t.begin));
  CHECK(w2 == V{"temp", "38", ".", "5", "pain", "9/10", "café"});
}
