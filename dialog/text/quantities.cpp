#include "dialog/text/quantities.hpp"

#include <algorithm>

namespace backcheck::dialog {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsPunct(char c) { return c == '.' || c == ',' || c == ';' || c == ':' || c == '!' || c == '?'; }
bool EndsClause(char c) { return c == '.' || c == ',' || c == ';' || c == '!' || c == '?'; }

// A decimal number at the start of `s`: digits, then maybe "." and digits, or "," and one or two
// digits (a decimal comma: "38,5"). Sets `rest` to what follows it.
std::optional<double> LeadingNumber(std::string_view s, std::string_view& rest) {
  std::size_t i = 0;
  double value = 0;
  while (i < s.size() && IsDigit(s[i]) && i < 6) value = value * 10 + (s[i++] - '0');
  if (i == 0 || (i < s.size() && IsDigit(s[i]))) return std::nullopt;
  if (i + 1 < s.size() && (s[i] == '.' || s[i] == ',') && IsDigit(s[i + 1])) {
    std::size_t j = i + 1;
    double scale = 0.1;
    while (j < s.size() && IsDigit(s[j]) && j - i <= 4) {
      value += (s[j++] - '0') * scale;
      scale /= 10;
    }
    if (j < s.size() && IsDigit(s[j])) return std::nullopt;
    if (s[i] == ',' && j - i > 3) return std::nullopt;  // "1,000": not a decimal comma
    i = j;
  }
  rest = s.substr(i);
  return value;
}

std::optional<double> WholeNumber(std::string_view s) {
  std::string_view rest;
  auto v = LeadingNumber(s, rest);
  if (!v || !rest.empty()) return std::nullopt;
  return v;
}

}  // namespace

QuantityRewriter::QuantityRewriter(knowledge::QuantityTable table) : table_(std::move(table)) {
  active_ = !table_.units.empty() || !table_.bands.empty();
  for (const auto& u : table_.units) {
    Unit unit{{}, u.scale};
    for (std::size_t i = 0; i <= u.text.size();) {
      std::size_t j = u.text.find(' ', i);
      if (j == std::string::npos) j = u.text.size();
      if (j > i) unit.words.push_back(u.text.substr(i, j - i));
      i = j + 1;
    }
    if (!unit.words.empty()) units_.push_back(std::move(unit));
  }
  // Longest units first, so "degrees celsius" wins over "degrees" and "°c" over "°".
  std::stable_sort(units_.begin(), units_.end(), [](const Unit& a, const Unit& b) {
    return a.words.size() != b.words.size() ? a.words.size() > b.words.size() : a.words[0].size() > b.words[0].size();
  });
  for (const auto& p : table_.out_of) {
    if (p.empty() || std::find(precheck_words_.begin(), precheck_words_.end(), p.front()) != precheck_words_.end()) continue;
    precheck_words_.push_back(p.front());
  }
  for (const auto& w : precheck_words_) {  // the words none of the others is a prefix of
    bool covered = false;
    for (const auto& v : precheck_words_) covered = covered || (v != w && w.rfind(v, 0) == 0);
    if (!covered) precheck_prefixes_.push_back(w);
  }
  for (const auto& [word, value] : table_.number_words) number_words_.emplace_back(word, value);
}

bool QuantityRewriter::InList(const std::vector<std::string>& list, std::string_view w) const {
  return std::find(list.begin(), list.end(), w) != list.end();
}

std::optional<double> QuantityRewriter::NumberWord(std::string_view w) const {
  if (auto v = WholeNumber(w)) return v;
  for (const auto& [word, value] : number_words_) {
    if (word == w) return value;
  }
  return std::nullopt;
}

const std::string* QuantityRewriter::Band(double score) const {
  for (const auto& b : table_.bands) {
    if (score >= b.min - 1e-9 && score <= b.max + 1e-9) return &b.words;
  }
  return nullptr;
}

bool QuantityRewriter::PhraseAt(const std::vector<Token>& t, std::size_t at, const std::vector<std::string>& phrase) {
  if (phrase.empty() || at + phrase.size() > t.size()) return false;
  for (std::size_t k = 0; k < phrase.size(); ++k) {
    if (t[at + k].core != phrase[k]) return false;
    if (k + 1 < phrase.size() && t[at + k].ends_clause) return false;
  }
  return true;
}

std::optional<QuantityRewriter::Match> QuantityRewriter::Temperature(const std::vector<Token>& t, std::size_t n) const {
  if (units_.empty()) return std::nullopt;
  std::string_view rest;
  auto value = LeadingNumber(t[n].core, rest);
  if (!value) return std::nullopt;

  // The unit: glued ("38.5c", "38.5°" + "c") or in the next words ("38.5 degrees celsius").
  // Units are sorted longest first; the first that fits wins.
  const Unit* unit = nullptr;
  std::size_t last = n;
  for (const auto& u : units_) {
    std::size_t k = n;  // the token the unit's next word must be
    std::size_t w = 0;
    if (!rest.empty()) {
      if (u.words[0] != rest) continue;
      w = 1;
    }
    bool fits = true;
    for (; w < u.words.size() && fits; ++w) {
      fits = !t[k].ends_clause && k + 1 < t.size() && t[k + 1].core == u.words[w];
      ++k;
    }
    if (fits && (k > n || !rest.empty())) {
      unit = &u;
      last = k;
      break;
    }
  }
  if (!unit && !rest.empty()) return std::nullopt;  // "38kg", "2nd", "9/10"
  // Which clause the reading is in: [clause_begin, clause_end].
  std::size_t clause_begin = n;
  while (clause_begin > 0 && !t[clause_begin - 1].ends_clause) --clause_begin;
  std::size_t clause_end = last;
  while (clause_end + 1 < t.size() && !t[clause_end].ends_clause) ++clause_end;

  if (!unit) {
    if (!t[n].ends_clause && n + 1 < t.size() && InList(table_.other_units, t[n + 1].core)) return std::nullopt;
    bool cued = false;
    for (const auto& cue : table_.cues) {
      const std::size_t len = cue.words.size();
      // before: the cue ends at e < n with n - e <= before
      for (std::size_t d = 1; d <= static_cast<std::size_t>(cue.before) && !cued; ++d) {
        if (n < d) break;
        const std::size_t e = n - d;
        if (e + 1 < len || e + 1 - len < clause_begin) continue;
        cued = PhraseAt(t, e + 1 - len, cue.words);
      }
      // after: the cue starts at s > last with s - last <= after
      for (std::size_t d = 1; d <= static_cast<std::size_t>(cue.after) && !cued; ++d) {
        const std::size_t s = last + d;
        if (s > clause_end) break;
        cued = PhraseAt(t, s, cue.words) && s + len - 1 <= clause_end;
      }
      if (cued) break;
    }
    if (!cued) return std::nullopt;
  }
  // Not the body: "104 degrees outside", "sauna at 90c".
  for (std::size_t k = clause_begin; k <= clause_end; ++k) {
    if (InList(table_.not_body, t[k].core)) return std::nullopt;
  }
  char scale = unit ? unit->scale : '?';
  if (scale == '?') scale = *value >= table_.fahrenheit_from ? 'f' : 'c';
  const double lo = scale == 'c' ? table_.body_min_c : table_.body_min_f;
  const double hi = scale == 'c' ? table_.body_max_c : table_.body_max_f;
  const double fever = scale == 'c' ? table_.fever_c : table_.fever_f;
  if (*value < lo - 1e-9 || *value > hi + 1e-9) return std::nullopt;
  return Match{n, last, *value >= fever - 1e-9 ? &table_.high_words : &table_.normal_words};
}

std::optional<QuantityRewriter::Match> QuantityRewriter::PainScore(const std::vector<Token>& t, std::size_t n) const {
  if (table_.bands.empty()) return std::nullopt;
  const double scale = table_.scale;
  auto is_scale = [&](std::string_view w) {
    auto v = NumberWord(w);
    return v && *v == scale;
  };
  std::optional<double> score;
  std::size_t last = n;
  const std::string_view core = t[n].core;
  if (auto slash = core.find('/'); slash != std::string_view::npos) {  // "9/10"
    if (core.find('/', slash + 1) != std::string_view::npos) return std::nullopt;  // "9/10/2026"
    score = NumberWord(core.substr(0, slash));
    if (!score || !is_scale(core.substr(slash + 1))) return std::nullopt;
  } else {
    score = NumberWord(core);
    if (!score) return std::nullopt;
    if (!t[n].ends_clause && n + 2 < t.size() && t[n + 1].core == "/" && !t[n + 1].ends_clause) {  // "9 / 10"
      if (!is_scale(t[n + 2].core)) return std::nullopt;
      last = n + 2;
    } else {
      for (const auto& phrase : table_.out_of) {  // "9 out of 10"
        if (!t[n].ends_clause && PhraseAt(t, n + 1, phrase) && n + 1 + phrase.size() < t.size() &&
            !t[n + phrase.size()].ends_clause && is_scale(t[n + 1 + phrase.size()].core)) {
          last = n + 1 + phrase.size();
          break;
        }
      }
    }
  }
  auto next_is = [&](const std::vector<std::string>& list) {
    return !t[last].ends_clause && last + 1 < t.size() && InList(list, t[last + 1].core);
  };
  if (next_is(table_.not_after) || next_is(table_.other_units)) return std::nullopt;
  if (!t[last].ends_clause && last + 1 < t.size() && !t[last + 1].core.empty() && t[last + 1].core[0] == '/') {
    return std::nullopt;  // "9 / 10 / 2026"
  }
  const bool scored = last != n || core.find('/') != std::string_view::npos;
  if (scored) {
    if (n > 0 && !t[n - 1].ends_clause && InList(table_.not_before, t[n - 1].core)) return std::nullopt;  // "on 9/10"
  } else {
    // A bare number counts only right after a cue ("pain is a 9"), and only up to the scale.
    if (*score > scale || (!t[n].ends_clause && n + 1 < t.size() && !t[n + 1].core.empty() && t[n + 1].core[0] == '/')) {
      return std::nullopt;
    }
    bool cued = false;
    std::size_t e = n;  // the cue ends before e, after up to two fillers
    for (int fillers = 0; fillers <= 2 && e > 0 && !cued; ++fillers) {
      for (const auto& cue : table_.score_cues) {
        if (e >= cue.size() && !t[e - 1].ends_clause && PhraseAt(t, e - cue.size(), cue)) {
          cued = true;
          break;
        }
      }
      if (cued) break;
      if (t[e - 1].ends_clause || !InList(table_.fillers, t[e - 1].core)) break;
      --e;
    }
    if (!cued) return std::nullopt;
  }
  const std::string* words = Band(*score);
  if (!words) return std::nullopt;
  return Match{n, last, words};
}

bool QuantityRewriter::Rewrite(std::string_view text, std::string& out) const {
  if (!active_) return false;
  // The pre-check: a digit (one pass without a branch per byte), or else the first word of an
  // "out of" phrase as a word ("ten out of ten"; found by memchr-fast search).
  unsigned digits = 0;
  for (char ch : text) digits |= static_cast<unsigned>(static_cast<unsigned char>(ch) - '0') <= 9u ? 1u : 0u;
  bool maybe = digits != 0;
  for (std::size_t k = 0; k < precheck_prefixes_.size() && !maybe; ++k) {
    for (std::size_t at = text.find(precheck_prefixes_[k]); at != std::string_view::npos && !maybe;
         at = text.find(precheck_prefixes_[k], at + 1)) {
      if (at > 0 && text[at - 1] != ' ') continue;
      for (const auto& w : precheck_words_) {
        if (text.compare(at, w.size(), w) == 0 && (at + w.size() == text.size() || text[at + w.size()] == ' ')) maybe = true;
      }
    }
  }
  if (!maybe) return false;

  std::vector<Token> t;
  t.reserve(text.size() / 4 + 2);
  for (std::size_t i = 0; i < text.size();) {
    std::size_t j = text.find(' ', i);
    if (j == std::string_view::npos) j = text.size();
    std::string_view w = text.substr(i, j - i);
    std::size_t core_end = w.size();
    while (core_end > 0 && IsPunct(w[core_end - 1])) --core_end;
    Token tok{w.substr(0, core_end), w.substr(core_end), false};
    for (char c : tok.punct) tok.ends_clause = tok.ends_clause || EndsClause(c);
    if (!w.empty()) t.push_back(tok);
    i = j + 1;
  }

  std::string res;
  bool changed = false;
  const char* copied = text.data();  // text up to here is in `res`
  for (std::size_t n = 0; n < t.size(); ++n) {
    const std::string_view c = t[n].core;
    const bool numeric = !c.empty() && IsDigit(c[0]);
    if (!numeric && !NumberWord(c)) continue;
    std::optional<Match> m = numeric ? Temperature(t, n) : std::nullopt;
    if (!m) m = PainScore(t, n);
    if (!m) continue;
    if (!changed) {
      res.reserve(text.size() + 16);
      changed = true;
    }
    const char* begin = t[m->first].core.data();
    res.append(copied, static_cast<std::size_t>(begin - copied));
    res.append(*m->words);
    res.append(t[m->last].punct);
    copied = t[m->last].punct.data() + t[m->last].punct.size();
    n = m->last;
  }
  if (!changed) return false;
  res.append(copied, static_cast<std::size_t>(text.data() + text.size() - copied));
  out = std::move(res);
  return true;
}

std::string QuantityRewriter::Apply(std::string_view text) const {
  std::string out;
  if (Rewrite(text, out)) return out;
  return std::string(text);
}

}  // namespace backcheck::dialog
