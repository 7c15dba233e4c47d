// Intent matching (SPEC section 4), end to end: the `intent` of the first reply to what a person
// types, with typos, casing and punctuation as people really write. affirm/deny are checked where
// they matter, in screening. Every table entry is checked on its own; a failure names the sentence.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace backcheck {
namespace {

using test::FirstReply;
using test::TestEngine;

struct Case {
  const char* text;
  const char* intent;
};

// First messages of a new conversation.
const std::vector<Case> kPhrasings = {
    // greeting
    {"hi", "greeting"},
    {"Hello!", "greeting"},
    {"HELLO", "greeting"},
    {"hey there", "greeting"},
    {"hey!!", "greeting"},
    {"Good morning", "greeting"},
    {"morning", "greeting"},
    {"HIYA", "greeting"},
    // goodbye
    {"bye", "goodbye"},
    {"Goodbye!", "goodbye"},
    {"see ya", "goodbye"},
    {"cya later", "goodbye"},
    {"gotta go", "goodbye"},
    {"ok thanks, bye", "goodbye"},
    {"bye, thanks for the help", "goodbye"},
    // thanks
    {"thanks", "thanks"},
    {"Thank you so much!", "thanks"},
    {"THANK YOU", "thanks"},
    {"thx", "thanks"},
    {"ty", "thanks"},
    {"cheers mate", "thanks"},
    {"appreciate it", "thanks"},
    {"many thanks", "thanks"},
    // help
    {"help", "help"},
    {"what can you do?", "help"},
    {"How can you help me?", "help"},
    {"what can i ask", "help"},
    {"who are you?", "help"},
    {"what topics can you cover", "help"},
    // describe_pain
    {"My upper back hurts after my workout yesterday", "describe_pain"},
    {"my upper back is sore after rows", "describe_pain"},
    {"my upper bak hurts", "describe_pain"},
    {"my uper back is soar after deadlifts", "describe_pain"},
    {"my shoulder blades are killing me", "describe_pain"},
    {"I have upper back pain", "describe_pain"},
    {"i hurt my back at the gym", "describe_pain"},
    {"pain between my shoulder-blades", "describe_pain"},
    {"Upper back pain since deadlifts", "describe_pain"},
    {"Upper-back pain after bench press", "describe_pain"},
    {"my traps are really tight and sore", "describe_pain"},
    {"there's a knot in my upper back", "describe_pain"},
    {"I've got pain under my shoulder blade", "describe_pain"},
    {"my rhomboids are sore", "describe_pain"},
    {"it hurts after rows", "describe_pain"},
    {"my upper back has been aching since my workout", "describe_pain"},
    // cause
    {"Why does my back hurt after the gym?", "cause"},
    {"why is my upper back so sore?", "cause"},
    {"what causes upper back pain after lifting?", "cause"},
    {"what's causing this?", "cause"},
    {"WHY DOES IT HURT", "cause"},
    {"whats wrong with my back", "cause"},
    {"what could be causing my upper back pain", "cause"},
    {"why would my back be sore after rows?", "cause"},
    {"reason for upper back pain after workout", "cause"},
    // anatomy
    {"What is the thoracic spine?", "anatomy"},
    {"what's the upper back made of", "anatomy"},
    {"how many vertebrae are in the thoracic spine?", "anatomy"},
    {"where is the thoracic spine", "anatomy"},
    {"what is the t-spine", "anatomy"},
    {"what is the thoracic region", "anatomy"},
    {"anatomy of the upper back", "anatomy"},
    // muscles
    {"Which muscles are involved?", "muscles"},
    {"what muscles are in the upper back?", "muscles"},
    {"what are the rhomboids?", "muscles"},
    {"what do the traps do?", "muscles"},
    {"what is the trapezius", "muscles"},
    {"what muscles do rows work", "muscles"},
    {"which muscle is sore", "muscles"},
    // doms
    {"What is DOMS?", "doms"},
    {"is this doms?", "doms"},
    {"doms??", "doms"},
    {"why am I sore the next day?", "doms"},
    {"when does soreness peak?", "doms"},
    {"what are micro tears", "doms"},
    {"is delayed onset muscle soreness normal", "doms"},
    {"why is it worse two days later", "doms"},
    {"how long does doms last?", "doms"},
    // strain
    {"did I pull a muscle?", "strain"},
    {"What does a muscle strain feel like?", "strain"},
    {"i think i strained something", "strain"},
    {"i think i tweaked a muscle", "strain"},
    {"is it a strain?", "strain"},
    {"sharp pain, what does that mean?", "strain"},
    {"pulled muscle in my upper back", "strain"},
    {"how long do strains take to heal", "strain"},
    // soreness_or_injury
    {"Is this just soreness or an injury?", "soreness_or_injury"},
    {"how do I know if I'm injured?", "soreness_or_injury"},
    {"what's the difference between doms and a strain?", "soreness_or_injury"},
    {"is this normal soreness?", "soreness_or_injury"},
    {"good pain or bad pain?", "soreness_or_injury"},
    {"how can i tell if its serious or just sore", "soreness_or_injury"},
    {"is this a pulled muscle or just doms?", "soreness_or_injury"},
    {"how can i tell if i pulled something or if it's just doms", "soreness_or_injury"},
    // form_rows
    {"I shrug when I row, is that bad?", "form_rows"},
    {"how should I do lat pulldowns?", "form_rows"},
    {"how do i retract my shoulder blades", "form_rows"},
    {"tips for barbell rows", "form_rows"},
    {"is shrugging bad?", "form_rows"},
    {"chin ups form", "form_rows"},
    {"what's the right form for rows", "form_rows"},
    {"should I squeeze my shoulder blades when rowing?", "form_rows"},
    {"my shoulders go up to my ears on pulldowns", "form_rows"},
    // form_overhead
    {"My lower back arches when I overhead press", "form_overhead"},
    {"how do I brace my core for the military press?", "form_overhead"},
    {"overhead press form", "form_overhead"},
    {"is arching my back on the shoulder press bad?", "form_overhead"},
    {"shoulder-press technique", "form_overhead"},
    {"how do I fix my overhead pressing", "form_overhead"},
    {"Should I brace during OHP?", "form_overhead"},
    // posture
    {"Can slouching at my desk cause this?", "posture"},
    {"what is text neck", "posture"},
    {"I hunch over my laptop all day", "posture"},
    {"does posture matter?", "posture"},
    {"I sit at a desk all day", "posture"},
    {"what is kyphosis", "posture"},
    {"how can I improve my posture", "posture"},
    {"i'm always hunched over my phone", "posture"},
    {"is rounded shoulders a problem", "posture"},
    // prevention
    {"How can I stop this from happening again?", "prevention"},
    {"how do i prevent upper back pain", "prevention"},
    {"how do i avoid this in the future", "prevention"},
    {"any tips so it doesn't happen again?", "prevention"},
    {"preventing back pain", "prevention"},
    {"how to stop it from coming back", "prevention"},
    {"what can i do to avoid back pain long term", "prevention"},
    // ice_heat
    {"Should I use ice or heat?", "ice_heat"},
    {"is a heating pad good?", "ice_heat"},
    {"should i ice it?", "ice_heat"},
    {"can I take a warm shower?", "ice_heat"},
    {"hot or cold?", "ice_heat"},
    {"when should i switch to heat", "ice_heat"},
    {"ice or heat???", "ice_heat"},
    {"How long should I ice it", "ice_heat"},
    {"is a hot bath good for it", "ice_heat"},
    // rest
    {"Should I stop training completely until it heals?", "rest"},
    {"should I rest?", "rest"},
    {"can I still train?", "rest"},
    {"can i work through the pain?", "rest"},
    {"should i stay in bed?", "rest"},
    {"should i take a few days off?", "rest"},
    {"is it ok to keep lifting?", "rest"},
    {"should I skip the gym tomorrow", "rest"},
    {"is bed rest good?", "rest"},
    // mobility
    {"Are there any stretches I can do?", "mobility"},
    {"what stretches help?", "mobility"},
    {"any mobility exercises?", "mobility"},
    {"how do i do chin tucks", "mobility"},
    {"gentle exercises for upper back", "mobility"},
    {"shoulder rolls?", "mobility"},
    {"can you recommend some stretchs", "mobility"},
    {"what exercises help upper back pain", "mobility"},
    {"how do I loosen up the knot", "mobility"},
    // medication
    {"Can I take ibuprofen for it?", "medication"},
    {"should I take painkillers?", "medication"},
    {"is advil ok?", "medication"},
    {"what about nsaids", "medication"},
    {"can i take ibuprofin", "medication"},
    {"does tylenol help", "medication"},
    {"can i take naproxen?", "medication"},
    {"are anti-inflammatories ok?", "medication"},
    // duration
    {"How long will it take to get better?", "duration"},
    {"when will it go away?", "duration"},
    {"how long until i can train again", "duration"},
    {"how soon will it heal", "duration"},
    {"will it ever go away?", "duration"},
    {"how many days will it hurt", "duration"},
    {"when will the soreness go away", "duration"},
    {"what's the recovery time", "duration"},
    // warning_signs
    {"When should I see a doctor?", "warning_signs"},
    {"do i need to see a doctor?", "warning_signs"},
    {"what are the warning signs?", "warning_signs"},
    {"at what point should i get it looked at", "warning_signs"},
    {"what signs mean i need a doctor", "warning_signs"},
    {"when should i go to the ER", "warning_signs"},
    {"red flags?", "warning_signs"},
    {"what symptoms should i look out for", "warning_signs"},
    {"when do i need a physio", "warning_signs"},
    {"should I go to the hospital?", "warning_signs"},
    // finer intents (intents.jsonc "as"): reported as a SPEC intent, answered in their own words
    {"can it wait till tomorrow?", "can_it_wait"},
    {"is it ok to leave it a few days", "can_it_wait"},
    {"do i have to go tonight or can i go tomorrow", "can_it_wait"},
    {"how urgent is this", "can_it_wait"},
    {"where should i go", "where_to_go"},
    {"er or urgent care?", "where_to_go"},
    {"who should i call about it", "where_to_go"},
    {"which doctor do i see for this", "where_to_go"},
    {"what should i tell the doctor", "tell_doctor"},
    {"what do i say to the gp", "tell_doctor"},
    {"what will they ask me", "tell_doctor"},
    {"how do i explain the pain to them", "tell_doctor"},
    {"i don't want to go to the doctor", "reluctant_care"},
    {"i hate hospitals", "reluctant_care"},
    {"can't afford the er", "reluctant_care"},
    {"i'll just wait it out", "reluctant_care"},
    {"is it serious?", "is_it_serious"},
    {"should I be worried?", "is_it_serious"},
    {"how bad is it", "is_it_serious"},
    {"could it be a slipped disc", "is_it_serious"},
    {"what should i do?", "what_now"},
    {"ok so what now", "what_now"},
    {"what do you recommend", "what_now"},
    {"what are my next steps", "what_now"},
    {"are you a bot?", "about_assistant"},
    {"r u a real person", "about_assistant"},
    {"am i talking to a human", "about_assistant"},
    {"where do you get your info", "about_assistant"},
    {"would a foam roller help?", "not_covered"},
    {"can you book me an appointment", "not_covered"},
    {"is massage good for it", "not_covered"},
    {"do i need an x-ray", "not_covered"},
    // out_of_scope
    {"My knee hurts after running", "out_of_scope"},
    {"What's the weather tomorrow?", "out_of_scope"},
    {"my lower back hurts", "out_of_scope"},
    {"my neck is sore", "out_of_scope"},
    {"tell me a joke", "out_of_scope"},
    {"my ankle hurts", "out_of_scope"},
    {"whats the capital of france", "out_of_scope"},
    {"my biceps are sore", "out_of_scope"},
    {"can you help me with my python code", "out_of_scope"},
    {"my knees are sore after squats", "out_of_scope"},
};

TEST_CASE("intents are recognised from everyday phrasings", "[intents]") {
  for (const auto& c : kPhrasings) {
    INFO("text: " << c.text << "  expected intent: " << c.intent);
    const auto& engine = TestEngine();
    const auto turn = engine.Respond(engine.Start(), c.text, std::nullopt, /*trace=*/true);
    const auto intent = std::find_if(engine.kb().intents.begin(), engine.kb().intents.end(),
                                     [&](const auto& i) { return i.id == c.intent; });
    REQUIRE(intent != engine.kb().intents.end());
    // A finer intent is reported as its SPEC intent and answered with its own topic.
    CHECK(turn.reply.intent == (intent->reported_as.empty() ? intent->id : intent->reported_as));
    if (!intent->reported_as.empty()) {
      CHECK(std::count(turn.said.begin(), turn.said.end(), "answer:" + intent->id) == 1);
    }
    // None of these is a red flag report.
    CHECK(turn.reply.red_flags.empty());
  }
}

TEST_CASE("every intent of the knowledge base is covered by at least four phrasings", "[intents]") {
  std::map<std::string, int> count;
  for (const auto& c : kPhrasings) ++count[c.intent];
  for (const auto& intent : TestEngine().kb().intents) {
    if (intent.id == "fallback" || intent.id == "affirm" || intent.id == "deny") continue;  // own tests below
    INFO("intent: " << intent.id);
    CHECK(count[intent.id] >= 4);
  }
  // And the table names no intent that does not exist.
  for (const auto& [id, n] : count) {
    INFO("intent in table: " << id);
    CHECK(std::any_of(TestEngine().kb().intents.begin(), TestEngine().kb().intents.end(),
                      [&](const auto& i) { return i.id == id; }));
  }
}

TEST_CASE("describing one's own pain starts screening; a question does not", "[intents]") {
  for (const char* text : {"my upper back is sore after rows", "I have upper back pain", "my sholder blades hurt",
                           "pain between my shoulder-blades"}) {
    INFO("text: " << text);
    auto reply = FirstReply(text);
    CHECK(reply.intent == "describe_pain");
    CHECK(reply.state == "screening");
  }
  for (const char* text : {"Why does my back hurt after the gym?", "What is DOMS?", "Should I use ice or heat?",
                           "how do i prevent upper back pain"}) {
    INFO("text: " << text);
    auto reply = FirstReply(text);
    CHECK(reply.state == "advising");
  }
}

TEST_CASE("overlapping phrasings go to the intent the person means", "[intents]") {
  const std::vector<Case> cases = {
      // their own pain, with an exercise named: a report, which starts screening
      {"my upper back is sore after rows", "describe_pain"},
      {"my back hurts after overhead press", "describe_pain"},
      {"pull-ups hurt my back", "describe_pain"},
      {"hi, my upper back hurts after rows", "describe_pain"},
      {"my back is sore after rows, is it DOMS?", "describe_pain"},
      // a form question that mentions shrugging or rows
      {"I shrug when I row, is that bad?", "form_rows"},
      {"I shrug my shoulders when I do rows, is that bad?", "form_rows"},
      {"Is my row form causing this?", "form_rows"},
      // "why" questions about the pain are about its cause
      {"Why does my back hurt after the gym?", "cause"},
      {"why does my upper back hurt after rows?", "cause"},
      {"why do my shoulder blades ache after training?", "cause"},
      // asking about a warning sign is not reporting it
      {"What if I get tingling?", "warning_signs"},
      {"what if I get tingling in my hands?", "warning_signs"},
      {"should I worry about numbness?", "warning_signs"},
      {"is chest pain serious?", "warning_signs"},
      // soreness versus injury beats the single topics it names
      {"Is this just soreness or an injury?", "soreness_or_injury"},
      {"is this a pulled muscle or just doms?", "soreness_or_injury"},
      // timing of ice is a self-care question, not how long the pain lasts
      {"How long should I ice it", "ice_heat"},
      {"how long does doms last?", "doms"},
  };
  for (const auto& c : cases) {
    INFO("text: " << c.text << "  expected intent: " << c.intent);
    CHECK(FirstReply(c.text).intent == c.intent);
  }
}

// The conversation after a describe_pain message: screening, first question pending.
dialog::ConversationState Screening() {
  const auto& engine = TestEngine();
  auto turn = engine.Respond(engine.Start(), "my upper back hurts after rows");
  REQUIRE(turn.state.state == "screening");
  return turn.state;
}

TEST_CASE("yes and its variants affirm a screening question", "[intents]") {
  const auto& engine = TestEngine();
  const auto screening = Screening();
  for (const char* text : {"yes", "Yes.", "YES!", "yeah", "yep", "yup", "ya", "yea", "yeh", "sure", "i think so",
                           "a little", "sometimes", "kind of", "I do", "Yes, sometimes"}) {
    INFO("text: " << text);
    auto turn = engine.Respond(screening, text);
    CHECK(turn.reply.intent == "affirm");
    // A yes to the arm question affirms its flags and escalates.
    CHECK(turn.reply.state == "escalated");
    CHECK(turn.reply.escalated);
    CHECK(std::string(knowledge::UrgencyName(turn.reply.urgency)) == "urgent");
  }
}

TEST_CASE("no and its variants deny a screening question", "[intents]") {
  const auto& engine = TestEngine();
  const auto screening = Screening();
  for (const char* text : {"no", "No.", "NO!", "nope", "nah", "nah mate", "not really", "Not really.", "never",
                           "none of those", "i don't", "I do not", "no, not at all", "nope, none",
                           "i don't have any of those", "no to all"}) {
    INFO("text: " << text);
    auto turn = engine.Respond(screening, text);
    CHECK(turn.reply.intent == "deny");
    CHECK(turn.reply.state == "screening");
    CHECK(turn.state.screening_step == screening.screening_step + 1);
    CHECK_FALSE(turn.reply.escalated);
  }
}

TEST_CASE("denying every screening question passes screening", "[intents]") {
  const auto& engine = TestEngine();
  auto state = Screening();
  for (const char* text : {"no", "Nope.", "nah"}) {
    INFO("text: " << text);
    auto turn = engine.Respond(state, text);
    CHECK(turn.reply.intent == "deny");
    state = turn.state;
  }
  CHECK(state.state == "advising");
  CHECK(state.screened);
  CHECK(state.urgency == knowledge::Urgency::kNone);
}

TEST_CASE("a question in the middle of screening is answered and screening resumes", "[intents]") {
  const auto& engine = TestEngine();
  const auto screening = Screening();
  const std::vector<Case> cases = {
      {"Should I use ice?", "ice_heat"},
      {"what is DOMS?", "doms"},
      {"can i take ibuprofen?", "medication"},
      {"how long will it last?", "duration"},
  };
  for (const auto& c : cases) {
    INFO("text: " << c.text);
    auto turn = engine.Respond(screening, c.text);
    CHECK(turn.reply.intent == c.intent);
    CHECK(turn.reply.state == "screening");
    CHECK(turn.state.screening_step == screening.screening_step);
  }
}

TEST_CASE("yes and no outside screening are not red flags", "[intents]") {
  for (const char* text : {"yes", "yeah", "no", "nope"}) {
    INFO("text: " << text);
    auto reply = FirstReply(text);
    CHECK(reply.red_flags.empty());
    CHECK_FALSE(reply.escalated);
    CHECK(std::string(knowledge::UrgencyName(reply.urgency)) == "none");
  }
}

TEST_CASE("gibberish falls back", "[intents]") {
  for (const char* text : {"asdfghjkl", "qwerty uiop", "blorp zzz", "...", "lorem ipsum dolor", "xkcd 927 ftw",
                           "??", "🙂🙂🙂"}) {
    INFO("text: " << text);
    auto reply = FirstReply(text);
    CHECK(reply.intent == "fallback");
    CHECK(reply.red_flags.empty());
    CHECK(reply.state == "welcome");
    CHECK_FALSE(reply.text.empty());
  }
}

}  // namespace
}  // namespace backcheck
