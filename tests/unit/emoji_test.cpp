// The emoji stage (dialog/text/emoji.hpp) over the shipped emoji.jsonc: symptom emoji become the
// detector's words, decoration goes, emoji glued to words come apart, ZWJ sequences and skin
// tones are read, invalid UTF-8 passes through; and the loader refuses a bad emoji.jsonc.
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "dialog/text/normaliser.hpp"
#include "dialog/text/emoji.hpp"
#include "knowledge/load_text_stages.hpp"
#include "knowledge/loader.hpp"

using backcheck::dialog::EmojiRewriter;
using backcheck::knowledge::KnowledgeError;
using backcheck::knowledge::LoadEmoji;
using nlohmann::json;

namespace {

json ShippedEmoji() {
  std::ifstream in(std::string(BACKCHECK_DEFAULT_KB_DIR) + "/data/emoji.jsonc");
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str(), nullptr, true, /*ignore_comments=*/true);
}

const EmojiRewriter& E() {
  static const EmojiRewriter e(LoadEmoji(ShippedEmoji()));
  return e;
}

// Through the whole normaliser, with only the text stages' tables: whitespace collapsed.
std::string N(const std::string& text) {
  static const backcheck::dialog::Normaliser n([] {
    backcheck::knowledge::Language lang;
    lang.emoji = LoadEmoji(ShippedEmoji());
    return lang;
  }());
  return n.Normalise(text);
}

std::string LoadError(const json& doc) {
  try {
    LoadEmoji(doc);
  } catch (const KnowledgeError& e) {
    return e.what();
  }
  FAIL("emoji.jsonc was accepted");
  return {};
}

}  // namespace

TEST_CASE("symptom emoji become the detector's words", "[emoji]") {
  CHECK(N("🤒") == "fever");
  CHECK(N("🌡️ since last night") == "temperature since last night");
  CHECK(N("🌡 since last night") == "temperature since last night");  // without U+FE0F
  CHECK(N("coughing 🩸") == "coughing blood");
  CHECK(N("🤢") == "nausea");
  CHECK(N("🤮") == "vomiting");
  CHECK(N("🥶 all day") == "shivering all day");
  CHECK(N("😰") == "cold sweat");
  CHECK(N("😓") == "cold sweat");
  CHECK(N("😵") == "dizzy");
  CHECK(N("🫁 hurt") == "lungs hurt");
  CHECK(N("🫀 feels tight") == "chest feels tight");
  CHECK(N("🤕") == "hurt");
}

TEST_CASE("an emoji glued to a word comes apart", "[emoji]") {
  CHECK(N("fever🤒") == "fever");  // the same word is not written twice
  CHECK(N("hot🤒") == "hot fever");
  CHECK(N("🤒fever") == "fever fever");
  CHECK(N("back🤕and🥶") == "back hurt and shivering");
  CHECK(N("i feel 🥶🥶🥶") == "i feel shivering");
  CHECK(N("sore😩") == "sore 😩");  // an emoji in no group stays, as its own word
  CHECK(N("sore 😩") == "sore 😩");
}

TEST_CASE("decoration emoji and emoticons are removed", "[emoji]") {
  CHECK(N("leg day 🔥🔥💪 lol 💀") == "leg day lol");
  CHECK(N("😂😂 my back") == "my back");
  CHECK(N("thanks 🙏❤️") == "thanks");
  CHECK(N("sore :( and tired :/") == "sore and tired");
  CHECK(N("sore:(") == "sore");
  CHECK(N("haha xD") == "haha");
  CHECK(N("ok :)))") == "ok");
  CHECK(N("XD my back :P") == "my back");
  CHECK(N(":) :-( ;) <3") == "");
}

TEST_CASE("emoticon look-alikes are left alone", "[emoji]") {
  CHECK(E().Apply("http://example.com") == "http://example.com");
  CHECK(E().Apply("at 10:30") == "at 10:30");
  CHECK(E().Apply("xdd") == "xdd");
  CHECK(E().Apply("note:dont") == "note:dont");
  CHECK(E().Apply("max:pain") == "max:pain");
}

TEST_CASE("skin tones, variation selectors and ZWJ sequences", "[emoji]") {
  CHECK(N("💪🏽 day") == "day");             // skin tone: still decoration
  CHECK(N("💪🏿💪🏻") == "");
  CHECK(N("😵‍💫") == "dizzy");              // ZWJ sequence in the table
  CHECK(N("so 😵‍💫 rn") == "so dizzy rn");
  CHECK(N("🤦‍♂️ my back") == "my back");    // not in the table: falls back to 🤦 (decoration)
  CHECK(N("🏋️‍♀️ sore") == "sore");
  CHECK(N("🧑‍⚕️ said rest") == "🧑‍⚕️ said rest");  // unknown, not glued: kept as it is
  CHECK(N("❤") == N("❤️"));
  CHECK(N("pain 9️⃣") == "pain 9");          // a keycap becomes its digit
  CHECK(N("🇬🇧 here") == "🇬🇧 here");        // a flag is one emoji (two regional indicators)
}

TEST_CASE("invalid UTF-8 passes through the stage untouched", "[emoji]") {
  for (std::string text : {std::string("\xF0\x9F\xA4"), std::string("fever\xF0\x9F"), std::string("\xFF\xFE"),
                           std::string("\xED\xA0\x80"), std::string("ok \xC3 ok")}) {
    CAPTURE(text);
    std::string out = "unchanged";
    CHECK_FALSE(E().Rewrite(text, out));
    CHECK(out == "unchanged");
  }
  // Next to a real emoji, the invalid bytes are copied as they were.
  CHECK(E().Apply("\xFF\xF0\x9F\xA4\x92\xFF") == "\xFF fever \xFF");
}

TEST_CASE("text with no emoji and no emoticon is not copied", "[emoji]") {
  std::string out = "unchanged";
  CHECK_FALSE(E().Rewrite("my upper back hurts after rows", out));
  CHECK_FALSE(E().Rewrite("café, naïve, “quoted” — dash", out));
  CHECK_FALSE(E().Rewrite("", out));
  CHECK(out == "unchanged");
}

TEST_CASE("the shipped emoji.jsonc loads", "[emoji][loader]") {
  auto t = LoadEmoji(ShippedEmoji());
  CHECK(t.emoji.size() > 50);
  CHECK(t.emoticons.size() > 10);
}

TEST_CASE("a bad emoji.jsonc is refused, naming the item and the problem", "[emoji][loader]") {
  json doc = ShippedEmoji();
  SECTION("an emoji in two groups") {
    doc["emoji"].push_back({{"words", "hurt"}, {"emoji", {"🤒"}}});
    CHECK_THAT(LoadError(doc), Catch::Contains("emoji.jsonc: emoji group 'hurt': '🤒': is also in group 'fever'"));
  }
  SECTION("the same emoji with and without U+FE0F") {
    doc["emoji"].push_back({{"words", "heat"}, {"emoji", {"🌡"}}});
    CHECK_THAT(LoadError(doc), Catch::Contains("is also in group 'temperature'"));
  }
  SECTION("two emoji in one key") {
    doc["emoji"].push_back({{"words", "sick"}, {"emoji", {"🤒🤢"}}});
    CHECK_THAT(LoadError(doc), Catch::Contains("more than one emoji"));
  }
  SECTION("a letter in an emoji key") {
    doc["emoji"].push_back({{"words", "sick"}, {"emoji", {"a🤒"}}});
    CHECK_THAT(LoadError(doc), Catch::Contains("U+61 is not an emoji code point"));
  }
  SECTION("words with capitals") {
    doc["emoji"].push_back({{"words", "Sick"}, {"emoji", {"😷"}}});
    CHECK_THAT(LoadError(doc), Catch::Contains("emoji group 'Sick': words 'Sick'"));
  }
  SECTION("an emoticon that is a word") {
    doc["emoticons"].push_back({{"words", ""}, {"emoticons", {"lol"}}});
    CHECK_THAT(LoadError(doc), Catch::Contains("'lol': an emoticon needs a character that is not a letter"));
  }
  SECTION("an emoticon in upper case") {
    doc["emoticons"].push_back({{"words", ""}, {"emoticons", {":D"}}});
    CHECK_THAT(LoadError(doc), Catch::Contains("write emoticons in lower case"));
  }
  SECTION("invalid UTF-8") {
    doc["emoji"].push_back({{"words", "sick"}, {"emoji", {"\xF0\x9F"}}});
    CHECK_THAT(LoadError(doc), Catch::Contains("not valid UTF-8"));
  }
}
