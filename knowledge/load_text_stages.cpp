#include "knowledge/load_text_stages.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "knowledge/loader.hpp"

namespace backcheck::knowledge {

char32_t DecodeUtf8At(std::string_view s, std::size_t& i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) {
    ++i;
    return c;
  }
  const int extra = (c >= 0xF0 && c <= 0xF4) ? 3 : (c >= 0xE0 && c < 0xF0) ? 2 : (c >= 0xC2 && c < 0xE0) ? 1 : -1;
  if (extra < 0) {
    ++i;
    return kBadUtf8;
  }
  char32_t cp = c & (0x3F >> extra);
  for (int k = 1; k <= extra; ++k) {
    if (i + k >= s.size() || (byte(i + k) & 0xC0) != 0x80) {
      ++i;
      return kBadUtf8;
    }
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  static constexpr char32_t kMin[] = {0, 0x80, 0x800, 0x10000};
  if (cp < kMin[extra] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
    ++i;
    return kBadUtf8;
  }
  i += static_cast<std::size_t>(extra) + 1;
  return cp;
}

bool IsEmojiModifier(char32_t cp) {
  return cp == 0xFE0E || cp == 0xFE0F || (cp >= 0x1F3FB && cp <= 0x1F3FF) || cp == 0x20E3 ||
         (cp >= 0xE0020 && cp <= 0xE007F);
}

bool IsEmojiBase(char32_t cp) {
  if (IsEmojiModifier(cp)) return false;
  return (cp >= 0x1F000 && cp <= 0x1FAFF) || (cp >= 0x2600 && cp <= 0x27BF) || (cp >= 0x2B00 && cp <= 0x2BFF) ||
         (cp >= 0x2300 && cp <= 0x23FF) || cp == 0x203C || cp == 0x2049 || cp == 0x3030 || cp == 0x303D ||
         cp == 0x3297 || cp == 0x3299;
}

std::string EmojiKey(std::string_view emoji) {
  std::string out;
  for (std::size_t i = 0; i < emoji.size();) {
    const std::size_t start = i;
    const char32_t cp = DecodeUtf8At(emoji, i);
    if (cp != kBadUtf8 && IsEmojiModifier(cp)) continue;
    out.append(emoji.substr(start, i - start));
  }
  return out;
}

namespace {

using nlohmann::json;

struct Where {
  std::string file;
  std::string item;
  [[noreturn]] void Fail(const std::string& problem) const {
    throw KnowledgeError(item.empty() ? file + ": " + problem : file + ": " + item + ": " + problem);
  }
  Where With(const std::string& what) const { return {file, item.empty() ? what : item + ": " + what}; }
};

const json& Field(const json& obj, const char* key, const Where& where) {
  if (!obj.is_object()) where.Fail("must be an object");
  auto it = obj.find(key);
  if (it == obj.end()) where.Fail(std::string("missing field '") + key + "'");
  return *it;
}

std::string String(const json& obj, const char* key, const Where& where, bool allow_empty = false) {
  const json& v = Field(obj, key, where);
  if (!v.is_string() || (!allow_empty && v.get_ref<const std::string&>().empty())) {
    where.Fail(std::string("field '") + key + "' must be a " + (allow_empty ? "" : "non-empty ") + "string");
  }
  return v.get<std::string>();
}

std::vector<std::string> Strings(const json& obj, const char* key, const Where& where) {
  const json& v = Field(obj, key, where);
  if (!v.is_array()) where.Fail(std::string("field '") + key + "' must be an array of strings");
  std::vector<std::string> out;
  for (const auto& s : v) {
    if (!s.is_string() || s.get_ref<const std::string&>().empty()) {
      where.Fail(std::string("field '") + key + "' must hold only non-empty strings");
    }
    out.push_back(s.get<std::string>());
  }
  return out;
}

double Number(const json& obj, const char* key, const Where& where) {
  const json& v = Field(obj, key, where);
  if (!v.is_number() || !std::isfinite(v.get<double>())) where.Fail(std::string("field '") + key + "' must be a number");
  return v.get<double>();
}

// [lo, hi] with lo < hi.
std::pair<double, double> Range(const json& obj, const char* key, const Where& where) {
  const json& v = Field(obj, key, where);
  if (!v.is_array() || v.size() != 2 || !v[0].is_number() || !v[1].is_number() || !(v[0].get<double>() < v[1].get<double>())) {
    where.Fail(std::string("field '") + key + "' must be [low, high] with low < high");
  }
  return {v[0].get<double>(), v[1].get<double>()};
}

bool ValidUtf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    if (DecodeUtf8At(s, i) == kBadUtf8) return false;
  }
  return true;
}

// Words as the normaliser writes them: lower-case a-z, digits, ' and non-ASCII letters or signs
// ("°c"), separated by single spaces.
std::vector<std::string> NormalisedWords(const std::string& text, const Where& where, const char* what) {
  auto fail = [&](const std::string& why) {
    where.Fail(std::string(what) + " '" + text + "': " + why);
  };
  if (text.empty()) fail("empty");
  if (!ValidUtf8(text)) fail("not valid UTF-8");
  if (text.front() == ' ' || text.back() == ' ' || text.find("  ") != std::string::npos) {
    fail("words are separated by single spaces");
  }
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string w; in >> w;) {
    for (char c : w) {
      const auto u = static_cast<unsigned char>(c);
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '\'' || u >= 0x80)) {
        fail(std::string("'") + c + "' is not in a word of normalised text (lower case, no punctuation)");
      }
    }
    out.push_back(w);
  }
  return out;
}

// Replacement words: lower-case ASCII words and digits, single spaces; empty only if allowed.
std::string OutputWords(const std::string& text, const Where& where, const char* what, bool allow_empty) {
  if (text.empty()) {
    if (!allow_empty) where.Fail(std::string(what) + " must not be empty");
    return text;
  }
  bool ok = text.front() != ' ' && text.back() != ' ' && text.find("  ") == std::string::npos;
  for (char c : text) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == ' ');
  if (!ok) where.Fail(std::string(what) + " '" + text + "': lower-case ASCII words and digits separated by single spaces");
  return text;
}

std::vector<std::vector<std::string>> Phrases(const json& obj, const char* key, const Where& where) {
  std::vector<std::vector<std::string>> out;
  std::set<std::string> seen;
  for (const auto& p : Strings(obj, key, where)) {
    if (!seen.insert(p).second) where.Fail(std::string(key) + ": duplicate '" + p + "'");
    out.push_back(NormalisedWords(p, where, key));
  }
  return out;
}

std::vector<std::string> Words(const json& obj, const char* key, const Where& where) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& w : Strings(obj, key, where)) {
    if (NormalisedWords(w, where, key).size() != 1) where.Fail(std::string(key) + ": '" + w + "' must be one word");
    if (!seen.insert(w).second) where.Fail(std::string(key) + ": duplicate '" + w + "'");
    out.push_back(w);
  }
  return out;
}

}  // namespace

QuantityTable LoadQuantities(const json& doc) {
  const Where file{"quantities.jsonc", {}};
  QuantityTable t;

  const Where tw = file.With("temperature");
  const json& temp = Field(doc, "temperature", file);
  const json& fever = Field(temp, "fever_at", tw);
  t.fever_c = Number(fever, "c", tw.With("fever_at"));
  t.fever_f = Number(fever, "f", tw.With("fever_at"));
  const json& range = Field(temp, "body_range", tw);
  std::tie(t.body_min_c, t.body_max_c) = Range(range, "c", tw.With("body_range"));
  std::tie(t.body_min_f, t.body_max_f) = Range(range, "f", tw.With("body_range"));
  if (!(t.fever_c > t.body_min_c && t.fever_c <= t.body_max_c)) tw.Fail("fever_at.c must lie inside body_range.c");
  if (!(t.fever_f > t.body_min_f && t.fever_f <= t.body_max_f)) tw.Fail("fever_at.f must lie inside body_range.f");
  if (std::abs(t.fever_c * 9 / 5 + 32 - t.fever_f) > 0.15) {
    tw.Fail("fever_at.c and fever_at.f must be the same temperature (C * 9/5 + 32 = F, to 0.1)");
  }
  t.fahrenheit_from = Number(temp, "fahrenheit_from", tw);
  if (!(t.fahrenheit_from > t.body_max_c && t.fahrenheit_from <= t.body_min_f)) {
    tw.Fail("fahrenheit_from must lie above body_range.c and at or below the start of body_range.f");
  }
  t.high_words = OutputWords(String(temp, "high", tw), tw, "high", false);
  t.normal_words = OutputWords(String(temp, "normal", tw), tw, "normal", false);
  std::set<std::string> seen;
  for (const auto& j : [&]() -> const json& {
         const json& u = Field(temp, "units", tw);
         if (!u.is_array() || u.empty()) tw.Fail("field 'units' must be a non-empty array");
         return u;
       }()) {
    QuantityTable::Unit unit;
    unit.text = String(j, "text", tw.With("unit"));
    const Where uw = tw.With("unit '" + unit.text + "'");
    NormalisedWords(unit.text, uw, "text");
    if (!seen.insert(unit.text).second) uw.Fail("duplicate unit");
    const std::string scale = String(j, "scale", uw);
    if (scale != "c" && scale != "f" && scale != "?") uw.Fail("scale must be \"c\", \"f\" or \"?\", not '" + scale + "'");
    unit.scale = scale[0];
    t.units.push_back(std::move(unit));
  }
  const json& cues = Field(temp, "cues", tw);
  if (!cues.is_array() || cues.empty()) tw.Fail("field 'cues' must be a non-empty array");
  seen.clear();
  for (const auto& j : cues) {
    QuantityTable::Cue cue;
    const std::string words = String(j, "words", tw.With("cue"));
    const Where cw = tw.With("cue '" + words + "'");
    cue.words = NormalisedWords(words, cw, "words");
    if (!seen.insert(words).second) cw.Fail("duplicate cue");
    for (const char* key : {"before", "after"}) {
      if (!j.contains(key)) continue;
      if (!j[key].is_number_integer() || j[key].get<int>() < 0 || j[key].get<int>() > 8) {
        cw.Fail(std::string("field '") + key + "' must be an integer from 0 to 8");
      }
      (std::string(key) == "before" ? cue.before : cue.after) = j[key].get<int>();
    }
    if (cue.before == 0 && cue.after == 0) cw.Fail("before and after are both 0: the cue can never apply");
    t.cues.push_back(std::move(cue));
  }
  t.not_body = Words(temp, "not_body", tw);

  const Where pw = file.With("pain");
  const json& pain = Field(doc, "pain", file);
  const json& scale = Field(pain, "scale", pw);
  if (!scale.is_number_integer() || scale.get<int>() < 2 || scale.get<int>() > 100) {
    pw.Fail("field 'scale' must be an integer from 2 to 100");
  }
  t.scale = scale.get<int>();
  t.out_of = Phrases(pain, "out_of", pw);
  t.score_cues = Phrases(pain, "cues", pw);
  t.fillers = Words(pain, "fillers", pw);
  t.not_before = Words(pain, "not_before", pw);
  t.not_after = Words(pain, "not_after", pw);
  const json& bands = Field(pain, "bands", pw);
  if (!bands.is_array() || bands.empty()) pw.Fail("field 'bands' must be a non-empty array");
  for (const auto& j : bands) {
    QuantityTable::Band band;
    band.words = OutputWords(String(j, "words", pw.With("band")), pw.With("band"), "words", false);
    const Where bw = pw.With("band '" + band.words + "'");
    band.min = Number(j, "min", bw);
    band.max = Number(j, "max", bw);
    if (band.min < 0 || band.min > band.max) bw.Fail("needs 0 <= min <= max");
    for (const auto& other : t.bands) {
      if (band.min <= other.max && other.min <= band.max) bw.Fail("overlaps band '" + other.words + "'");
    }
    t.bands.push_back(std::move(band));
  }

  t.other_units = Words(doc, "other_units", file);
  for (const auto& u : t.units) {
    if (std::find(t.other_units.begin(), t.other_units.end(), u.text) != t.other_units.end()) {
      file.Fail("other_units: '" + u.text + "' is also a temperature unit");
    }
  }
  const json& numbers = Field(doc, "number_words", file);
  if (!numbers.is_object()) file.Fail("field 'number_words' must be an object of word -> integer");
  for (auto it = numbers.begin(); it != numbers.end(); ++it) {
    const Where nw = file.With("number_words");
    if (NormalisedWords(it.key(), nw, "word").size() != 1) nw.Fail("'" + it.key() + "' must be one word");
    if (!it->is_number_integer() || it->get<int>() < 0 || it->get<int>() > 1000) {
      nw.Fail("'" + it.key() + "' must map to an integer from 0 to 1000");
    }
    t.number_words[it.key()] = it->get<int>();
  }
  return t;
}

EmojiTable LoadEmoji(const json& doc) {
  const Where file{"emoji.jsonc", {}};
  EmojiTable t;
  std::map<std::string, std::string> group_of;  // key -> the group's words, for duplicate errors
  auto load = [&](const char* list_key, const char* item_key, std::vector<EmojiTable::Entry>& out, bool emoji) {
    const json& groups = Field(doc, list_key, file);
    if (!groups.is_array()) file.Fail(std::string("field '") + list_key + "' must be an array of groups");
    for (const auto& g : groups) {
      const std::string words = String(g, "words", file.With(list_key), /*allow_empty=*/true);
      const Where gw = file.With(std::string(item_key) + " group '" + words + "'");
      OutputWords(words, gw, "words", /*allow_empty=*/true);
      for (const auto& item : Strings(g, item_key, gw)) {
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
