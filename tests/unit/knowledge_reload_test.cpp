// A knowledge-base reload (server/knowledge_reload.hpp) while conversations are in flight: the
// state names its screening question by id and records the knowledge version; states stored
// before those fields existed still load; a pending question the new content no longer has
// leaves the conversation going on, never stuck or crashing.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "dialog/engine.hpp"
#include "kb_copy.hpp"
#include "server/store/state_json.hpp"
#include "test_support.hpp"

using backcheck::dialog::ConversationState;
using backcheck::dialog::Engine;
using backcheck::test::KbCopy;
using backcheck::test::TestEngine;
using nlohmann::json;

namespace {

// The built-in screening questions, as flow.jsonc writes them.
const std::string kSystemic =
    "    { \"id\": \"systemic\", \"flags\": [\"fever\", \"chills\", \"weight_loss\"],\n"
    "      \"text\": \"Next: have you had a fever or chills, or lost weight without trying?\" },\n";
const std::string kBreathingTail =
    ",\n    { \"id\": \"breathing\", \"flags\": [\"breathing_pain\", \"shortness_of_breath\"],\n"
    "      \"text\": \"Last one: does the pain get worse when you take a deep breath, or are you short of breath?\" }\n";

// A conversation in screening, `answered` questions answered "no", on `engine`.
ConversationState InScreening(const Engine& engine, int answered) {
  ConversationState s = engine.Respond(engine.Start(), "my upper back is sore after rows yesterday").state;
  for (int i = 0; i < answered; ++i) s = engine.Respond(s, "no").state;
  REQUIRE(s.state == "screening");
  return s;
}

bool InScreeningRole(const Engine& engine, const ConversationState& s) {
  const auto* state = engine.kb().flow.FindState(s.state);
  return state && state->role == backcheck::knowledge::StateRole::kScreening;
}

}  // namespace

TEST_CASE("the state's screening question id and knowledge version survive both stored forms", "[reload][state_json]") {
  ConversationState s;
  s.state = "screening";
  s.screening_step = 1;
  s.screening_question = "systemic";
  s.kb_version = "0123456789abcdef";
  const json j = s;
  CHECK(j["screening_question"] == "systemic");
  CHECK(j["kb_version"] == "0123456789abcdef");
  CHECK(j.get<ConversationState>() == s);
  json stored = json::parse(backcheck::server::StateJson(s));
  CHECK(stored.get<ConversationState>() == s);
  stored.erase("v");
  CHECK(stored.dump() == j.dump());  // the hand-written form is to_json's, key for key
}

TEST_CASE("each answer stamps the knowledge version and the pending question's id", "[reload]") {
  const Engine& engine = TestEngine();
  const auto& questions = engine.kb().flow.screening;
  REQUIRE(questions.size() >= 3);
  CHECK(engine.kb().version.size() == 16);
  CHECK(engine.Start().kb_version == engine.kb().version);
  const ConversationState s = InScreening(engine, 1);
  CHECK(s.screening_step == 1);
  CHECK(s.screening_question == questions[1].id);
  CHECK(s.kb_version == engine.kb().version);
  const ConversationState passed = InScreening(engine, 0);
  ConversationState after = passed;
  for (std::size_t i = 0; i < questions.size(); ++i) after = engine.Respond(after, "no").state;
  CHECK_FALSE(InScreeningRole(engine, after));
  CHECK(after.screening_question.empty());  // outside screening: no pending question
}

TEST_CASE("a state stored before the id existed loads and goes on from its position", "[reload][state_json]") {
  const Engine& engine = TestEngine();
  const auto& questions = engine.kb().flow.screening;
  const auto old = json::parse(R"({"state":"screening","urgency":"none","flags":[],"screening_step":1,
    "screened":false,"asked_training":true,"pending_flags":[],"turns":2,"slots":{"exercise":"rows"}})");
  const ConversationState s = old.get<ConversationState>();
  CHECK(s.screening_question.empty());
  CHECK(s.kb_version.empty());
  CHECK(engine.Adopt(s).screening_step == 1);
  const auto turn = engine.Respond(s, "no");
  CHECK(turn.reply.text.find(questions[2].text) != std::string::npos);
  CHECK(turn.state.screening_question == questions[2].id);
  CHECK(turn.state.kb_version == engine.kb().version);
}

TEST_CASE("the pending screening question is found by id, whatever position the state says", "[reload]") {
  const Engine& engine = TestEngine();
  const auto& questions = engine.kb().flow.screening;
  ConversationState s = InScreening(engine, 0);
  s.screening_question = questions[2].id;  // the content moved it: the stored position is stale
  s.screening_step = 0;
  bool gone = true;
  CHECK(engine.Adopt(s, &gone).screening_step == 2);
  CHECK_FALSE(gone);
  const auto turn = engine.Respond(s, "no");  // the last one answered: screening passed
  CHECK_FALSE(InScreeningRole(engine, turn.state));
  CHECK(turn.state.screened);
}

TEST_CASE("the knowledge version is a hash of the content, not of where it is", "[reload]") {
  KbCopy copy;
  const auto same = backcheck::knowledge::LoadKnowledgeBase(copy.dir());
  CHECK(same->version == TestEngine().kb().version);
  copy.Replace("topics.jsonc", "\"answer\": \"", "\"answer\": \"Edited. ");
  CHECK(backcheck::knowledge::LoadKnowledgeBase(copy.dir())->version != same->version);
}

TEST_CASE("a reload that removed the pending screening question: the conversation goes on", "[reload]") {
  const Engine& before = TestEngine();
  KbCopy copy;
  copy.Replace("flow.jsonc", kSystemic, "");
  const Engine after(backcheck::knowledge::LoadKnowledgeBase(copy.dir()));
  REQUIRE(after.kb().flow.screening.size() == 2);
  const ConversationState pending = InScreening(before, 1);  // "systemic" asked, then the reload
  REQUIRE(pending.screening_question == "systemic");

  SECTION("a no answers the question that is gone: the next one is asked, then screening passes") {
    bool gone = false;
    after.Adopt(pending, &gone);
    CHECK(gone);
    const auto turn = after.Respond(pending, "no");
    CHECK(turn.state.state == "screening");
    CHECK(turn.state.screening_question == "breathing");
    CHECK(turn.reply.text.find(after.kb().flow.screening[1].text) != std::string::npos);
    CHECK(turn.state.kb_version == after.kb().version);
    const auto last = after.Respond(turn.state, "no");
    CHECK_FALSE(InScreeningRole(after, last.state));
    CHECK(last.state.screened);
  }
  SECTION("a yes to it affirms none of the flags of a question the person never saw") {
    const auto turn = after.Respond(pending, "yes");
    CHECK(turn.state.urgency == backcheck::knowledge::Urgency::kNone);
    CHECK(turn.reply.red_flags.empty());
    CHECK(turn.state.screening_question == "breathing");
    CHECK(turn.reply.text.find(after.kb().flow.screening[1].text) != std::string::npos);
  }
  SECTION("a red flag in the answer still escalates") {
    const auto turn = after.Respond(pending, "I can't breathe");
    CHECK(turn.state.urgency == backcheck::knowledge::Urgency::kEmergency);
  }
}

TEST_CASE("a reload that removed the last question, pending: screening ends, never loops", "[reload]") {
  const Engine& before = TestEngine();
  KbCopy copy;
  copy.Replace("flow.jsonc", kBreathingTail, "\n");
  const Engine after(backcheck::knowledge::LoadKnowledgeBase(copy.dir()));
  REQUIRE(after.kb().flow.screening.size() == 2);
  ConversationState s = InScreening(before, 2);
  REQUIRE(s.screening_question == "breathing");
  int turns = 0;
  while (InScreeningRole(after, s) && turns < 10) {
    s = after.Respond(s, "no").state;
    ++turns;
  }
  CHECK_FALSE(InScreeningRole(after, s));
  CHECK(turns <= 2);  // the last question there is now asked (again) at most once
  CHECK(s.screened);
}
