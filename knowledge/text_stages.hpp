// Data of the normaliser's two text stages (issue 12, items 3 and 4), loaded from
// knowledge/data/quantities.jsonc and knowledge/data/emoji.jsonc by knowledge/load_text_stages.cpp.
//
// - QuantityTable: how a body-temperature reading and a pain score are recognised in normalised
//   text and what they are rewritten to ("temp 38.5" -> "temp high temperature", "9/10" ->
//   "severe pain"); see dialog/text/quantities.hpp.
// - EmojiTable: which emoji and ASCII emoticons stand for a word ("🤒" -> "fever") and which are
//   decoration (-> nothing); see dialog/text/emoji.hpp.
//
// A table returned by the loader has been validated: words are lower-case ASCII words separated
// by single spaces, thresholds lie inside their ranges, keys are unique.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace backcheck::knowledge {

struct QuantityTable {
  // --- temperature ---
  struct Unit {
    std::string text;  // words of normalised text: "°c", "degrees fahrenheit", "f"
    char scale = '?';  // 'c', 'f', or '?' (decided by the value: >= fahrenheit_from is Fahrenheit)
  };
  struct Cue {
    std::vector<std::string> words;  // "temperature", "thermometer says"
    int before = 4;                  // the cue may end at most this many words before the number
    int after = 0;                   // ... or begin at most this many words after it
  };
  std::vector<Unit> units;
  std::vector<Cue> cues;
  std::vector<std::string> not_body;  // a word in the clause saying it is not the body: "outside", "sauna"
  double fever_c = 38.0, fever_f = 100.4;  // at or above: high temperature
  double body_min_c = 35.0, body_max_c = 44.9;  // a plausible body temperature reading
  double body_min_f = 95.0, body_max_f = 113.0;
  double fahrenheit_from = 45.0;  // a reading without a scale at or above this is Fahrenheit
  std::string high_words, normal_words;  // "high temperature", "normal temperature"

  // --- pain scores ---
  struct Band {
    double min = 0, max = 0;  // inclusive
    std::string words;        // "severe pain"
  };
  int scale = 10;                               // "N/10", "N out of 10"
  std::vector<std::vector<std::string>> out_of;  // "out of", "outta"
  std::vector<std::vector<std::string>> score_cues;  // "pain is", "pain level": "pain is a 9"
  std::vector<std::string> fillers;           // words allowed between a cue and the number: "a", "like"
  std::vector<std::string> not_before;        // "on 9/10", "since 9/10": a date
  std::vector<std::string> not_after;         // "9/10 times", "9/10 of": a fraction
  std::vector<Band> bands;

  // --- shared ---
  std::vector<std::string> other_units;    // "kg", "reps", "years": a number before one is neither
  std::map<std::string, int> number_words;  // "ten" -> 10, for pain scores only
};

struct EmojiTable {
  struct Entry {
    std::string key;    // emoji: its code points without U+FE0E/FE0F and skin tones, as UTF-8;
                        // emoticon: lower-case ASCII
    std::string words;  // what it becomes; empty: decoration, removed
  };
  std::vector<Entry> emoji;
  std::vector<Entry> emoticons;
};

// --- UTF-8 and emoji code points, shared by the loader and dialog/text/emoji.cpp ---

// Decodes the UTF-8 code point at s[i] and advances i past it; an invalid, overlong, surrogate or
// truncated sequence returns 0xFFFFFFFF and advances i by one byte.
inline constexpr char32_t kBadUtf8 = 0xFFFFFFFF;
char32_t DecodeUtf8At(std::string_view s, std::size_t& i);

// A code point that starts an emoji (pictographs, dingbats, symbols, regional indicators, keycap
// ten...). Not the modifiers below.
bool IsEmojiBase(char32_t cp);
// Variation selectors U+FE0E/U+FE0F, skin tones U+1F3FB..U+1F3FF, the keycap mark U+20E3 and tag
// characters U+E0020..U+E007F: they change how an emoji looks, not what it means.
bool IsEmojiModifier(char32_t cp);
inline constexpr char32_t kZwj = 0x200D;

// The key an emoji (or ZWJ sequence) is looked up by: its code points without modifiers, as UTF-8.
std::string EmojiKey(std::string_view emoji);

}  // namespace backcheck::knowledge
