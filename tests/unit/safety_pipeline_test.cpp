// The red-flag pipeline end to end with the shipped knowledge base (issue 12, items 5-7): what a
// person sees for a message, not how the detector gets there.
//   - each flag from a realistic lay sentence that only a concept rule finds (no fixed pattern);
//   - context per mention: negation with its scope, another person, a resolved episode, time
//     words of the current episode, effort that passed, idioms;
//   - the safety net: partial evidence is asked about (possible_flags, the question and the
//     conditional guidance from the data), "yes" escalates, "no" carries on, a question in
//     between is answered and the check stays pending.
// Reply texts are taken from the knowledge base, never written here.
//
// Cases marked [!mayfail] are known misses (tests/conversations/known_misses.md): they state the
// right behaviour and report when it does not hold, without failing the suite.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "test_support.hpp"

using backcheck::dialog::Attribution;
using backcheck::dialog::ConversationState;
using backcheck::dialog::DetectionTrace;
using backcheck::dialog::Reply;
using backcheck::dialog::Turn;
using backcheck::knowledge::IntentKind;
using backcheck::knowledge::RedFlag;
using backcheck::knowledge::Urgency;
using backcheck::test::FirstReply;
using backcheck::test::Mentions;
using backcheck::test::TestEngine;

namespace {

using V = std::vector<std::string>;

const auto& Kb() { return TestEngine().kb(); }

const RedFlag& Flag(const std::string& id) {
  const RedFlag* f = Kb().FindFlag(id);
  REQUIRE(f != nullptr);
  return *f;
}

// The conditional guidance said with a question about a flag of `level` ("If so, ...").
const std::string& Conditional(Urgency level) {
  for (const auto& g : Kb().red_flags.guidance) {
    if (g.level == level) return g.conditional;
  }
  FAIL("no guidance for the level");
  static const std::string none;
  return none;
}

bool Contains(const std::string& text, const std::string& part) {
  return !part.empty() && text.find(part) != std::string::npos;
}

bool Has(const V& v, const std::string& x) { return std::find(v.begin(), v.end(), x) != v.end(); }

DetectionTrace Trace(const std::string& text) {
  DetectionTrace trace;
  TestEngine().detector().Detect(TestEngine().normaliser().Normalise(text), &trace);
  return trace;
}

// How `flag` is found in `text`: "rule" when a concept rule finds it for the person and no fixed
// pattern does; "pattern" when a pattern does too; "" when neither.
std::string FoundBy(const std::string& text, const std::string& flag) {
  bool rule = false, pattern = false;
  for (const auto& c : Trace(text).candidates) {
    if (c.flag != flag || c.ask || !c.dropped.empty() || c.attribution != Attribution::kSelf) continue;
    if (c.rule >= 0) rule = true;
    if (c.pattern >= 0) pattern = true;
  }
  return pattern ? "pattern" : rule ? "rule" : "";
}

// A conversation, message by message.
struct Chat {
  ConversationState state = TestEngine().Start();
  Reply Say(const std::string& text) {
    Turn t = TestEngine().Respond(state, text);
    state = t.state;
    return t.reply;
  }
};

// The reply asks about `flag` and nothing else, without affirming it.
void CheckAsks(const Reply& r, const std::string& flag) {
  const RedFlag& f = Flag(flag);
  CHECK(r.possible_flags == V{flag});
  CHECK(r.red_flags.empty());
  CHECK(!r.escalated);
  CHECK(Contains(r.text, f.question));
  CHECK(Contains(r.text, Conditional(f.level)));
  CHECK(r.quick_replies == Kb().flow.QuickReplies("yes_no"));
}

const char* const kBlood = "I noticed some blood this morning";

}  // namespace

// --- each flag through a concept rule ------------------------------------------------------------

TEST_CASE("every flag is found in lay words that only a concept rule knows", "[safety]") {
  struct Case {
    const char* flag;
    const char* text;
  };
  const Case cases[] = {
      {"arm_radiation", "the pain goes all the way from my shoulder blade right down into my fingers"},
      {"numbness", "my hand feels dead and i did not even train"},
      {"tingling", "got this weird fizzy feeling in my hand"},
      {"weakness", "my hands feel useless today, like there is no power in them"},
      {"fever", "my temperature spiked last night"},
      {"chills", "teeth chattering all night and i cannot get warm"},
      {"weight_loss", "lost 4 kg and i am eating loads"},
      {"breathing_pain", "breathing in deep is agony"},
      {"shortness_of_breath", "feel like i cannot get enough oxygen in"},
      {"severe_persistent", "my back is agony and nothing is helping for a week now"},
      {"chest_pain", "feels like an elephant sitting on my chest"},
      {"tearing_pain", "felt something rip between my shoulder blades"},
      {"coughing_blood", "hacking up phlegm with red streaks"},
      {"cord_signs", "it has gone numb down there since this morning"},
      {"trauma", "walked into a door frame and now my upper back hurts"},
  };
  V covered;
  for (const auto& c : cases) {
    INFO(c.flag << ": " << c.text);
    covered.push_back(c.flag);
    CHECK(FoundBy(c.text, c.flag) == "rule");
    const Reply r = FirstReply(c.text);
    CHECK(Has(r.red_flags, c.flag));
    CHECK(r.urgency == Flag(c.flag).level);
    CHECK(r.escalated);
  }
  // A flag added to the data needs a sentence here.
  for (const auto& f : Kb().red_flags.flags) {
    INFO(f.id);
    CHECK(Has(covered, f.id));
  }
}

// --- context per mention ---------------------------------------------------------------------------

TEST_CASE("negation reaches its own clause only", "[safety][context]") {
  CHECK(Mentions("no coughing and no blood") == V{"coughing_blood:negated"});
  const Reply r = FirstReply("no coughing and no blood");
  CHECK(r.red_flags.empty());
  CHECK(r.possible_flags.empty());
  CHECK(r.urgency == Urgency::kNone);
}

TEST_CASE("negation before 'but' does not reach the blood after it", "[safety][context][!mayfail]") {
  // Known miss: the rule pairs the negated "cough" with the blood, and the mention is negated.
  const Reply r = FirstReply("no cough, but there was blood when i spat");
  CHECK(Has(r.red_flags, "coughing_blood"));
  CHECK(r.urgency == Urgency::kEmergency);
}

TEST_CASE("another person's symptom is not the person's", "[safety][context]") {
  CHECK(Mentions("my brother's fingers went numb") == V{"numbness:other_person"});
  const Reply r = FirstReply("my brother's fingers went numb");
  CHECK(r.red_flags.empty());
  CHECK(r.urgency == Urgency::kNone);
  CHECK(Contains(r.text, Kb().flow.Text("third_party_intro")));
}

TEST_CASE("a resolved episode is past, and 'gone now' stays past", "[safety][context]") {
  CHECK(Mentions("had pins and needles back in 2020, long gone") == V{"tingling:past"});
  CHECK(Mentions("had numbness in my hand, gone now") == V{"numbness:past"});
  CHECK(Mentions("my hand was numb yesterday, gone now") == V{"numbness:past"});
  CHECK(Mentions("had chest pain last year") == V{"chest_pain:past"});
  CHECK(Mentions("i had a fever last week but it is gone now") == V{"fever:past"});
  const Reply r = FirstReply("had pins and needles back in 2020, long gone");
  CHECK(r.red_flags.empty());
  CHECK(r.urgency == Urgency::kNone);
}

TEST_CASE("a resolved episode is past after 'but' too", "[safety][context][!mayfail]") {
  // Known misses: "gone now" after "but" is in another clause than the mention (while "last week
  // but it is gone now" is past: the past cue is then in the mention's clause), and "now" of
  // "cleared up now" reads as current.
  CHECK(Mentions("had numbness in my hand but it is gone now") == V{"numbness:past"});
  CHECK(Mentions("had tingling last month, cleared up now") == V{"tingling:past"});
}

TEST_CASE("time words of the current episode make a past-tense mention current", "[safety][context]") {
  CHECK(Mentions("had chest pain this morning and it is still there") == V{"chest_pain:self"});
  CHECK(Mentions("had chest pain last year and again this morning") == V{"chest_pain:self"});
  // Only the time word says it is current here (without it, "last year" or "used to" is past).
  CHECK(Mentions("had chest pain last year and this morning") == V{"chest_pain:self"});
  CHECK(Mentions("i used to get chest pain as a kid, felt it this morning") == V{"chest_pain:self"});
  const Reply r = FirstReply("had chest pain this morning and it is still there");
  CHECK(Has(r.red_flags, "chest_pain"));
  CHECK(r.urgency == Urgency::kEmergency);
}

TEST_CASE("expected effort that passed is no flag and no question", "[safety][context]") {
  for (const char* text : {"out of breath after the sprint, back to normal now",
                           "totally breathless after burpees, caught my breath after a minute",
                           "totally breathless after burpees, caught my breath quickly"}) {
    INFO(text);
    const Reply r = FirstReply(text);
    CHECK(r.red_flags.empty());
    CHECK(r.possible_flags.empty());
    CHECK(r.urgency == Urgency::kNone);
    CHECK(r.quick_replies != Kb().flow.QuickReplies("yes_no"));  // nothing asked
  }
  // The same breathlessness without the effort or without it passing is a flag.
  CHECK(Has(FirstReply("totally breathless, cannot catch my breath").red_flags, "shortness_of_breath"));
  CHECK(Has(FirstReply("out of breath just sitting on the sofa").red_flags, "shortness_of_breath"));
}

TEST_CASE("effort that passed is not asked about as a past symptom", "[safety][context][!mayfail]") {
  // Known miss: "fine now" is a past cue, and past wins over effort, so the reply asks "do you
  // have it now?".
  const Reply r = FirstReply("was gasping after the hill repeats, fine now");
  CHECK(r.red_flags.empty());
  CHECK(r.quick_replies != Kb().flow.QuickReplies("yes_no"));
}

TEST_CASE("words that only look like a symptom's form are not that symptom", "[safety][context]") {
  // Porter2 stems "tingly" to "ting", shared with "tinged": TINGLE lists "tingle" only (Forms adds
  // "tingly") and BLOOD writes "=tinged", so blood-tinged phlegm is coughing_blood, not tingling,
  // and no form of "tinged" becomes a spelling target ("tingoing" is "tingling").
  CHECK(Mentions("a ting in my ear").empty());
  const Reply r = FirstReply("phlegm tinged with red");
  CHECK(!Has(r.red_flags, "tingling"));
  CHECK(Has(r.red_flags, "coughing_blood"));
  CHECK(Has(FirstReply("my fingers are tingoing since last night").red_flags, "tingling"));
  CHECK(Has(FirstReply("my hands are all tingly").red_flags, "tingling"));
}

TEST_CASE("idioms are not symptoms", "[safety][context]") {
  // ("dying to" has no concept to cancel today; the longer "took my breath away" sentence needs
  // its idiom: without it "hard" and "breath" are a difficulty breathing.)
  for (const char* text : {"dying to get back to the gym", "the view took my breath away",
                           "the view at the top of the climb took my breath away, had a hard time leaving",
                           "my blood pressure was fine at the check up", "crushed it on chest day"}) {
    INFO(text);
    const auto d = TestEngine().detector().Detect(TestEngine().normaliser().Normalise(text));
    CHECK(d.Empty());
    const Reply r = FirstReply(text);
    CHECK(r.red_flags.empty());
    CHECK(r.possible_flags.empty());
    CHECK(r.urgency == Urgency::kNone);
  }
  // Not the idiom: the concept counts.
  CHECK(Has(FirstReply("i cannot catch my breath").red_flags, "shortness_of_breath"));
}

// --- the safety net ----------------------------------------------------------------------------------

TEST_CASE("partial evidence asks one question from the data and does not escalate", "[safety][net]") {
  Chat chat;
  const Reply r = chat.Say(kBlood);
  CheckAsks(r, "coughing_blood");
  CHECK(Flag("coughing_blood").level == Urgency::kEmergency);
  CHECK(r.urgency == Urgency::kNone);
  CHECK(chat.state.urgency == Urgency::kNone);
  CHECK(chat.state.pending_flags == V{"coughing_blood"});
  CHECK(chat.state.pending_possible);
  CHECK(chat.state.flags.empty());
}

TEST_CASE("each flag with an ask rule asks its own question, with its level's conditional guidance",
          "[safety][net]") {
  struct Case {
    const char* flag;
    const char* text;
  };
  const Case cases[] = {
      {"numbness", "my hand feels weird"},
      {"weakness", "struggling with my grip"},
      {"fever", "feeling hot and flushed"},
      {"weight_loss", "i have lost some weight"},
      {"shortness_of_breath", "my breathing feels weird"},
      {"chest_pain", "my chest feels weird"},
      {"coughing_blood", kBlood},
      {"cord_signs", "my groin feels odd"},
  };
  V covered;
  for (const auto& c : cases) {
    INFO(c.flag << ": " << c.text);
    covered.push_back(c.flag);
    const Reply r = FirstReply(c.text);
    CheckAsks(r, c.flag);
    CHECK(r.urgency == Urgency::kNone);
  }
  for (const auto& f : Kb().red_flags.flags) {
    if (f.ask_when.empty()) continue;
    INFO(f.id);
    CHECK(Has(covered, f.id));
  }
}

TEST_CASE("'yes' to the safety net's question escalates as a screening yes does", "[safety][net]") {
  Chat chat;
  chat.Say(kBlood);
  const Reply yes = chat.Say("yes");
  CHECK(yes.red_flags == V{"coughing_blood"});
  CHECK(yes.urgency == Urgency::kEmergency);
  CHECK(yes.escalated);
  CHECK(yes.possible_flags.empty());
  CHECK(chat.state.flags == V{"coughing_blood"});
  CHECK(chat.state.pending_flags.empty());
  // The reply leads with what to do now, and explains the flag.
  for (const auto& g : Kb().red_flags.guidance) {
    if (g.level == Urgency::kEmergency) CHECK(Contains(yes.text, g.text));
  }
  CHECK(Contains(yes.text, Flag("coughing_blood").explanation));
}

TEST_CASE("a message affirming it escalates too", "[safety][net]") {
  Chat chat;
  chat.Say(kBlood);
  const Reply r = chat.Say("yes i coughed it up");
  CHECK(Has(r.red_flags, "coughing_blood"));
  CHECK(r.urgency == Urgency::kEmergency);
}

TEST_CASE("'no' to the safety net's question carries on without escalating", "[safety][net]") {
  Chat chat;
  chat.Say(kBlood);
  const Reply no = chat.Say("no");
  CHECK(no.red_flags.empty());
  CHECK(no.possible_flags.empty());
  CHECK(no.urgency == Urgency::kNone);
  CHECK(!no.escalated);
  CHECK(Contains(no.text, Kb().flow.Text("possible_denied")));
  CHECK(chat.state.pending_flags.empty());
  // Nothing is pending: a later "yes" affirms nothing.
  const Reply later = chat.Say("yes");
  CHECK(later.red_flags.empty());
  CHECK(later.urgency == Urgency::kNone);
}

TEST_CASE("a question in between is answered and the check stays pending", "[safety][net]") {
  for (const char* question : {"is that serious?", "When should I see a doctor?", "what causes that?"}) {
    INFO(question);
    Chat chat;
    chat.Say(kBlood);
    const Reply answer = chat.Say(question);
    CHECK(answer.intent != "fallback");
    const auto* intent = Kb().FindIntent(answer.intent);
    REQUIRE(intent != nullptr);
    CHECK(intent->kind == IntentKind::kQuestion);
    CHECK(answer.red_flags.empty());
    CHECK(answer.urgency == Urgency::kNone);
    CHECK(answer.possible_flags == V{"coughing_blood"});  // asked again after the answer
    CHECK(Contains(answer.text, Flag("coughing_blood").question));
    CHECK(chat.state.pending_flags == V{"coughing_blood"});
    const Reply yes = chat.Say("yes");
    CHECK(Has(yes.red_flags, "coughing_blood"));
    CHECK(yes.urgency == Urgency::kEmergency);
  }
}

TEST_CASE("'what does that mean?' in between keeps the check pending", "[safety][net][!mayfail]") {
  // Known miss: these are read as fallback (not a question intent), the pending check is dropped
  // and the later "yes" affirms nothing.
  for (const char* question : {"what does that mean?", "why do you ask?", "what does coughing up blood mean?"}) {
    INFO(question);
    Chat chat;
    chat.Say(kBlood);
    const Reply answer = chat.Say(question);
    CHECK(answer.possible_flags == V{"coughing_blood"});
    const Reply yes = chat.Say("yes");
    CHECK(Has(yes.red_flags, "coughing_blood"));
    CHECK(yes.urgency == Urgency::kEmergency);
  }
}

TEST_CASE("the safety net asks during screening, and the screening resumes after 'no'", "[safety][net]") {
  Chat chat;
  chat.Say("My upper back is sore after rows yesterday");
  REQUIRE(chat.state.state == "screening");
  const auto step = chat.state.screening_step;
  const Reply asked = chat.Say(kBlood);
  CheckAsks(asked, "coughing_blood");
  CHECK(asked.state == "screening");
  CHECK(chat.state.screening_step == step);  // the blood message answered no screening question
  const Reply no = chat.Say("no");
  CHECK(no.red_flags.empty());
  CHECK(no.urgency == Urgency::kNone);
  CHECK(Contains(no.text, Kb().flow.Text("possible_denied")));
  CHECK(Contains(no.text, Kb().flow.screening[step].text));  // back to the pending screening question
  CHECK(chat.state.state == "screening");

  Chat yes_chat;
  yes_chat.Say("My upper back is sore after rows yesterday");
  yes_chat.Say(kBlood);
  const Reply yes = yes_chat.Say("yes");
  CHECK(yes.red_flags == V{"coughing_blood"});  // the screening question's flags are not affirmed
  CHECK(yes.urgency == Urgency::kEmergency);
}

TEST_CASE("a flag already affirmed is not asked about again", "[safety][net]") {
  Chat chat;
  chat.Say("i am coughing up blood");
  REQUIRE(chat.state.urgency == Urgency::kEmergency);
  const Reply again = chat.Say(kBlood);
  CHECK(again.possible_flags.empty());
}
