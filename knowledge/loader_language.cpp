// language.jsonc: the normaliser's rewrites, slot vocabularies (exercises, pain qualities, times,
// dates, number words) and passage retrieval's stopwords and threshold.
#include <re2/re2.h>

#include <sstream>

#include "knowledge/load_text_stages.hpp"
#include "knowledge/loader_internal.hpp"

namespace backcheck::knowledge::load {
namespace {

bool IsWordChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '\'' || static_cast<unsigned char>(c) >= 0x80;
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsKeptPunct(char c) { return c == '.' || c == ',' || c == ';' || c == ':' || c == '!' || c == '?'; }

// Code points the normaliser folds to ASCII before it cuts words (dialog/text/normaliser.cpp,
// FoldCodePoint): quotes, dashes, spaces, the ellipsis.
bool IsFolded(char32_t cp) {
  return (cp >= 0x2018 && cp <= 0x201F) || cp == 0x2032 || cp == 0x2033 || cp == 0x00AB || cp == 0x00BB ||
         cp == 0x00B4 || (cp >= 0x2010 && cp <= 0x2015) || cp == 0x2212 || cp == 0x00A0 || cp == 0x2002 ||
         cp == 0x2003 || cp == 0x2009 || cp == 0x200A || cp == 0x202F || cp == 0x3000 || cp == 0x2026;
}

std::vector<std::string> SplitOnSpaces(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// Why the normaliser can never meet `from` as written (it cuts the text into words, applies the
// one-word rewrites, then the phrase rewrites, to words without apostrophes), or "" if it can.
// Mirrors dialog/text/normaliser.cpp (Normaliser::NormaliseWords).
std::string WhyNeverApplies(const std::string& from, const std::map<std::string, std::string>& rewrites) {
  for (std::size_t i = 0; i < from.size();) {
    const char c = from[i];
    if (c >= 'A' && c <= 'Z') return "upper case: the normaliser lower-cases the text first";
    if (c == '\t' || c == '\n' || c == '\r' || c == '`') return "the normaliser folds '" + std::string(1, c) + "' first";
    const char32_t cp = DecodeUtf8At(from, i);
    if (cp == kBadUtf8) return "not valid UTF-8";
    if (IsFolded(cp)) return "the normaliser folds this quote, dash or space to ASCII first";
  }
  const auto words = SplitOnSpaces(from);
  if (words.empty()) return "no words";
  for (const auto& w : words) {
    if (w.size() == 1 && (IsKeptPunct(w[0]) || w[0] == '-')) continue;  // a punctuation token of its own
    for (std::size_t k = 0; k < w.size(); ++k) {
      const char c = w[k];
      if (IsWordChar(c)) continue;
      const bool between_digits = k > 0 && k + 1 < w.size() && IsDigit(w[k - 1]) && IsDigit(w[k + 1]);
      if ((c == '.' || c == ',' || c == '/') && between_digits) continue;  // "9/10", "38.5"
      return "the normaliser splits words at '" + std::string(1, c) + "' before rewriting";
    }
  }
  if (words.size() == 1) {
    const std::string& w = words.front();
    if (w.front() == '\'' || w.back() == '\'') return "the normaliser drops apostrophes at the edges of a word first";
    return {};
  }
  for (const auto& w : words) {
    if (w.find('\'') != std::string::npos) {
      return "a phrase is matched on words without apostrophes ('" + w + "')";
    }
    auto single = rewrites.find(w);
    if (single != rewrites.end() && single->second != w) {
      return "the word '" + w + "' is rewritten to '" + single->second + "' before phrases are matched";
    }
  }
  return {};
}

// language.jsonc "dates": words only (lower case letters and single spaces), since the dates
// component builds its patterns from them and matches them against normalised text.
Language::DateWords LoadDateWords(const json& doc, const Language& lang, const Where& file) {
  const Where w = file.With("dates");
  const json& d = Object(doc, "dates", file);
  CheckKeys(d, w, {"weekdays", "this_words", "days", "day_parts", "part_days", "weekend_words", "weekend_days",
                   "today_hours"});
  static const RE2 kWords("[a-z]+( [a-z]+)*");
  std::set<std::string> seen;
  auto check_words = [&](const std::string& words, const Where& where) {
    if (!RE2::FullMatch(words, kWords)) where.Fail("'" + words + "' must be lower-case words separated by single spaces");
    std::istringstream in(words);
    for (std::string word; in >> word;) {
      if (lang.rewrites.count(word)) where.Fail("'" + words + "' can never match: the normaliser rewrites '" + word + "'");
    }
  };
  auto unique = [&](const std::string& words, const Where& where) {
    if (!seen.insert(words).second) where.Fail("'" + words + "' is listed twice");
  };
  auto int_map = [&](const char* key, int lo, int hi) {
    std::map<std::string, int> out;
    const json& m = Field(d, key, w);
    const Where mw = w.With(key);
    if (!m.is_object() || m.empty()) mw.Fail("must be a non-empty object of words -> integer");
    for (auto it = m.begin(); it != m.end(); ++it) {
      check_words(it.key(), mw);
      out[it.key()] = IntValue(*it, mw, "'" + it.key() + "'", lo, hi);
    }
    return out;
  };
  Language::DateWords dates;
  const json& weekdays = Field(d, "weekdays", w);
  if (!weekdays.is_array() || weekdays.size() != 7) w.Fail("'weekdays' must be an array of 7 arrays of words, Monday first");
  for (std::size_t i = 0; i < weekdays.size(); ++i) {
    const Where dw = w.With("weekday " + std::to_string(i + 1));
    if (!weekdays[i].is_array() || weekdays[i].empty()) dw.Fail("must be a non-empty array of words");
    std::vector<std::string> forms;
    for (const auto& f : weekdays[i]) {
      const std::string& form = StringValue(f, dw, "each form");
      check_words(form, dw);
      unique(form, dw);
      forms.push_back(form);
    }
    dates.weekdays.push_back(std::move(forms));
  }
  dates.this_words = Strings(d, "this_words", w, true);
  for (const auto& s : dates.this_words) check_words(s, w.With("this_words"));
  dates.days = int_map("days", 0, 14);
  dates.day_parts = int_map("day_parts", 0, 23);
  dates.part_days = int_map("part_days", 0, 1);
  for (const auto& m : {dates.days, dates.day_parts}) {
    for (const auto& [k, v] : m) unique(k, w);
  }
  dates.weekend_words = Strings(d, "weekend_words", w, true);
  for (const auto& s : dates.weekend_words) check_words(s, w.With("weekend_words"));
  for (const auto& name : Strings(d, "weekend_days", w, true)) {
    int index = -1;
    for (std::size_t i = 0; i < dates.weekdays.size(); ++i) {
      if (dates.weekdays[i].front() == name) index = static_cast<int>(i);
    }
    if (index < 0) w.With("weekend_days").Fail("'" + name + "' is not the first form of a weekday");
    dates.weekend_days.push_back(index);
  }
  dates.today_hours = IntValue(Field(d, "today_hours", w), w, "'today_hours'", 0, 23);
  return dates;
}

}  // namespace

Language LoadLanguage(const json& doc, std::vector<std::string>& warnings) {
  const Where file{"language.jsonc", {}};
  CheckKeys(doc, file, {"rewrites", "exercises", "qualities", "times", "training", "dates", "numbers", "stopwords", "retrieval"});
  Language lang;
  const json& rewrites = Field(doc, "rewrites", file);
  if (!rewrites.is_object()) file.Fail("field 'rewrites' must be an object of from -> to");
  for (auto it = rewrites.begin(); it != rewrites.end(); ++it) {
    if (it.key().empty()) file.Fail("a rewrite of the empty string");
    lang.rewrites[it.key()] = StringValue(*it, file, "rewrite '" + it.key() + "'", /*allow_empty=*/true);
  }
  for (const auto& [from, to] : lang.rewrites) {
    if (auto why = WhyNeverApplies(from, lang.rewrites); !why.empty()) {
      warnings.push_back(file.file + ": rewrite '" + from + "' -> '" + to + "' can never apply: " + why);
    }
  }
  const json& exercises = Array(doc, "exercises", file);
  for (std::size_t n = 0; n < exercises.size(); ++n) {
    const json& j = exercises[n];
    const Where nw = file.With("exercise " + std::to_string(n + 1));
    Language::Exercise e{String(j, "value", nw), {}, {}};
    Where w = file.With("exercise '" + e.value + "'");
    CheckKeys(j, w, {"value", "category", "patterns"});
    e.category = String(j, "category", w);
    e.patterns = Strings(j, "patterns", w, true);
    CheckPatterns(e.patterns, w);
    lang.exercises.push_back(std::move(e));
  }
  const json& qualities = Array(doc, "qualities", file);
  for (std::size_t n = 0; n < qualities.size(); ++n) {
    const json& j = qualities[n];
    Language::Quality q{String(j, "value", file.With("quality " + std::to_string(n + 1))), {}};
    Where w = file.With("quality '" + q.value + "'");
    CheckKeys(j, w, {"value", "patterns"});
    if (std::any_of(lang.qualities.begin(), lang.qualities.end(), [&](const Language::Quality& x) { return x.value == q.value; })) {
      w.Fail("listed twice");
    }
    q.patterns = Strings(j, "patterns", w, true);
    CheckPatterns(q.patterns, w);
    lang.qualities.push_back(std::move(q));
  }
  const json& times = Array(doc, "times", file);
  for (std::size_t n = 0; n < times.size(); ++n) {
    const json& j = times[n];
    Language::TimeExpression t{String(j, "pattern", file.With("time " + std::to_string(n + 1))), 0};
    Where w = file.With("time '" + t.pattern + "'");
    CheckKeys(j, w, {"pattern", "hours"});
    t.hours = Int(j, "hours", w, 0, 24 * 365 * 10);
    CheckPattern(t.pattern, 0, w);
    RE2 re(t.pattern);
    if (re.NumberOfCapturingGroups() > 1) w.Fail("at most one capture group (the number)");
    lang.times.push_back(std::move(t));
  }
  lang.training_patterns = Strings(doc, "training", file, true);
  CheckPatterns(lang.training_patterns, file.With("training"));
  if (doc.contains("numbers")) {
    const json& numbers = Field(doc, "numbers", file);
    if (!numbers.is_object()) file.Fail("field 'numbers' must be an object of word -> integer");
    for (auto it = numbers.begin(); it != numbers.end(); ++it) {
      lang.numbers[it.key()] = IntValue(*it, file, "number '" + it.key() + "'", 0, 1000000);
    }
  }
  lang.dates = LoadDateWords(doc, lang, file);
  lang.stopwords = Strings(doc, "stopwords", file);
  const Where rw = file.With("retrieval");
  const json& r = Object(doc, "retrieval", file);
  CheckKeys(r, rw, {"min_score"});
  lang.retrieval_min_score = Number(r, "min_score", rw);
  return lang;
}

}  // namespace backcheck::knowledge::load
