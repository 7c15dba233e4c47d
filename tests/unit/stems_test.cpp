// Word forms without listing them (issue 12, item 2): dialog/text/stems.hpp. The concept lexicon
// writes one entry per word ("tingle", "breathe", "numb") and relies on Stem() to give every form
// a person writes the same stem, and on Forms() to list those forms up front.
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "dialog/text/stems.hpp"

using backcheck::dialog::Forms;
using backcheck::dialog::Stem;

namespace {

bool Has(const std::vector<std::string>& forms, const std::string& f) {
  return std::find(forms.begin(), forms.end(), f) != forms.end();
}

}  // namespace

TEST_CASE("the forms the lexicon relies on share one stem", "[stems]") {
  // concepts.jsonc TINGLE lists "tingle" and expects the rest ("tingly" through Forms(), below).
  for (const char* w : {"tingles", "tingled", "tingling"}) {
    INFO(w);
    CHECK(Stem(w) == Stem("tingle"));
  }
  // BREATH: the noun and the verb are one idea.
  for (const char* w : {"breathe", "breathing", "breathes"}) {
    INFO(w);
    CHECK(Stem(w) == Stem("breath"));
  }
  // NUMB: "numbness" is the same symptom.
  CHECK(Stem("numbness") == Stem("numb"));
  CHECK(Stem("numbed") == Stem("numb"));
  // Others the lexicon leans on: COUGH, SHIVER, WEAK.
  CHECK(Stem("coughing") == Stem("cough"));
  CHECK(Stem("coughs") == Stem("cough"));
  CHECK(Stem("shivering") == Stem("shiver"));
  CHECK(Stem("weakness") == Stem("weak"));
}

// Porter2 strips "-ly" after a 'g': "tingly" stems to "ting", not "tingl", which is why Forms()
// adds the "-ly" adjective of a "-le" word itself (checked below), and why a lexicon term written
// "tingly" would also find "ting" and "tinged" (concepts.jsonc lists "tingle" only).
TEST_CASE("tingly does not share the Porter2 stem of tingle, but tinged shares that of tingly", "[stems]") {
  CHECK(Stem("tingly") != Stem("tingle"));
  CHECK(Stem("tinged") == Stem("tingly"));
}

TEST_CASE("words of different ideas keep different stems", "[stems]") {
  // A stemmer that merged these would turn a harmless word into a symptom.
  CHECK(Stem("tingle") != Stem("tangle"));
  CHECK(Stem("numb") != Stem("number"));
  CHECK(Stem("breath") != Stem("bread"));
  CHECK(Stem("chills") != Stem("chili"));
}

TEST_CASE("non-ASCII, digits and upper case are returned as they are", "[stems]") {
  CHECK(Stem("38") == "38");
  CHECK(Stem("100.4") == "100.4");
  CHECK(Stem("9/10") == "9/10");
  CHECK(Stem("5k") == "5k");
  CHECK(Stem("café") == "café");
  CHECK(Stem("naïve") == "naïve");
  CHECK(Stem("🤒") == "🤒");
  CHECK(Stem("Tingling") == "Tingling");  // only lower-case ASCII is stemmed (text is folded first)
  CHECK(Stem("") == "");
}

TEST_CASE("Forms lists the regular inflections that share the stem", "[stems]") {
  const auto tingle = Forms("tingle");
  REQUIRE(!tingle.empty());
  CHECK(tingle.front() == "tingle");
  for (const char* f : {"tingles", "tingled", "tingling"}) {
    INFO(f);
    CHECK(Has(tingle, f));
  }
  const auto breathe = Forms("breathe");
  for (const char* f : {"breathe", "breathes", "breathed", "breathing"}) {
    INFO(f);
    CHECK(Has(breathe, f));
  }
  const auto numb = Forms("numb");
  CHECK(Has(numb, "numbness"));
  CHECK(Has(numb, "numbed"));
  const auto cough = Forms("cough");
  for (const char* f : {"coughs", "coughed", "coughing"}) {
    INFO(f);
    CHECK(Has(cough, f));
  }
  // A doubled final consonant: "throb" -> "throbbing".
  CHECK(Has(Forms("throb"), "throbbing"));
}

TEST_CASE("Forms lists no form with another stem, and no duplicates", "[stems]") {
  for (const char* w : {"tingle", "breathe", "breath", "numb", "cough", "shiver", "weak", "throb", "ache",
                        "spit", "bleed", "sweat", "dizzy", "heavy", "tight", "crush", "fall", "slip"}) {
    const auto forms = Forms(w);
    INFO(w);
    CHECK(Has(forms, w));
    for (const auto& f : forms) {
      INFO(f);
      // The one exception: the "-ly" adjective of a "-le" word (tingle -> tingly, stem "ting").
      if (std::string_view(w).ends_with("le") && f == std::string(w).substr(0, std::string_view(w).size() - 1) + "y") continue;
      CHECK(Stem(f) == Stem(w));
      CHECK(std::count(forms.begin(), forms.end(), f) == 1);
    }
  }
  // Irregular forms are not guessed: a lexicon lists them ("bled", "fell").
  CHECK(!Has(Forms("bleed"), "bled"));
  CHECK(!Has(Forms("fall"), "fell"));
  CHECK(Has(Forms("tingle"), "tingly"));
  CHECK(Has(Forms("prickle"), "prickly"));
}

TEST_CASE("Forms of a word that is not lower-case ASCII is the word alone", "[stems]") {
  CHECK(Forms("38") == std::vector<std::string>{"38"});
  CHECK(Forms("café") == std::vector<std::string>{"café"});
}

// The concept matcher skips the stemmer for a word whose StemKey no term's stem has: that is only
// safe if stemming never moves a word to another key. Checked over every lower-case word of
// Debian's English lists plus common inflections of them (what a message's words are made of).
TEST_CASE("a word's stem keeps the word's StemKey", "[stems]") {
  using backcheck::dialog::StemKey;
  using backcheck::dialog::StemsOutsideItsKey;
  std::size_t checked = 0;
  std::vector<std::string> moved;
  for (const char* path : {"/usr/share/dict/american-english", "/usr/share/dict/british-english"}) {
    std::ifstream in(path);
    std::string word;
    while (std::getline(in, word)) {
      if (word.size() < 3 || !std::all_of(word.begin(), word.end(), [](char c) { return c >= 'a' && c <= 'z'; })) {
        continue;
      }
      for (const std::string& w : {word, word + "s", word + "ing", word + "ed", word + "ly", word + "y"}) {
        const std::string stem = Stem(w);
        ++checked;
        if (stem.size() < 3 || (stem.size() == 3 && stem[2] == 'e')) {  // keyed by its start only
          const std::string start = stem.substr(0, std::min<std::size_t>(stem.size(), 2));
          if (StemKey(w) / (stem.size() == 1 ? 729 : 27) != StemKey(start) / (stem.size() == 1 ? 729 : 27)) {
            moved.push_back(w + " -> " + stem);
          }
        } else if (StemKey(stem) != StemKey(w) && !StemsOutsideItsKey(w)) {
          moved.push_back(w + " -> " + stem);
        }
      }
    }
  }
  std::string all;
  for (const auto& m : moved) all += m + "; ";
  INFO(moved.size() << " words: " << all);
  CHECK(checked > 100000);  // the lists were read
  CHECK(moved.empty());
  CHECK(StemsOutsideItsKey("dying"));
  CHECK(StemKey(Stem("dying")) != StemKey("dying"));
}
