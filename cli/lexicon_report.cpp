#include "cli/lexicon_report.hpp"

#include <re2/re2.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <sstream>

#include "cli/script.hpp"
#include "dialog/safety/concepts.hpp"
#include "dialog/text/stems.hpp"

namespace backcheck::cli {
namespace {

using nlohmann::json;

std::string ReadFile(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw SentencesError(file.string() + ": cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The 1-based line of the first occurrence of `needle` at or after `from` in `text` (0 when absent).
std::size_t LineOf(const std::string& text, const std::string& needle, std::size_t& from) {
  const std::size_t at = text.find(needle, from);
  if (at == std::string::npos) return 0;
  from = at + needle.size();
  return 1 + static_cast<std::size_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n'));
}

std::vector<std::string> FlagList(const json& v, const std::string& where, const std::string& key,
                                  const std::set<std::string>& ids) {
  std::vector<std::string> out;
  if (v.is_string() && v.get<std::string>() == "none") return out;
  if (!v.is_array()) throw SentencesError(where + ": '" + key + "' must be an array of flag ids or \"none\"");
  for (const auto& f : v) {
    if (!f.is_string() || !ids.count(f.get<std::string>())) {
      throw SentencesError(where + ": '" + key + "': " + f.dump() + " is not a flag id");
    }
    out.push_back(f.get<std::string>());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string Joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s.empty() ? "none" : s;
}

// Words of normalised text (and punctuation marks), as the detector tokenises it.
std::vector<std::string> Words(std::string_view text) {
  std::vector<std::string> out;
  for (const auto& t : dialog::Tokenise(text)) out.emplace_back(text.substr(t.begin, t.end - t.begin));
  return out;
}

bool Contains(const std::vector<std::string>& words, const std::vector<std::string>& phrase) {
  if (phrase.empty() || phrase.size() > words.size()) return false;
  for (std::size_t i = 0; i + phrase.size() <= words.size(); ++i) {
    if (std::equal(phrase.begin(), phrase.end(), words.begin() + static_cast<std::ptrdiff_t>(i))) return true;
  }
  return false;
}

// Whether `re` matches `text` somewhere overlapping [begin, end) (as the detector's Filter does).
bool Overlaps(const RE2& re, std::string_view text, std::size_t begin, std::size_t end) {
  std::size_t pos = 0;
  re2::StringPiece match;
  while (pos <= text.size() && re.Match(text, pos, text.size(), RE2::UNANCHORED, &match, 1)) {
    const auto b = static_cast<std::size_t>(match.data() - text.data());
    if (b < end && begin < b + match.size()) return true;
    pos = b + std::max<std::size_t>(match.size(), 1);
  }
  return false;
}

// The sentence around byte `at` (ends at . ! ? ;), as the detector checks `requires`.
std::string_view SentenceOf(std::string_view text, std::size_t at) {
  std::size_t b = text.find_last_of(".!?;", at == 0 ? 0 : at - 1);
  b = (b == std::string_view::npos || at == 0) ? 0 : b + 1;
  std::size_t e = text.find_first_of(".!?;", at);
  if (e == std::string_view::npos) e = text.size();
  return text.substr(b, e - b);
}

// How a term matches: its words' stems ("=word" and "*" as written). Two terms of one concept
// with the same key are one term: the matcher reports the first.
std::string StemKey(const std::string& term) {
  std::istringstream in(term);
  std::string key;
  for (std::string w; in >> w;) key += (w[0] == '=' || w == "*" ? w : dialog::Stem(w)) + " ";
  return key;
}

struct Entry {
  std::string file;   // "red_flags.jsonc"
  std::string kind;   // pattern, except, requires, rule, ask, term, idiom, cue
  std::string item;   // "numbness pattern 1", "concept ARM term 3", "cue list negation"
  std::string entry;  // the text as written
  std::vector<std::size_t> hits;  // sentence indices
  std::size_t exact = 0;          // cues: sentences where it decided a candidate
  int same_as = -1;               // entry index of an earlier entry that matches exactly as this one
  std::string why_same;
  void Hit(std::size_t s) {
    if (hits.empty() || hits.back() != s) hits.push_back(s);
  }
};

struct CueList {
  const char* name;
  const std::vector<std::string>* phrases;
  bool structural;
};

}  // namespace

std::vector<LabelledSentence> LoadLabelledSentences(const std::filesystem::path& file,
                                                    const knowledge::KnowledgeBase& kb) {
  const std::string text = ReadFile(file);
  json doc;
  try {
    doc = json::parse(text, nullptr, true, /*ignore_comments=*/true);
  } catch (const json::exception& e) {
    throw SentencesError(file.string() + ": " + e.what());
  }
  std::set<std::string> ids;
  for (const auto& f : kb.red_flags.flags) ids.insert(f.id);
  std::vector<LabelledSentence> out;
  std::size_t from = 0;
  for (const char* key : {"sentences", "known_misses"}) {
    if (!doc.contains(key)) continue;
    if (!doc[key].is_array()) throw SentencesError(file.string() + ": '" + key + "' must be an array");
    for (const auto& s : doc[key]) {
      LabelledSentence l;
      l.known_miss = std::string(key) == "known_misses";
      if (!s.is_object() || !s.contains("text") || !s["text"].is_string()) {
        throw SentencesError(file.string() + ": '" + key + "': an entry without a \"text\" string: " + s.dump());
      }
      l.text = s["text"].get<std::string>();
      std::size_t probe = from;
      l.line = LineOf(text, json(l.text).dump(), probe);
      if (l.line > 0) from = probe;
      const std::string where = file.filename().string() + ":" + std::to_string(l.line) + " \"" + l.text + "\"";
      if (!s.contains("red_flags")) throw SentencesError(where + ": no \"red_flags\" (flag ids, or \"none\")");
      l.red_flags = FlagList(s["red_flags"], where, "red_flags", ids);
      if (s.contains("possible_flags")) l.possible_flags = FlagList(s["possible_flags"], where, "possible_flags", ids);
      l.exercises = s.value("exercises", "");
      l.note = s.value("note", "");
      for (const auto& [k, v] : s.items()) {
        if (k != "text" && k != "red_flags" && k != "possible_flags" && k != "exercises" && k != "note") {
          throw SentencesError(where + ": unknown key '" + k + "'");
        }
      }
      out.push_back(std::move(l));
    }
  }
  return out;
}

std::vector<TestSentence> CollectTestSentences(const std::filesystem::path& tests_dir,
                                               const knowledge::KnowledgeBase& kb) {
  std::vector<TestSentence> out;
  const auto root = tests_dir.parent_path();
  auto name = [&](const std::string& file) {
    std::error_code ec;
    auto rel = std::filesystem::relative(file, root, ec);
    return ec || rel.empty() ? file : rel.string();
  };
  for (const auto& sub : {tests_dir / "conversations", tests_dir / "eval" / "dev.jsonl"}) {
    for (const auto& script : LoadScripts({sub})) {
      for (const auto& turn : script.turns) {
        out.push_back({turn.text, name(script.file) + ":" + std::to_string(turn.line), false});
      }
    }
  }
  const auto labelled = tests_dir / "red_flags" / "sentences.jsonc";
  if (std::filesystem::exists(labelled)) {
    for (const auto& l : LoadLabelledSentences(labelled, kb)) {
      out.push_back({l.text, name(labelled.string()) + ":" + std::to_string(l.line), l.known_miss});
    }
  }
  return out;
}

int LexiconReport(const dialog::Engine& engine, const std::vector<TestSentence>& sentences, bool as_json,
                  std::ostream& out) {
  const auto& lex = engine.kb().red_flags;
  RE2::Options options;
  options.set_log_errors(false);
  options.set_max_mem(64 << 20);

  std::vector<Entry> entries;
  auto add = [&](std::string file, std::string kind, std::string item, std::string entry) {
    entries.push_back(Entry{std::move(file), std::move(kind), std::move(item), std::move(entry), {}, 0, -1, {}});
    return entries.size() - 1;
  };
  // Per flag: entry indices of its patterns, excepts, requires, rules, ask rules; compiled regexes.
  struct FlagEntries {
    std::vector<std::size_t> patterns, excepts, requires_, rules, asks;
    std::vector<std::unique_ptr<RE2>> except_re, requires_re;
  };
  std::vector<FlagEntries> fe(lex.flags.size());
  std::map<std::string, std::size_t> flag_index;
  for (std::size_t f = 0; f < lex.flags.size(); ++f) {
    const auto& flag = lex.flags[f];
    flag_index[flag.id] = f;
    for (std::size_t i = 0; i < flag.patterns.size(); ++i) {
      fe[f].patterns.push_back(add("red_flags.jsonc", "pattern", flag.id + " pattern " + std::to_string(i + 1), flag.patterns[i]));
    }
    for (std::size_t i = 0; i < flag.except.size(); ++i) {
      fe[f].excepts.push_back(add("red_flags.jsonc", "except", flag.id + " except " + std::to_string(i + 1), flag.except[i]));
      fe[f].except_re.push_back(std::make_unique<RE2>(flag.except[i], options));
    }
    for (std::size_t i = 0; i < flag.requires_.size(); ++i) {
      fe[f].requires_.push_back(
          add("red_flags.jsonc", "requires", flag.id + " requires " + std::to_string(i + 1), flag.requires_[i]));
      fe[f].requires_re.push_back(std::make_unique<RE2>(flag.requires_[i], options));
    }
    for (std::size_t i = 0; i < flag.rules.size(); ++i) {
      fe[f].rules.push_back(add("red_flags.jsonc", "rule", flag.id + " rule " + std::to_string(i + 1), flag.rules[i].source));
    }
    for (std::size_t i = 0; i < flag.ask_when.size(); ++i) {
      fe[f].asks.push_back(add("red_flags.jsonc", "ask", flag.id + " ask.when " + std::to_string(i + 1), flag.ask_when[i].source));
    }
    // The same pattern twice in one flag: the set reports one of them.
    for (std::size_t i = 0; i < flag.patterns.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        if (flag.patterns[i] == flag.patterns[j]) {
          entries[fe[f].patterns[i]].same_as = static_cast<int>(fe[f].patterns[j]);
          entries[fe[f].patterns[i]].why_same = "the same pattern as " + entries[fe[f].patterns[j]].item;
          break;
        }
      }
    }
  }
  std::map<std::string, std::size_t> concept_index;
  std::vector<std::vector<std::size_t>> term_entries(lex.concepts.size());
  for (std::size_t c = 0; c < lex.concepts.size(); ++c) {
    const auto& cn = lex.concepts[c];
    concept_index[cn.id] = c;
    std::map<std::string, std::size_t> first_of_key;
    for (std::size_t t = 0; t < cn.terms.size(); ++t) {
      const std::size_t e = add("concepts.jsonc", "term", "concept " + cn.id + " term " + std::to_string(t + 1), cn.terms[t]);
      term_entries[c].push_back(e);
      auto [it, fresh] = first_of_key.emplace(StemKey(cn.terms[t]), e);
      if (!fresh) {
        entries[e].same_as = static_cast<int>(it->second);
        entries[e].why_same = (entries[it->second].entry == cn.terms[t] ? "written twice: " : "the same stems as ") +
                              entries[it->second].item + " \"" + entries[it->second].entry + "\"";
      }
    }
  }
  std::vector<std::size_t> idiom_entries;
  {
    std::map<std::string, std::size_t> first_of_key;
    for (std::size_t i = 0; i < lex.idioms.size(); ++i) {
      const std::size_t e = add("concepts.jsonc", "idiom", "idiom " + std::to_string(i + 1), lex.idioms[i]);
      idiom_entries.push_back(e);
      auto [it, fresh] = first_of_key.emplace(StemKey(lex.idioms[i]), e);
      if (!fresh) {
        entries[e].same_as = static_cast<int>(it->second);
        entries[e].why_same = (entries[it->second].entry == lex.idioms[i] ? "written twice: " : "the same stems as ") +
                              entries[it->second].item + " \"" + entries[it->second].entry + "\"";
      }
    }
  }
  const auto& cues = lex.cues;
  const std::vector<CueList> lists = {
      {"negation", &cues.negation, false},           {"pseudo_negation", &cues.pseudo_negation, false},
      {"post_negation", &cues.post_negation, false}, {"clause_breaks", &cues.clause_breaks, true},
      {"soft_breaks", &cues.soft_breaks, true},      {"subject_starts", &cues.subject_starts, true},
      {"hypothetical", &cues.hypothetical, false},   {"concern", &cues.concern, false},
      {"definite", &cues.definite, true},            {"question_starts", &cues.question_starts, true},
      {"informational", &cues.informational, false}, {"reported_speech", &cues.reported_speech, false},
      {"first_person", &cues.first_person, true},    {"third_party", &cues.third_party, false},
      {"past", &cues.past, false},                   {"continuing", &cues.continuing, false},
      {"effort_activity", &cues.effort_activity, false}, {"effort_passed", &cues.effort_passed, false},
  };
  struct CuePhrase {
    std::size_t entry;
    std::vector<std::string> words;
  };
  std::vector<std::vector<CuePhrase>> cue_phrases(lists.size());
  for (std::size_t l = 0; l < lists.size(); ++l) {
    std::map<std::string, std::size_t> seen;
    for (const auto& p : *lists[l].phrases) {
      const std::size_t e = add("red_flags.jsonc", "cue", std::string("cues ") + lists[l].name, p);
      auto [it, fresh] = seen.emplace(p, e);
      if (!fresh) {
        entries[e].same_as = static_cast<int>(it->second);
        entries[e].why_same = std::string("written twice in cues ") + lists[l].name;
      }
      cue_phrases[l].push_back({e, Words(p)});
    }
  }

  // Run every sentence.
  std::vector<std::string> normalised_texts;
  for (std::size_t s = 0; s < sentences.size(); ++s) {
    const std::string normalised = engine.normaliser().Normalise(sentences[s].text);
    normalised_texts.push_back(normalised);
    dialog::DetectionTrace trace;
    engine.detector().Detect(normalised, &trace);
    for (const auto& c : trace.concepts) {
      auto it = concept_index.find(c.id);
      if (it != concept_index.end() && c.term_index < term_entries[it->second].size()) {
        entries[term_entries[it->second][c.term_index]].Hit(s);
      }
    }
    for (const auto& d : trace.idioms) {
      if (d.index < idiom_entries.size()) entries[idiom_entries[d.index]].Hit(s);
    }
    bool any_candidate = false, any_decided = false;
    std::set<std::pair<std::string, std::string>> deciding_cues;  // (list, cue text)
    for (const auto& c : trace.candidates) {
      auto it = flag_index.find(c.flag);
      if (it == flag_index.end()) continue;
      const std::size_t f = it->second;
      any_candidate = true;
      if (c.dropped.empty()) {
        any_decided = true;
        if (!c.cue.empty()) deciding_cues.emplace(c.cue_list, c.cue);
      }
      if (c.pattern >= 0 && static_cast<std::size_t>(c.pattern) < fe[f].patterns.size()) {
        entries[fe[f].patterns[static_cast<std::size_t>(c.pattern)]].Hit(s);
      }
      if (c.rule >= 0) {
        const auto& v = c.ask ? fe[f].asks : fe[f].rules;
        if (static_cast<std::size_t>(c.rule) < v.size()) entries[v[static_cast<std::size_t>(c.rule)]].Hit(s);
      }
      if (c.dropped == "except") {
        for (std::size_t i = 0; i < fe[f].except_re.size(); ++i) {
          if (fe[f].except_re[i]->ok() && Overlaps(*fe[f].except_re[i], normalised, c.begin, c.end)) {
            entries[fe[f].excepts[i]].Hit(s);
          }
        }
      }
      if (c.pattern >= 0 && c.dropped != "requires") {
        const auto sentence = SentenceOf(normalised, c.begin);
        for (std::size_t i = 0; i < fe[f].requires_re.size(); ++i) {
          if (fe[f].requires_re[i]->ok() && RE2::PartialMatch(sentence, *fe[f].requires_re[i])) {
            entries[fe[f].requires_[i]].Hit(s);
          }
        }
      }
    }
    if (!any_candidate) continue;
    const auto words = Words(normalised);
    for (std::size_t l = 0; l < lists.size(); ++l) {
      const bool counts = lists[l].structural ? any_candidate : any_decided;
      for (const auto& p : cue_phrases[l]) {
        const bool decided = deciding_cues.count({lists[l].name, entries[p.entry].entry}) > 0;
        if (decided) ++entries[p.entry].exact;
        if (decided || (counts && Contains(words, p.words))) entries[p.entry].Hit(s);
      }
    }
  }
  // An entry that matches exactly as an earlier one is exercised when that one is.
  for (auto& e : entries) {
    if (e.same_as >= 0 && e.hits.empty()) e.hits = entries[static_cast<std::size_t>(e.same_as)].hits;
  }

  auto exercised = [&](const Entry& e) {
    return std::any_of(e.hits.begin(), e.hits.end(), [&](std::size_t s) { return !sentences[s].known_miss; });
  };
  const std::vector<std::string> kinds = {"pattern", "except", "requires", "rule", "ask", "term", "idiom", "cue"};
  std::map<std::string, std::pair<std::size_t, std::size_t>> per_kind;  // exercised, total
  std::vector<const Entry*> missing, misses_only, same;
  for (const auto& e : entries) {
    auto& k = per_kind[e.kind];
    ++k.second;
    if (e.same_as >= 0) same.push_back(&e);
    if (exercised(e)) {
      ++k.first;
    } else if (!e.hits.empty()) {
      ++k.first;
      misses_only.push_back(&e);
    } else if (e.same_as < 0) {
      missing.push_back(&e);
    }
  }

  if (as_json) {
    json j{{"sentences", sentences.size()}};
    json list = json::array();
    for (const auto& e : entries) {
      json x{{"file", e.file}, {"kind", e.kind}, {"item", e.item}, {"entry", e.entry}, {"count", e.hits.size()}};
      json shown = json::array();
      for (std::size_t i = 0; i < e.hits.size() && i < 3; ++i) {
        shown.push_back({{"text", sentences[e.hits[i]].text}, {"source", sentences[e.hits[i]].source}});
      }
      x["sentences"] = std::move(shown);
      if (e.kind == "cue") x["decided"] = e.exact;
      if (e.same_as >= 0) x["same_as"] = e.why_same;
      list.push_back(std::move(x));
    }
    j["entries"] = std::move(list);
    json summary = json::object();
    for (const auto& k : kinds) summary[k] = {{"exercised", per_kind[k].first}, {"total", per_kind[k].second}};
    j["summary"] = std::move(summary);
    json un = json::array();
    for (const auto* e : missing) un.push_back({{"file", e->file}, {"item", e->item}, {"entry", e->entry}});
    j["unexercised"] = std::move(un);
    json mo = json::array();
    for (const auto* e : misses_only) mo.push_back({{"file", e->file}, {"item", e->item}, {"entry", e->entry}});
    j["exercised_only_by_known_misses"] = std::move(mo);
    json sa = json::array();
    for (const auto* e : same) sa.push_back({{"file", e->file}, {"item", e->item}, {"entry", e->entry}, {"same_as", e->why_same}});
    j["redundant"] = std::move(sa);
    out << j.dump(1) << "\n";
  } else {
    out << "Lexicon coverage: " << sentences.size() << " test sentences\n";
    std::string section;
    for (const auto& e : entries) {
      const std::string head = e.file + " " + e.kind + (e.kind == "cue" ? " (" + e.item.substr(5) + ")" : "");
      if (head != section) {
        section = head;
        out << "\n## " << head << "\n";
      }
      const bool ok = exercised(e);
      out << "\n" << (ok ? "" : e.hits.empty() ? (e.same_as >= 0 ? "[REDUNDANT] " : "[NOT EXERCISED] ") : "[KNOWN MISSES ONLY] ")
          << e.item << ": " << e.entry << "\n";
      if (e.same_as >= 0) out << "  redundant: " << e.why_same << "\n";
      out << "  " << e.hits.size() << " sentence" << (e.hits.size() == 1 ? "" : "s");
      if (e.kind == "cue" && e.exact > 0) out << " (decided a candidate in " << e.exact << ")";
      for (std::size_t i = 0; i < e.hits.size() && i < 3; ++i) {
        out << (i == 0 ? ": " : "; ") << "\"" << sentences[e.hits[i]].text << "\" (" << sentences[e.hits[i]].source << ")";
      }
      out << "\n";
    }
    out << "\nsummary (exercised/total):\n";
    for (const auto& k : kinds) out << "  " << k << ": " << per_kind[k].first << "/" << per_kind[k].second << "\n";
    if (!same.empty()) {
      out << "\nredundant entries (they match exactly what an earlier entry matches, so no sentence can be theirs;"
             " not gated, delete them):\n";
      for (const auto* e : same) out << "  " << e->file << "  " << e->item << "  \"" << e->entry << "\"  (" << e->why_same << ")\n";
    }
    if (!misses_only.empty()) {
      out << "\nexercised only by known misses (tests/red_flags/sentences.jsonc known_misses):\n";
      for (const auto* e : misses_only) out << "  " << e->file << "  " << e->item << "  " << e->entry << "\n";
    }
    if (missing.empty()) {
      out << "\nevery entry is exercised\n";
    } else {
      out << "\n" << missing.size() << " entries exercised by no test sentence (file, item, entry):\n";
      for (const auto* e : missing) out << "  " << e->file << "  " << e->item << "  " << e->entry << "\n";
    }
  }
  return missing.empty() ? 0 : 1;
}

int RunLabelledSentences(const dialog::Engine& engine, const std::vector<LabelledSentence>& sentences,
                         std::ostream& out) {
  std::size_t run = 0, failed = 0, misses = 0, fixed = 0;
  for (const auto& s : sentences) {
    const auto reply = engine.Respond(engine.Start(), s.text).reply;
    std::vector<std::string> red = reply.red_flags, possible = reply.possible_flags;
    std::sort(red.begin(), red.end());
    std::sort(possible.begin(), possible.end());
    const bool ok = red == s.red_flags && possible == s.possible_flags;
    const std::string where = "sentences.jsonc:" + std::to_string(s.line) + " \"" + s.text + "\"";
    if (s.known_miss) {
      ++misses;
      if (ok) {
        ++fixed;
        out << "known miss now passes (move it to \"sentences\"): " << where << "\n";
      } else {
        out << "known miss: " << where << ": red flags " << Joined(red) << " (expected " << Joined(s.red_flags)
            << "), possible flags " << Joined(possible) << " (expected " << Joined(s.possible_flags) << ")"
            << (s.note.empty() ? "" : "; " + s.note) << "\n";
      }
      continue;
    }
    ++run;
    if (ok) continue;
    ++failed;
    out << "FAILED " << where << (s.exercises.empty() ? "" : "  [" + s.exercises + "]") << "\n";
    if (red != s.red_flags) out << "  red flags: expected " << Joined(s.red_flags) << ", got " << Joined(red) << "\n";
    if (possible != s.possible_flags) {
      out << "  possible flags: expected " << Joined(s.possible_flags) << ", got " << Joined(possible) << "\n";
    }
  }
  out << run << " sentences, " << failed << " failed; " << misses << " known misses (" << fixed << " now pass)\n";
  return failed == 0 ? 0 : 1;
}

}  // namespace backcheck::cli
