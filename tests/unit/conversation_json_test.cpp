#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "dialog/conversation.hpp"

using backcheck::dialog::ConversationState;
using nlohmann::json;

TEST_CASE("a conversation state survives a JSON round trip", "[state_json]") {
  ConversationState s;
  s.state = "screening";
  s.urgency = backcheck::knowledge::Urgency::kUrgent;
  s.flags = {"numbness", "fever"};
  s.screening_step = 2;
  s.screened = false;
  s.asked_training = true;
  s.pending_flags = {"tingling"};
  s.slots.hours = 48;
  s.slots.exercise = "rows";
  s.slots.exercise_category = "pull";
  s.slots.quality = "ache";
  s.turns = 7;
  json j = s;
  CHECK(j["urgency"] == "urgent");
  CHECK(j.get<ConversationState>() == s);
  CHECK(json::parse(j.dump()).get<ConversationState>() == s);
}

TEST_CASE("empty slots are left out and come back empty", "[state_json]") {
  ConversationState s;
  s.state = "welcome";
  json j = s;
  CHECK(j["slots"].empty());
  CHECK(j.get<ConversationState>() == s);
}

TEST_CASE("a malformed state is refused, not half-read", "[state_json]") {
  ConversationState s;
  s.state = "advising";
  json j = s;
  json bad_urgency = j;
  bad_urgency["urgency"] = "apocalyptic";
  CHECK_THROWS_AS(bad_urgency.get<ConversationState>(), std::invalid_argument);
  json missing = j;
  missing.erase("flags");
  CHECK_THROWS_AS(missing.get<ConversationState>(), json::out_of_range);
  json wrong_type = j;
  wrong_type["turns"] = "seven";
  CHECK_THROWS_AS(wrong_type.get<ConversationState>(), json::type_error);
}

TEST_CASE("a stored integer out of range is refused, never cast (found by fuzz_state_json)", "[json]") {
  auto state = json::parse(R"({"state":"welcome","urgency":"none","flags":[],"screening_step":0,"screened":false,
    "asked_training":false,"pending_flags":[],"turns":1e10,"slots":{}})");
  CHECK_THROWS_AS(state.get<ConversationState>(), std::invalid_argument);
  state["turns"] = 1;
  state["slots"]["hours"] = 1e10;
  CHECK_THROWS_AS(state.get<ConversationState>(), std::invalid_argument);
  state["slots"]["hours"] = 30;
  CHECK(state.get<ConversationState>().slots.hours == 30);
}
