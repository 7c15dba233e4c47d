#include "server/store/state_json.hpp"

#include "server/json_writer.hpp"

namespace backcheck::server {

// Keys in the order nlohmann writes an object's (sorted), so the form is to_json's byte for byte
// (but for "v"): tests compare the two. Optional fields are left out as to_json leaves them out.
std::string StateJson(const dialog::ConversationState& s) {
  JsonObject slots(64);
  if (!s.slots.exercise.empty()) slots.String("exercise", s.slots.exercise);
  if (!s.slots.exercise_category.empty()) slots.String("exercise_category", s.slots.exercise_category);
  if (s.slots.hours) slots.Int("hours", *s.slots.hours);
  if (!s.slots.quality.empty()) slots.String("quality", s.slots.quality);

  JsonObject state(256);
  state.Bool("asked_training", s.asked_training);
  if (!s.claimed_by.empty()) state.String("claimed_by", s.claimed_by);
  if (s.fallbacks_said) state.Int("fallbacks_said", s.fallbacks_said);
  state.Strings("flags", s.flags);
  if (!s.kb_version.empty()) state.String("kb_version", s.kb_version);
  if (s.misses_in_row) state.Int("misses_in_row", s.misses_in_row);
  if (!s.operator_name.empty()) state.String("operator", s.operator_name);
  state.Strings("pending_flags", s.pending_flags);
  if (s.pending_possible) state.Bool("pending_possible", true);
  state.Bool("screened", s.screened);
  if (!s.screening_question.empty()) state.String("screening_question", s.screening_question);
  state.Int("screening_step", s.screening_step);
  state.Raw("slots", slots.Done());
  state.String("state", s.state);
  state.Int("turns", s.turns);
  state.String("urgency", knowledge::UrgencyName(s.urgency));
  state.Int("v", kStateFormVersion);
  return state.Done();
}

void AppendStateJson(std::string& out, const dialog::ConversationState& state) { out += StateJson(state); }

}  // namespace backcheck::server
