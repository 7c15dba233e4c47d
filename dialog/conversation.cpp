#include "dialog/conversation.hpp"

#include <nlohmann/json.hpp>
#include <limits>
#include <stdexcept>

namespace backcheck::dialog {

using nlohmann::json;

void to_json(json& j, const ConversationState& s) {
  j = json{{"state", s.state},
           {"urgency", knowledge::UrgencyName(s.urgency)},
           {"flags", s.flags},
           {"screening_step", s.screening_step},
           {"screened", s.screened},
           {"asked_training", s.asked_training},
           {"pending_flags", s.pending_flags},
           {"turns", s.turns}};
  if (s.pending_possible) j["pending_possible"] = true;
  // Absent when zero: states stored before these fields existed read back the same.
  if (s.fallbacks_said) j["fallbacks_said"] = s.fallbacks_said;
  if (s.misses_in_row) j["misses_in_row"] = s.misses_in_row;
  if (!s.operator_name.empty()) j["operator"] = s.operator_name;
  if (!s.claimed_by.empty()) j["claimed_by"] = s.claimed_by;
  if (!s.screening_question.empty()) j["screening_question"] = s.screening_question;
  if (!s.kb_version.empty()) j["kb_version"] = s.kb_version;
  json slots = json::object();
  if (s.slots.hours) slots["hours"] = *s.slots.hours;
  if (!s.slots.exercise.empty()) slots["exercise"] = s.slots.exercise;
  if (!s.slots.exercise_category.empty()) slots["exercise_category"] = s.slots.exercise_category;
  if (!s.slots.quality.empty()) slots["quality"] = s.slots.quality;
  j["slots"] = std::move(slots);
}

namespace {
// A stored integer field, checked: nlohmann's get<int> casts a float (1e10) with undefined
// behaviour when it does not fit. Anything but an in-range integer is refused.
template <class T>
T Integer(const json& v, const char* name) {
  if (!v.is_number()) return v.get<T>();  // throws json::type_error, as for any wrong type
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u <= static_cast<std::uint64_t>(std::numeric_limits<T>::max())) return static_cast<T>(u);
  } else if (v.is_number_integer()) {
    const auto i = v.get<std::int64_t>();
    if (i >= static_cast<std::int64_t>(std::numeric_limits<T>::min()) &&
        (i < 0 || static_cast<std::uint64_t>(i) <= static_cast<std::uint64_t>(std::numeric_limits<T>::max()))) {
      return static_cast<T>(i);
    }
  }
  throw std::invalid_argument(std::string("'") + name + "' must be an integer in range");
}
}  // namespace

void from_json(const json& j, ConversationState& s) {
  ConversationState out;
  j.at("state").get_to(out.state);
  auto urgency = knowledge::ParseUrgency(j.at("urgency").get<std::string>());
  if (!urgency) throw std::invalid_argument("unknown urgency '" + j.at("urgency").get<std::string>() + "'");
  out.urgency = *urgency;
  j.at("flags").get_to(out.flags);
  out.screening_step = Integer<std::uint32_t>(j.at("screening_step"), "screening_step");
  j.at("screened").get_to(out.screened);
  j.at("asked_training").get_to(out.asked_training);
  j.at("pending_flags").get_to(out.pending_flags);
  if (j.contains("pending_possible")) j.at("pending_possible").get_to(out.pending_possible);
  out.turns = Integer<std::uint32_t>(j.at("turns"), "turns");
  if (j.contains("fallbacks_said")) out.fallbacks_said = Integer<std::uint32_t>(j.at("fallbacks_said"), "fallbacks_said");
  if (j.contains("misses_in_row")) out.misses_in_row = Integer<std::uint32_t>(j.at("misses_in_row"), "misses_in_row");
  if (j.contains("operator")) j.at("operator").get_to(out.operator_name);
  if (j.contains("claimed_by")) j.at("claimed_by").get_to(out.claimed_by);
  if (j.contains("screening_question")) j.at("screening_question").get_to(out.screening_question);
  if (j.contains("kb_version")) j.at("kb_version").get_to(out.kb_version);
  const json& slots = j.at("slots");
  if (slots.contains("hours")) out.slots.hours = Integer<int>(slots.at("hours"), "hours");
  if (slots.contains("exercise")) slots.at("exercise").get_to(out.slots.exercise);
  if (slots.contains("exercise_category")) slots.at("exercise_category").get_to(out.slots.exercise_category);
  if (slots.contains("quality")) slots.at("quality").get_to(out.slots.quality);
  s = std::move(out);
}

void to_json(json& j, const Reply& r) {
  json sources = json::array();
  for (const auto& s : r.sources) sources.push_back({{"section", s.section}, {"quote", s.quote}});
  j = json{{"text", r.text},
           {"intent", r.intent},
           {"state", r.state},
           {"urgency", knowledge::UrgencyName(r.urgency)},
           {"red_flags", r.red_flags},
           {"possible_flags", r.possible_flags},
           {"escalated", r.escalated},
           {"quick_replies", r.quick_replies},
           {"sources", std::move(sources)}};
  if (r.to_operator) j["to_operator"] = true;
}

void from_json(const json& j, Reply& r) {
  Reply out;
  j.at("text").get_to(out.text);
  j.at("intent").get_to(out.intent);
  j.at("state").get_to(out.state);
  auto urgency = knowledge::ParseUrgency(j.at("urgency").get<std::string>());
  if (!urgency) throw std::invalid_argument("unknown urgency '" + j.at("urgency").get<std::string>() + "'");
  out.urgency = *urgency;
  j.at("red_flags").get_to(out.red_flags);
  j.at("possible_flags").get_to(out.possible_flags);
  j.at("escalated").get_to(out.escalated);
  j.at("quick_replies").get_to(out.quick_replies);
  for (const auto& s : j.at("sources")) {
    out.sources.push_back({s.at("section").get<std::string>(), s.at("quote").get<std::string>()});
  }
  if (j.contains("to_operator")) j.at("to_operator").get_to(out.to_operator);
  r = std::move(out);
}

}  // namespace backcheck::dialog
