// Spelling that tolerates people (issue 12, item 1): dialog/text/spelling.hpp and its place in the
// normaliser.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "dialog/text/spelling.hpp"
#include "test_support.hpp"

using backcheck::dialog::AddPatternWords;
using backcheck::dialog::DomainWords;
using backcheck::dialog::EditDistance;
using backcheck::dialog::Engine;
using backcheck::dialog::EngineOptions;
using backcheck::dialog::Speller;
using backcheck::dialog::SpellerWords;
using backcheck::test::BuiltInKb;
using backcheck::test::SelfFlags;
using backcheck::test::TestEngine;

namespace {

const Speller& BuiltInSpeller() {
  static const Speller speller(DomainWords(*BuiltInKb()), Speller::DefaultDictionaries());
  return speller;
}

std::string Fix(const std::string& token) {
  auto fixed = BuiltInSpeller().Correct(token);
  return fixed ? std::string(*fixed) : std::string("(none)");
}

std::string N(const std::string& text) { return TestEngine().normaliser().Normalise(text); }

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// A word list of our own, in a temporary file removed when the test ends.
struct TempDictionary {
  std::string path;
  explicit TempDictionary(const std::vector<std::string>& words) {
    char name[] = "/tmp/backcheck-dict-XXXXXX";
    int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    close(fd);
    path = name;
    std::ofstream out(path);
    for (const auto& w : words) out << w << "\n";
  }
  ~TempDictionary() { std::remove(path.c_str()); }
};

}  // namespace

TEST_CASE("the word lists are installed, so the built-in speller is active", "[spelling]") {
  // scripts/setup installs wamerican and wbritish; without them every other test here is moot.
  REQUIRE(BuiltInSpeller().active());
  CHECK(BuiltInSpeller().unreadable().empty());
  CHECK(TestEngine().normaliser().speller() != nullptr);
}

TEST_CASE("edit distance is Damerau-Levenshtein: a transposition counts one", "[spelling]") {
  CHECK(EditDistance("numbness", "numbness", 2) == 0);
  CHECK(EditDistance("numbnes", "numbness", 2) == 1);     // dropped letter
  CHECK(EditDistance("bloood", "blood", 2) == 1);         // doubled letter
  CHECK(EditDistance("fevar", "fever", 2) == 1);          // substitution
  CHECK(EditDistance("chset", "chest", 2) == 1);          // transposition
  CHECK(EditDistance("tinglign", "tingling", 2) == 1);    // transposition at the end
  CHECK(EditDistance("brethng", "breathing", 2) == 2);
  CHECK(EditDistance("abc", "xyz", 1) == 2);              // beyond max: max + 1
  CHECK(EditDistance("numb", "numbness", 2) == 3);        // length alone rules it out
  CHECK(EditDistance("", "ab", 2) == 2);
}

TEST_CASE("the vocabulary is the literal words of the red-flag lexicon", "[spelling]") {
  SECTION("letter runs of a pattern, escapes and classes are not letters") {
    SpellerWords w;
    AddPatternWords("\\b(cannot|trouble|difficulty) (\\w+ )?breathe\\b[a-z]+ing gett?ing \\w+ness", w);
    CHECK(Contains(w.vocabulary, "cannot"));
    CHECK(Contains(w.vocabulary, "trouble"));  // not "btrouble": \b is an escape
    CHECK(Contains(w.vocabulary, "difficulty"));
    CHECK(Contains(w.vocabulary, "breathe"));
    CHECK(w.vocabulary.size() == 4);  // "ing" and "ness" end words we cannot see the start of
    CHECK(w.stems == std::vector<std::string>{"gett"});  // "gett?ing": the word goes on
  }
  SECTION("a group of suffixes spells its words out") {
    SpellerWords w;
    AddPatternWords("\\bnumb(ness|ed|er|ing|ish)?\\b", w);
    for (const char* word : {"numbness", "numbed", "number", "numbing", "numbish", "numb"}) {
      INFO(word);
      CHECK(Contains(w.vocabulary, word));
    }
    CHECK_FALSE(Contains(w.vocabulary, "ness"));
    SpellerWords t;
    AddPatternWords("\\btingl(e|es|ed|ing|y)\\b", t);
    CHECK(Contains(t.vocabulary, "tingling"));
    CHECK_FALSE(Contains(t.vocabulary, "tingl"));  // no "?": the bare stem is not matched
  }
  SECTION("an optional last letter gives both words; a run the pattern goes on after is a stem") {
    SpellerWords w;
    AddPatternWords("\\b(fingers?|shocks?)\\b \\bcough\\w*\\b", w);
    CHECK(Contains(w.vocabulary, "fingers"));
    CHECK(Contains(w.vocabulary, "finger"));
    CHECK(Contains(w.vocabulary, "shock"));
    CHECK(Contains(w.stems, "cough"));
    CHECK_FALSE(Contains(w.vocabulary, "cough"));
  }
  SECTION("words shorter than 4 letters are not vocabulary") {
    SpellerWords w;
    AddPatternWords("\\b(arm|arms|leg)\\b", w);
    CHECK(w.vocabulary == std::vector<std::string>{"arms"});
  }
  SECTION("the built-in lexicon: patterns, requires, except, cues, and English words that continue a stem") {
    const Speller& s = BuiltInSpeller();
    CHECK(s.IsTarget("numbness"));     // pattern
    CHECK(s.IsTarget("unintended"));   // requires
    CHECK(s.IsTarget("trapezius"));    // except
    CHECK(s.IsTarget("girlfriend"));   // cue
    CHECK(s.IsTarget("coughing"));     // cough\w* and the word lists
    CHECK(s.IsTarget("bloody"));       // blood\w*
    CHECK_FALSE(s.IsTarget("tingl"));  // a stem that is no word
    CHECK_FALSE(s.IsTarget("ness"));
    CHECK_FALSE(s.IsTarget("shoulder blade"));
  }
}

TEST_CASE("a real English word is never corrected into a symptom word", "[spelling]") {
  const Speller& s = BuiltInSpeller();
  // Each real word, and the symptom word it is within reach of: the test is only worth something
  // while the symptom word is a target and the two are that close.
  const std::vector<std::pair<const char*, const char*>> close = {
      {"numbers", "numbness"}, {"number", "numbed"},    {"dumbness", "numbness"}, {"dumb", "numb"},
      {"breath", "breathe"},   {"breadth", "breath"},   {"tingle", "tingly"},     {"tinkling", "tingling"},
      {"jingling", "tingling"}, {"mingling", "tingling"}, {"never", "fever"},     {"lever", "fever"},
      {"rough", "cough"},      {"tough", "cough"},      {"couch", "cough"},       {"chess", "chest"},
      {"crest", "chest"},      {"cheat", "chest"},      {"week", "weak"},         {"beak", "weak"},
      {"hills", "chills"},     {"ladder", "bladder"},   {"blander", "bladder"},   {"sliver", "shiver"},
      {"shaver", "shiver"},    {"flood", "blood"},      {"bloom", "blood"},       {"brood", "blood"},
      {"roughing", "coughing"}, {"sweets", "sweats"},   {"army", "arms"},         {"bands", "hands"},
      {"shouting", "shooting"}, {"reading", "spreading"}, {"sport", "short"},     {"blade", "blades"},
  };
  for (const auto& [real, symptom] : close) {
    INFO(real << " (close to " << symptom << ")");
    REQUIRE(s.IsTarget(symptom));
    const std::string_view r(real);
    const int max = r.size() >= Speller::kLongLetters ? 2 : 1;
    REQUIRE(EditDistance(r, symptom, max) <= max);
    CHECK(s.IsKnown(r));
    CHECK_FALSE(s.Correct(r).has_value());
  }
  // Through the normaliser, in a sentence.
  CHECK(N("the numbers on the bar were heavy") == "the numbers on the bar were heavy");
  CHECK(N("take a deep breath") == "take a deep breath");
  CHECK(N("a tingle of excitement") == "a tingle of excitement");
  CHECK(N("rough week, the couch is calling") == "rough week, the couch is calling");
  // The other data's words are never corrected either: DOMS is an intent's word.
  CHECK(N("is this doms") == "is this doms");
}

TEST_CASE("typos within reach of a symptom word are read as that word", "[spelling]") {
  SECTION("dropped letters") {
    CHECK(Fix("numbnss") == "numbness");
    CHECK(Fix("breathng") == "breathing");
    CHECK(Fix("chst") == "chest");
    CHECK(Fix("fevr") == "fever");
    CHECK(Fix("shortnes") == "shortness");
  }
  SECTION("doubled letters and insertions") {
    CHECK(Fix("numbb") == "numb");
    CHECK(Fix("bloood") == "blood");
    CHECK(Fix("weakk") == "weak");
    CHECK(Fix("shivvering") == "shivering");
    CHECK(Fix("controll") == "control");
  }
  SECTION("substitutions") {
    CHECK(Fix("tinglinh") == "tingling");
    CHECK(Fix("brwathing") == "breathing");
    CHECK(Fix("bladdr") == "bladder");
    CHECK(Fix("pian") == "pain");  // a transposition, too
  }
  SECTION("transpositions") {
    CHECK(Fix("chset") == "chest");
    CHECK(Fix("tinglign") == "tingling");
    CHECK(Fix("myslef") == "myself");
    CHECK(Fix("wieght") == "weight");
  }
  SECTION("two edits only for tokens of 7 letters or more") {
    CHECK(Fix("brethng") == "breathing");        // 7 letters, 2 edits
    CHECK(Fix("coghing") == "coughing");         // 7 letters, 1 edit
    CHECK(Fix("temprture") == "temperature");    // 9 letters, 2 edits
    CHECK(Fix("breathlesness") == "breathlessness");
    CHECK(Fix("cughng") == "(none)");            // 6 letters, 2 edits from coughing
    CHECK(Fix("fvrr") == "(none)");              // 4 letters, 2 edits from fever
    CHECK(Fix("blud") != "blood");               // 2 edits from blood (it may be 1 from another word)
  }
  SECTION("letters drawn out: squeezed to a target, or left alone when they draw out a real word") {
    CHECK(Fix("blooood") == "blood");
    CHECK(Fix("chilllls") == "chills");
    CHECK(Fix("tingllling") == "tingling");
    CHECK(Fix("numbbbb") == "numb");
    CHECK(Fix("hiii") == "(none)");   // not "hiit"
    CHECK(Fix("sooo") == "(none)");
    CHECK(Fix("yesss") == "(none)");
    CHECK(Fix("feeeel") == "feel");   // a target drawn out is that target
    CHECK(Fix("noooo") == "(none)");
    CHECK(Fix("ch" + std::string(100000, 'i') + "lls") == "chills");  // and in linear time
  }
  SECTION("tokens left alone: short, digits, non-ASCII, upper case, not close to anything") {
    CHECK(Fix("fvr") == "(none)");                // 3 letters
    CHECK(Fix("fevr1") == "(none)");              // a digit
    CHECK(Fix("f\xC3\xA8vr") == "(none)");       // non-ASCII
    CHECK(Fix("FEVR") == "(none)");               // tokens reach the speller lower-cased
    CHECK(Fix("xqzvwk") == "(none)");
    CHECK(Fix("numbness") == "(none)");           // already right
  }
}

TEST_CASE("ties go to the smaller distance, then the token's first letter; a full tie is no guess", "[spelling]") {
  TempDictionary dict({"apple", "hello"});
  SpellerWords words;
  words.vocabulary = {"cart", "card", "bard", "carts", "tingle", "tingly", "weak", "week"};
  const Speller s(words, {dict.path});
  REQUIRE(s.active());
  auto fix = [&](const Speller& sp, const char* t) {
    auto f = sp.Correct(t);
    return f ? std::string(*f) : std::string("(none)");
  };
  CHECK(fix(s, "cardd") == "card");  // card at 1, cart at 2
  // Equally close by every rule: two different words ("hirting": "hitting" or "hurting"?) are a
  // guess, so the token is left alone; forms of one word (the same first four letters) are not.
  CHECK(fix(s, "carx") == "(none)");    // card and cart at 1, both keep the "c"
  CHECK(fix(s, "xard") == "(none)");    // bard and card at 1, neither keeps the "x"
  CHECK(fix(s, "tinglx") == "tingle");  // tingle and tingly at 1, one word: byte order
  CHECK(fix(s, "weeak") == "weak");     // weak and week at 1: "weak" drops the doubled "e"
  CHECK(fix(s, "bart") == "bard");   // bard and cart at 1: bard keeps the "b"
  CHECK(fix(s, "cartss") == "carts");
  // The same answers whatever order the vocabulary comes in.
  SpellerWords reversed;
  reversed.vocabulary = {"carts", "bard", "card", "cart"};
  const Speller r(reversed, {dict.path});
  for (const char* t : {"cardd", "carx", "xard", "bart", "cartss"}) {
    INFO(t);
    CHECK(fix(r, t) == fix(s, t));
  }
  // An English word of the list is never corrected; known words neither.
  words.known = {"carz"};
  const Speller k(words, {dict.path});
  CHECK(fix(k, "carz") == "(none)");
}

TEST_CASE("without the word lists the speller corrects nothing and the engine still works", "[spelling]") {
  SECTION("a missing list makes the speller inactive") {
    const Speller s(DomainWords(*BuiltInKb()), {"/nonexistent/american-english"});
    CHECK_FALSE(s.active());
    CHECK(s.unreadable() == std::vector<std::string>{"/nonexistent/american-english"});
    CHECK_FALSE(s.Correct("numbnss").has_value());
    CHECK_FALSE(s.Correct("chset").has_value());
  }
  SECTION("one list of two missing is missing too: no guessing with half the English") {
    std::vector<std::string> lists = Speller::DefaultDictionaries();
    lists.push_back("/nonexistent/british-english");
    const Speller s(DomainWords(*BuiltInKb()), lists);
    CHECK_FALSE(s.active());
    CHECK_FALSE(s.Correct("numbnss").has_value());
  }
  SECTION("an empty list of lists") {
    const Speller s(DomainWords(*BuiltInKb()), {});
    CHECK_FALSE(s.active());
  }
  SECTION("the engine without them: the table still fixes its typos, nothing else is guessed") {
    EngineOptions options;
    options.dictionaries = {"/nonexistent/american-english", "/nonexistent/british-english"};
    const Engine engine(BuiltInKb(), options);
    CHECK(engine.normaliser().speller() == nullptr);
    CHECK(engine.normaliser().Normalise("my fingers are tinglign") == "my fingers are tinglign");
    CHECK(engine.normaliser().Normalise("my hand is numm") == "my hand is numb");  // the table
    auto reply = engine.Respond(engine.Start(), "my fingers are tingling").reply;
    CHECK(reply.urgency == backcheck::knowledge::Urgency::kUrgent);
  }
  SECTION("spelling can be switched off") {
    EngineOptions options;
    options.spelling = false;
    const Engine engine(BuiltInKb(), options);
    CHECK(engine.normaliser().speller() == nullptr);
    CHECK(engine.normaliser().Normalise("coghing up blod") == "coghing up blod");
  }
}

TEST_CASE("the normaliser corrects after the table and before the phrase rewrites", "[spelling]") {
  CHECK(N("my fingers are tinglign") == "my fingers are tingling");
  CHECK(N("Coghing up BLOOOD!!") == "coughing up blood!");
  CHECK(N("i cant brreath") == "i cannot breathe");         // corrected, then "cannot breath"
  CHECK(N("numbnes in my hand") == "numbness in my hand");  // the table's, as before
  CHECK(N("my chset's tight") == "my chest tight");         // the possessive goes first
  CHECK(N("pian in my left-arm") == "pain in my left arm");
  CHECK(N("fevr today") == "fever today");
  CHECK(N("fevr39") == "fevr39");  // digits: left alone
}

TEST_CASE("words of links and e-mail addresses are not corrected", "[spelling]") {
  CHECK(N("see https://example.com/numbnss") == "see https: example. com numbnss");
  CHECK(N("www.chset.org has it") == "www. chset. org has it");
  CHECK(N("mail coghing@example.org") == "mail coghing example. org");
  CHECK(N("reddit.com/r/numbnss") == "reddit. com r numbnss");
  CHECK(N("numbnss, see http://x.org") == "numbness, see http: x. org");
}

TEST_CASE("the red-flag detector sees the corrected words", "[spelling]") {
  CHECK(SelfFlags("my fingers are tinglign") == std::vector<std::string>{"tingling"});
  CHECK(SelfFlags("i keep coghing up blod") == std::vector<std::string>{"coughing_blood"});
  CHECK(SelfFlags("chset pian since this morning") == std::vector<std::string>{"chest_pain"});
  CHECK(SelfFlags("no fevr") == std::vector<std::string>{});  // corrected, then negated
}
