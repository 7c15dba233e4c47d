// flow.jsonc: dialogue states and transitions, screening questions, tailoring rules, fixed texts,
// fallback wordings and quick replies.
#include "knowledge/loader_internal.hpp"

namespace backcheck::knowledge::load {
namespace {

constexpr long long kMaxHours = 24 * 365 * 10;

StateRole ParseRole(const std::string& name, const Where& where) {
  for (const auto& [n, role] : StateRoles()) {
    if (name == n) return role;
  }
  where.Fail("unknown role '" + name + "' (welcome, screening, advising, escalated, ended): say which with \"role\"");
}

FlowState LoadState(const json& j, std::size_t n, const Article& article, const Where& file) {
  FlowState state;
  state.id = String(j, "id", file.With("state " + std::to_string(n + 1)));
  Where w = file.With("state '" + state.id + "'");
  CheckKeys(j, w, {"id", "role", "terminal", "on", "answers"});
  state.role = ParseRole(j.contains("role") ? String(j, "role", w) : state.id, w);
  if (j.contains("answers")) {
    const json& answers = Object(j, "answers", w);
    for (auto it = answers.begin(); it != answers.end(); ++it) {
      Where aw = w.With("answer to '" + it.key() + "'");
      CheckKeys(*it, aw, {"text", "quick_replies", "sources"});
      StateAnswer answer;
      answer.text = String(*it, "text", aw);
      answer.quick_replies = Strings(*it, "quick_replies", aw);
      answer.sources = Sources(*it, article, aw);
      state.answers[it.key()] = std::move(answer);
    }
  }
  state.terminal = OptBool(j, "terminal", w).value_or(false);
  if (j.contains("on")) {
    const json& on = Object(j, "on", w);
    for (auto it = on.begin(); it != on.end(); ++it) {
      state.on[it.key()] = StringValue(*it, w, "transition '" + it.key() + "' (the state it leads to)");
    }
  }
  return state;
}

TailoringRule LoadTailoringRule(const json& j, std::size_t n, const Article& article, const Where& file) {
  TailoringRule rule;
  rule.id = String(j, "id", file.With("tailoring rule " + std::to_string(n + 1)));
  Where w = file.With("tailoring rule '" + rule.id + "'");
  CheckKeys(j, w, {"id", "hours_min", "hours_max", "hours_unknown", "exercise_category", "quality", "quality_not",
                   "text", "sources"});
  rule.hours_min = OptInt(j, "hours_min", w, 0, kMaxHours);
  rule.hours_max = OptInt(j, "hours_max", w, 0, kMaxHours);
  if (rule.hours_min && rule.hours_max && *rule.hours_min > *rule.hours_max) {
    w.Fail("hours_min " + std::to_string(*rule.hours_min) + " is above hours_max " + std::to_string(*rule.hours_max));
  }
  rule.hours_unknown = OptBool(j, "hours_unknown", w).value_or(false);
  if (rule.hours_unknown && (rule.hours_min || rule.hours_max)) {
    w.Fail("'hours_unknown' (the rule applies only when the hours since training are not known) cannot be "
           "combined with hours_min or hours_max");
  }
  rule.exercise_category = OptString(j, "exercise_category", w);
  rule.quality = OptString(j, "quality", w);
  rule.quality_not = OptString(j, "quality_not", w);
  if (!rule.quality.empty() && rule.quality == rule.quality_not) {
    w.Fail("quality and quality_not are both '" + rule.quality + "': the rule can never apply");
  }
  rule.text = String(j, "text", w);
  rule.sources = Sources(j, article, w);
  return rule;
}

}  // namespace

const std::vector<std::pair<const char*, StateRole>>& StateRoles() {
  static const std::vector<std::pair<const char*, StateRole>> kRoles = {
      {"welcome", StateRole::kWelcome}, {"screening", StateRole::kScreening}, {"advising", StateRole::kAdvising},
      {"escalated", StateRole::kEscalated}, {"ended", StateRole::kEnded}};
  return kRoles;
}

Flow LoadFlow(const json& doc, const Article& article) {
  const Where file{"flow.jsonc", {}};
  CheckKeys(doc, file, {"initial", "states", "screening", "tailoring", "texts", "fallbacks", "quick_replies"});
  Flow flow;
  flow.initial = String(doc, "initial", file);
  const json& states = Array(doc, "states", file);
  for (std::size_t n = 0; n < states.size(); ++n) flow.states.push_back(LoadState(states[n], n, article, file));
  CheckUnique(flow.states, file, "state");
  if (!flow.FindState(flow.initial)) file.Fail("initial state '" + flow.initial + "' is not defined");
  for (const auto& [name, role] : StateRoles()) {
    const auto n = std::count_if(flow.states.begin(), flow.states.end(), [&](const FlowState& x) { return x.role == role; });
    if (n != 1) file.Fail("role '" + std::string(name) + "' must be taken by exactly one state, not " + std::to_string(n));
  }
  for (const auto& state : flow.states) {
    Where w = file.With("state '" + state.id + "'");
    bool way_out = false;
    for (const auto& [event, target] : state.on) {
      if (!flow.FindState(target)) w.Fail("event '" + event + "' leads to unknown state '" + target + "'");
      if (target != state.id) way_out = true;
    }
    if (!state.terminal && !way_out) {
      w.Fail("no way out: no transition to another state, and not marked terminal");
    }
    if (state.terminal && way_out) w.Fail("marked terminal but has a transition to another state");
  }

  const json& screening = Array(doc, "screening", file);
  for (std::size_t n = 0; n < screening.size(); ++n) {
    const json& j = screening[n];
    ScreeningQuestion q;
    q.id = String(j, "id", file.With("screening question " + std::to_string(n + 1)));
    Where w = file.With("screening question '" + q.id + "'");
    CheckKeys(j, w, {"id", "text", "flags"});
    q.text = String(j, "text", w);
    q.flags = Strings(j, "flags", w, true);
    if (q.flags.empty()) w.Fail("asks about no flag");
    flow.screening.push_back(std::move(q));
  }
  CheckUnique(flow.screening, file, "screening question");
  if (flow.screening.empty()) file.Fail("no screening question");

  if (doc.contains("tailoring")) {
    const json& tailoring = Array(doc, "tailoring", file);
    for (std::size_t n = 0; n < tailoring.size(); ++n) {
      flow.tailoring.push_back(LoadTailoringRule(tailoring[n], n, article, file));
    }
    CheckUnique(flow.tailoring, file, "tailoring rule");
  }

  const json& texts = Object(doc, "texts", file);
  for (auto it = texts.begin(); it != texts.end(); ++it) {
    flow.texts[it.key()] = StringValue(*it, file, "text '" + it.key() + "'");
  }
  flow.fallbacks = Strings(doc, "fallbacks", file);
  if (flow.fallbacks.size() < 2) file.Fail("field 'fallbacks' needs at least two wordings: one never comes twice in a row");
  if (doc.contains("quick_replies")) {
    const json& qr = Object(doc, "quick_replies", file);
    for (auto it = qr.begin(); it != qr.end(); ++it) {
      flow.quick_replies[it.key()] = Strings(qr, it.key().c_str(), file.With("quick_replies"));
    }
  }
  return flow;
}

}  // namespace backcheck::knowledge::load
