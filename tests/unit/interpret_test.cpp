// Step 1 of a reply on its own: Interpreter::Read (dialog/interpret.hpp) turns a message, in the
// context of the conversation so far, into a Reading. No Policy, no Composer here: each case
// checks the Reading's fields (flags as masks of the loaded knowledge base's flags, intents by
// their ids in the knowledge base).
#include <catch2/catch.hpp>

#include <bit>
#include <chrono>
#include <string>
#include <vector>

#include "test_support.hpp"

using backcheck::dialog::ConversationState;
using backcheck::dialog::FlagMask;
using backcheck::dialog::MessageTime;
using backcheck::dialog::Reading;
using backcheck::knowledge::StateRole;
using backcheck::test::InRole;
using backcheck::test::TestEngine;

namespace {

const auto& Kb() { return TestEngine().kb(); }
const auto& Reader() { return TestEngine().interpreter(); }
const auto& Core() { return TestEngine().core_intents(); }

// The mask of one flag, which must exist in the knowledge base.
FlagMask Flag(const std::string& id) {
  const FlagMask m = Reader().MaskOf({id});
  REQUIRE(m != 0);
  return m;
}

// Flag ids of a mask, "numbness,tingling" (for failure messages).
std::string Ids(FlagMask m) {
  std::string out;
  for (; m != 0; m &= m - 1) out += (out.empty() ? "" : ",") + Kb().red_flags.flags[std::countr_zero(m)].id;
  return out.empty() ? "-" : out;
}

const std::string& IntentId(std::size_t i) { return Kb().intents[i].id; }

// A new conversation moved to the state of `role`.
// A conversation in screening, waiting for the answer to question `step`.
ConversationState Screening(std::uint32_t step) {
  ConversationState s = InRole(StateRole::kScreening);
  REQUIRE(step < Kb().flow.screening.size());
  s.screening_step = step;
  return s;
}

Reading Read(const ConversationState& s, const std::string& text,
             const std::optional<MessageTime>& now = std::nullopt) {
  return Reader().Read(s, text, now);
}

// The flags the safety net asks about for `text` as a first message (none decided by a mention).
FlagMask PossibleOf(const std::string& text) {
  const Reading r = Read(TestEngine().Start(), text);
  REQUIRE(r.self == 0);
  return r.possible;
}

}  // namespace

TEST_CASE("Interpreter: 'yes' affirms the flags of the pending question, and only while one is pending",
          "[interpret]") {
  SECTION("the safety net's question") {
    const FlagMask possible = PossibleOf("I noticed some blood this morning");
    REQUIRE(possible != 0);
    ConversationState s = InRole(StateRole::kWelcome);
    for (FlagMask m = possible; m != 0; m &= m - 1) s.pending_flags.push_back(Kb().red_flags.flags[std::countr_zero(m)].id);
    s.pending_possible = true;

    const Reading yes = Read(s, "yes");
    INFO("self=" << Ids(yes.self));
    CHECK(IntentId(yes.intent) == IntentId(Core().affirm));
    CHECK(yes.self == possible);
    CHECK(yes.past_pending);
    CHECK(yes.possible_pending);
    CHECK(yes.other == 0);
    CHECK(yes.past == 0);
  }
  SECTION("a past symptom's 'do you have it now?'") {
    ConversationState s = InRole(StateRole::kAdvising);
    s.pending_flags = {"numbness"};
    const Reading yes = Read(s, "yes");
    CHECK(yes.self == Flag("numbness"));
    CHECK(yes.past_pending);
    CHECK_FALSE(yes.possible_pending);
  }
  SECTION("each screening question") {
    for (std::uint32_t step = 0; step < Kb().flow.screening.size(); ++step) {
      INFO("screening question " << Kb().flow.screening[step].id);
      const Reading yes = Read(Screening(step), "yes");
      CHECK(yes.in_screening);
      CHECK(IntentId(yes.intent) == IntentId(Core().affirm));
      CHECK(yes.self == Reader().MaskOf(Kb().flow.screening[step].flags));
    }
  }
  SECTION("'yes, the tingling' to a question about several flags affirms only the one it names") {
    const auto& asked = Kb().flow.screening[0].flags;
    REQUIRE(asked.size() > 1);
    REQUIRE(std::find(asked.begin(), asked.end(), "tingling") != asked.end());
    const Reading r = Read(Screening(0), "yes, the tingling");
    INFO("self=" << Ids(r.self));
    CHECK(r.self == Flag("tingling"));
  }
  SECTION("with no question pending, 'yes' affirms nothing") {
    const Reading yes = Read(InRole(StateRole::kAdvising), "yes");
    CHECK(IntentId(yes.intent) == IntentId(Core().affirm));
    CHECK(yes.self == 0);
    CHECK_FALSE(yes.past_pending);
    CHECK_FALSE(yes.in_screening);
  }
}

TEST_CASE("Interpreter: 'no numbness' answers a question about numbness as a no; 'no fever' to the arm question does not",
          "[interpret]") {
  const auto& arm = Kb().flow.screening[0];
  REQUIRE(std::find(arm.flags.begin(), arm.flags.end(), "numbness") != arm.flags.end());
  REQUIRE(std::find(arm.flags.begin(), arm.flags.end(), "fever") == arm.flags.end());

  SECTION("plain 'no numbness'") {
    const Reading r = Read(Screening(0), "no numbness");
    CHECK(IntentId(r.intent) == IntentId(Core().deny));
    CHECK(r.self == 0);
  }
  SECTION("a denial the intent patterns alone do not read as 'no' is one in answer to the question") {
    const std::string text = "hands are fine, no numbness";
    // Without a question about numbness, it is not a "no" to anything...
    const Reading alone = Read(InRole(StateRole::kAdvising), text);
    CHECK(IntentId(alone.intent) != IntentId(Core().deny));
    // ...to the question about it, it is.
    const Reading answer = Read(Screening(0), text);
    CHECK(IntentId(answer.intent) == IntentId(Core().deny));
    CHECK(answer.self == 0);
  }
  SECTION("a past symptom's question") {
    ConversationState s = InRole(StateRole::kAdvising);
    s.pending_flags = {"numbness"};
    const Reading r = Read(s, "hands are fine, no numbness");
    CHECK(IntentId(r.intent) == IntentId(Core().deny));
  }
  SECTION("'no fever' rules out nothing the arm question asked: not a 'no', the question is asked again") {
    const Reading r = Read(Screening(0), "no fever");
    CHECK(IntentId(r.intent) == IntentId(Core().fallback));
    CHECK(IntentId(r.intent) != IntentId(Core().deny));
    CHECK(r.self == 0);
  }
}

TEST_CASE("Interpreter: whose symptom and when: the person's own, someone else's, a past one, a hypothetical one",
          "[interpret]") {
  const ConversationState s = InRole(StateRole::kAdvising);
  const FlagMask numbness = Flag("numbness");
  const std::size_t warning_signs = Core().warning_signs;

  SECTION("the person's own") {
    const Reading r = Read(s, "my arm is numb");
    INFO("self=" << Ids(r.self) << " other=" << Ids(r.other) << " past=" << Ids(r.past));
    CHECK(r.self == numbness);
    CHECK(r.other == 0);
    CHECK(r.past == 0);
    CHECK(IntentId(r.intent) == IntentId(warning_signs));
  }
  SECTION("someone else's: not the person's flag") {
    const Reading r = Read(s, "my brother's arm went numb");
    INFO("self=" << Ids(r.self) << " other=" << Ids(r.other) << " past=" << Ids(r.past));
    CHECK(r.self == 0);
    CHECK(r.other == numbness);
    CHECK(r.past == 0);
    CHECK(IntentId(r.intent) == IntentId(warning_signs));
  }
  SECTION("someone else's, while the arm question is pending: still not the person's") {
    const Reading r = Read(Screening(0), "my brother's arm went numb");
    CHECK(r.self == 0);
    CHECK(r.other == numbness);
  }
  SECTION("a past one of theirs") {
    const Reading r = Read(s, "had numbness in 2020, long gone");
    INFO("self=" << Ids(r.self) << " other=" << Ids(r.other) << " past=" << Ids(r.past));
    CHECK(r.self == 0);
    CHECK(r.other == 0);
    CHECK(r.past == numbness);
    CHECK(IntentId(r.intent) == IntentId(warning_signs));
  }
  SECTION("a hypothetical one: a question about a warning sign, no flag at all") {
    const Reading r = Read(s, "what if my arm went numb");
    INFO("self=" << Ids(r.self) << " other=" << Ids(r.other) << " past=" << Ids(r.past) << " possible="
                 << Ids(r.possible));
    CHECK(r.self == 0);
    CHECK(r.other == 0);
    CHECK(r.past == 0);
    CHECK(r.possible == 0);
    CHECK(IntentId(r.intent) == IntentId(warning_signs));
  }
}

TEST_CASE("Interpreter: the safety net's question stays open across a question in between, not across an answer",
          "[interpret]") {
  const FlagMask possible = PossibleOf("I noticed some blood this morning");
  REQUIRE(possible != 0);
  ConversationState s = InRole(StateRole::kWelcome);
  for (FlagMask m = possible; m != 0; m &= m - 1) s.pending_flags.push_back(Kb().red_flags.flags[std::countr_zero(m)].id);
  s.pending_possible = true;

  const Reading between = Read(s, "what would that mean?");
  CHECK(between.self == 0);
  CHECK(between.possible == possible);  // asked again

  const Reading no = Read(s, "no");
  CHECK(IntentId(no.intent) == IntentId(Core().deny));
  CHECK(no.self == 0);
  CHECK(no.possible == 0);

  // The same question with no safety-net question pending asks about nothing.
  CHECK(Read(InRole(StateRole::kWelcome), "what would that mean?").possible == 0);
}

TEST_CASE("Interpreter: slots: exercise and hours since training, dates resolved against the message's time",
          "[interpret]") {
  using namespace std::chrono;
  const ConversationState s = InRole(StateRole::kAdvising);
  // Wednesday 9 December 2026, 18:00 UTC.
  const sys_seconds wednesday_evening = sys_days{year{2026} / December / 9} + hours{18};
  REQUIRE(weekday{floor<days>(wednesday_evening)} == Wednesday);

  SECTION("an exercise and a weekday, with the message's time") {
    const Reading r = Read(s, "did overhead press on monday", MessageTime{wednesday_evening, minutes{0}});
    CHECK(r.slots_found);
    CHECK(r.slots.exercise == "overhead press");
    CHECK(r.slots.exercise_category == "overhead");
    REQUIRE(r.slots.hours.has_value());
    CHECK(*r.slots.hours == 48);
  }
  SECTION("a weekday without the message's time sets no hours; the exercise is still found") {
    const Reading r = Read(s, "did overhead press on monday");
    CHECK(r.slots_found);
    CHECK(r.slots.exercise == "overhead press");
    CHECK_FALSE(r.slots.hours.has_value());
  }
  SECTION("the local offset of the message's time decides what 'monday' was") {
    // Tuesday 23:00 UTC is already Wednesday 01:00 at UTC+2.
    const sys_seconds tuesday_late = sys_days{year{2026} / December / 8} + hours{23};
    CHECK(Read(s, "rows on monday", MessageTime{tuesday_late, minutes{0}}).slots.hours == 24);
    CHECK(Read(s, "rows on monday", MessageTime{tuesday_late, minutes{120}}).slots.hours == 48);
  }
  SECTION("the conversation's slots are kept, this message's added") {
    ConversationState known = s;
    known.slots.exercise = "rows";
    known.slots.exercise_category = "pull";
    const Reading r = Read(known, "3 days ago", MessageTime{wednesday_evening, minutes{0}});
    CHECK(r.slots_found);
    CHECK(r.slots.exercise == "rows");
    CHECK(r.slots.exercise_category == "pull");
    CHECK(r.slots.hours == 72);
  }
  SECTION("a message naming no slot") {
    ConversationState known = s;
    known.slots.hours = 30;
    const Reading r = Read(known, "should I use ice or heat?");
    CHECK_FALSE(r.slots_found);
    CHECK(r.slots == known.slots);
  }
}

// A date or time figure that says when the PAIN started is not the hours since TRAINING: without
// a word of training, an exercise known or the question asked, the slot stays unknown (else the
// tailoring would say they "trained only a few hours ago", which they never said).
TEST_CASE("Interpreter: when the pain started is not when they trained", "[interpret]") {
  using namespace std::chrono;
  const MessageTime wednesday_evening{sys_days{year{2026} / December / 9} + hours{18}, minutes{0}};
  const ConversationState s = InRole(StateRole::kAdvising);
  for (const std::string text : {"my upper back started hurting this morning", "the pain started 2 days ago"}) {
    const Reading r = Read(s, text, wednesday_evening);
    INFO(text << ": hours=" << (r.slots.hours ? std::to_string(*r.slots.hours) : "unknown"));
    CHECK_FALSE(r.slots.hours.has_value());
  }
  // With a word of training, the same times are the training's.
  CHECK(Read(s, "went to the gym 2 days ago and it hurts", wednesday_evening).slots.hours == 48);
  ConversationState asked = s;
  asked.asked_training = true;
  CHECK(Read(asked, "2 days ago", wednesday_evening).slots.hours == 48);
}

// Retrieval finds article sentences about soreness and self-care: it answers a message no pattern
// recognises, but not after an escalation.
TEST_CASE("Interpreter: no retrieval once the conversation is escalated", "[interpret]") {
  const std::string text = "the rhomboid muscles pull the shoulder blades toward the spine and stabilise them";
  const Reading advising = Read(InRole(StateRole::kAdvising), text);
  REQUIRE(advising.passage.has_value());  // the sentence is found where retrieval applies
  const Reading escalated = Read(InRole(StateRole::kEscalated), text);
  CHECK_FALSE(escalated.passage.has_value());
  CHECK(escalated.intent == Core().fallback);
}
