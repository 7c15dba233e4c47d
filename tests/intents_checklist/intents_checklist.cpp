// A behavioural test generator for intents in the style of CheckList (Ribeiro et al., ACL 2020),
// issue 13 item 4: per intent, templates x lexicon phrasings x perturbations (ALL CAPS, a typo in
// a starred word, voice dictation without punctuation, chat slang "u"/"ppl"/"lol", emoji), all
// data in templates.jsonc, expanded at run time with one seeded std::mt19937
// (tests/checklist_common.hpp), so the same data gives the same messages on every machine.
//
// Each case is sent through dialog::Engine (EngineOptions{} defaults, spelling on, the real
// knowledge folder) in the context its intent needs (templates.jsonc "contexts": a fresh
// conversation; the screening, i.e. after a describe_pain message; an escalated conversation),
// and passes when
//   - the reply's intent is the expected intent or the SPEC intent it is reported as ("as");
//   - for an intent with "as", the matcher's best match for the message is the intent itself
//     (so "what should I do now" answered as plain warning_signs does not pass as what_now);
//   - for describe_pain, the reply's state has the screening role (the safety screening started).
//
//   intents_checklist [--data DIR] [--kb DIR] [--out DIR] [--gate] [--list]
//     --gate   the gated cases only: every unperturbed case, and every case of the intents named
//              in templates.jsonc "gate"; exit 1 when one fails (CTest intents_checklist.gate).
//     default  every case; writes OUT/report.md and OUT/report.json; exit 0 unless it crashes or
//              the data is bad (CTest intents_checklist.report).
//     --list   print the generated cases as JSON lines and exit, without running the engine.
//
// See tests/intents_checklist/README.md.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "dialog/engine.hpp"
#include "dialog/intent_matcher.hpp"
#include "knowledge/loader.hpp"
#include "tests/checklist_common.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace backcheck::checklist;

namespace {

struct Case {
  std::string intent;   // expected intent id
  std::string key;      // the templates.jsonc entry ("deny#breathing")
  std::string context;  // templates.jsonc "contexts" key
  std::string type;     // "base" or "inv.<perturbation>"
  std::string text;
  std::string base;     // the unperturbed message
  bool gated = false;
};

const char* kTypes[] = {"base", "inv.case_upper", "inv.typo", "inv.dictation", "inv.slang", "inv.emoji"};

bool HasWordAt(const std::string& s, std::size_t i, std::size_t n) {
  auto word = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '\''; };
  return (i == 0 || !word(s[i - 1])) && (i + n == s.size() || !word(s[i + n]));
}

// Whole-word, case-sensitive replacement of `from` by `to`.
std::string SwapWords(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t i = 0; (i = s.find(from, i)) != std::string::npos;) {
    if (HasWordAt(s, i, from.size())) {
      s.replace(i, from.size(), to);
      i += to.size();
    } else {
      i += from.size();
    }
  }
  return s;
}

class Suite {
 public:
  explicit Suite(const fs::path& dir) {
    data_ = ReadJsonc(dir / "templates.jsonc");
    Lexicon lex;
    for (auto& [k, v] : data_.at("lexicons").items()) lex[k] = Strings(v, "lexicons." + k);
    gen_ = std::make_unique<Generator>(std::move(lex), data_.at("seed").get<std::uint32_t>());
    const auto& p = data_.at("perturbations");
    typist_ = std::make_unique<Typist>(p.at("keyboard"), Strings(data_["dictionaries"], "dictionaries"),
                                       data_.value("typo_min_letters", 5));
    for (const auto& g : Strings(data_.at("gate"), "gate")) gate_.insert(g);
  }

  const json& data() const { return data_; }

  std::vector<Case> Generate() {
    std::vector<Case> out;
    const std::size_t cap = data_.value("fills_per_template", 4);
    for (auto& [key, entry] : data_.at("intents").items()) {
      const std::string intent = entry.value("intent", key);
      const std::string context = entry.at("context").get<std::string>();
      if (!data_.at("contexts").contains(context)) {
        throw std::runtime_error("templates.jsonc: intent '" + key + "': no context '" + context + "'");
      }
      // Each intent draws from its own stream (the seed and its key), so adding or editing one
      // intent's templates leaves every other intent's cases as they were.
      std::uint32_t stream = data_.at("seed").get<std::uint32_t>();
      for (unsigned char ch : key) stream = (stream ^ ch) * 16777619u;  // FNV-1a
      gen_->rng().seed(stream);
      for (const auto& t : Strings(entry.at("templates"), key)) {
        for (const auto& filled : gen_->Fill(t, cap)) {
          Case base{intent, key, context, "base", StripStars(filled), StripStars(filled), true};
          Add(out, base);
          const bool gated = gate_.count(intent) > 0;
          auto add = [&](const char* type, const std::string& text) {
            if (text.empty()) return;
            Case c = base;
            c.type = type;
            c.text = StripStars(text);
            c.gated = gated;
            if (c.text != base.text) Add(out, c);
          };
          add("inv.case_upper", Upper(filled));
          static const char* kinds[] = {"keyboard", "drop", "double"};
          add("inv.typo", typist_->Typo(*gen_, filled, kinds[gen_->Pick(3)]));
          add("inv.dictation", Dictation(filled));
          add("inv.slang", Slang(StripStars(filled)));
          add("inv.emoji", Wrap(*gen_, data_.at("perturbations"), "emoji", StripStars(filled)));
        }
      }
    }
    return out;
  }

 private:
  std::string Slang(std::string s) {
    const auto& p = data_.at("perturbations");
    for (auto& [from, to] : p.at("slang_words").items()) s = SwapWords(s, from, to.get<std::string>());
    return Wrap(*gen_, p, "slang_tails", s);
  }

  void Add(std::vector<Case>& out, Case c) {
    if (seen_.insert(c.key + '\n' + c.type + '\n' + c.text).second) out.push_back(std::move(c));
  }

  json data_;
  std::unique_ptr<Generator> gen_;
  std::unique_ptr<Typist> typist_;
  std::set<std::string> gate_, seen_;
};

struct Result {
  const Case* c;
  std::string intent;   // the reply's
  std::string matched;  // the matcher's best match ("-": none)
  std::string state;
  bool pass = false;
  bool known = false;  // a known failure (templates.jsonc "known_failures")
};

struct Cell {
  std::size_t cases = 0, passed = 0;
};

}  // namespace

int main(int argc, char** argv) try {
  fs::path data = BACKCHECK_INTENTS_CHECKLIST_DIR, kb_dir = BACKCHECK_DEFAULT_KB_DIR,
           out_dir = BACKCHECK_INTENTS_CHECKLIST_OUT;
  bool gate_only = false, list_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--data") data = next();
    else if (a == "--kb") kb_dir = next();
    else if (a == "--out") out_dir = next();
    else if (a == "--gate") gate_only = true;
    else if (a == "--list") list_only = true;
    else throw std::runtime_error("unknown argument " + a +
                                  " (intents_checklist [--data DIR] [--kb DIR] [--out DIR] [--gate] [--list])");
  }

  Suite suite(data);
  const auto cases = suite.Generate();
  if (list_only) {
    for (const auto& c : cases) {
      std::cout << json{{"intent", c.intent}, {"context", c.context}, {"type", c.type}, {"text", c.text},
                        {"gated", c.gated}}.dump()
                << "\n";
    }
    return 0;
  }

  auto kb = backcheck::knowledge::LoadKnowledgeBase(kb_dir);
  const backcheck::dialog::Engine engine(kb, backcheck::dialog::EngineOptions{});
  const backcheck::dialog::IntentMatcher matcher(engine.kb().intents);
  const auto& intents = engine.kb().intents;
  auto find_intent = [&](const std::string& id) -> const backcheck::knowledge::Intent& {
    for (const auto& i : intents)
      if (i.id == id) return i;
    throw std::runtime_error("templates.jsonc: '" + id + "' is not an intent of knowledge/data/intents.jsonc");
  };
  auto role_of = [&](const std::string& state) {
    const auto* s = engine.kb().flow.FindState(state);
    return s ? s->role : backcheck::knowledge::StateRole{};
  };
  auto role_named = [](const std::string& name) {
    using backcheck::knowledge::StateRole;
    static const std::map<std::string, StateRole> roles = {{"welcome", StateRole::kWelcome},
                                                           {"screening", StateRole::kScreening},
                                                           {"advising", StateRole::kAdvising},
                                                           {"escalated", StateRole::kEscalated},
                                                           {"ended", StateRole::kEnded}};
    auto it = roles.find(name);
    if (it == roles.end()) throw std::runtime_error("templates.jsonc: '" + name + "' is not a state role");
    return it->second;
  };

  // The state of each context, built once.
  std::map<std::string, backcheck::dialog::ConversationState> contexts;
  for (auto& [name, ctx] : suite.data().at("contexts").items()) {
    auto s = engine.Start();
    for (const auto& m : Strings(ctx.at("messages"), "contexts." + name)) s = engine.Respond(s, m).state;
    if (role_of(s.state) != role_named(ctx.at("role").get<std::string>())) {
      throw std::runtime_error("context '" + name + "' ends in state '" + s.state + "', not in the role of '" +
                               ctx.at("role").get<std::string>() + "'");
    }
    contexts[name] = s;
  }
  const auto screening_role = role_named("screening");
  const auto escalated_role = role_named("escalated");
  // Known failures (templates.jsonc "known_failures"): listed, not gated; one that passes again
  // fails the gate, so the list cannot go stale.
  std::map<std::string, std::string> known;
  for (const auto& k : suite.data().value("known_failures", json::array())) {
    known[k.at("text").get<std::string>()] = k.at("why").get<std::string>();
  }

  std::vector<Result> results;
  for (const auto& c : cases) {
    if (gate_only && !c.gated) continue;
    const auto& expected = find_intent(c.intent);
    const auto& state = contexts.at(c.context);
    auto turn = engine.Respond(state, c.text);
    Result r{&c, turn.reply.intent, "-", turn.state.state};
    auto m = matcher.MatchAll(engine.normaliser().Normalise(c.text), state.state);
    if (!m.empty()) r.matched = intents[m.front().intent].id;
    r.pass = turn.reply.intent == expected.id || (!expected.reported_as.empty() && turn.reply.intent == expected.reported_as);
    if (!expected.reported_as.empty()) r.pass = r.pass && r.matched == expected.id;
    // A report must start the safety screening; a report that holds a red flag escalates at once,
    // which is the screening's outcome reached in one step (false alarms are the red-flag
    // checklist's to measure).
    if (expected.kind == backcheck::knowledge::IntentKind::kReport) {
      const auto role = role_of(r.state);
      r.pass = r.pass && (role == screening_role || role == escalated_role);
    }
    r.known = known.count(c.text) > 0;
    results.push_back(r);
  }

  std::size_t failed = 0;
  for (const auto& r : results) failed += !r.pass;

  if (gate_only) {
    std::size_t gate_failed = 0, known_failed = 0;
    for (const auto& r : results) {
      const char* what = r.pass ? (r.known ? "KNOWN FAILURE NOW PASSES (drop it from known_failures)" : nullptr)
                                : (r.known ? "known" : "FAIL");
      if (what == nullptr) continue;
      if (!r.pass && r.known) ++known_failed; else ++gate_failed;
      std::cout << what << " " << r.c->key << " " << r.c->type << " [" << r.c->context << "]: \"" << r.c->text
                << "\" -> intent " << r.intent << " (matched " << r.matched << "), state " << r.state;
      if (r.known) std::cout << "  (" << known.at(r.c->text) << ")";
      std::cout << "\n";
    }
    std::cout << "intents checklist gate: " << results.size() - failed << " of " << results.size() << " passed, "
              << known_failed << " known failures, " << gate_failed << " gate failures\n";
    return gate_failed == 0 ? 0 : 1;
  }

  // ---- figures ------------------------------------------------------------------------------
  std::map<std::string, std::map<std::string, Cell>> cells;  // intent key -> type -> cell
  std::map<std::string, Cell> by_type;
  Cell total, base_total;
  for (const auto& r : results) {
    auto& cell = cells[r.c->key][r.c->type];
    ++cell.cases;
    cell.passed += r.pass;
    ++by_type[r.c->type].cases;
    by_type[r.c->type].passed += r.pass;
    ++total.cases;
    total.passed += r.pass;
  }
  base_total = by_type["base"];
  std::size_t gate_cases = 0, gate_failed = 0;
  for (const auto& r : results) {
    if (!r.c->gated) continue;
    ++gate_cases;
    gate_failed += !r.pass;
  }

  fs::create_directories(out_dir);
  json j;
  j["seed"] = suite.data().at("seed");
  j["cases"] = total.cases;
  j["passed"] = total.passed;
  j["gate"] = {{"cases", gate_cases}, {"failed", gate_failed}};
  for (const auto& [type, cell] : by_type) j["by_type"][type] = {{"cases", cell.cases}, {"passed", cell.passed}};
  for (const auto& [key, types] : cells) {
    Cell all;
    for (const auto& [type, cell] : types) {
      j["intents"][key][type] = {{"cases", cell.cases}, {"passed", cell.passed}};
      all.cases += cell.cases;
      all.passed += cell.passed;
    }
    j["intents"][key]["all"] = {{"cases", all.cases}, {"passed", all.passed}};
  }
  std::ofstream(out_dir / "report.json") << j.dump(2) << "\n";

  std::ostringstream md;
  md << "# Intents CheckList report\n\nGenerated by `intents_checklist` from tests/intents_checklist/templates.jsonc, seed "
     << suite.data().at("seed").dump() << ": " << total.cases
     << " messages, each sent in the context its intent needs. See tests/intents_checklist/README.md.\n\n";
  md << "- Gated cases (`intents_checklist.gate`: every unperturbed case, every case of "
     << Join(Strings(suite.data().at("gate"), "gate")) << "): " << gate_cases << ", failed **" << gate_failed << "**\n";
  md << "- Intent right: " << Pct(total.passed, total.cases) << " (" << total.passed << "/" << total.cases
     << "); unperturbed " << Pct(base_total.passed, base_total.cases) << " (" << base_total.passed << "/"
     << base_total.cases << ")\n\n";
  md << "## By perturbation\n\n| type | cases | intent right |\n|---|---:|---:|\n";
  for (const char* type : kTypes) {
    const auto& cell = by_type[type];
    md << "| " << type << " | " << cell.cases << " | " << Pct(cell.passed, cell.cases) << " |\n";
  }
  md << "\n## Per intent\n\n| intent | context | cases | all |";
  for (const char* type : kTypes) md << " " << type << " |";
  md << "\n|---|---|---:|---:|";
  for (std::size_t i = 0; i < std::size(kTypes); ++i) md << "---:|";
  md << "\n";
  std::map<std::string, std::string> context_of;
  for (const auto& r : results) context_of[r.c->key] = r.c->context;
  for (const auto& [key, types] : cells) {
    Cell all;
    for (const auto& [type, cell] : types) {
      all.cases += cell.cases;
      all.passed += cell.passed;
    }
    md << "| " << key << " | " << context_of[key] << " | " << all.cases << " | " << Pct(all.passed, all.cases) << " |";
    for (const char* type : kTypes) {
      auto it = types.find(type);
      md << " " << (it == types.end() ? "-" : Pct(it->second.passed, it->second.cases)) << " |";
    }
    md << "\n";
  }
  const std::size_t examples = suite.data().value("examples_per_intent", 10);
  md << "\n## Failing messages\n\nThe first " << examples
     << " per intent: what the reply named, what the matcher's best match was, the reply's state.\n";
  std::map<std::string, std::vector<const Result*>> failures;
  for (const auto& r : results)
    if (!r.pass) failures[r.c->key].push_back(&r);
  for (const auto& [key, list] : failures) {
    md << "\n### " << key << " (" << list.size() << " failed)\n\n| type | message | reply intent | matched | state |\n"
       << "|---|---|---|---|---|\n";
    for (std::size_t i = 0; i < list.size() && i < examples; ++i) {
      const auto* r = list[i];
      md << "| " << r->c->type << " | " << MdEscape(r->c->text) << " | " << r->intent << " | " << r->matched << " | "
         << r->state << " |\n";
    }
  }
  std::ofstream(out_dir / "report.md") << md.str();

  std::cout << "intents checklist: " << total.cases << " messages, intent right " << Pct(total.passed, total.cases)
            << " (unperturbed " << Pct(base_total.passed, base_total.cases) << "), gated failures " << gate_failed
            << "; report: " << (out_dir / "report.md").string() << "\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "intents_checklist: " << e.what() << "\n";
  return 2;
}
