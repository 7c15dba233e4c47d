// quantities.jsonc: the normaliser's numbers-and-units stage (body temperatures, pain scores).
#include <cmath>

#include "knowledge/load_text_stages.hpp"
#include "knowledge/loader_internal.hpp"

namespace backcheck::knowledge {
namespace {

using load::CheckKeys;
using load::Field;
using load::Int;
using load::IntValue;
using load::NormalisedWords;
using load::Number;
using load::Object;
using load::OptInt;
using load::OutputWords;
using load::String;
using load::Strings;
using load::Where;
using nlohmann::json;

// [lo, hi] with lo < hi.
std::pair<double, double> Range(const json& obj, const char* key, const Where& where) {
  const json& v = Field(obj, key, where);
  if (!v.is_array() || v.size() != 2 || !v[0].is_number() || !v[1].is_number() || !(v[0].get<double>() < v[1].get<double>())) {
    where.Fail(std::string("field '") + key + "' must be [low, high] with low < high");
  }
  return {v[0].get<double>(), v[1].get<double>()};
}

std::vector<std::vector<std::string>> Phrases(const json& obj, const char* key, const Where& where) {
  std::vector<std::vector<std::string>> out;
  std::set<std::string> seen;
  for (const auto& p : Strings(obj, key, where, /*required=*/true)) {
    if (!seen.insert(p).second) where.Fail(std::string(key) + ": duplicate '" + p + "'");
    out.push_back(NormalisedWords(p, where, key));
  }
  return out;
}

std::vector<std::string> Words(const json& obj, const char* key, const Where& where) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& w : Strings(obj, key, where, /*required=*/true)) {
    if (NormalisedWords(w, where, key).size() != 1) where.Fail(std::string(key) + ": '" + w + "' must be one word");
    if (!seen.insert(w).second) where.Fail(std::string(key) + ": duplicate '" + w + "'");
    out.push_back(w);
  }
  return out;
}

}  // namespace

QuantityTable LoadQuantities(const json& doc) {
  const Where file{"quantities.jsonc", {}};
  CheckKeys(doc, file, {"temperature", "pain", "other_units", "number_words"});
  QuantityTable t;

  const Where tw = file.With("temperature");
  const json& temp = Object(doc, "temperature", file);
  CheckKeys(temp, tw, {"fever_at", "body_range", "fahrenheit_from", "high", "normal", "units", "cues", "not_body"});
  const json& fever = Object(temp, "fever_at", tw);
  CheckKeys(fever, tw.With("fever_at"), {"c", "f"});
  t.fever_c = Number(fever, "c", tw.With("fever_at"));
  t.fever_f = Number(fever, "f", tw.With("fever_at"));
  const json& range = Object(temp, "body_range", tw);
  CheckKeys(range, tw.With("body_range"), {"c", "f"});
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
    CheckKeys(j, uw, {"text", "scale"});
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
    CheckKeys(j, cw, {"words", "before", "after"});
    cue.words = NormalisedWords(words, cw, "words");
    if (!seen.insert(words).second) cw.Fail("duplicate cue");
    cue.before = OptInt(j, "before", cw, 0, 8).value_or(cue.before);
    cue.after = OptInt(j, "after", cw, 0, 8).value_or(cue.after);
    if (cue.before == 0 && cue.after == 0) cw.Fail("before and after are both 0: the cue can never apply");
    t.cues.push_back(std::move(cue));
  }
  t.not_body = Words(temp, "not_body", tw);

  const Where pw = file.With("pain");
  const json& pain = Object(doc, "pain", file);
  CheckKeys(pain, pw, {"scale", "out_of", "cues", "fillers", "not_before", "not_after", "bands"});
  t.scale = Int(pain, "scale", pw, 2, 100);
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
    CheckKeys(j, bw, {"words", "min", "max"});
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
    t.number_words[it.key()] = IntValue(*it, nw, "'" + it.key() + "'", 0, 1000);
  }
  return t;
}

}  // namespace backcheck::knowledge
