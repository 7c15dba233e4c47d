// Step 2 of a reply on its own: Policy::Decide (dialog/policy.hpp) takes a conversation state and
// a Reading (hand-built, or made by the Interpreter) and gives the next state and the plan, as
// parts. The cases check the parts by kind and by what they name (levels, flags, text names,
// screening steps), and the state, never the words of the reply.
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <string>
#include <vector>

#include "test_support.hpp"

using backcheck::dialog::ConversationState;
using backcheck::dialog::Decision;
using backcheck::dialog::FlagMask;
using backcheck::dialog::Part;
using backcheck::dialog::Reading;
using backcheck::dialog::Reply;
using backcheck::knowledge::StateRole;
using backcheck::knowledge::Urgency;
using backcheck::knowledge::UrgencyName;
using backcheck::test::InRole;
using backcheck::test::TestEngine;
using K = Part::Kind;

namespace {

const auto& Kb() { return TestEngine().kb(); }
const auto& Core() { return TestEngine().core_intents(); }

const std::string& StateId(StateRole role) { return Kb().flow.StateWithRole(role).id; }

std::size_t FlagIndex(const std::string& id) {
  const auto& flags = Kb().red_flags.flags;
  auto it = std::find_if(flags.begin(), flags.end(), [&](const auto& f) { return f.id == id; });
  REQUIRE(it != flags.end());
  return static_cast<std::size_t>(it - flags.begin());
}
FlagMask Bit(std::size_t f) { return FlagMask{1} << f; }

// The first flag of the knowledge base at `level`.
std::size_t FirstFlagAt(Urgency level) {
  const auto& flags = Kb().red_flags.flags;
  auto it = std::find_if(flags.begin(), flags.end(), [&](const auto& f) { return f.level == level; });
  REQUIRE(it != flags.end());
  return static_cast<std::size_t>(it - flags.begin());
}

// A Reading of intent `intent` (and nothing else), with the state's slots.
Reading Hand(const ConversationState& s, std::size_t intent) {
  Reading r;
  r.intent = intent;
  r.slots = s.slots;
  return r;
}

Reading Read(const ConversationState& s, const std::string& text) {
  return TestEngine().interpreter().Read(s, text, std::nullopt);
}

Decision Decide(const ConversationState& s, const Reading& r) { return TestEngine().policy().Decide(s, r); }

// "guidance(urgent) explanations(numbness) text(screening_intro) answer(describe_pain@escalated)".
std::string Describe(const Decision& d) {
  std::string out;
  for (const Part& p : d.plan.parts) {
    out += out.empty() ? "" : " ";
    switch (p.kind) {
      case K::kGuidance: out += std::string("guidance(") + UrgencyName(p.level) + ")"; break;
      case K::kExplanations: out += "explanations(" + std::to_string(p.flags) + ")"; break;
      case K::kAnswer:
        out += "answer(" + Kb().intents[p.index].id + (p.state ? "@" + p.state->id : "") + ")";
        break;
      case K::kQuestions: out += "questions(" + std::to_string(p.flags) + ")"; break;
      case K::kConditionalGuidance: out += std::string("conditional(") + UrgencyName(p.level) + ")"; break;
      case K::kThirdPartyGuidance: out += std::string("third_party(") + UrgencyName(p.level) + ")"; break;
      case K::kPastClarify: out += "past_clarify"; break;
      case K::kText: out += std::string("text(") + p.name + ")"; break;
      case K::kScreeningQuestion: out += "screening(" + std::to_string(p.index) + ")"; break;
      case K::kTailoring: out += "tailoring"; break;
      case K::kRetrieval: out += "retrieval(" + std::to_string(p.index) + ")"; break;
      case K::kFallback: out += "fallback(" + std::to_string(p.index) + ")"; break;
      case K::kTopicQuickReplies: out += "topic_quick_replies"; break;
    }
  }
  return out + " | quick_replies=" + d.plan.quick_replies + " | state=" + d.state.state + " event=" + d.event;
}

bool HasKind(const Decision& d, K kind) {
  return std::any_of(d.plan.parts.begin(), d.plan.parts.end(), [&](const Part& p) { return p.kind == kind; });
}
bool HasText(const Decision& d, const std::string& name) {
  return std::any_of(d.plan.parts.begin(), d.plan.parts.end(),
                     [&](const Part& p) { return p.kind == K::kText && p.name == name; });
}

// What the composed reply is made of (content ids, see Composer::Compose).
std::vector<std::string> Said(const Decision& d) {
  Reply reply;
  std::vector<std::string> said;
  TestEngine().composer().Compose(d.plan, d.state, reply, &said);
  return said;
}
bool AnyStartsWith(const std::vector<std::string>& said, const std::string& prefix) {
  return std::any_of(said.begin(), said.end(), [&](const std::string& s) { return s.rfind(prefix, 0) == 0; });
}

}  // namespace

TEST_CASE("Policy: a flag of the person's own escalates: guidance for its level first, then why it matters",
          "[policy]") {
  for (Urgency level : {Urgency::kSeeDoctor, Urgency::kUrgent, Urgency::kEmergency}) {
    const std::size_t f = FirstFlagAt(level);
    for (StateRole role : {StateRole::kWelcome, StateRole::kAdvising, StateRole::kScreening}) {
      const ConversationState before = InRole(role);
      Reading r = Hand(before, Core().describe_pain);
      r.self = Bit(f);
      const Decision d = Decide(before, r);
      INFO("flag " << Kb().red_flags.flags[f].id << " in " << before.state << ": " << Describe(d));
      CHECK(d.escalated);
      CHECK(d.event == "red_flag");
      CHECK(d.affirmed == Bit(f));
      CHECK(d.asked == 0);
      CHECK(d.state.state == StateId(StateRole::kEscalated));
      CHECK(d.state.urgency == level);
      CHECK(d.state.flags == std::vector<std::string>{Kb().red_flags.flags[f].id});
      REQUIRE(d.plan.parts.size() >= 2);
      CHECK(d.plan.parts[0].kind == K::kGuidance);
      CHECK(d.plan.parts[0].level == level);
      CHECK(d.plan.parts[1].kind == K::kExplanations);
      CHECK(d.plan.parts[1].flags == Bit(f));
      CHECK(d.plan.quick_replies == StateId(StateRole::kEscalated));
      CHECK_FALSE(HasKind(d, K::kTailoring));
      CHECK_FALSE(HasKind(d, K::kScreeningQuestion));
    }
  }
  SECTION("a flag of a higher level once escalated: the urgency rises again, and the guidance is the new level's") {
    ConversationState before = InRole(StateRole::kEscalated);
    const std::size_t low = FirstFlagAt(Urgency::kUrgent), high = FirstFlagAt(Urgency::kEmergency);
    before.urgency = Urgency::kUrgent;
    before.flags = {Kb().red_flags.flags[low].id};
    Reading r = Hand(before, Core().describe_pain);
    r.self = Bit(high);
    const Decision d = Decide(before, r);
    INFO(Describe(d));
    CHECK(d.escalated);
    CHECK(d.event == "red_flag");
    CHECK(d.state.urgency == Urgency::kEmergency);
    CHECK(d.state.state == StateId(StateRole::kEscalated));
    REQUIRE_FALSE(d.plan.parts.empty());
    CHECK(d.plan.parts[0].kind == K::kGuidance);
    CHECK(d.plan.parts[0].level == Urgency::kEmergency);
  }
  SECTION("a second flag at a lower level: the urgency stays, no new escalation, its explanation still said") {
    ConversationState before = InRole(StateRole::kEscalated);
    const std::size_t high = FirstFlagAt(Urgency::kEmergency), low = FirstFlagAt(Urgency::kSeeDoctor);
    before.urgency = Urgency::kEmergency;
    before.flags = {Kb().red_flags.flags[high].id};
    Reading r = Hand(before, Core().describe_pain);
    r.self = Bit(low);
    const Decision d = Decide(before, r);
    INFO(Describe(d));
    CHECK_FALSE(d.escalated);
    CHECK(d.state.urgency == Urgency::kEmergency);
    CHECK(d.state.flags.size() == 2);
    REQUIRE(d.plan.parts.size() >= 2);
    CHECK(d.plan.parts[0].kind == K::kGuidance);
    CHECK(d.plan.parts[0].level == Urgency::kEmergency);
    CHECK(d.plan.parts[1].kind == K::kExplanations);
    CHECK(d.plan.parts[1].flags == Bit(low));
  }
}

TEST_CASE("Policy: in the escalated state, describe_pain gets the state's own answer after the guidance, never tailoring",
          "[policy]") {
  const auto& escalated = Kb().flow.StateWithRole(StateRole::kEscalated);
  const std::string& describe_pain = Kb().intents[Core().describe_pain].id;
  REQUIRE(escalated.answers.count(describe_pain) == 1);

  ConversationState before = InRole(StateRole::kEscalated);
  before.urgency = Urgency::kUrgent;
  before.flags = {Kb().red_flags.flags[FirstFlagAt(Urgency::kUrgent)].id};
  // Everything tailoring would need is known, and they were asked about their training.
  before.slots.hours = 24;
  before.slots.exercise = "rows";
  before.slots.exercise_category = "pull";
  before.asked_training = true;
  before.screened = true;

  REQUIRE(Read(before, "my upper back hurts after rows yesterday").intent == Core().describe_pain);
  for (const std::string text : {"my upper back hurts after rows yesterday", "rows 2 days ago"}) {
    const Reading r = Read(before, text);
    const Decision d = Decide(before, r);
    INFO(text << ": " << Describe(d));
    CHECK_FALSE(d.escalated);
    CHECK(d.state.state == escalated.id);
    CHECK(d.state.urgency == Urgency::kUrgent);
    REQUIRE(d.plan.parts.size() >= 2);
    CHECK(d.plan.parts[0].kind == K::kGuidance);
    CHECK(d.plan.parts[0].level == Urgency::kUrgent);
    if (r.intent == Core().describe_pain) {
      CHECK(d.plan.parts[1].kind == K::kAnswer);
      CHECK(d.plan.parts[1].index == Core().describe_pain);
      CHECK(d.plan.parts[1].state == &escalated);
    }
    CHECK_FALSE(HasKind(d, K::kTailoring));
    CHECK_FALSE(HasText(d, "ask_training"));
    CHECK_FALSE(HasKind(d, K::kScreeningQuestion));
    CHECK(d.plan.quick_replies == escalated.id);

    const auto said = Said(d);
    CHECK_FALSE(AnyStartsWith(said, "tailoring:"));
    CHECK_FALSE(AnyStartsWith(said, "text:tailoring_intro"));
    CHECK_FALSE(AnyStartsWith(said, "text:ask_training"));
  }
  // The hand-built Reading: exactly the state's answer, whatever the slots.
  Reading r = Hand(before, Core().describe_pain);
  r.slots_found = true;
  const Decision d = Decide(before, r);
  INFO(Describe(d));
  REQUIRE(d.plan.parts.size() == 2);
  CHECK(d.plan.parts[1].kind == K::kAnswer);
  CHECK(d.plan.parts[1].state == &escalated);
  CHECK(Said(d) == std::vector<std::string>{std::string("guidance:") + UrgencyName(Urgency::kUrgent),
                                            "answer:" + escalated.id + "/" + describe_pain});
}

TEST_CASE("Policy: in the escalated state, a message not understood gets the state's own answer, not a fallback",
          "[policy]") {
  const auto& escalated = Kb().flow.StateWithRole(StateRole::kEscalated);
  REQUIRE(escalated.answers.count(Kb().intents[Core().fallback].id) == 1);
  ConversationState before = InRole(StateRole::kEscalated);
  before.urgency = Urgency::kEmergency;
  before.flags = {Kb().red_flags.flags[FirstFlagAt(Urgency::kEmergency)].id};
  const Decision d = Decide(before, Hand(before, Core().fallback));
  INFO(Describe(d));
  REQUIRE(d.plan.parts.size() == 2);
  CHECK(d.plan.parts[0].kind == K::kGuidance);
  CHECK(d.plan.parts[0].level == Urgency::kEmergency);
  CHECK(d.plan.parts[1].kind == K::kAnswer);
  CHECK(d.plan.parts[1].index == Core().fallback);
  CHECK(d.plan.parts[1].state == &escalated);
  CHECK_FALSE(HasKind(d, K::kFallback));
  CHECK(d.state.misses_in_row == 0);
  CHECK(d.plan.quick_replies == escalated.id);
  const auto said = Said(d);
  CHECK_FALSE(AnyStartsWith(said, "fallback:"));
}

TEST_CASE("Policy: a possible flag asks about it (and what to do if so); urgency unchanged, the question pending",
          "[policy]") {
  for (Urgency level : {Urgency::kUrgent, Urgency::kEmergency}) {
    const std::size_t f = FirstFlagAt(level);
    const ConversationState before = InRole(StateRole::kWelcome);
    Reading r = Hand(before, Core().fallback);
    r.possible = Bit(f);
    const Decision d = Decide(before, r);
    INFO(Kb().red_flags.flags[f].id << ": " << Describe(d));
    CHECK_FALSE(d.escalated);
    CHECK(d.affirmed == 0);
    CHECK(d.asked == Bit(f));
    CHECK(d.state.urgency == Urgency::kNone);
    CHECK(d.state.flags.empty());
    CHECK(d.state.state != StateId(StateRole::kEscalated));
    CHECK(d.state.pending_flags == std::vector<std::string>{Kb().red_flags.flags[f].id});
    CHECK(d.state.pending_possible);
    CHECK_FALSE(HasKind(d, K::kGuidance));
    CHECK_FALSE(HasKind(d, K::kFallback));
    REQUIRE(d.plan.parts.size() == 2);
    CHECK(d.plan.parts[0].kind == K::kQuestions);
    CHECK(d.plan.parts[0].flags == Bit(f));
    CHECK(d.plan.parts[1].kind == K::kConditionalGuidance);
    CHECK(d.plan.parts[1].level == level);
    CHECK(d.plan.quick_replies == "yes_no");
  }
  SECTION("a flag already affirmed is not asked about again") {
    const std::size_t f = FirstFlagAt(Urgency::kUrgent);
    ConversationState before = InRole(StateRole::kEscalated);
    before.urgency = Urgency::kUrgent;
    before.flags = {Kb().red_flags.flags[f].id};
    Reading r = Hand(before, Core().fallback);
    r.possible = Bit(f);
    const Decision d = Decide(before, r);
    INFO(Describe(d));
    CHECK(d.asked == 0);
    CHECK_FALSE(HasKind(d, K::kQuestions));
    CHECK(d.state.pending_flags.empty());
  }
  SECTION("the question is asked once: the next message clears it") {
    const std::size_t f = FirstFlagAt(Urgency::kEmergency);
    ConversationState before = InRole(StateRole::kWelcome);
    before.pending_flags = {Kb().red_flags.flags[f].id};
    before.pending_possible = true;
    Reading r = Hand(before, Core().deny);
    r.past_pending = r.possible_pending = true;
    const Decision d = Decide(before, r);
    INFO(Describe(d));
    CHECK(d.state.pending_flags.empty());
    CHECK_FALSE(d.state.pending_possible);
    CHECK(HasText(d, "possible_denied"));
  }
}

TEST_CASE("Policy: screening: each 'no' moves to the next question; the last passes to advising", "[policy]") {
  const auto& flow = Kb().flow;
  const auto& screening = flow.StateWithRole(StateRole::kScreening);
  REQUIRE(screening.on.count("screening_passed") == 1);
  const std::size_t n = flow.screening.size();
  REQUIRE(n >= 2);

  ConversationState s = InRole(StateRole::kScreening);
  s.screening_step = 0;
  for (std::size_t step = 0; step < n; ++step) {
    const Reading r = Read(s, "no");
    REQUIRE(r.intent == Core().deny);
    const Decision d = Decide(s, r);
    INFO("answer to question " << flow.screening[step].id << ": " << Describe(d));
    CHECK_FALSE(d.escalated);
    CHECK(d.state.urgency == Urgency::kNone);
    if (step + 1 < n) {
      CHECK(d.event.empty());
      CHECK(d.state.state == screening.id);
      CHECK(d.state.screening_step == step + 1);
      CHECK_FALSE(d.state.screened);
      REQUIRE(d.plan.parts.size() == 1);
      CHECK(d.plan.parts[0].kind == K::kScreeningQuestion);
      CHECK(d.plan.parts[0].index == step + 1);
      CHECK(d.plan.quick_replies == "yes_no");
    } else {
      CHECK(d.event == "screening_passed");
      CHECK(d.state.state == screening.on.at("screening_passed"));
      CHECK(d.state.state == StateId(StateRole::kAdvising));
      CHECK(d.state.screened);
      REQUIRE_FALSE(d.plan.parts.empty());
      CHECK(d.plan.parts[0].kind == K::kText);
      CHECK(std::string(d.plan.parts[0].name) == "screening_passed");
      CHECK_FALSE(HasKind(d, K::kScreeningQuestion));
      // Nothing known about the training yet: they are asked.
      CHECK(HasText(d, "ask_training"));
      CHECK(d.state.asked_training);
    }
    s = d.state;
  }
  SECTION("passing with the training known tailors at once") {
    ConversationState last = InRole(StateRole::kScreening);
    last.screening_step = static_cast<std::uint32_t>(n - 1);
    last.slots.hours = 24;
    const Decision d = Decide(last, Read(last, "no"));
    INFO(Describe(d));
    CHECK(d.event == "screening_passed");
    CHECK(HasKind(d, K::kTailoring));
    CHECK_FALSE(HasText(d, "ask_training"));
  }
  SECTION("a 'yes' escalates instead") {
    const Decision d = Decide(InRole(StateRole::kScreening), Read(InRole(StateRole::kScreening), "yes"));
    INFO(Describe(d));
    CHECK(d.escalated);
    CHECK(d.state.state == StateId(StateRole::kEscalated));
    CHECK_FALSE(d.state.screened);
    CHECK_FALSE(HasKind(d, K::kScreeningQuestion));
  }
}

TEST_CASE("Policy: a message not understood in screening gets the 'unsure' text and the same question again",
          "[policy]") {
  for (std::uint32_t step = 0; step < Kb().flow.screening.size(); ++step) {
    ConversationState s = InRole(StateRole::kScreening);
    s.screening_step = step;
    Reading r = Hand(s, Core().fallback);
    r.in_screening = true;
    const Decision d = Decide(s, r);
    INFO("question " << Kb().flow.screening[step].id << ": " << Describe(d));
    CHECK(d.state.state == s.state);
    CHECK(d.state.screening_step == step);
    REQUIRE(d.plan.parts.size() == 2);
    CHECK(d.plan.parts[0].kind == K::kText);
    CHECK(std::string(d.plan.parts[0].name) == "screening_unsure");
    CHECK(d.plan.parts[1].kind == K::kScreeningQuestion);
    CHECK(d.plan.parts[1].index == step);
    CHECK_FALSE(HasKind(d, K::kFallback));
    CHECK(d.plan.quick_replies == "yes_no");
  }
  SECTION("a question in between is answered, then the screening resumes") {
    ConversationState s = InRole(StateRole::kScreening);
    const Reading r = Read(s, "should I use ice or heat?");
    REQUIRE(Kb().intents[r.intent].kind == backcheck::knowledge::IntentKind::kQuestion);
    const Decision d = Decide(s, r);
    INFO(Describe(d));
    REQUIRE(d.plan.parts.size() == 3);
    CHECK(d.plan.parts[0].kind == K::kAnswer);
    CHECK(d.plan.parts[0].index == r.intent);
    CHECK(d.plan.parts[1].kind == K::kText);
    CHECK(std::string(d.plan.parts[1].name) == "screening_resume");
    CHECK(d.plan.parts[2].kind == K::kScreeningQuestion);
    CHECK(d.plan.parts[2].index == 0);
    CHECK(d.state.screening_step == 0);
  }
}

TEST_CASE("Policy: two messages not understood in a row: the second fallback offers the topics", "[policy]") {
  for (StateRole role : {StateRole::kWelcome, StateRole::kAdvising, StateRole::kEnded}) {
    ConversationState s = InRole(role);
    s.screened = true;
    const Decision first = Decide(s, Hand(s, Core().fallback));
    INFO("in " << s.state << ", first: " << Describe(first));
    REQUIRE(first.plan.parts.size() == 1);
    CHECK(first.plan.parts[0].kind == K::kFallback);
    CHECK(first.plan.quick_replies != "topics");
    CHECK(first.state.misses_in_row == 1);

    const Decision second = Decide(first.state, Hand(first.state, Core().fallback));
    INFO("second: " << Describe(second));
    REQUIRE(second.plan.parts.size() == 1);
    CHECK(second.plan.parts[0].kind == K::kFallback);
    CHECK(second.plan.parts[0].index != first.plan.parts[0].index);  // another wording
    CHECK(second.plan.quick_replies == "topics");
    CHECK(second.state.misses_in_row == 2);
  }
  SECTION("a message understood in between starts the count again") {
    ConversationState s = InRole(StateRole::kAdvising);
    s.screened = true;
    const Decision first = Decide(s, Hand(s, Core().fallback));
    const Decision understood = Decide(first.state, Read(first.state, "should I use ice or heat?"));
    INFO(Describe(understood));
    CHECK(understood.state.misses_in_row == 0);
    const Decision again = Decide(understood.state, Hand(understood.state, Core().fallback));
    INFO(Describe(again));
    CHECK(again.plan.quick_replies != "topics");
  }
}

TEST_CASE("Policy: someone else's symptom gets the guidance for them, and no escalation of this conversation",
          "[policy]") {
  for (Urgency level : {Urgency::kUrgent, Urgency::kEmergency}) {
    const std::size_t f = FirstFlagAt(level);
    const ConversationState before = InRole(StateRole::kAdvising);
    Reading r = Hand(before, Core().warning_signs);
    r.other = Bit(f);
    const Decision d = Decide(before, r);
    INFO(Kb().red_flags.flags[f].id << ": " << Describe(d));
    CHECK_FALSE(d.escalated);
    CHECK(d.event.empty());
    CHECK(d.affirmed == 0);
    CHECK(d.state.urgency == Urgency::kNone);
    CHECK(d.state.flags.empty());
    CHECK(d.state.state == before.state);
    CHECK_FALSE(HasKind(d, K::kGuidance));
    CHECK_FALSE(HasKind(d, K::kExplanations));
    REQUIRE(d.plan.parts.size() == 2);
    CHECK(d.plan.parts[0].kind == K::kText);
    CHECK(std::string(d.plan.parts[0].name) == "third_party_intro");
    CHECK(d.plan.parts[1].kind == K::kThirdPartyGuidance);
    CHECK(d.plan.parts[1].level == level);
  }
  SECTION("read from a message, during screening: then back to the pending question") {
    ConversationState s = InRole(StateRole::kScreening);
    s.screening_step = 1;
    const Reading r = Read(s, "my brother's arm went numb");
    REQUIRE(r.other == Bit(FlagIndex("numbness")));
    const Decision d = Decide(s, r);
    INFO(Describe(d));
    CHECK_FALSE(d.escalated);
    CHECK(d.state.urgency == Urgency::kNone);
    CHECK(d.state.state == s.state);
    CHECK(d.state.screening_step == 1);
    REQUIRE(d.plan.parts.size() == 4);
    CHECK(d.plan.parts[1].kind == K::kThirdPartyGuidance);
    CHECK(d.plan.parts[1].level == Kb().red_flags.flags[FlagIndex("numbness")].level);
    CHECK(d.plan.parts[2].kind == K::kText);
    CHECK(std::string(d.plan.parts[2].name) == "screening_resume");
    CHECK(d.plan.parts[3].kind == K::kScreeningQuestion);
    CHECK(d.plan.parts[3].index == 1);
  }
}

TEST_CASE("Policy: a past symptom asks whether it is there now; the question becomes pending", "[policy]") {
  const std::size_t f = FirstFlagAt(Urgency::kUrgent);
  const ConversationState before = InRole(StateRole::kAdvising);
  Reading r = Hand(before, Core().warning_signs);
  r.past = Bit(f);
  const Decision d = Decide(before, r);
  INFO(Describe(d));
  CHECK_FALSE(d.escalated);
  CHECK(d.state.urgency == Urgency::kNone);
  REQUIRE(d.plan.parts.size() == 1);
  CHECK(d.plan.parts[0].kind == K::kPastClarify);
  CHECK(d.plan.parts[0].flags == Bit(f));
  CHECK(d.state.pending_flags == std::vector<std::string>{Kb().red_flags.flags[f].id});
  CHECK_FALSE(d.state.pending_possible);
  CHECK(d.plan.quick_replies == "yes_no");
}
