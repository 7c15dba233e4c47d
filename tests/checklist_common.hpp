// Shared by the CheckList-style generators (tests/checklist for red flags, tests/intents_checklist
// for intents): reading the .jsonc data, the seeded template filler, the text perturbations (case,
// dictation, one-letter typos in starred words, wrappers) and the report's number formatting.
// All randomness is one std::mt19937 owned by Generator, drawn with rng() % n, so the same data
// gives the same sentences on every machine.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

namespace backcheck::checklist {

namespace fs = std::filesystem;
using nlohmann::json;

// ---- data ------------------------------------------------------------------------------------

inline json ReadJsonc(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + p.string());
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return json::parse(ss.str(), nullptr, true, /*ignore_comments=*/true);
  } catch (const json::exception& e) {
    throw std::runtime_error(p.filename().string() + ": " + e.what());
  }
}

inline std::vector<std::string> Strings(const json& j, const std::string& where) {
  std::vector<std::string> out;
  if (j.is_null()) return out;
  if (!j.is_array()) throw std::runtime_error(where + ": expected an array of strings");
  for (const auto& v : j) {
    if (!v.is_string()) throw std::runtime_error(where + ": expected an array of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

using Lexicon = std::map<std::string, std::vector<std::string>>;

// ---- the generator ---------------------------------------------------------------------------

class Generator {
 public:
  Generator(Lexicon lex, std::uint32_t seed) : lex_(std::move(lex)), rng_(seed) {}

  std::size_t Pick(std::size_t n) { return n == 0 ? 0 : rng_() % n; }
  template <class T>
  const T& Choose(const std::vector<T>& v) {
    return v[Pick(v.size())];
  }
  std::mt19937& rng() { return rng_; }

  // The distinct slot names of `t` in order of first appearance ("{arm}", "{arm#2}" are two).
  static std::vector<std::string> Slots(const std::string& t) {
    std::vector<std::string> out;
    for (std::size_t i = 0; (i = t.find('{', i)) != std::string::npos;) {
      auto j = t.find('}', i);
      if (j == std::string::npos) throw std::runtime_error("unclosed { in template: " + t);
      auto name = t.substr(i + 1, j - i - 1);
      if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
      i = j + 1;
    }
    return out;
  }

  static std::string Base(const std::string& slot) { return slot.substr(0, slot.find('#')); }

  const std::vector<std::string>& Values(const std::string& slot, const Lexicon& local,
                                         const std::string& tmpl) const {
    auto b = Base(slot);
    if (auto it = local.find(b); it != local.end()) return it->second;
    if (auto it = lex_.find(b); it != lex_.end()) return it->second;
    throw std::runtime_error("template '" + tmpl + "': no lexicon '" + b + "'");
  }

  static std::string Replace(std::string s, const std::string& from, const std::string& to) {
    for (std::size_t i = 0; (i = s.find(from, i)) != std::string::npos; i += to.size()) s.replace(i, from.size(), to);
    return s;
  }

  // Fills the slots left in `s` (values naming slots themselves) with random draws.
  std::string Resolve(std::string s, const Lexicon& local, const std::string& tmpl, int depth = 0) {
    if (depth > 4) throw std::runtime_error("template '" + tmpl + "': slots nested too deep");
    auto slots = Slots(s);
    if (slots.empty()) return s;
    std::string pronoun;
    for (const auto& slot : slots) {
      if (slot == "his_her") continue;
      const auto& v = Values(slot, local, tmpl);
      if (v.empty()) throw std::runtime_error("template '" + tmpl + "': lexicon '" + slot + "' is empty");
      auto value = Choose(v);
      if (Base(slot) == "pronoun_subj") pronoun = value;
      s = Replace(s, "{" + slot + "}", value);
    }
    s = HisHer(s, pronoun);
    return Resolve(s, local, tmpl, depth + 1);
  }

  // {his_her} agrees with {pronoun_subj} when the sentence has one, else is drawn.
  std::string HisHer(const std::string& s, std::string pronoun) {
    if (s.find("{his_her}") == std::string::npos) return s;
    if (pronoun.empty()) pronoun = Pick(2) ? "he" : "she";
    return Replace(s, "{his_her}", pronoun == "he" ? "his" : "her");
  }

  // Up to `cap` fillings of `tmpl`: every combination of its top-level slots when there are at
  // most `cap`, else `cap` distinct combinations drawn at random.
  std::vector<std::string> Fill(const std::string& tmpl, std::size_t cap, const Lexicon& local = {}) {
    auto slots = Slots(tmpl);
    slots.erase(std::remove(slots.begin(), slots.end(), "his_her"), slots.end());
    std::vector<const std::vector<std::string>*> vals;
    std::size_t total = 1;
    for (const auto& s : slots) {
      vals.push_back(&Values(s, local, tmpl));
      if (vals.back()->empty()) throw std::runtime_error("template '" + tmpl + "': lexicon '" + s + "' is empty");
      total = std::min<std::size_t>(total * vals.back()->size(), 1u << 20);
    }
    std::vector<std::vector<std::size_t>> picks;
    if (total <= cap) {
      for (std::size_t k = 0; k < total; ++k) {
        std::vector<std::size_t> idx;
        std::size_t r = k;
        for (auto* v : vals) {
          idx.push_back(r % v->size());
          r /= v->size();
        }
        picks.push_back(idx);
      }
    } else {
      std::set<std::vector<std::size_t>> seen;
      for (std::size_t tries = 0; picks.size() < cap && tries < cap * 50; ++tries) {
        std::vector<std::size_t> idx;
        for (auto* v : vals) idx.push_back(Pick(v->size()));
        if (seen.insert(idx).second) picks.push_back(idx);
      }
    }
    std::vector<std::string> out;
    for (const auto& idx : picks) {
      std::string s = tmpl, pronoun;
      for (std::size_t i = 0; i < slots.size(); ++i) {
        const auto& value = (*vals[i])[idx[i]];
        if (Base(slots[i]) == "pronoun_subj") pronoun = value;
        s = Replace(s, "{" + slots[i] + "}", value);
      }
      s = HisHer(s, pronoun);
      out.push_back(Resolve(s, local, tmpl));
    }
    return out;
  }

 private:
  Lexicon lex_;
  std::mt19937 rng_;
};

// ---- text helpers ----------------------------------------------------------------------------

inline std::string StripStars(std::string s) {
  s.erase(std::remove(s.begin(), s.end(), '*'), s.end());
  // Collapse double spaces a slot may have left.
  std::string out;
  for (char c : s) {
    if (c == ' ' && !out.empty() && out.back() == ' ') continue;
    out += c;
  }
  while (!out.empty() && out.front() == ' ') out.erase(out.begin());
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

inline std::string Upper(std::string s) {
  for (auto& c : s)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return s;
}

inline std::string Title(std::string s) {
  bool start = true;
  for (auto& c : s) {
    if (c == ' ') {
      start = true;
    } else if (start) {
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
      if (c != '*') start = false;
    }
  }
  return s;
}

// Voice dictation: no punctuation at all, the first letter capitalised.
inline std::string Dictation(const std::string& s) {
  std::string out;
  for (char c : s)
    if (!std::strchr(".,?!;:'\"", c)) out += c;
  for (auto& c : out)
    if (c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - 'a' + 'A');
      break;
    }
  return out;
}

struct Span {
  std::size_t begin, size;  // of a starred word, without its stars
};

inline std::vector<Span> SymptomWords(const std::string& s, std::size_t min_letters) {
  std::vector<Span> out;
  for (std::size_t i = 0; (i = s.find('*', i)) != std::string::npos;) {
    auto j = s.find('*', i + 1);
    if (j == std::string::npos) break;
    std::string w = s.substr(i + 1, j - i - 1);
    bool alpha = !w.empty() && std::all_of(w.begin(), w.end(), [](char c) { return c >= 'a' && c <= 'z'; });
    if (alpha && w.size() >= min_letters) out.push_back({i + 1, w.size()});
    i = j + 1;
  }
  return out;
}

// One typo in one starred word of `min_letters`+ letters ("keyboard": an adjacent-key slip,
// "drop": a letter left out, "double": a letter doubled); "" when none can be made that is not a
// real word (`words`: the dictionaries, lower case), since no matcher can be asked to undo it.
class Typist {
 public:
  Typist(json keyboard, const std::vector<std::string>& dictionaries, std::size_t min_letters)
      : kb_(std::move(keyboard)), min_letters_(min_letters) {
    for (const auto& path : dictionaries) {
      std::ifstream in(path);
      std::string w;
      while (std::getline(in, w)) {
        for (auto& c : w) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        words_.insert(w);
      }
    }
  }

  bool RealWord(const std::string& w) const { return words_.count(w) > 0; }

  std::string Typo(Generator& gen, const std::string& s, const std::string& kind) const {
    auto spans = SymptomWords(s, min_letters_);
    if (spans.empty()) return "";
    for (int tries = 0; tries < 40; ++tries) {
      auto sp = gen.Choose(spans);
      std::string w = s.substr(sp.begin, sp.size), t = w;
      auto i = gen.Pick(w.size());
      if (kind == "keyboard") {
        std::string key(1, w[i]);
        if (!kb_.contains(key)) continue;
        auto near = kb_[key].get<std::string>();
        t[i] = near[gen.Pick(near.size())];
      } else if (kind == "drop") {
        if (i == 0) i = 1;  // a dropped first letter is rare in typing
        t.erase(i, 1);
      } else {
        t.insert(i, 1, w[i]);
      }
      if (t == w || RealWord(t)) continue;
      return s.substr(0, sp.begin) + t + s.substr(sp.begin + sp.size);
    }
    return "";
  }

 private:
  json kb_;
  std::unordered_set<std::string> words_;
  std::size_t min_letters_;
};

// A random wrapper of `list` ("tbh {s}") around `s`.
inline std::string Wrap(Generator& gen, const json& lists, const char* list, const std::string& s) {
  auto w = gen.Choose(Strings(lists.at(list), list));
  return Generator::Replace(w, "{s}", s);
}

// Without . , ? ! ; : ' "
inline std::string Bare(const std::string& s) {
  std::string out;
  for (char c : s)
    if (!std::strchr(".,?!;:'\"", c)) out += c;
  return out;
}

// ---- report formatting -----------------------------------------------------------------------

inline std::string Pct(std::size_t a, std::size_t b) {
  if (b == 0) return "-";
  std::ostringstream o;
  o << std::fixed << std::setprecision(1) << 100.0 * static_cast<double>(a) / static_cast<double>(b) << "%";
  return o.str();
}

inline std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s.empty() ? "-" : s;
}

inline std::string MdEscape(std::string s) { return Generator::Replace(s, "|", "\\|"); }

}  // namespace backcheck::checklist
