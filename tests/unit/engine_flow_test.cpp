// The dialogue of SPEC section 3 through Engine::Start()/Respond(): what a conversation script
// cannot express. The conversations themselves (each state and transition, screening, escalation,
// past and third-party symptoms, tailoring) are scripts in tests/conversations/ (FORMAT.md); here
// stay the initial state, the yes-at-each-question matrix (three phrasings at each of the three
// questions, with the flags stored in the state), the state's JSON round trip, an unknown stored
// state, and that every reply is well-formed whatever is said.
#include <catch2/catch.hpp>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_support.hpp"

using backcheck::dialog::ConversationState;
using backcheck::dialog::Reply;
using backcheck::knowledge::Urgency;
using backcheck::knowledge::UrgencyName;
using backcheck::test::Contains;
using backcheck::test::TestEngine;

namespace {

// What the assistant says, read from the knowledge base (never copied here: a content edit must
// not break these tests, nor make a check hold without checking anything).
const backcheck::knowledge::KnowledgeBase& Kb() { return TestEngine().kb(); }
const backcheck::knowledge::Guidance& GuidanceAt(Urgency level) {
  for (const auto& g : Kb().red_flags.guidance) {
    if (g.level == level) return g;
  }
  throw std::runtime_error("no guidance for a level");
}
std::string EmergencyGuidance() { return GuidanceAt(Urgency::kEmergency).text; }
std::string UrgentGuidance() { return GuidanceAt(Urgency::kUrgent).text; }
const std::string kPainOpening = "my upper back hurts after my workout";

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

std::string Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return Join(v);
}

// Every reply, whatever the conversation, must be well-formed.
void CheckWellFormed(const Reply& r) {
  static const std::set<std::string> kStates = {"welcome", "screening", "advising", "escalated", "ended"};
  CHECK_FALSE(r.text.empty());
  CHECK_FALSE(r.intent.empty());
  CHECK(kStates.count(r.state) == 1);
  for (const auto& s : r.sources) {
    INFO("source section: " << s.section << " quote: " << s.quote);
    CHECK_FALSE(s.quote.empty());
    CHECK(Contains(TestEngine().kb().article.text(), s.quote));
  }
}

// One conversation, with a transcript that every failure prints.
class Chat {
 public:
  Chat() : state_(TestEngine().Start()) {}

  const Reply& Say(const std::string& text) {
    auto turn = TestEngine().Respond(state_, text);
    state_ = std::move(turn.state);
    last_ = std::move(turn.reply);
    transcript_ += "\n> " + text + "\n< [" + last_.intent + "/" + last_.state + "/" +
                   UrgencyName(last_.urgency) + " flags=" + Join(last_.red_flags) +
                   (last_.escalated ? " escalated" : "") + "] " + last_.text.substr(0, 160);
    {
      INFO("transcript:" << transcript_);
      CheckWellFormed(last_);
    }
    return last_;
  }

  const std::string& transcript() const { return transcript_; }
  const ConversationState& state() const { return state_; }
  void set_state(ConversationState s) { state_ = std::move(s); }

 private:
  ConversationState state_;
  Reply last_;
  std::string transcript_;
};

std::string Urg(const Reply& r) { return UrgencyName(r.urgency); }

}  // namespace

// --- welcome ---------------------------------------------------------------------------------

TEST_CASE("a new conversation starts in welcome with the greeting", "[flow]") {
  auto s = TestEngine().Start();
  CHECK(s.state == "welcome");
  CHECK(s.urgency == Urgency::kNone);
  CHECK(Contains(TestEngine().Greeting(), "Backcheck"));
}

// --- screening -------------------------------------------------------------------------------

namespace {
struct ScreeningYes {
  int question;  // 0, 1, 2
  std::string flags;
  std::string urgency;
  std::string lead;  // what the reply starts with
};
}  // namespace

// flows/screening_yes_{arm,systemic,breathing}.convo are one phrasing at each question; here all
// three phrasings at all three (nine conversations, six more scripts), and the flags the state
// keeps, which a script cannot see.
TEST_CASE("yes at each screening question escalates with exactly that question's flags", "[flow]") {
  const std::vector<ScreeningYes> cases = {
      {0, "arm_radiation,numbness,tingling,weakness", "urgent", UrgentGuidance()},
      {1, "chills,fever,weight_loss", "urgent", UrgentGuidance()},
      {2, "breathing_pain,shortness_of_breath", "emergency", EmergencyGuidance()},
  };
  for (const auto& yes : {std::string("yes"), std::string("Yes"), std::string("yeah I do")}) {
    for (const auto& k : cases) {
      Chat c;
      c.Say(kPainOpening);
      for (int i = 0; i < k.question; ++i) c.Say("no");
      const Reply r = c.Say(yes);
      INFO(c.transcript());
      CAPTURE(k.question, yes);
      CHECK(r.state == "escalated");
      CHECK(Sorted(r.red_flags) == k.flags);
      CHECK(Urg(r) == k.urgency);
      CHECK(r.escalated);
      CHECK(r.text.rfind(k.lead, 0) == 0);  // leads with the guidance for the level
      CHECK(Sorted(c.state().flags) == k.flags);
    }
  }
}

// --- state persistence -----------------------------------------------------------------------

TEST_CASE("a conversation state JSON round trip mid-screening gives the same next reply", "[flow]") {
  Chat c;
  c.Say("my upper back is sore after rows yesterday");
  c.Say("no");
  const ConversationState mid = c.state();
  REQUIRE(mid.state == "screening");
  REQUIRE(mid.screening_step == 1);

  nlohmann::json j = mid;
  const ConversationState restored = nlohmann::json::parse(j.dump()).get<ConversationState>();
  CHECK(restored == mid);

  for (std::string next : {"no", "yes", "what is DOMS?"}) {
    auto a = TestEngine().Respond(mid, next);
    auto b = TestEngine().Respond(restored, next);
    CAPTURE(next);
    CHECK(a.reply.text == b.reply.text);
    CHECK(a.reply.state == b.reply.state);
    CHECK(a.reply.intent == b.reply.intent);
    CHECK(a.reply.red_flags == b.reply.red_flags);
    CHECK(a.state == b.state);
  }
  // And the restored conversation finishes screening with the slots it had.
  c.set_state(restored);
  c.Say("no");
  const Reply& r = c.Say("no");
  INFO(c.transcript());
  CHECK(r.state == "advising");
  CHECK(Contains(r.text, "With rows"));
}

TEST_CASE("an unknown state in a stored conversation restarts from the initial state", "[flow]") {
  ConversationState s = TestEngine().Start();
  s.state = "no_such_state";
  auto turn = TestEngine().Respond(s, "what is DOMS?");
  CheckWellFormed(turn.reply);
  CHECK(turn.reply.state == "advising");
}

// --- well-formedness over many inputs ---------------------------------------------------------

TEST_CASE("every reply is well-formed, whatever is said", "[flow]") {
  const std::vector<std::string> lines = {
      "", "   ", "hi", "my upper back hurts after rows", "yes", "no", "maybe", "what is DOMS?",
      "should I use ice or heat?", "my arm is numb", "my friend can't breathe", "I had a fever last week",
      "bye", "thanks", "¿qué?", "\xff\xfe broken", "what about my knee?", "asdfghjkl",
      "how long will it last?", "I can't breathe", "no fever but my arm is numb"};
  // Each line as the first message, and all of them as one long conversation.
  for (const auto& line : lines) {
    CAPTURE(line);
    CheckWellFormed(backcheck::test::FirstReply(line));
  }
  Chat c;
  for (const auto& line : lines) c.Say(line);
  INFO(c.transcript());
  CHECK(c.state().state == "escalated");
  CHECK(c.state().urgency == Urgency::kEmergency);
  CHECK(c.state().turns == lines.size());
}

TEST_CASE("while an operator has joined the assistant stays silent, but a red flag is still answered at once",
          "[handoff]") {
  const auto& engine = TestEngine();
  auto first = engine.Respond(engine.Start(), kPainOpening);
  const ConversationState screening = first.state;
  const ConversationState joined = engine.Join(screening, "alice");
  CHECK(joined.operator_name == "alice");

  auto quiet = engine.Respond(joined, "no");  // would answer the screening question
  CHECK(quiet.reply.to_operator);
  CHECK(quiet.reply.text.empty());
  CHECK(quiet.reply.quick_replies.empty());
  CHECK(quiet.state.state == screening.state);
  CHECK(quiet.state.screening_step == screening.screening_step);  // the flow waits for the operator
  CHECK(quiet.state.turns == screening.turns + 1);
  CHECK(quiet.state.operator_name == "alice");

  auto urgent = engine.Respond(quiet.state, "I have chest pain");
  CHECK_FALSE(urgent.reply.to_operator);
  CHECK(urgent.reply.escalated);
  CHECK(urgent.state.urgency == Urgency::kEmergency);
  CHECK(Contains(urgent.reply.text, EmergencyGuidance()));
  CHECK(urgent.state.operator_name == "alice");  // still with the operator

  const ConversationState left = engine.Leave(urgent.state);
  CHECK(left.operator_name.empty());
  auto answered = engine.Respond(left, "what should I do now?");
  CHECK_FALSE(answered.reply.to_operator);
  CHECK_FALSE(answered.reply.text.empty());
}
