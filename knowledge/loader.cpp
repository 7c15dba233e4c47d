#include "knowledge/loader.hpp"
#include "knowledge/load_text_stages.hpp"

#include <re2/re2.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace backcheck::knowledge {
namespace {

using nlohmann::json;

// Names the place in the data a problem was found: "topics.jsonc: topic 'doms'".
struct Where {
  std::string file;
  std::string item;  // may be empty

  [[noreturn]] void Fail(const std::string& problem) const {
    throw KnowledgeError(item.empty() ? file + ": " + problem : file + ": " + item + ": " + problem);
  }
  Where With(const std::string& what) const { return {file, item.empty() ? what : item + ": " + what}; }
};

std::string ReadFile(const std::filesystem::path& path, const std::string& name) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw KnowledgeError(name + ": cannot be read (" + path.string() + ")");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json ParseJson(const std::filesystem::path& dir, const std::string& name) {
  std::string text = ReadFile(dir / "data" / name, name);
  try {
    return json::parse(text, /*cb=*/nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/true);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1e400
    throw KnowledgeError(name + ": invalid JSON: " + e.what());
  }
}

const json& Field(const json& obj, const char* key, const Where& where) {
  if (!obj.is_object()) where.Fail("must be an object");
  auto it = obj.find(key);
  if (it == obj.end()) where.Fail(std::string("missing field '") + key + "'");
  return *it;
}

std::string String(const json& obj, const char* key, const Where& where, bool allow_empty = false) {
  const json& v = Field(obj, key, where);
  if (!v.is_string() || (!allow_empty && v.get_ref<const std::string&>().empty())) {
    where.Fail(std::string("field '") + key + "' must be a non-empty string");
  }
  return v.get<std::string>();
}

std::string OptString(const json& obj, const char* key, const Where& where) {
  if (!obj.contains(key)) return {};
  return String(obj, key, where, /*allow_empty=*/true);
}

std::vector<std::string> Strings(const json& obj, const char* key, const Where& where,
                                 bool required = false) {
  if (!obj.contains(key)) {
    if (required) where.Fail(std::string("missing field '") + key + "'");
    return {};
  }
  const json& v = obj.at(key);
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

const json& Array(const json& obj, const char* key, const Where& where) {
  const json& v = Field(obj, key, where);
  if (!v.is_array()) where.Fail(std::string("field '") + key + "' must be an array");
  return v;
}

void CheckPattern(const std::string& pattern, std::size_t index, const Where& where) {
  RE2::Options options;
  options.set_log_errors(false);
  RE2 re(pattern, options);
  if (!re.ok()) {
    where.Fail("pattern " + std::to_string(index + 1) + " rejected by RE2 (" + re.error() +
               "): " + pattern);
  }
}

void CheckPatterns(const std::vector<std::string>& patterns, const Where& where) {
  for (std::size_t i = 0; i < patterns.size(); ++i) CheckPattern(patterns[i], i, where);
}

std::vector<Source> Sources(const json& obj, const Article& article, const Where& where) {
  std::vector<Source> out;
  if (!obj.contains("sources")) return out;
  const json& arr = Array(obj, "sources", where);
  for (std::size_t i = 0; i < arr.size(); ++i) {
    Where w = where.With("source " + std::to_string(i + 1));
    Source s{String(arr[i], "section", w), String(arr[i], "quote", w)};
    auto section = article.FindSection(s.section);
    if (!section) w.Fail("unknown section '" + s.section + "'");
    if (!article.FindQuote(*section, s.quote)) {
      w.Fail("quote not found in section '" + s.section + "': \"" + s.quote + "\"");
    }
    out.push_back(std::move(s));
  }
  return out;
}

template <typename T>
void CheckUnique(const std::vector<T>& items, const Where& where, const char* what) {
  std::set<std::string> seen;
  for (const auto& item : items) {
    if (!seen.insert(item.id).second) where.Fail(std::string("duplicate ") + what + " '" + item.id + "'");
  }
}

IntentKind ParseKind(const std::string& kind, const Where& where) {
  if (kind == "social") return IntentKind::kSocial;
  if (kind == "report") return IntentKind::kReport;
  if (kind == "question") return IntentKind::kQuestion;
  if (kind == "answer") return IntentKind::kAnswer;
  if (kind == "other") return IntentKind::kOther;
  if (kind == "fallback") return IntentKind::kFallback;
  where.Fail("unknown kind '" + kind + "' (social, report, question, answer, other, fallback)");
}

std::vector<Intent> LoadIntents(const json& doc) {
  const Where file{"intents.jsonc", {}};
  std::vector<Intent> intents;
  for (const auto& j : Array(doc, "intents", file)) {
    Intent intent;
    intent.id = String(j, "id", file);
    Where w = file.With("intent '" + intent.id + "'");
    intent.kind = ParseKind(String(j, "kind", w), w);
    intent.reported_as = OptString(j, "as", w);
    if (j.contains("priority")) {
      if (!j["priority"].is_number_integer()) w.Fail("field 'priority' must be an integer");
      intent.priority = j["priority"].get<int>();
    }
    if (j.contains("state_priority")) {
      const json& sp = j["state_priority"];
      if (!sp.is_object()) w.Fail("field 'state_priority' must be an object");
      for (auto it = sp.begin(); it != sp.end(); ++it) {
        if (!it->is_number_integer()) w.Fail("state_priority '" + it.key() + "' must be an integer");
        intent.state_priority[it.key()] = it->get<int>();
      }
    }
    intent.patterns = Strings(j, "patterns", w);
    if (intent.kind != IntentKind::kFallback && intent.patterns.empty()) w.Fail("no patterns");
    if (intent.kind == IntentKind::kFallback && !intent.patterns.empty()) {
      w.Fail("the fallback intent has no patterns: it is what remains when nothing matches");
    }
    CheckPatterns(intent.patterns, w);
    intents.push_back(std::move(intent));
  }
  CheckUnique(intents, file, "intent");
  for (const auto& id : RequiredIntents()) {
    if (std::none_of(intents.begin(), intents.end(), [&](const Intent& i) { return i.id == id; })) {
      file.Fail("missing intent '" + id + "' (SPEC section 4)");
    }
  }
  const auto& spec = RequiredIntents();
  for (const auto& intent : intents) {
    const bool in_spec = std::find(spec.begin(), spec.end(), intent.id) != spec.end();
    Where w = file.With("intent '" + intent.id + "'");
    if (in_spec && !intent.reported_as.empty()) w.Fail("an intent of SPEC section 4 is reported as itself: drop 'as'");
    if (!in_spec && intent.reported_as.empty()) {
      w.Fail("not an intent of SPEC section 4: say which one a reply names with \"as\"");
    }
    if (!in_spec && std::find(spec.begin(), spec.end(), intent.reported_as) == spec.end()) {
      w.Fail("'as' names '" + intent.reported_as + "', not an intent of SPEC section 4");
    }
  }
  return intents;
}

std::vector<Topic> LoadTopics(const json& doc, const Article& article, const std::vector<Intent>& intents) {
  const Where file{"topics.jsonc", {}};
  std::vector<Topic> topics;
  for (const auto& j : Array(doc, "topics", file)) {
    Topic topic;
    topic.id = String(j, "id", file);
    Where w = file.With("topic '" + topic.id + "'");
    if (std::none_of(intents.begin(), intents.end(), [&](const Intent& i) { return i.id == topic.id; })) {
      w.Fail("no intent with this id in intents.jsonc");
    }
    topic.answer = String(j, "answer", w);
    topic.sources = Sources(j, article, w);
    topic.quick_replies = Strings(j, "quick_replies", w);
    topics.push_back(std::move(topic));
  }
  CheckUnique(topics, file, "topic");
  for (const auto& intent : intents) {
    if (std::none_of(topics.begin(), topics.end(), [&](const Topic& t) { return t.id == intent.id; })) {
      file.Fail("intent '" + intent.id + "' has no topic");
    }
  }
  return topics;
}

Urgency Level(const json& j, const Where& w) {
  std::string name = String(j, "level", w);
  auto level = ParseUrgency(name);
  if (!level || *level == Urgency::kNone) w.Fail("unknown level '" + name + "' (see_doctor, urgent, emergency)");
  return *level;
}

// A term or idiom of concepts.jsonc: words of normalised text (lower-case a-z, digits, ' and
// "*" for any one word), not starting or ending with "*".
void CheckTerm(const std::string& term, const Where& where) {
  std::istringstream words(term);
  std::vector<std::string> list;
  for (std::string w; words >> w;) list.push_back(w);
  if (list.empty()) where.Fail("empty term");
  for (const auto& w : list) {
    const std::string bare = w.size() > 1 && w[0] == '=' ? w.substr(1) : w;
    const bool ok = w == "*" || std::all_of(bare.begin(), bare.end(), [](char c) {
                      return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '\'' ||
                             static_cast<unsigned char>(c) >= 0x80;
                    });
    if (!ok) where.Fail("term '" + term + "': '" + w + "' is not a word of normalised text (lower case, no punctuation)");
  }
  if (list.front() == "*" || list.back() == "*") where.Fail("term '" + term + "' starts or ends with '*'");
}

void LoadConcepts(const json& doc, RedFlagLexicon& lex) {
  const Where file{"concepts.jsonc", {}};
  const json& concepts = Field(doc, "concepts", file);
  if (!concepts.is_object()) file.Fail("field 'concepts' must be an object (concept id -> terms)");
  for (auto it = concepts.begin(); it != concepts.end(); ++it) {
    Where w = file.With("concept '" + it.key() + "'");
    const bool id_ok = !it.key().empty() && std::all_of(it.key().begin(), it.key().end(), [](char c) {
      return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    });
    if (!id_ok) w.Fail("a concept id is upper case letters, digits and '_'");
    Concept c{it.key(), Strings(concepts, it.key().c_str(), w, true)};
    if (c.terms.empty()) w.Fail("no terms");
    for (const auto& t : c.terms) CheckTerm(t, w);
    lex.concepts.push_back(std::move(c));
  }
  if (lex.concepts.size() > 128) file.Fail("at most 128 concepts are supported");
  lex.context_concepts = Strings(doc, "context_concepts", file);
  for (const auto& id : lex.context_concepts) {
    if (std::none_of(lex.concepts.begin(), lex.concepts.end(), [&](const Concept& c) { return c.id == id; })) {
      file.Fail("context_concepts: unknown concept '" + id + "'");
    }
  }
  lex.idioms = Strings(doc, "idioms", file);
  for (const auto& t : lex.idioms) CheckTerm(t, file.With("idioms"));
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

RedFlagLexicon LoadRedFlags(const json& doc, const json& concepts, const Article& article) {
  const Where file{"red_flags.jsonc", {}};
  RedFlagLexicon lex;
  LoadConcepts(concepts, lex);
  for (const auto& j : Array(doc, "flags", file)) {
    RedFlag flag;
    flag.id = String(j, "id", file);
    Where w = file.With("flag '" + flag.id + "'");
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
      const json& ask = Field(j, "ask", w);
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
  for (const auto& id : RequiredFlags()) {
    if (std::none_of(lex.flags.begin(), lex.flags.end(), [&](const RedFlag& f) { return f.id == id; })) {
      file.Fail("missing flag '" + id + "' (SPEC section 5)");
    }
  }

  const json& g = Array(doc, "guidance", file);
  for (const auto& j : g) {
    Where w = file.With("guidance");
    Guidance guidance{Level(j, w), String(j, "text", w), String(j, "third_party", w), OptString(j, "conditional", w),
                      String(j, "banner", w)};
    if (guidance.level == Urgency::kEmergency && guidance.conditional.empty()) {
      w.Fail("the emergency guidance needs a 'conditional' text (said with a question about an emergency flag)");
    }
    lex.guidance.push_back(std::move(guidance));
  }
  for (Urgency u : {Urgency::kSeeDoctor, Urgency::kUrgent, Urgency::kEmergency}) {
    if (std::none_of(lex.guidance.begin(), lex.guidance.end(), [&](const Guidance& x) { return x.level == u; })) {
      file.Fail(std::string("no guidance for level '") + UrgencyName(u) + "'");
    }
  }

  Where cw = file.With("cues");
  const json& c = Field(doc, "cues", file);
  CueLexicon& cues = lex.cues;
  cues.negation = Strings(c, "negation", cw, true);
  cues.pseudo_negation = Strings(c, "pseudo_negation", cw);
  cues.post_negation = Strings(c, "post_negation", cw);
  cues.reported_speech = Strings(c, "reported_speech", cw);
  if (c.contains("negation_window")) {
    if (!c["negation_window"].is_number_integer() || c["negation_window"].get<int>() < 1) {
      cw.Fail("negation_window must be a positive integer");
    }
    cues.negation_window = c["negation_window"].get<int>();
  }
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
    if (std::none_of(lex.flags.begin(), lex.flags.end(), [&](const RedFlag& f) { return f.id == id; })) {
      cw.Fail("effort_flags: unknown flag '" + id + "'");
    }
  }
  return lex;
}

const std::vector<std::pair<const char*, StateRole>>& StateRoles() {
  static const std::vector<std::pair<const char*, StateRole>> kRoles = {
      {"welcome", StateRole::kWelcome}, {"screening", StateRole::kScreening}, {"advising", StateRole::kAdvising},
      {"escalated", StateRole::kEscalated}, {"ended", StateRole::kEnded}};
  return kRoles;
}

StateRole ParseRole(const std::string& name, const Where& where) {
  for (const auto& [n, role] : StateRoles()) {
    if (name == n) return role;
  }
  where.Fail("unknown role '" + name + "' (welcome, screening, advising, escalated, ended): say which with \"role\"");
}

Flow LoadFlow(const json& doc, const Article& article, const std::vector<Intent>& intents,
              const RedFlagLexicon& flags) {
  const Where file{"flow.jsonc", {}};
  Flow flow;
  flow.initial = String(doc, "initial", file);
  for (const auto& j : Array(doc, "states", file)) {
    FlowState state;
    state.id = String(j, "id", file);
    Where w = file.With("state '" + state.id + "'");
    state.role = ParseRole(j.contains("role") ? String(j, "role", w) : state.id, w);
    if (j.contains("answers")) {
      const json& answers = j["answers"];
      if (!answers.is_object()) w.Fail("field 'answers' must be an object of intent id -> answer");
      for (auto it = answers.begin(); it != answers.end(); ++it) {
        Where aw = w.With("answer to '" + it.key() + "'");
        if (std::none_of(intents.begin(), intents.end(), [&](const Intent& i) { return i.id == it.key(); })) {
          aw.Fail("no intent with this id in intents.jsonc");
        }
        if (!it->is_object()) aw.Fail("must be an object with 'text'");
        StateAnswer answer;
        answer.text = String(*it, "text", aw);
        if (it->contains("quick_replies")) answer.quick_replies = Strings(*it, "quick_replies", aw);
        answer.sources = Sources(*it, article, aw);
        state.answers[it.key()] = std::move(answer);
      }
    }
    if (j.contains("terminal")) {
      if (!j["terminal"].is_boolean()) w.Fail("field 'terminal' must be true or false");
      state.terminal = j["terminal"].get<bool>();
    }
    if (j.contains("on")) {
      const json& on = j["on"];
      if (!on.is_object()) w.Fail("field 'on' must be an object of event -> state");
      for (auto it = on.begin(); it != on.end(); ++it) {
        if (!it->is_string()) w.Fail("transition '" + it.key() + "' must name a state");
        state.on[it.key()] = it->get<std::string>();
      }
    }
    flow.states.push_back(std::move(state));
  }
  CheckUnique(flow.states, file, "state");
  for (const auto& id : RequiredStates()) {
    if (!flow.FindState(id)) file.Fail("missing state '" + id + "' (SPEC section 3)");
  }
  if (!flow.FindState(flow.initial)) file.Fail("initial state '" + flow.initial + "' is not defined");
  for (const auto& [name, role] : StateRoles()) {
    const auto n = std::count_if(flow.states.begin(), flow.states.end(), [&](const FlowState& x) { return x.role == role; });
    if (n != 1) file.Fail("role '" + std::string(name) + "' must be taken by exactly one state, not " + std::to_string(n));
  }
  const auto& events = FlowEvents();
  for (const auto& state : flow.states) {
    Where w = file.With("state '" + state.id + "'");
    bool way_out = false;
    for (const auto& [event, target] : state.on) {
      bool known = std::find(events.begin(), events.end(), event) != events.end() ||
                   std::any_of(intents.begin(), intents.end(), [&](const Intent& i) { return i.id == event; });
      if (!known) w.Fail("unknown event '" + event + "' (an intent id or one of the flow events)");
      if (!flow.FindState(target)) w.Fail("event '" + event + "' leads to unknown state '" + target + "'");
      if (target != state.id) way_out = true;
    }
    if (!state.terminal && !way_out) {
      w.Fail("no way out: no transition to another state, and not marked terminal");
    }
    if (state.terminal && way_out) w.Fail("marked terminal but has a transition to another state");
  }

  for (const auto& j : Array(doc, "screening", file)) {
    ScreeningQuestion q;
    q.id = String(j, "id", file);
    Where w = file.With("screening question '" + q.id + "'");
    q.text = String(j, "text", w);
    q.flags = Strings(j, "flags", w, true);
    if (q.flags.empty()) w.Fail("asks about no flag");
    for (const auto& f : q.flags) {
      if (std::none_of(flags.flags.begin(), flags.flags.end(), [&](const RedFlag& x) { return x.id == f; })) {
        w.Fail("unknown flag '" + f + "'");
      }
    }
    flow.screening.push_back(std::move(q));
  }
  CheckUnique(flow.screening, file, "screening question");
  if (flow.screening.empty()) file.Fail("no screening question");

  if (doc.contains("tailoring")) {
    for (const auto& j : Array(doc, "tailoring", file)) {
      TailoringRule rule;
      rule.id = String(j, "id", file);
      Where w = file.With("tailoring rule '" + rule.id + "'");
      if (j.contains("hours_min")) rule.hours_min = j["hours_min"].get<int>();
      if (j.contains("hours_max")) rule.hours_max = j["hours_max"].get<int>();
      rule.exercise_category = OptString(j, "exercise_category", w);
      rule.quality = OptString(j, "quality", w);
      rule.quality_not = OptString(j, "quality_not", w);
      rule.text = String(j, "text", w);
      rule.sources = Sources(j, article, w);
      flow.tailoring.push_back(std::move(rule));
    }
    CheckUnique(flow.tailoring, file, "tailoring rule");
  }

  const json& texts = Field(doc, "texts", file);
  if (!texts.is_object()) file.Fail("field 'texts' must be an object");
  for (auto it = texts.begin(); it != texts.end(); ++it) {
    if (!it->is_string() || it->get_ref<const std::string&>().empty()) {
      file.Fail("text '" + it.key() + "' must be a non-empty string");
    }
    flow.texts[it.key()] = it->get<std::string>();
  }
  for (const auto& name : RequiredTexts()) {
    if (!flow.texts.count(name)) file.Fail("missing text '" + name + "'");
  }
  flow.fallbacks = Strings(doc, "fallbacks", file);
  if (flow.fallbacks.size() < 2) file.Fail("field 'fallbacks' needs at least two wordings: one never comes twice in a row");
  if (doc.contains("quick_replies")) {
    const json& qr = doc["quick_replies"];
    if (!qr.is_object()) file.Fail("field 'quick_replies' must be an object");
    for (auto it = qr.begin(); it != qr.end(); ++it) {
      flow.quick_replies[it.key()] = Strings(qr, it.key().c_str(), file.With("quick_replies"));
    }
  }
  return flow;
}

// language.jsonc "dates": words only (lower case letters and single spaces), since the dates
// component builds its patterns from them and matches them against normalised text.
Language::DateWords LoadDateWords(const json& doc, const Language& lang, const Where& file) {
  const Where w = file.With("dates");
  const json& d = Field(doc, "dates", file);
  if (!d.is_object()) w.Fail("must be an object");
  static const std::set<std::string> kKeys = {"weekdays", "this_words", "days", "day_parts",
                                              "part_days", "weekend_words", "weekend_days", "today_hours"};
  for (auto it = d.begin(); it != d.end(); ++it) {
    if (!kKeys.count(it.key())) w.Fail("unknown field '" + it.key() + "'");
  }
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
      if (!it->is_number_integer() || it->get<long long>() < lo || it->get<long long>() > hi) {
        mw.Fail("'" + it.key() + "' must map to an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
      }
      out[it.key()] = it->get<int>();
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
      if (!f.is_string()) dw.Fail("must hold only strings");
      check_words(f.get<std::string>(), dw);
      unique(f.get<std::string>(), dw);
      forms.push_back(f.get<std::string>());
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
  const json& today = Field(d, "today_hours", w);
  if (!today.is_number_integer() || today.get<long long>() < 0 || today.get<long long>() > 23) {
    w.Fail("'today_hours' must be an integer from 0 to 23");
  }
  dates.today_hours = today.get<int>();
  return dates;
}

Language LoadLanguage(const json& doc) {
  const Where file{"language.jsonc", {}};
  Language lang;
  const json& rewrites = Field(doc, "rewrites", file);
  if (!rewrites.is_object()) file.Fail("field 'rewrites' must be an object of from -> to");
  for (auto it = rewrites.begin(); it != rewrites.end(); ++it) {
    if (!it->is_string() || it.key().empty()) file.Fail("rewrite '" + it.key() + "' must map to a string");
    lang.rewrites[it.key()] = it->get<std::string>();
  }
  for (const auto& j : Array(doc, "exercises", file)) {
    Language::Exercise e{String(j, "value", file), String(j, "category", file), {}};
    Where w = file.With("exercise '" + e.value + "'");
    e.patterns = Strings(j, "patterns", w, true);
    CheckPatterns(e.patterns, w);
    lang.exercises.push_back(std::move(e));
  }
  for (const auto& j : Array(doc, "qualities", file)) {
    Language::Quality q{String(j, "value", file), {}};
    Where w = file.With("quality '" + q.value + "'");
    q.patterns = Strings(j, "patterns", w, true);
    CheckPatterns(q.patterns, w);
    lang.qualities.push_back(std::move(q));
  }
  for (const auto& j : Array(doc, "times", file)) {
    Language::TimeExpression t{String(j, "pattern", file), 0};
    Where w = file.With("time '" + t.pattern + "'");
    if (!j.contains("hours") || !j["hours"].is_number_integer()) w.Fail("field 'hours' must be an integer");
    t.hours = j["hours"].get<int>();
    CheckPattern(t.pattern, 0, w);
    RE2 re(t.pattern);
    if (re.NumberOfCapturingGroups() > 1) w.Fail("at most one capture group (the number)");
    lang.times.push_back(std::move(t));
  }
  if (doc.contains("numbers")) {
    const json& numbers = doc["numbers"];
    if (!numbers.is_object()) file.Fail("field 'numbers' must be an object of word -> integer");
    for (auto it = numbers.begin(); it != numbers.end(); ++it) {
      if (!it->is_number_integer()) file.Fail("number '" + it.key() + "' must be an integer");
      lang.numbers[it.key()] = it->get<int>();
    }
  }
  lang.dates = LoadDateWords(doc, lang, file);
  lang.stopwords = Strings(doc, "stopwords", file);
  const json& r = Field(doc, "retrieval", file);
  if (!r.contains("min_score") || !r["min_score"].is_number()) file.Fail("retrieval: 'min_score' must be a number");
  lang.retrieval_min_score = r["min_score"].get<double>();
  return lang;
}

}  // namespace

const std::vector<std::string>& RequiredIntents() {
  static const std::vector<std::string> kIntents = {
      "greeting", "goodbye", "thanks", "help", "describe_pain", "cause", "anatomy", "muscles",
      "doms", "strain", "soreness_or_injury", "form_rows", "form_overhead", "posture", "prevention",
      "ice_heat", "rest", "mobility", "medication", "duration", "warning_signs", "affirm", "deny",
      "out_of_scope", "fallback"};
  return kIntents;
}

const std::vector<std::string>& RequiredFlags() {
  static const std::vector<std::string> kFlags = {
      "arm_radiation", "numbness", "tingling", "weakness", "fever", "chills", "weight_loss",
      "breathing_pain", "shortness_of_breath", "severe_persistent", "chest_pain", "tearing_pain",
      "coughing_blood", "cord_signs", "trauma"};
  return kFlags;
}

const std::vector<std::string>& RequiredStates() {
  static const std::vector<std::string> kStates = {"welcome", "screening", "advising", "escalated", "ended"};
  return kStates;
}

const std::vector<std::string>& FlowEvents() {
  static const std::vector<std::string> kEvents = {"red_flag", "start_screening", "screening_passed",
                                                   "question", "message"};
  return kEvents;
}

const std::vector<std::string>& RequiredTexts() {
  static const std::vector<std::string> kTexts = {
      "greeting", "screening_intro", "screening_resume", "screening_passed", "screening_unsure",
      "ask_training", "tailoring_intro", "past_clarify", "past_denied", "possible_denied", "third_party_intro",
      "informational_intro", "extension_note", "escalated_prefix", "retrieval_intro"};
  return kTexts;
}

std::shared_ptr<const KnowledgeBase> LoadKnowledgeBase(const std::filesystem::path& dir) {
  auto kb = std::make_shared<KnowledgeBase>();
  kb->dir = dir.string();
  try {
    kb->article = Article::Parse(ReadFile(dir / "article.txt", "article.txt"));
  } catch (const std::invalid_argument& e) {
    throw KnowledgeError(std::string("article.txt: ") + e.what());
  }
  kb->intents = LoadIntents(ParseJson(dir, "intents.jsonc"));
  kb->topics = LoadTopics(ParseJson(dir, "topics.jsonc"), kb->article, kb->intents);
  kb->red_flags = LoadRedFlags(ParseJson(dir, "red_flags.jsonc"), ParseJson(dir, "concepts.jsonc"), kb->article);
  kb->flow = LoadFlow(ParseJson(dir, "flow.jsonc"), kb->article, kb->intents, kb->red_flags);
  kb->language = LoadLanguage(ParseJson(dir, "language.jsonc"));
  kb->language.quantities = LoadQuantities(ParseJson(dir, "quantities.jsonc"));
  kb->language.emoji = LoadEmoji(ParseJson(dir, "emoji.jsonc"));
  return kb;
}

std::vector<std::vector<std::string>> CitationsBySentence(const KnowledgeBase& kb) {
  std::vector<std::vector<std::string>> cited(kb.article.sentences().size());
  auto cite = [&](const std::string& who, const std::vector<Source>& sources) {
    for (const auto& s : sources) {
      auto section = kb.article.FindSection(s.section);
      if (!section) continue;
      auto span = kb.article.FindQuote(*section, s.quote);
      if (!span) continue;
      for (std::size_t i : kb.article.SentencesIn(span->first, span->second)) {
        auto& list = cited[i];
        if (std::find(list.begin(), list.end(), who) == list.end()) list.push_back(who);
      }
    }
  };
  for (const auto& t : kb.topics) cite(t.id, t.sources);
  for (const auto& f : kb.red_flags.flags) cite("flag:" + f.id, f.sources);
  for (const auto& r : kb.flow.tailoring) cite("tailoring:" + r.id, r.sources);
  return cited;
}

}  // namespace backcheck::knowledge
