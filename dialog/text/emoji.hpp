// Emoji and emoticons -> words (issue 12, item 4): the normaliser's first stage, on the raw
// message, so that "fever🤒", "🥶🥶 and my back hurts" or "sore :(" reach the matchers as
// "fever", "shivering and my back hurts" and "sore". The table is data (knowledge/data/emoji.jsonc,
// which says how emoji, ZWJ sequences, skin tones and emoticons are matched).
//
// - An emoji cluster is a base code point (knowledge::IsEmojiBase) with its modifiers (variation
//   selectors, skin tones, keycap mark, tags) and any further bases joined by U+200D; two regional
//   indicators make one flag. It is looked up without its modifiers, whole, then by its first base.
//   A mapped cluster becomes its words with a space either side (nothing but a space for
//   decoration); an unmapped one stays, with a space either side, so it is a word of its own.
//   The words are left out when the word right before them is the same ("fever 🤒").
// - A modifier that follows no emoji (a keycap's U+FE0F U+20E3 after a digit, a stray skin tone
//   or ZWJ) is dropped: "9️⃣" -> "9".
// - Emoticons: see emoji.jsonc. They match in any case.
// - Invalid UTF-8 and every other character are copied as they are.
//
// Cost: a pre-check pass over the bytes without a branch per byte; a message with no non-ASCII
// lead byte of U+2000-U+3FFF, U+FE0F or U+1Fxxx and no character some emoticon needs (":", "_",
// "<", "x"...) is returned at once and not copied (nor is one in which nothing turns out to
// change). Immutable after construction; Rewrite() is safe to call from many threads.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "knowledge/text_stages.hpp"

namespace backcheck::dialog {

class EmojiRewriter {
 public:
  EmojiRewriter() : EmojiRewriter(knowledge::EmojiTable{}) {}  // maps nothing, still separates emoji from words
  explicit EmojiRewriter(const knowledge::EmojiTable& table);

  // Writes the rewritten text to `out` and returns true, or returns false when the text has
  // nothing to rewrite (then `out` is untouched).
  bool Rewrite(std::string_view text, std::string& out) const;
  // The rewritten text (a copy of `text` when nothing changes).
  std::string Apply(std::string_view text) const;

 private:
  struct Emoticon {
    std::string text;  // lower case
    std::string words;
  };
  std::unordered_map<std::string, std::string> emoji_;  // EmojiKey -> words
  std::array<std::vector<Emoticon>, 128> emoticons_;    // by first byte (lower case), longest first
  std::array<bool, 256> trigger_{};                     // bytes at which a rewrite may start
  std::array<unsigned char, 256> precheck_{};           // 1: a byte without which nothing is rewritten
};

}  // namespace backcheck::dialog
