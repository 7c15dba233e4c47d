// red_flags.jsonc: the red flags (level, patterns, concept rules, the safety-net question,
// sources), the guidance per level and the cue phrases of the detector.
#include <sstream>

#include "knowledge/loader_internal.hpp"

namespace backcheck::knowledge::load {
namespace {

Urgency Level(const json& j, const Where& w) {
  std::string name = String(j, "level", w);
  auto level = ParseUrgency(name);
  if (!level || *level == Urgency::kNone) w.Fail("unknown level '" + name + "' (see_doctor, urgent, emergency)");
  return *level;
}

// "COUGH + BLOOD", "clause: BREATH + PAIN|WORSE" (knowledge_base.hpp, ConceptRule).
ConceptRule ParseRule(const std::string& source, const std::vector<Concept>& concepts, const Where& where) {
  ConceptRule rule;
  rule.source = source;
  std::string body = source;
  if (auto colon = body.find(':'); colon != std::string::npos) {
    std::string scope = body.substr(0, colon);
    scope.erase(std::remove(scope.begin(), scope.end(), ' '), scope.end());
    if (scope != "clause" && scope != "sentence") {
      where.Fail("rule '" + source + "': scope must be 'clause' or 'sentence', not '" + scope + "'");
    }
    rule.clause = scope == "clause";
    body = body.substr(colon + 1);
  }
  auto concept_ids = [&](const std::string& list) {
    std::vector<std::size_t> out;
    std::istringstream alts(list);
    for (std::string id; std::getline(alts, id, '|');) {
      id.erase(std::remove(id.begin(), id.end(), ' '), id.end());
      auto c = std::find_if(concepts.begin(), concepts.end(), [&](const Concept& x) { return x.id == id; });
      if (c == concepts.end()) where.Fail("rule '" + source + "': unknown concept '" + id + "' (concepts.jsonc)");
      out.push_back(static_cast<std::size_t>(c - concepts.begin()));
    }
    if (out.empty()) where.Fail("rule '" + source + "': an empty part");
    return out;
  };
  if (auto minus = body.find(" - "); minus != std::string::npos) {
    rule.unless = concept_ids(body.substr(minus + 3));
    body = body.substr(0, minus);
  }
  std::istringstream parts(body);
  for (std::string part; std::getline(parts, part, '+');) rule.parts.push_back(concept_ids(part));
  if (rule.parts.empty()) where.Fail("rule '" + source + "': no concepts");
  return rule;
}

std::vector<ConceptRule> Rules(const json& obj, const char* key, const std::vector<Concept>& concepts,
                               const Where& where) {
  std::vector<ConceptRule> out;
  for (const auto& source : Strings(obj, key, where)) out.push_back(ParseRule(source, concepts, where));
  return out;
}

void LoadCues(const json& doc, const Where& file, RedFlagLexicon& lex) {
  Where cw = file.With("cues");
  const json& c = Object(doc, "cues", file);
  CheckKeys(c, cw, {"negation", "pseudo_negation", "post_negation", "reported_speech", "negation_window",
                    "clause_breaks", "soft_breaks", "subject_starts", "hypothetical", "concern", "definite",
                    "question_starts", "informational", "first_person", "third_party", "past", "continuing",
                    "effort_activity", "effort_passed", "effort_flags"});
  CueLexicon& cues = lex.cues;
  cues.negation = Strings(c, "negation", cw, true);
  cues.pseudo_negation = Strings(c, "pseudo_negation", cw);
  cues.post_negation = Strings(c, "post_negation", cw);
  cues.reported_speech = Strings(c, "reported_speech", cw);
  cues.negation_window = OptInt(c, "negation_window", cw, 1, 1000).value_or(cues.negation_window);
  cues.clause_breaks = Strings(c, "clause_breaks", cw, true);
  cues.soft_breaks = Strings(c, "soft_breaks", cw, true);
  cues.subject_starts = Strings(c, "subject_starts", cw, true);
  cues.hypothetical = Strings(c, "hypothetical", cw, true);
  cues.concern = Strings(c, "concern", cw);
  cues.definite = Strings(c, "definite", cw);
  cues.question_starts = Strings(c, "question_starts", cw, true);
  cues.informational = Strings(c, "informational", cw);
  cues.first_person = Strings(c, "first_person", cw, true);
  cues.third_party = Strings(c, "third_party", cw, true);
  cues.past = Strings(c, "past", cw, true);
  cues.continuing = Strings(c, "continuing", cw);
  cues.effort_activity = Strings(c, "effort_activity", cw);
  cues.effort_passed = Strings(c, "effort_passed", cw);
  cues.effort_flags = Strings(c, "effort_flags", cw);
  for (const auto& id : cues.effort_flags) {
    if (!HasId(lex.flags, id)) cw.Fail("effort_flags: unknown flag '" + id + "'");
  }
}

}  // namespace

void LoadRedFlags(const json& doc, const Article& article, RedFlagLexicon& lex) {
  const Where file{"red_flags.jsonc", {}};
  CheckKeys(doc, file, {"flags", "guidance", "cues"});
  const json& list = Array(doc, "flags", file);
  for (std::size_t n = 0; n < list.size(); ++n) {
    const json& j = list[n];
    RedFlag flag;
    flag.id = String(j, "id", file.With("flag " + std::to_string(n + 1)));
    Where w = file.With("flag '" + flag.id + "'");
    CheckKeys(j, w, {"id", "level", "origin", "name", "explanation", "sources", "patterns", "rules", "ask",
                     "except", "requires"});
    flag.level = Level(j, w);
    flag.origin = String(j, "origin", w);
    if (flag.origin != "article" && flag.origin.rfind("safety extension", 0) != 0) {
      w.Fail("origin must be 'article' or 'safety extension (...)'");
    }
    flag.name = String(j, "name", w);
    flag.explanation = String(j, "explanation", w);
    flag.sources = Sources(j, article, w);
    if (flag.origin == "article" && flag.sources.empty()) w.Fail("a flag from the article must cite it");
    flag.patterns = Strings(j, "patterns", w);
    flag.rules = Rules(j, "rules", lex.concepts, w);
    if (flag.patterns.empty() && flag.rules.empty()) w.Fail("no patterns and no rules");
    if (j.contains("ask")) {
      const Where aw = w.With("ask");
      const json& ask = Object(j, "ask", w);
      CheckKeys(ask, aw, {"when", "question"});
      flag.ask_when = Rules(ask, "when", lex.concepts, aw);
      if (flag.ask_when.empty()) aw.Fail("missing or empty 'when'");
      flag.question = String(ask, "question", aw);
    }
    flag.except = Strings(j, "except", w);
    flag.requires_ = Strings(j, "requires", w);
    CheckPatterns(flag.patterns, w);
    CheckPatterns(flag.except, w.With("except"));
    CheckPatterns(flag.requires_, w.With("requires"));
    lex.flags.push_back(std::move(flag));
  }
  CheckUnique(lex.flags, file, "flag");
  if (lex.flags.size() > 64) file.Fail("at most 64 flags are supported");

  const json& g = Array(doc, "guidance", file);
  for (std::size_t n = 0; n < g.size(); ++n) {
    const json& j = g[n];
    const Where nw = file.With("guidance " + std::to_string(n + 1));
    CheckKeys(j, nw, {"level", "text", "third_party", "conditional", "banner"});
    const Where w = file.With("guidance '" + String(j, "level", nw) + "'");
    Guidance guidance{Level(j, w), String(j, "text", w), String(j, "third_party", w), OptString(j, "conditional", w),
                      String(j, "banner", w)};
    if (guidance.level == Urgency::kEmergency && guidance.conditional.empty()) {
      w.Fail("the emergency guidance needs a 'conditional' text (said with a question about an emergency flag)");
    }
    if (std::any_of(lex.guidance.begin(), lex.guidance.end(), [&](const Guidance& x) { return x.level == guidance.level; })) {
      w.Fail("a second guidance for this level");
    }
    lex.guidance.push_back(std::move(guidance));
  }
  for (Urgency u : {Urgency::kSeeDoctor, Urgency::kUrgent, Urgency::kEmergency}) {
    if (std::none_of(lex.guidance.begin(), lex.guidance.end(), [&](const Guidance& x) { return x.level == u; })) {
      file.Fail(std::string("no guidance for level '") + UrgencyName(u) + "'");
    }
  }
  LoadCues(doc, file, lex);
}

}  // namespace backcheck::knowledge::load
