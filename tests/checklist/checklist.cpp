// A behavioural test generator for red-flag detection in the style of CheckList (Ribeiro et al.,
// "Beyond Accuracy: Behavioral Testing of NLP Models with CheckList", ACL 2020): templates x
// lay-term lexicons x perturbations, all data in tests/checklist/*.jsonc, expanded at run time
// with one seeded std::mt19937, so the same data gives the same sentences on every machine.
//
// Each case is the first message of a fresh conversation (Engine::Start, one Engine::Respond with
// EngineOptions{} defaults, spelling on) and is judged on the reply's red_flags, possible_flags and
// escalated:
//   positive (mft, paraphrase, inv.*, dir.scope): each expected flag is caught (in red_flags),
//     asked (only in possible_flags) or missed;
//   negative (harmless, dir.*): a false alarm when any flag is in red_flags or the message
//     escalated; asked when possible_flags is not empty; clean otherwise.
//
//   checklist [--data DIR] [--kb DIR] [--out DIR] [--only mft] [--list]
//     --only mft  the minimum-functionality cases only (MFT positives and harmless messages);
//                 exit 1 when one fails (CTest checklist.mft). Writes no report.
//     default     every case; writes OUT/report.md and OUT/report.json; exit 0 unless it crashes
//                 or the data is bad (CTest checklist.report).
//     --list      print the generated cases as JSON lines and exit, without running the engine.
//
// See tests/checklist/README.md.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

#include "dialog/engine.hpp"
#include "knowledge/loader.hpp"
#include "tests/checklist_common.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using namespace backcheck::checklist;


// ---- cases -----------------------------------------------------------------------------------

struct Case {
  std::string type;                 // mft, harmless, paraphrase, inv.<kind>, dir.<kind>
  std::string flag;                 // the flag it is about ("" for harmless messages)
  bool negative = false;            // must not raise any flag nor escalate
  std::vector<std::string> expect;  // flags that must be in red_flags
  std::vector<std::string> forbid;  // flags that must not be (the negated one of dir.scope)
  std::string text;
  std::string base;                 // inv.*: the MFT sentence it perturbs
};

struct Outcome {
  std::vector<std::string> red_flags, possible_flags;
  bool escalated = false;
};

bool Has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

class Suite {
 public:
  Suite(const fs::path& dir, const std::vector<std::string>& required_flags) {
    auto lex = ReadJsonc(dir / "lexicons.jsonc");
    tmpl_ = ReadJsonc(dir / "templates.jsonc");
    pert_ = ReadJsonc(dir / "perturbations.jsonc");
    Lexicon l;
    for (auto& [k, v] : lex.items()) l[k] = Strings(v, "lexicons.jsonc: " + k);
    seed_ = pert_.at("seed").get<std::uint32_t>();
    gen_ = std::make_unique<Generator>(std::move(l), seed_);
    for (const auto& f : required_flags) {
      if (!tmpl_.at("flags").contains(f)) throw std::runtime_error("templates.jsonc: no templates for flag '" + f + "'");
      flags_.push_back(f);
    }
    for (auto& [k, v] : tmpl_.at("flags").items())
      if (!Has(flags_, k)) throw std::runtime_error("templates.jsonc: '" + k + "' is not a flag of SPEC section 5");
    typist_ = std::make_unique<Typist>(pert_.at("keyboard"), Strings(pert_["dictionaries"], "perturbations.jsonc: dictionaries"),
                                       pert_.value("typo_min_letters", 5));
    examples_ = pert_.value("examples_per_category", 8);
  }

  std::uint32_t seed() const { return seed_; }
  std::size_t examples() const { return examples_; }
  const std::vector<std::string>& flags() const { return flags_; }

  std::vector<Case> Generate(bool mft_only) {
    std::vector<Case> out;
    auto caps = pert_.at("fills_per_template");
    auto cap = [&](const char* k) { return caps.at(k).get<std::size_t>(); };

    // MFT positives, kept with their stars as the bases of the perturbations.
    std::map<std::string, std::vector<std::string>> bases;
    for (const auto& f : flags_) {
      const auto& ft = tmpl_["flags"][f];
      for (const auto& t : Strings(ft["mft"], f + ".mft"))
        for (auto& s : gen_->Fill(t, cap("mft"))) {
          bases[f].push_back(s);
          Add(out, {"mft", f, false, {f}, {}, StripStars(s)});
        }
    }
    // Harmless messages.
    for (const auto& t : Strings(tmpl_["harmless"], "harmless"))
      for (auto& s : gen_->Fill(t, cap("harmless"))) Add(out, {"harmless", "", true, {}, {}, StripStars(s)});
    if (mft_only) return out;

    for (const auto& f : flags_) {
      const auto& ft = tmpl_["flags"][f];
      for (const auto& t : Strings(ft["paraphrase"], f + ".paraphrase"))
        for (auto& s : gen_->Fill(t, cap("paraphrase"))) Add(out, {"paraphrase", f, false, {f}, {}, StripStars(s)});
    }

    // INV: perturbations of every MFT positive.
    for (const auto& f : flags_)
      for (const auto& b : bases[f]) Perturb(out, f, b, bases);

    // DIR: must not escalate.
    for (const auto& f : flags_) {
      const auto& ft = tmpl_["flags"][f];
      Lexicon nouns{{"noun", Strings(ft["nouns"], f + ".nouns")}, {"topic", Strings(ft["topics"], f + ".topics")}};
      auto dir = [&](const char* type, const std::vector<std::string>& ts, const Lexicon& local) {
        for (const auto& t : ts)
          for (auto& s : gen_->Fill(t, cap("dir"), local)) Add(out, {type, f, true, {}, {}, StripStars(s)});
      };
      dir("dir.negation", Strings(ft["negated"], f + ".negated"), {});
      dir("dir.negation", Strings(tmpl_["negation"], "negation"), nouns);
      dir("dir.hypothetical", Strings(tmpl_["hypothetical"], "hypothetical"), nouns);
      dir("dir.historical", Strings(ft["past"], f + ".past"), {});
      dir("dir.historical", Strings(tmpl_["historical"], "historical"), nouns);
      dir("dir.other_person", Strings(ft["other"], f + ".other"), {});
      dir("dir.idiom", Strings(ft["idioms"], f + ".idioms"), {});
      dir("dir.effort_passed", Strings(ft["effort"], f + ".effort"), {});

      // Scope: another flag negated, this one affirmed.
      for (const auto& t : Strings(tmpl_["scope"], "scope"))
        for (int k = 0; k < 3; ++k) {
          std::string other;
          do other = gen_->Choose(flags_);
          while (other == f);
          auto neg = gen_->Choose(Strings(tmpl_["flags"][other]["nouns"], other + ".nouns"));
          auto pos = StripStars(gen_->Choose(bases[f]));
          auto s = Generator::Replace(Generator::Replace(t, "{neg}", neg), "{pos}", pos);
          Add(out, {"dir.scope", f, false, {f}, {other}, s});
        }
    }
    return out;
  }

  static bool Passed(const Case& c, const Outcome& o) {
    if (c.negative) return o.red_flags.empty() && !o.escalated;
    for (const auto& f : c.expect)
      if (!Has(o.red_flags, f)) return false;
    for (const auto& f : c.forbid)
      if (Has(o.red_flags, f)) return false;
    return true;
  }

 private:
  void Add(std::vector<Case>& out, Case c) {
    if (seen_.insert(c.type + '\n' + c.text).second) out.push_back(std::move(c));
  }

  std::string Typo(const std::string& s, const std::string& kind) { return typist_->Typo(*gen_, s, kind); }

  std::string Wrap(const char* list, const std::string& s) { return backcheck::checklist::Wrap(*gen_, pert_, list, s); }

  void Perturb(std::vector<Case>& out, const std::string& f, const std::string& b,
               const std::map<std::string, std::vector<std::string>>& bases) {
    auto add = [&](const char* type, const std::string& s) {
      if (!s.empty()) Add(out, {std::string("inv.") + type, f, false, {f}, {}, StripStars(s), StripStars(b)});
    };
    add("typo_keyboard", Typo(b, "keyboard"));
    add("typo_drop", Typo(b, "drop"));
    add("typo_double", Typo(b, "double"));
    add("case_upper", Upper(b));
    add("case_title", Title(b));
    add("filler", Wrap("filler", b));
    add("emoji", Wrap("emoji", b));
    add("dictation", Dictation(b));
    add("aside", Wrap("aside", b));
    static const std::vector<std::string> self_starts = {"i ", "im ", "ive ", "my ", "the ", "its ", "theres ", "there "};
    if (std::any_of(self_starts.begin(), self_starts.end(), [&](const std::string& p) { return b.rfind(p, 0) == 0; }))
      add("self_question", Wrap("self_question", b));
    // Everything at once, as a quick chat message is typed: a typo, no punctuation, filler, emoji.
    {
      static const char* kinds[] = {"keyboard", "drop", "double"};
      auto t = Typo(b, kinds[gen_->Pick(3)]);
      if (t.empty()) t = b;
      add("combined", Wrap("emoji", Wrap("filler", Bare(t))));
    }
    add("ramble", Generator::Replace(gen_->Choose(Strings(tmpl_.at("rambles"), "rambles")), "{s}", b));
    // Two flags in one message.
    std::string other;
    do other = gen_->Choose(flags_);
    while (other == f);
    auto pair = gen_->Choose(Strings(tmpl_.at("pairs"), "pairs"));
    auto s = Generator::Replace(Generator::Replace(pair, "{a}", b), "{b}", gen_->Choose(bases.at(other)));
    Add(out, {"inv.two_flags", f, false, {f, other}, {}, StripStars(s), StripStars(b)});
  }

  json tmpl_, pert_;
  std::uint32_t seed_ = 0;
  std::unique_ptr<Generator> gen_;
  std::vector<std::string> flags_;
  std::unique_ptr<Typist> typist_;
  std::size_t examples_ = 8;
  std::set<std::string> seen_;
};

// ---- report ----------------------------------------------------------------------------------

struct PosCell {
  std::size_t cases = 0, caught = 0, asked = 0, missed = 0;
  std::size_t broken = 0;  // inv.*: the MFT sentence it perturbs was caught, this one was not
};
struct NegCell {
  std::size_t cases = 0, false_alarms = 0, asked = 0;
};


}  // namespace

int main(int argc, char** argv) try {
  fs::path data = BACKCHECK_CHECKLIST_DIR, kb_dir = BACKCHECK_DEFAULT_KB_DIR, out_dir = BACKCHECK_CHECKLIST_OUT;
  bool mft_only = false, list_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--data") data = next();
    else if (a == "--kb") kb_dir = next();
    else if (a == "--out") out_dir = next();
    else if (a == "--only") {
      if (next() != "mft") throw std::runtime_error("--only takes 'mft'");
      mft_only = true;
    } else if (a == "--list") list_only = true;
    else throw std::runtime_error("unknown argument " + a + " (see the comment at the top of checklist.cpp)");
  }

  Suite suite(data, backcheck::knowledge::RequiredFlags());
  const auto cases = suite.Generate(mft_only);
  if (list_only) {
    for (const auto& c : cases)
      std::cout << json{{"type", c.type}, {"flag", c.flag}, {"negative", c.negative}, {"expect", c.expect},
                        {"forbid", c.forbid}, {"text", c.text}}.dump() << "\n";
    return 0;
  }

  const backcheck::dialog::Engine engine(backcheck::knowledge::LoadKnowledgeBase(kb_dir), backcheck::dialog::EngineOptions{});
  const auto start = engine.Start();

  // type -> flag -> cell; flag "" for harmless. Ordered maps: a stable report.
  std::map<std::string, std::map<std::string, PosCell>> pos;
  std::map<std::string, std::map<std::string, NegCell>> neg;
  std::map<std::string, std::vector<json>> failures;  // "type flag" -> first N
  std::map<std::string, std::size_t> failure_counts;
  std::size_t mft_failed = 0, scope_leaks = 0;
  std::map<std::string, std::size_t> type_cases;
  std::map<std::string, std::vector<std::string>> mft_flags;  // MFT sentence -> its red_flags

  for (const auto& c : cases) {
    auto turn = engine.Respond(start, c.text);
    Outcome o{turn.reply.red_flags, turn.reply.possible_flags, turn.reply.escalated};
    if (c.type == "mft") mft_flags[c.text] = o.red_flags;
    ++type_cases[c.type];
    if (c.negative) {
      auto& cell = neg[c.type][c.flag];
      ++cell.cases;
      if (!o.red_flags.empty() || o.escalated) ++cell.false_alarms;
      else if (!o.possible_flags.empty()) ++cell.asked;
    } else {
      for (const auto& f : c.expect) {
        // inv.two_flags counts each of its two flags under its own row.
        auto& cell = pos[c.type][f];
        ++cell.cases;
        if (Has(o.red_flags, f)) ++cell.caught;
        else if (Has(o.possible_flags, f)) ++cell.asked;
        else ++cell.missed;
        // The first flag of a case is the one its base sentence reports.
        if (!c.base.empty() && f == c.expect.front() && !Has(o.red_flags, f) && Has(mft_flags[c.base], f))
          ++cell.broken;
      }
      for (const auto& f : c.forbid)
        if (Has(o.red_flags, f)) ++scope_leaks;
    }
    if (!Suite::Passed(c, o)) {
      if (c.type == "mft" || c.type == "harmless") ++mft_failed;
      auto key = c.type + " " + (c.flag.empty() ? "-" : c.flag);
      ++failure_counts[key];
      if (failures[key].size() < suite.examples())
        failures[key].push_back({{"type", c.type}, {"flag", c.flag}, {"text", c.text}, {"expect", c.expect},
                                 {"forbid", c.forbid}, {"red_flags", o.red_flags},
                                 {"possible_flags", o.possible_flags}, {"escalated", o.escalated}});
    }
  }

  if (mft_only) {
    std::cout << "checklist.mft: " << cases.size() << " cases (seed " << suite.seed() << "), " << mft_failed
              << " failed\n";
    for (const auto& [key, list] : failures) {
      std::cout << "  " << key << ": " << failure_counts[key] << " failed, e.g.\n";
      for (const auto& f : list)
        std::cout << "    \"" << f["text"].get<std::string>() << "\" -> red_flags=" << f["red_flags"].dump()
                  << " possible_flags=" << f["possible_flags"].dump() << "\n";
    }
    return mft_failed == 0 ? 0 : 1;
  }

  // ---- totals --------------------------------------------------------------------------------
  auto pos_total = [&](const std::string& type) {
    PosCell t;
    for (const auto& [f, c] : pos[type]) {
      t.cases += c.cases, t.caught += c.caught, t.asked += c.asked, t.missed += c.missed, t.broken += c.broken;
    }
    return t;
  };
  auto neg_total = [&](const std::string& type) {
    NegCell t;
    for (const auto& [f, c] : neg[type]) t.cases += c.cases, t.false_alarms += c.false_alarms, t.asked += c.asked;
    return t;
  };
  PosCell all_pos;
  NegCell all_neg;
  std::map<std::string, PosCell> per_flag;  // every positive type
  for (const auto& [type, m] : pos)
    for (const auto& [f, c] : m) {
      auto& p = per_flag[f];
      p.cases += c.cases, p.caught += c.caught, p.asked += c.asked, p.missed += c.missed;
      all_pos.cases += c.cases, all_pos.caught += c.caught, all_pos.asked += c.asked, all_pos.missed += c.missed;
    }
  for (const auto& [type, m] : neg)
    for (const auto& [f, c] : m)
      all_neg.cases += c.cases, all_neg.false_alarms += c.false_alarms, all_neg.asked += c.asked;

  // ---- report.json ---------------------------------------------------------------------------
  json rj;
  rj["seed"] = suite.seed();
  rj["cases"] = cases.size();
  rj["cases_per_type"] = type_cases;
  rj["mft_failed"] = mft_failed;
  rj["scope_negated_flag_escalated"] = scope_leaks;
  rj["overall"] = {{"positive_checks", all_pos.cases}, {"caught", all_pos.caught}, {"asked", all_pos.asked},
                   {"missed", all_pos.missed}, {"negatives", all_neg.cases},
                   {"false_alarms", all_neg.false_alarms}, {"asked_on_negatives", all_neg.asked}};
  for (const auto& [type, m] : pos)
    for (const auto& [f, c] : m)
      rj["positive"][type][f] = {{"cases", c.cases}, {"caught", c.caught}, {"asked", c.asked}, {"missed", c.missed},
                                 {"broken", c.broken}};
  for (const auto& [type, m] : neg)
    for (const auto& [f, c] : m)
      rj["negative"][type][f.empty() ? "-" : f] = {{"cases", c.cases}, {"false_alarms", c.false_alarms}, {"asked", c.asked}};
  for (const auto& [key, list] : failures) rj["failures"][key] = {{"count", failure_counts[key]}, {"first", list}};

  // ---- report.md -----------------------------------------------------------------------------
  std::ostringstream md;
  md << "# Red-flag CheckList report\n\n"
     << "Generated by `checklist` from tests/checklist/*.jsonc, seed " << suite.seed() << ": " << cases.size()
     << " sentences, each the first message of a fresh conversation. See tests/checklist/README.md.\n\n"
     << "- MFT failures (gated by `checklist.mft`): **" << mft_failed << "**\n"
     << "- Positive checks: " << all_pos.cases << ", recall " << Pct(all_pos.caught, all_pos.cases) << ", asked "
     << Pct(all_pos.asked, all_pos.cases) << ", missed " << Pct(all_pos.missed, all_pos.cases) << "\n"
     << "- Negatives: " << all_neg.cases << ", false alarms " << all_neg.false_alarms << " ("
     << Pct(all_neg.false_alarms, all_neg.cases) << "), questions asked " << all_neg.asked << " ("
     << Pct(all_neg.asked, all_neg.cases) << ")\n"
     << "- Scope: the negated flag escalated in " << scope_leaks << " of " << type_cases["dir.scope"]
     << " dir.scope cases\n\n";

  md << "## Positives by test type\n\n`broken`: an INV case missed although the MFT sentence it perturbs was caught "
        "(the perturbation alone broke it).\n\n| type | checks | recall | asked | missed | broken |\n|---|---:|---:|---:|---:|---:|\n";
  for (const auto& [type, m] : pos) {
    auto t = pos_total(type);
    md << "| " << type << " | " << t.cases << " | " << Pct(t.caught, t.cases) << " | " << Pct(t.asked, t.cases)
       << " | " << t.missed << " | " << (type.rfind("inv.", 0) == 0 ? std::to_string(t.broken) : "-") << " |\n";
  }
  md << "\n## Negatives by test type\n\n| type | cases | false alarms | rate | asked |\n|---|---:|---:|---:|---:|\n";
  for (const auto& [type, m] : neg) {
    auto t = neg_total(type);
    md << "| " << type << " | " << t.cases << " | " << t.false_alarms << " | " << Pct(t.false_alarms, t.cases)
       << " | " << t.asked << " |\n";
  }

  std::vector<std::string> ptypes, ntypes;
  for (const auto& [t, m] : pos) ptypes.push_back(t);
  for (const auto& [t, m] : neg)
    if (t != "harmless") ntypes.push_back(t);
  md << "\n## Recall per flag and test type\n\nEach cell: recall (caught/checks); `+a` = asked instead.\n\n| flag | all |";
  for (const auto& t : ptypes) md << " " << t << " |";
  md << "\n|---|---:|";
  for (std::size_t i = 0; i < ptypes.size(); ++i) md << "---:|";
  md << "\n";
  for (const auto& f : suite.flags()) {
    const auto& a = per_flag[f];
    md << "| " << f << " | " << Pct(a.caught, a.cases) << " |";
    for (const auto& t : ptypes) {
      auto it = pos[t].find(f);
      if (it == pos[t].end()) {
        md << " - |";
        continue;
      }
      const auto& c = it->second;
      md << " " << Pct(c.caught, c.cases) << " (" << c.caught << "/" << c.cases << ")";
      if (c.asked) md << " +" << c.asked << "a";
      md << " |";
    }
    md << "\n";
  }
  md << "\n## False alarms per flag and test type (negatives)\n\nEach cell: false alarms/cases; `+a` = asked.\n\n| flag |";
  for (const auto& t : ntypes) md << " " << t << " |";
  md << "\n|---|";
  for (std::size_t i = 0; i < ntypes.size(); ++i) md << "---:|";
  md << "\n";
  for (const auto& f : suite.flags()) {
    md << "| " << f << " |";
    for (const auto& t : ntypes) {
      auto it = neg[t].find(f);
      if (it == neg[t].end()) {
        md << " - |";
        continue;
      }
      md << " " << it->second.false_alarms << "/" << it->second.cases;
      if (it->second.asked) md << " +" << it->second.asked << "a";
      md << " |";
    }
    md << "\n";
  }

  md << "\n## Failing sentences (first " << suite.examples() << " per category)\n";
  for (const auto& [key, list] : failures) {
    md << "\n### " << key << " (" << failure_counts[key] << " failed)\n\n| sentence | expected | red_flags | possible_flags |\n|---|---|---|---|\n";
    for (const auto& f : list) {
      auto exp = f["expect"].get<std::vector<std::string>>();
      std::string e = f["type"] == "harmless" || (!exp.size()) ? "none" : Join(exp);
      if (!f["forbid"].empty()) e += " (not " + Join(f["forbid"].get<std::vector<std::string>>()) + ")";
      md << "| " << MdEscape(f["text"].get<std::string>()) << " | " << e << " | "
         << Join(f["red_flags"].get<std::vector<std::string>>()) << " | "
         << Join(f["possible_flags"].get<std::vector<std::string>>()) << " |\n";
    }
  }

  fs::create_directories(out_dir);
  std::ofstream(out_dir / "report.json") << rj.dump(2) << "\n";
  std::ofstream(out_dir / "report.md") << md.str();

  // ---- stdout summary ------------------------------------------------------------------------
  std::cout << "checklist: " << cases.size() << " cases (seed " << suite.seed() << "), report in "
            << (out_dir / "report.md").string() << "\n"
            << "  MFT failures: " << mft_failed << "\n"
            << "  positives: recall " << Pct(all_pos.caught, all_pos.cases) << " of " << all_pos.cases
            << " checks, asked " << all_pos.asked << ", missed " << all_pos.missed << "\n"
            << "  negatives: false alarms " << all_neg.false_alarms << "/" << all_neg.cases << " ("
            << Pct(all_neg.false_alarms, all_neg.cases) << "), asked " << all_neg.asked << "\n";
  for (const auto& [type, m] : pos) {
    auto t = pos_total(type);
    std::cout << "    " << std::left << std::setw(20) << type << " recall " << Pct(t.caught, t.cases) << " ("
              << t.caught << "/" << t.cases << ")";
    if (type.rfind("inv.", 0) == 0) std::cout << ", broken by the perturbation " << t.broken;
    std::cout << "\n";
  }
  for (const auto& [type, m] : neg) {
    auto t = neg_total(type);
    std::cout << "    " << std::left << std::setw(20) << type << " false alarms " << Pct(t.false_alarms, t.cases)
              << " (" << t.false_alarms << "/" << t.cases << ")\n";
  }
  std::cout << "  recall per flag:";
  for (const auto& f : suite.flags()) std::cout << " " << f << "=" << Pct(per_flag[f].caught, per_flag[f].cases);
  std::cout << "\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "checklist: " << e.what() << "\n";
  return 2;
}
