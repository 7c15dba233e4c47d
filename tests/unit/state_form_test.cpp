// The stored state form (server/store/state_json.hpp) is what every turn writes: it must read
// back as the same state, and be dialog::to_json's form plus the version.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "server/store/state_json.hpp"

using backcheck::dialog::ConversationState;
using backcheck::knowledge::Urgency;
using backcheck::server::StateJson;
using nlohmann::json;

namespace {

std::vector<ConversationState> Samples() {
  std::vector<ConversationState> out;
  ConversationState s;
  s.state = "welcome";
  out.push_back(s);  // every optional field absent, slots empty
  s.state = "screening";
  s.urgency = Urgency::kUrgent;
  s.flags = {"numbness", "fever"};
  s.screening_step = 2;
  s.asked_training = true;
  s.pending_flags = {"tingling"};
  s.pending_possible = true;
  s.turns = 7;
  s.fallbacks_said = 3;
  s.misses_in_row = 1;
  s.slots.hours = 48;
  s.slots.exercise = "overhead \"press\"\\";
  s.slots.exercise_category = "pull";
  s.slots.quality = "ache";
  out.push_back(s);
  s.slots = {};
  s.slots.quality = "sharp";  // one slot, not the first
  s.screened = true;
  s.urgency = Urgency::kEmergency;
  s.turns = 4294967295u;
  out.push_back(s);
  s.slots = {};
  s.slots.hours = -3;
  out.push_back(s);
  s.operator_name = "dr.alice";  // an operator has joined, another claimed it
  s.claimed_by = "bob";
  out.push_back(s);
  return out;
}

}  // namespace

TEST_CASE("the stored state form reads back as the same state", "[state_form]") {
  for (const auto& s : Samples()) {
    const std::string form = StateJson(s);
    INFO(form);
    CHECK(json::parse(form).get<ConversationState>() == s);
  }
}

TEST_CASE("the stored state form is to_json's, byte for byte, plus its version", "[state_form]") {
  for (const auto& s : Samples()) {
    json expected = s;
    expected["v"] = backcheck::server::kStateFormVersion;
    CHECK(StateJson(s) == expected.dump());
  }
}
