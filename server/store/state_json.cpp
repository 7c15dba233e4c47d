#include "server/store/state_json.hpp"

#include "server/json_writer.hpp"

namespace backcheck::server {
namespace {

void Key(std::string& out, const char* key) {
  out += '"';
  out += key;
  out += "\":";
}
void Unsigned(std::string& out, std::uint64_t value) { out += std::to_string(value); }

}  // namespace

// Keys in the order nlohmann writes an object's (sorted), so the form is to_json's byte for byte
// (but for "v"): tests compare the two.
void AppendStateJson(std::string& out, const dialog::ConversationState& s) {
  out += '{';
  Key(out, "asked_training");
  out += s.asked_training ? "true" : "false";
  if (s.fallbacks_said) {
    out += ',';
    Key(out, "fallbacks_said");
    Unsigned(out, s.fallbacks_said);
  }
  out += ',';
  Key(out, "flags");
  AppendJsonStrings(out, s.flags);
  if (s.misses_in_row) {
    out += ',';
    Key(out, "misses_in_row");
    Unsigned(out, s.misses_in_row);
  }
  out += ',';
  Key(out, "pending_flags");
  AppendJsonStrings(out, s.pending_flags);
  if (s.pending_possible) {
    out += ',';
    Key(out, "pending_possible");
    out += "true";
  }
  out += ',';
  Key(out, "screened");
  out += s.screened ? "true" : "false";
  out += ',';
  Key(out, "screening_step");
  Unsigned(out, s.screening_step);
  out += ',';
  Key(out, "slots");
  out += '{';
  bool first = true;
  const auto field = [&](const char* key) {
    if (!first) out += ',';
    first = false;
    Key(out, key);
  };
  if (!s.slots.exercise.empty()) {
    field("exercise");
    AppendJsonString(out, s.slots.exercise);
  }
  if (!s.slots.exercise_category.empty()) {
    field("exercise_category");
    AppendJsonString(out, s.slots.exercise_category);
  }
  if (s.slots.hours) {
    field("hours");
    out += std::to_string(*s.slots.hours);
  }
  if (!s.slots.quality.empty()) {
    field("quality");
    AppendJsonString(out, s.slots.quality);
  }
  out += "},";
  Key(out, "state");
  AppendJsonString(out, s.state);
  out += ',';
  Key(out, "turns");
  Unsigned(out, s.turns);
  out += ',';
  Key(out, "urgency");
  AppendJsonString(out, knowledge::UrgencyName(s.urgency));
  out += ',';
  Key(out, "v");
  Unsigned(out, kStateFormVersion);
  out += '}';
}

std::string StateJson(const dialog::ConversationState& state) {
  std::string out;
  out.reserve(256);
  AppendStateJson(out, state);
  return out;
}

}  // namespace backcheck::server
