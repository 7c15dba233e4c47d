// Text normalisation (SPEC section 3): what every matcher sees instead of the raw message.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "test_support.hpp"

using backcheck::test::TestEngine;

namespace {

std::string N(const std::string& text) { return TestEngine().normaliser().Normalise(text); }

// True when `s` is well-formed UTF-8 (no stray continuation bytes, no truncated sequences,
// no overlong forms, no surrogates, nothing above U+10FFFF).
bool ValidUtf8(const std::string& s) {
  std::size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int extra;
    char32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= s.size()) return false;
    for (int k = 1; k <= extra; ++k) {
      unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    static const char32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

}  // namespace

TEST_CASE("the validity check used below tells valid from invalid UTF-8", "[normaliser]") {
  CHECK(ValidUtf8("plain"));
  CHECK(ValidUtf8("caf\xC3\xA9 \xE2\x80\x99 \xF0\x9F\x98\x80"));
  CHECK_FALSE(ValidUtf8("\xFF"));
  CHECK_FALSE(ValidUtf8("\xC3"));
  CHECK_FALSE(ValidUtf8("a\x80"));
  CHECK_FALSE(ValidUtf8("\xE2\x80"));
  CHECK_FALSE(ValidUtf8("\xC0\xAF"));  // overlong "/"
  CHECK_FALSE(ValidUtf8("\xED\xA0\x80"));  // surrogate
}

TEST_CASE("upper case becomes lower case", "[normaliser]") {
  CHECK(N("MY UPPER BACK HURTS") == "my upper back hurts");
  CHECK(N("What Is DOMS") == "what is doms");
}

TEST_CASE("Unicode quotes and dashes fold to ASCII", "[normaliser]") {
  // Curly apostrophe: the contraction is still recognised.
  CHECK(N("I can’t sleep") == "i cannot sleep");
  CHECK(N("don’t") == "do not");
  CHECK(N("I’m sore") == "i am sore");
  // Curly double quotes disappear like straight ones.
  CHECK(N("“shrugging”") == "shrugging");
  CHECK(N("\"shrugging\"") == "shrugging");
  // En and em dashes between words: a dash token; inside a word: a split.
  CHECK(N("sore – really sore") == "sore - really sore");
  CHECK(N("sore — really sore") == "sore - really sore");
  CHECK(N("breath—and") == "breath and");
  CHECK(N("pull–downs") == "pull downs");
  // The header's own example.
  CHECK(N("I  can’t breath—and my Sholder-blades HURT!") ==
        "i cannot breathe and my shoulder blades hurt!");
}

TEST_CASE("non-breaking spaces and runs of whitespace collapse to one space", "[normaliser]") {
  CHECK(N("upper back") == "upper back");
  CHECK(N("upper   back") == "upper back");
  CHECK(N("  upper \t\t back \n\r pain   ") == "upper back pain");
  CHECK(N("a\n\nb") == "a b");
}

TEST_CASE("hyphenated words are split", "[normaliser]") {
  CHECK(N("Shoulder-blades") == "shoulder blades");
  CHECK(N("Shoulder-blades") == N("shoulder blades"));
  CHECK(N("sholder blades") == N("shoulder blades"));
  CHECK(N("pull-downs") == "pull downs");
  CHECK(N("pins-and-needles") == "pins and needles");
  CHECK(N("upper-back") == "upper back");
}

TEST_CASE("contractions expand, with and without the apostrophe", "[normaliser]") {
  CHECK(N("can't") == "cannot");
  CHECK(N("cant") == "cannot");
  CHECK(N("can not") == "cannot");
  CHECK(N("I'm") == "i am");
  CHECK(N("im") == "i am");
  CHECK(N("Im sore") == "i am sore");
  CHECK(N("don't") == "do not");
  CHECK(N("dont") == "do not");
  CHECK(N("I don't have a fever") == "i do not have a fever");
  CHECK(N("I dont have a fever") == "i do not have a fever");
  CHECK(N("it's sore") == "it is sore");
  CHECK(N("isn't") == "is not");
  CHECK(N("I've") == "i have");
}

TEST_CASE("common misspellings are corrected", "[normaliser]") {
  CHECK(N("sholder") == "shoulder");
  CHECK(N("my sholder blades") == "my shoulder blades");
  CHECK(N("numm") == "numb");
  CHECK(N("my arm is numm") == "my arm is numb");
  CHECK(N("cant breath") == "cannot breathe");
  CHECK(N("can't breath") == "cannot breathe");
  CHECK(N("I cant breath") == "i cannot breathe");
  CHECK(N("hard to breath") == "hard to breathe");
  CHECK(N("tingeling") == "tingling");
  CHECK(N("feaver") == "fever");
  CHECK(N("ibuprofin") == "ibuprofen");
  // "breath" the noun is left alone.
  CHECK(N("short of breath") == "short of breath");
}

TEST_CASE("clause punctuation is kept, attached to the word before it, and collapsed", "[normaliser]") {
  CHECK(N("it hurts!!!") == "it hurts!");
  CHECK(N("it hurts ! ! !") == "it hurts!");
  CHECK(N("no fever, but my arm is numb.") == "no fever, but my arm is numb.");
  CHECK(N("well... maybe") == "well. maybe");
  CHECK(N("really?!") == "really?");
  CHECK(N("one; two: three") == "one; two: three");
  CHECK(N("wait … what") == "wait. what");
  // Other symbols are dropped.
  CHECK(N("(sore) #legday @gym") == "sore legday gym");
}

TEST_CASE("a possessive 's is dropped", "[normaliser]") {
  CHECK(N("my friend's arm") == "my friend arm");
  CHECK(N("my friend’s arm") == "my friend arm");
  CHECK(N("John's back") == "john back");
  // ... but a contraction in the table wins.
  CHECK(N("it's") == "it is");
  CHECK(N("that's") == "that is");
}

TEST_CASE("non-ASCII letters are kept", "[normaliser]") {
  CHECK(N("café") == "café");
  CHECK(N("naïve pain") == "naïve pain");
  CHECK(N("背中") == "背中");  // Chinese
  CHECK(N("sore 😩") == "sore 😩");  // emoji
}

namespace {
const std::vector<std::string>& InvalidInputs() {
  static const std::vector<std::string> inputs = {
      "\xFF", "\xFE\xFF", "abc\x80" "def", "\xC3", "trailing \xE2\x80", "\xF0\x9F\x98",
      "\xC0\xAF", "\xED\xA0\x80", "ok é \xFF ok", std::string("nul\0inside", 10)};
  return inputs;
}
std::string Hex(const std::string& s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}
}  // namespace

TEST_CASE("invalid UTF-8 does not crash the normaliser or the engine", "[normaliser]") {
  for (const auto& in : InvalidInputs()) {
    INFO("input: " << Hex(in));
    std::string out;
    REQUIRE_NOTHROW(out = N(in));
    backcheck::dialog::Reply reply;
    REQUIRE_NOTHROW(reply = backcheck::test::FirstReply(in));
    CHECK_FALSE(reply.text.empty());
  }
  // The valid parts around an invalid byte survive.
  const std::string mixed = N("My \xFF" "Back");
  INFO("output: " << Hex(mixed));
  CHECK(mixed.find("my") != std::string::npos);
  CHECK(mixed.find("back") != std::string::npos);
}

// Normaliser issue: invalid sequences decode as U+FFFD but the original bytes are copied into the
// word (normaliser.cpp: `word.append(text.substr(start, i - start))` for any cp >= 0x80), and
// DecodeUtf8 accepts surrogates (ED A0 80) - so the normalised text is not valid UTF-8. Fix: when
// DecodeUtf8 reports an invalid sequence (or a surrogate / overlong form), treat it as a word
// separator (or append "\xEF\xBF\xBD") instead of the raw bytes.
TEST_CASE("invalid UTF-8 normalises to valid UTF-8", "[normaliser]") {
  for (const auto& in : InvalidInputs()) {
    const std::string out = N(in);
    INFO("input: " << Hex(in) << " output: " << Hex(out));
    CHECK(ValidUtf8(out));
  }
}

TEST_CASE("empty and whitespace-only input normalise to the empty string", "[normaliser]") {
  CHECK(N("") == "");
  CHECK(N(" ") == "");
  CHECK(N(" \t\n\r ") == "");
  CHECK(N("  ") == "");
  CHECK(N("\"\"") == "");
}

TEST_CASE("normalising is idempotent", "[normaliser]") {
  for (std::string text : {"I  can’t breath—and my Sholder-blades HURT!",
                           "no fever, but my arm is numb.", "Im sore after pull-downs!!!", "what's DOMS?"}) {
    CAPTURE(text);
    CHECK(N(N(text)) == N(text));
  }
}

TEST_CASE("spelling variants of the same question get the same intent", "[normaliser]") {
  const auto& engine = TestEngine();
  auto intent = [&](const std::string& text) { return backcheck::test::FirstReply(text).intent; };
  SECTION("the SPEC example: shoulder blades") {
    const std::string a = intent("Why do my Shoulder-blades hurt?");
    const std::string b = intent("why do my shoulder blades hurt?");
    const std::string c = intent("why do my sholder blades hurt?");
    CHECK(a == b);
    CHECK(b == c);
    CHECK(a != "fallback");
    const std::string d = intent("My Shoulder-blades are sore");
    const std::string e = intent("my shoulder blades are sore");
    const std::string f = intent("my sholder blades are sore");
    CHECK(d == e);
    CHECK(e == f);
    CHECK(d != "fallback");
  }
  SECTION("contractions and curly quotes") {
    CHECK(intent("I can’t breathe") == intent("i cant breath"));
    CHECK(intent("WHAT IS DOMS???") == "doms");
    CHECK(intent("what’s doms") == "doms");
  }
  (void)engine;
}

TEST_CASE("an ampersand between letters is an abbreviation's 'and'", "[normaliser]") {
  CHECK(N("should i go to a&e") == "should i go to a and e");
  CHECK(N("A&E or my GP?") == "a and e or my gp?");
  CHECK(N("sore & stiff") == "sore, stiff");  // between words it still separates, as before
}
