// emoji.jsonc: emoji and emoticons as words (the normaliser's emoji stage).
#include <map>
#include <sstream>

#include "knowledge/load_text_stages.hpp"
#include "knowledge/loader_internal.hpp"

namespace backcheck::knowledge {

using load::CheckKeys;
using load::Field;
using load::OutputWords;
using load::String;
using load::Strings;
using load::ValidUtf8;
using load::Where;
using nlohmann::json;

EmojiTable LoadEmoji(const json& doc) {
  const Where file{"emoji.jsonc", {}};
  CheckKeys(doc, file, {"emoji", "emoticons"});
  EmojiTable t;
  std::map<std::string, std::string> group_of;  // key -> the group's words, for duplicate errors
  auto load = [&](const char* list_key, const char* item_key, std::vector<EmojiTable::Entry>& out, bool emoji) {
    const json& groups = Field(doc, list_key, file);
    if (!groups.is_array()) file.Fail(std::string("field '") + list_key + "' must be an array of groups");
    for (std::size_t n = 0; n < groups.size(); ++n) {
      const json& g = groups[n];
      const std::string words =
          String(g, "words", file.With(std::string(list_key) + " group " + std::to_string(n + 1)), /*allow_empty=*/true);
      const Where gw = file.With(std::string(item_key) + " group '" + words + "'");
      CheckKeys(g, gw, {"words", item_key});
      OutputWords(words, gw, "words", /*allow_empty=*/true);
      for (const auto& item : Strings(g, item_key, gw, /*required=*/true)) {
        const Where iw = gw.With("'" + item + "'");
        std::string key;
        if (emoji) {
          if (!ValidUtf8(item)) iw.Fail("not valid UTF-8");
          // One emoji: a base, its modifiers, and further bases only after a ZWJ.
          bool expect_base = true;
          for (std::size_t i = 0; i < item.size();) {
            const char32_t cp = DecodeUtf8At(item, i);
            if (IsEmojiBase(cp)) {
              if (!expect_base) iw.Fail("more than one emoji (join a sequence with U+200D)");
              expect_base = false;
            } else if (cp == kZwj) {
              if (expect_base) iw.Fail("U+200D (ZWJ) must join two emoji");
              expect_base = true;
            } else if (!IsEmojiModifier(cp)) {
              iw.Fail("U+" + [&] { std::ostringstream s; s << std::hex << std::uppercase << static_cast<unsigned>(cp); return s.str(); }() +
                      " is not an emoji code point (see IsEmojiBase in knowledge/load_text_stages.cpp)");
            }
          }
          if (expect_base) iw.Fail("no emoji, or a sequence ending in U+200D");
          key = EmojiKey(item);
        } else {
          bool punct = false;
          for (char c : item) {
            const auto u = static_cast<unsigned char>(c);
            if (u < 0x21 || u > 0x7E) iw.Fail("an emoticon is printable ASCII without spaces");
            if (c >= 'A' && c <= 'Z') iw.Fail("write emoticons in lower case (they match in any case)");
            punct = punct || !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'));
          }
          if (item.size() < 2) iw.Fail("an emoticon has at least two characters");
          if (!punct && item != "xd" && item != "xp") {
            // A chunk of letters and digits alone is a word; "xd" and "xp" are the known exceptions.
            iw.Fail("an emoticon needs a character that is not a letter or a digit (it would match a word)");
          }
          key = item;
        }
        auto [it, fresh] = group_of.emplace(key, words);
        if (!fresh) iw.Fail(it->second == words ? "listed twice" : "is also in group '" + it->second + "'");
        out.push_back({key, words});
      }
    }
  };
  load("emoji", "emoji", t.emoji, true);
  load("emoticons", "emoticons", t.emoticons, false);
  return t;
}

}  // namespace backcheck::knowledge
