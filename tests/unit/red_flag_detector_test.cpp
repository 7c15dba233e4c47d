// Red-flag detection and escalation (SPEC section 5): which symptoms a message mentions, whether
// the person affirms them for themselves now, and what the first reply does about it.
//
// Detector-level checks use SelfFlags()/Mentions() (tests/unit/test_support.hpp); end-to-end
// checks use FirstReply(). Every table entry is a sentence a person might type; a failure names
// the sentence (INFO/CAPTURE).
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace backcheck {
namespace {

using test::FirstReply;
using test::Mentions;
using test::SelfFlags;

bool Has(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

struct Case {
  const char* text;
  const char* flag;
};

// The first paragraph of a reply: escalated replies must lead with the guidance.
std::string FirstParagraph(const std::string& text) { return text.substr(0, text.find("\n\n")); }

// What the guidance paragraph for each level must say.
const char* GuidanceWord(knowledge::Urgency level) {
  switch (level) {
    case knowledge::Urgency::kEmergency: return "emergency number";
    case knowledge::Urgency::kUrgent: return "today";
    case knowledge::Urgency::kSeeDoctor: return "healthcare provider";
    case knowledge::Urgency::kNone: break;
  }
  return "";
}

struct FlagInfo {
  const char* id;
  knowledge::Urgency level;
  bool extension;  // a safety extension: the reply says the article does not cover it
};

const std::vector<FlagInfo>& AllFlags() {
  using knowledge::Urgency;
  static const std::vector<FlagInfo> flags = {
      {"arm_radiation", Urgency::kUrgent, false},        {"numbness", Urgency::kUrgent, false},
      {"tingling", Urgency::kUrgent, false},             {"weakness", Urgency::kUrgent, false},
      {"fever", Urgency::kUrgent, false},                {"chills", Urgency::kUrgent, false},
      {"weight_loss", Urgency::kUrgent, false},          {"breathing_pain", Urgency::kEmergency, false},
      {"shortness_of_breath", Urgency::kEmergency, false}, {"severe_persistent", Urgency::kSeeDoctor, false},
      {"chest_pain", Urgency::kEmergency, true},         {"tearing_pain", Urgency::kEmergency, true},
      {"coughing_blood", Urgency::kEmergency, true},     {"cord_signs", Urgency::kEmergency, true},
      {"trauma", Urgency::kUrgent, true},
  };
  return flags;
}

const FlagInfo& Info(const std::string& id) {
  for (const auto& f : AllFlags()) {
    if (id == f.id) return f;
  }
  FAIL("unknown flag " << id);
  return AllFlags().front();
}

// The person reports the symptom for themselves, now: it must be attributed to them.
const std::vector<Case> kAffirmed = {
    // arm_radiation
    {"The pain shoots down my left arm", "arm_radiation"},
    {"It radiates into my hand", "arm_radiation"},
    {"pain travelling down my arm to my fingers", "arm_radiation"},
    {"shooting pain down my right arm", "arm_radiation"},
    {"my sholder blade pain goes down into my arm", "arm_radiation"},
    {"The pain is spreading down my arm!!", "arm_radiation"},
    {"its like an electric shock down my arm", "arm_radiation"},
    {"pain down my arm", "arm_radiation"},
    {"the pain goes all the way down to my elbow", "arm_radiation"},
    // numbness
    {"my arm is numm", "numbness"},
    {"my hand is numb", "numbness"},
    {"MY FINGERS ARE NUMB", "numbness"},
    {"numbness in my fingers", "numbness"},
    {"I can't feel my fingers", "numbness"},
    {"I cant feel my left hand", "numbness"},
    {"my left hand keeps going numb", "numbness"},
    {"my fingers went numb after rows", "numbness"},
    {"my hand feels numbish", "numbness"},
    {"i have numbess in my arm", "numbness"},
    {"my arm went dead", "numbness"},
    {"my fingertips are numb", "numbness"},
    {"both my hands are numb", "numbness"},
    // tingling
    {"my arm tingles", "tingling"},
    {"i have pins and needles in my hand", "tingling"},
    {"Pins-and-needles in both hands", "tingling"},
    {"tingling in my fingers", "tingling"},
    {"my fingers are tingly", "tingling"},
    {"my hand is tingeling", "tingling"},
    {"my fingers keep tinglin", "tingling"},
    {"I've got tingles in my hand", "tingling"},
    {"My sholders are tingling", "tingling"},
    // weakness
    {"my arm feels weak", "weakness"},
    {"my grip is weak", "weakness"},
    {"i keep dropping things", "weakness"},
    {"i can't lift my arm", "weakness"},
    {"weakness in my right hand", "weakness"},
    {"my hand has no strength", "weakness"},
    {"I'm losing my grip strength", "weakness"},
    {"i have weekness in my arm", "weakness"},
    {"I keep dropping the dumbbells", "weakness"},
    {"i cant grip the bar anymore", "weakness"},
    {"my hands feel weak", "weakness"},
    {"I can't hold a cup", "weakness"},
    {"my grip is giving out", "weakness"},
    // fever
    {"i have a fever", "fever"},
    {"i've got a feaver", "fever"},
    {"running a temperature of 39", "fever"},
    {"i feel feverish", "fever"},
    {"I have a high temp", "fever"},
    {"I think I have a fever", "fever"},
    {"I have a temp of 101", "fever"},
    {"I'm burning up", "fever"},
    {"I've been getting night sweats", "fever"},
    // chills
    {"i have chills", "chills"},
    {"i've been shivering all night", "chills"},
    {"i have the chills and my back hurts", "chills"},
    {"I keep getting chils", "chills"},
    {"I feel hot and cold", "chills"},
    // weight_loss
    {"i have lost weight without trying", "weight_loss"},
    {"i've lost 5 kg without dieting", "weight_loss"},
    {"losing weight for no reason", "weight_loss"},
    {"I dropped 10 pounds and I don't know why", "weight_loss"},
    {"losing weight even though I'm eating", "weight_loss"},
    // breathing_pain
    {"it hurts when i breathe in", "breathing_pain"},
    {"it hurts to take a deep breath", "breathing_pain"},
    {"It's painful to breathe", "breathing_pain"},
    {"deep breaths are painful", "breathing_pain"},
    {"breathing hurts", "breathing_pain"},
    {"every breath hurts", "breathing_pain"},
    {"pain when I take a deep breath", "breathing_pain"},
    {"sharp pain when i breath in", "breathing_pain"},
    {"it hurts to breathe", "breathing_pain"},
    // shortness_of_breath
    {"i can't breathe", "shortness_of_breath"},
    {"I cant breath", "shortness_of_breath"},
    {"i'm short of breath", "shortness_of_breath"},
    {"I can't catch my breath", "shortness_of_breath"},
    {"i'm struggling to breathe", "shortness_of_breath"},
    {"i feel breathless", "shortness_of_breath"},
    {"having trouble breathing", "shortness_of_breath"},
    {"I'm out of breath just sitting here", "shortness_of_breath"},
    {"I can't take a deep breath", "shortness_of_breath"},
    {"i get winded just walking", "shortness_of_breath"},
    {"I can't get enough air", "shortness_of_breath"},
    {"I feel like I can't breathe", "shortness_of_breath"},
    // severe_persistent
    {"the pain is severe and not getting better after a week", "severe_persistent"},
    {"excruciating pain for 5 days", "severe_persistent"},
    {"i can't move", "severe_persistent"},
    {"i can't turn my head", "severe_persistent"},
    {"it hasn't improved in two weeks", "severe_persistent"},
    {"i can't get out of bed", "severe_persistent"},
    {"the pain is getting worse every day", "severe_persistent"},
    {"it's been 2 weeks and still no better", "severe_persistent"},
    {"I can barely move", "severe_persistent"},
    {"the pain is not better after 3 days of rest", "severe_persistent"},
    // chest_pain (safety extension)
    {"i have chest pain", "chest_pain"},
    {"my chest feels tight", "chest_pain"},
    {"pressure in my chest", "chest_pain"},
    {"crushing pain across my chest", "chest_pain"},
    {"my jaw hurts too", "chest_pain"},
    {"i'm sweating a lot and feel sick", "chest_pain"},
    {"i feel nauseous", "chest_pain"},
    {"my chest hurts", "chest_pain"},
    {"tightness in my chest", "chest_pain"},
    {"pain in my left arm and jaw", "chest_pain"},
    {"i'm clammy and sweaty", "chest_pain"},
    // tearing_pain (safety extension)
    {"sudden tearing pain in my back", "tearing_pain"},
    {"it feels like something is ripping", "tearing_pain"},
    {"sudden severe pain between my shoulder blades", "tearing_pain"},
    {"A ripping sensation between my shoulder blades", "tearing_pain"},
    {"worst pain of my life", "tearing_pain"},
    {"it feels like my back is being torn apart", "tearing_pain"},
    {"sudden excruciating pain in my upper back", "tearing_pain"},
    // coughing_blood (safety extension)
    {"i'm coughing up blood", "coughing_blood"},
    {"i coughed blood this morning", "coughing_blood"},
    {"blood when I cough", "coughing_blood"},
    {"there's blood in my phlegm", "coughing_blood"},
    {"spitting blood", "coughing_blood"},
    {"I cough and there's blood", "coughing_blood"},
    // cord_signs (safety extension)
    {"i can't control my bladder", "cord_signs"},
    {"I've lost control of my bowels", "cord_signs"},
    {"my legs are numb", "cord_signs"},
    {"both legs feel weak", "cord_signs"},
    {"numbness in my groin", "cord_signs"},
    {"i wet myself", "cord_signs"},
    {"I peed myself", "cord_signs"},
    {"my legs keep giving out", "cord_signs"},
    {"I can't feel my legs", "cord_signs"},
    // trauma (safety extension)
    {"i fell off my bike", "trauma"},
    {"i was in a car accident", "trauma"},
    {"i got hit in the back", "trauma"},
    {"i fell down the stairs yesterday", "trauma"},
    {"the bar fell on me", "trauma"},
    {"I had a bad fall", "trauma"},
    {"got tackled at rugby", "trauma"},
    {"I was rear-ended yesterday", "trauma"},
    {"I slipped on ice and landed on my back", "trauma"},
    {"I crashed my bike", "trauma"},
    {"I went over the handlebars", "trauma"},
    {"a box fell on my back", "trauma"},
    {"I came off my bike", "trauma"},
    {"I fell yesterday and now my back hurts", "trauma"},
    {"I tripped over a dumbbell", "trauma"},
    {"I slipped on the stairs", "trauma"},
};

TEST_CASE("affirmed red flags are attributed to the person", "[red_flags]") {
  for (const auto& c : kAffirmed) {
    INFO("text: " << c.text << "  flag: " << c.flag);
    CAPTURE(Mentions(c.text));
    CHECK(Has(SelfFlags(c.text), c.flag));
  }
}

TEST_CASE("every flag of SPEC section 5 has affirmed phrasings", "[red_flags]") {
  for (const auto& f : AllFlags()) {
    auto n = std::count_if(kAffirmed.begin(), kAffirmed.end(),
                           [&](const Case& c) { return std::string(c.flag) == f.id; });
    INFO("flag: " << f.id);
    CHECK(n >= 4);
  }
}

TEST_CASE("an affirmed red flag escalates the first reply with the guidance for its level", "[red_flags]") {
  // One sentence per flag, end to end.
  const std::vector<Case> cases = {
      {"The pain shoots down my left arm", "arm_radiation"},
      {"my hand is numm", "numbness"},
      {"I have pins and needles in my fingers", "tingling"},
      {"my grip is weak and i keep dropping things", "weakness"},
      {"i've got a fever and my upper back hurts", "fever"},
      {"I keep getting chills with the back pain", "chills"},
      {"I've lost weight without trying", "weight_loss"},
      {"it hurts to take a deep breath", "breathing_pain"},
      {"I cant breath", "shortness_of_breath"},
      {"the pain is unbearable and hasn't got better in a week", "severe_persistent"},
      {"I have chest pain too", "chest_pain"},
      {"sudden ripping pain in my upper back", "tearing_pain"},
      {"I coughed up some blood this morning", "coughing_blood"},
      {"I can't control my bladder since yesterday", "cord_signs"},
      {"It started after I fell off my bike", "trauma"},
  };
  for (const auto& c : cases) {
    const FlagInfo& f = Info(c.flag);
    INFO("text: " << c.text << "  flag: " << c.flag);
    auto reply = FirstReply(c.text);
    CAPTURE(reply.red_flags, reply.text);
    CHECK(Has(reply.red_flags, c.flag));
    CHECK(std::string(knowledge::UrgencyName(reply.urgency)) == knowledge::UrgencyName(f.level));
    CHECK(reply.state == "escalated");
    CHECK(reply.escalated);
    CHECK_THAT(FirstParagraph(reply.text), Catch::Contains(GuidanceWord(f.level)));
    if (f.extension) {
      CHECK_THAT(reply.text, Catch::Contains("The article does not cover this"));
    } else {
      CHECK_THAT(reply.text, !Catch::Contains("does not cover"));
    }
  }
}

TEST_CASE("the highest level wins when several flags are affirmed at once", "[red_flags]") {
  auto reply = FirstReply("I have a fever and I'm short of breath");
  CAPTURE(reply.red_flags);
  CHECK(Has(reply.red_flags, "fever"));
  CHECK(Has(reply.red_flags, "shortness_of_breath"));
  CHECK(std::string(knowledge::UrgencyName(reply.urgency)) == "emergency");
  CHECK_THAT(FirstParagraph(reply.text), Catch::Contains("emergency number"));
}

// Negated: "no X", "I don't have X", "never X". Must not be attributed to the person.
const std::vector<Case> kNegated = {
    {"no pain going down my arms", "arm_radiation"},
    {"the pain never goes down my arm", "arm_radiation"},
    {"it doesn't spread to my arm", "arm_radiation"},
    {"no numbness", "numbness"},
    {"I don't have any numbness", "numbness"},
    {"my hand doesn't feel numb", "numbness"},
    {"I'm not numb anywhere", "numbness"},
    {"no tingling", "tingling"},
    {"i have never had tingling", "tingling"},
    {"no pins and needles", "tingling"},
    {"no weakness in my arms", "weakness"},
    {"my arms are not weak", "weakness"},
    {"my grip isn't weak", "weakness"},
    {"no fever", "fever"},
    {"i don't have a fever", "fever"},
    {"I'm fever-free", "fever"},
    {"no chills", "chills"},
    {"I haven't had any chills", "chills"},
    {"no unexplained weight loss", "weight_loss"},
    {"i haven't lost any weight", "weight_loss"},
    {"it doesn't hurt when I breathe", "breathing_pain"},
    {"breathing doesn't hurt", "breathing_pain"},
    {"no pain when breathing", "breathing_pain"},
    {"never short of breath", "shortness_of_breath"},
    {"I'm not short of breath", "shortness_of_breath"},
    {"no trouble breathing", "shortness_of_breath"},
    // "the pain isn't severe" alone is no mention of severe_persistent (nothing about it lasting)
    {"the pain isn't severe and it hasn't been getting worse for days", "severe_persistent"},
    {"no chest pain", "chest_pain"},
    {"my chest doesn't hurt", "chest_pain"},
    {"my chest is not tight", "chest_pain"},
    {"i don't feel sick", "chest_pain"},
    {"no tearing pain", "tearing_pain"},
    {"it doesn't feel like tearing", "tearing_pain"},
    {"no coughing up blood", "coughing_blood"},
    {"i'm not coughing up blood", "coughing_blood"},
    {"I haven't coughed up any blood", "coughing_blood"},
    {"no bladder problems", "cord_signs"},
    {"my legs aren't numb", "cord_signs"},
    {"I have no numbness in my legs", "cord_signs"},
    {"I didn't fall or get hit", "trauma"},
    // "no fall or accident" is no mention of trauma at all (FALL needs the person, IMPACT "a fall")
    {"I haven't had a fall or an accident", "trauma"},
};

TEST_CASE("negated red flags are not the person's", "[red_flags]") {
  for (const auto& c : kNegated) {
    INFO("text: " << c.text << "  flag: " << c.flag);
    // Seen, then negated (or set aside by the flag's `except`, "the pain never goes down my
    // arm", or for want of its `requires`, "i haven't lost any weight"): a sentence the detector
    // no longer recognises at all must fail here, not pass.
    const auto seen = test::Seen(c.text);
    CAPTURE(seen);
    CHECK((Has(seen, std::string(c.flag) + ":negated") || Has(seen, std::string(c.flag) + ":except") ||
           Has(seen, std::string(c.flag) + ":requires")));
    CHECK(SelfFlags(c.text).empty());
    auto reply = FirstReply(c.text);
    CHECK(reply.red_flags.empty());
    CHECK(std::string(knowledge::UrgencyName(reply.urgency)) == "none");
    CHECK_FALSE(reply.escalated);
  }
}

TEST_CASE("the detector reports a plain negation as negated", "[red_flags]") {
  const std::vector<Case> cases = {
      {"no numbness", "numbness"},           {"I don't have a fever", "fever"},
      {"never short of breath", "shortness_of_breath"}, {"no chest pain", "chest_pain"},
      {"no pins and needles", "tingling"},   {"no coughing up blood", "coughing_blood"},
  };
  for (const auto& c : cases) {
    INFO("text: " << c.text);
    CHECK(Mentions(c.text) == std::vector<std::string>{std::string(c.flag) + ":negated"});
  }
}

// Hypothetical and informational: asking about a sign, not having it. Answered with warning_signs.
const std::vector<Case> kAsked = {
    {"what if the pain spreads down my arm?", "arm_radiation"},
    {"should i worry about pain going down my arm?", "arm_radiation"},
    {"is pain radiating down the arm serious?", "arm_radiation"},
    {"what if I get numbness?", "numbness"},
    {"should I worry about numbness?", "numbness"},
    {"is numbness serious?", "numbness"},
    {"is it serious if my arm goes numb?", "numbness"},
    {"Could I get numbness from rows?", "numbness"},
    {"What if I get tingling?", "tingling"},
    {"is tingling a bad sign?", "tingling"},
    {"should I be worried about tingling in my hands?", "tingling"},
    {"what does it mean if my hand tingles?", "tingling"},
    {"what if my arm gets weak?", "weakness"},
    {"is it bad if I can't move my arm?", "weakness"},
    {"what if I get a fever?", "fever"},
    {"is fever with back pain dangerous?", "fever"},
    {"should i worry about a fever?", "fever"},
    {"what if I get chills?", "chills"},
    {"are chills serious?", "chills"},
    {"what if I lose weight without trying?", "weight_loss"},
    {"is unexplained weight loss a warning sign?", "weight_loss"},
    {"what if it hurts when I breathe?", "breathing_pain"},
    {"is pain when breathing serious?", "breathing_pain"},
    {"is shortness of breath serious?", "shortness_of_breath"},
    {"what if I get short of breath?", "shortness_of_breath"},
    {"can upper back pain cause shortness of breath?", "shortness_of_breath"},
    {"what if the pain doesn't improve after a week?", "severe_persistent"},
    {"what if the pain is severe and doesn't improve?", "severe_persistent"},
    {"what if I get chest pain?", "chest_pain"},
    {"should i worry about chest pain?", "chest_pain"},
    {"is chest pain a warning sign?", "chest_pain"},
    {"what if it feels like tearing?", "tearing_pain"},
    {"is tearing pain dangerous?", "tearing_pain"},
    {"is coughing blood serious?", "coughing_blood"},
    {"what if I cough up blood?", "coughing_blood"},
    {"what if I lose bladder control?", "cord_signs"},
    {"is loss of bladder control an emergency?", "cord_signs"},
    {"what if i fall off the bike?", "trauma"},
};

TEST_CASE("hypothetical and informational mentions are answered, not escalated", "[red_flags]") {
  for (const auto& c : kAsked) {
    INFO("text: " << c.text << "  flag: " << c.flag);
    auto mentions = Mentions(c.text);
    CAPTURE(mentions);
    CHECK(SelfFlags(c.text).empty());
    CHECK((Has(mentions, std::string(c.flag) + ":hypothetical") ||
           Has(mentions, std::string(c.flag) + ":informational")));
    auto reply = FirstReply(c.text);
    CHECK(reply.intent == "warning_signs");
    CHECK(reply.red_flags.empty());
    CHECK(std::string(knowledge::UrgencyName(reply.urgency)) == "none");
    CHECK(reply.state != "escalated");
  }
}

TEST_CASE("every flag has negated and asked-about phrasings", "[red_flags]") {
  for (const auto& f : AllFlags()) {
    INFO("flag: " << f.id);
    auto count = [&](const std::vector<Case>& list) {
      return std::count_if(list.begin(), list.end(), [&](const Case& c) { return std::string(c.flag) == f.id; });
    };
    CHECK(count(kNegated) >= 1);
    CHECK(count(kAsked) >= 1);
  }
}

struct ScopeCase {
  const char* text;
  const char* self;     // the flag the person affirms
  const char* negated;  // the flag they deny, or "" when the detector need not see it
};

TEST_CASE("negation stops at but / although / however and at the end of the clause", "[red_flags]") {
  const std::vector<ScopeCase> cases = {
      {"no fever but my arm is numb", "numbness", "fever"},
      {"No fever, but my arm is numb", "numbness", "fever"},
      {"no fever but the pain shoots down my arm", "arm_radiation", "fever"},
      {"i don't have a fever although my hand is tingling", "tingling", "fever"},
      {"My arm isn't numb, but it's tingling", "tingling", "numbness"},
      {"i don't have numbness however my arm feels weak", "weakness", "numbness"},
      {"no tingling although i keep dropping things", "weakness", "tingling"},
      {"no fever but i have the chills", "chills", "fever"},
      {"no chills but i've lost weight without trying", "weight_loss", "chills"},
      {"no fever but it hurts when i breathe", "breathing_pain", "fever"},
      {"no chills, however I can't breathe", "shortness_of_breath", "chills"},
      {"no chest pain, but I'm short of breath", "shortness_of_breath", "chest_pain"},
      {"i don't have chest pain although the pain is unbearable and not improving after a week",
       "severe_persistent", "chest_pain"},
      {"never had a fall but my chest feels tight", "chest_pain", ""},
      {"no chills but the pain feels like something is tearing", "tearing_pain", "chills"},
      {"no weight loss but i'm coughing up blood", "coughing_blood", ""},
      {"not coughing blood but i can't control my bladder", "cord_signs", "coughing_blood"},
      {"no numbness but i had a bad fall", "trauma", "numbness"},
      {"no fever, i can't breathe", "shortness_of_breath", "fever"},
      {"i have no fever and my arm is numb", "numbness", "fever"},
  };
  for (const auto& c : cases) {
    INFO("text: " << c.text);
    auto mentions = Mentions(c.text);
    CAPTURE(mentions);
    CHECK(SelfFlags(c.text) == std::vector<std::string>{c.self});
    if (*c.negated) CHECK(Has(mentions, std::string(c.negated) + ":negated"));
    auto reply = FirstReply(c.text);
    CHECK(reply.red_flags == std::vector<std::string>{c.self});
    CHECK(reply.state == "escalated");
  }
}

TEST_CASE("one negation covers a list of symptoms", "[red_flags]") {
  struct ListCase {
    const char* text;
    std::vector<std::string> negated;  // each must be seen and negated ("weakness" and "weight
                                       // loss" alone are not mentions: no arm, no "without trying")
  };
  const std::vector<ListCase> cases = {
      {"no numbness, tingling or weakness", {"numbness", "tingling"}},
      {"no numbness or tingling", {"numbness", "tingling"}},
      {"No numbness or tingling, it's just sore", {"numbness", "tingling"}},
      {"no fever, chills or weight loss", {"fever", "chills"}},
      {"i don't have any fever, chills, or weight loss", {"fever", "chills"}},
      {"no fever and no chills", {"fever", "chills"}},
      {"no shortness of breath and no pain when breathing", {"shortness_of_breath", "breathing_pain"}},
      {"my back hurts but no numbness", {"numbness"}},
  };
  for (const auto& c : cases) {
    const char* text = c.text;
    INFO("text: " << text);
    CAPTURE(Mentions(text));
    CHECK(SelfFlags(text).empty());
    for (const auto& flag : c.negated) CHECK(Has(Mentions(text), flag + ":negated"));
    auto reply = FirstReply(text);
    CHECK(reply.red_flags.empty());
    CHECK(std::string(knowledge::UrgencyName(reply.urgency)) == "none");
  }
}

TEST_CASE("a symptom someone else has gets third-party guidance without marking this person", "[red_flags]") {
  const std::vector<Case> cases = {
      {"my friend can't breathe", "shortness_of_breath"},
      {"my wife has a fever", "fever"},
      {"my buddy's arm went numb", "numbness"},
      {"my dad has chest pain", "chest_pain"},
      {"she is coughing up blood", "coughing_blood"},
      {"my training partner fell off the bench", "trauma"},
      {"my husband has been shivering all day", "chills"},
  };
  for (const auto& c : cases) {
    INFO("text: " << c.text);
    CHECK(Mentions(c.text) == std::vector<std::string>{std::string(c.flag) + ":other_person"});
    auto reply = FirstReply(c.text);
    CAPTURE(reply.text);
    CHECK(reply.red_flags.empty());
    CHECK(std::string(knowledge::UrgencyName(reply.urgency)) == "none");
    CHECK_FALSE(reply.escalated);
    CHECK(reply.state != "escalated");
    CHECK_THAT(reply.text, Catch::Contains("the person you are describing", Catch::CaseSensitive::No));
  }
  // The guidance for the other person follows the flag's level.
  CHECK_THAT(FirstReply("my friend can't breathe").text, Catch::Contains("emergency number for them"));
  CHECK_THAT(FirstReply("my wife has a fever").text, Catch::Contains("medical care today"));
}

TEST_CASE("a past symptom gets a clarifying question; a continuing one escalates", "[red_flags]") {
  const std::vector<Case> past = {
      {"I had numbness last year", "numbness"},
      {"i used to get tingling", "tingling"},
      {"i had a fever last week", "fever"},
      {"i used to have chest pain", "chest_pain"},
      {"years ago i was in a car accident", "trauma"},
      {"i had pins and needles last month but it went away", "tingling"},
  };
  for (const auto& c : past) {
    INFO("text: " << c.text);
    CHECK(Mentions(c.text) == std::vector<std::string>{std::string(c.flag) + ":past"});
    auto reply = FirstReply(c.text);
    CHECK(reply.red_flags.empty());
    CHECK(std::string(knowledge::UrgencyName(reply.urgency)) == "none");
    CHECK_THAT(reply.text, Catch::Contains("Do you have it now?"));
  }
  const std::vector<Case> continuing = {
      {"the numbness started a year ago", "numbness"},
      {"i had a fever last week and i still have it", "fever"},
      {"I had tingling last week, it's still there", "tingling"},
      {"the numbness has been there since monday", "numbness"},
  };
  for (const auto& c : continuing) {
    INFO("text: " << c.text);
    CHECK(SelfFlags(c.text) == std::vector<std::string>{c.flag});
    CHECK(FirstReply(c.text).state == "escalated");
  }
}

TEST_CASE("the answer to the past-symptom question decides", "[red_flags]") {
  const auto& engine = test::TestEngine();
  auto first = engine.Respond(engine.Start(), "I had numbness in my hand last year");
  REQUIRE(first.state.urgency == knowledge::Urgency::kNone);

  SECTION("yes: it is there now") {
    auto turn = engine.Respond(first.state, "yes");
    CHECK(turn.reply.red_flags == std::vector<std::string>{"numbness"});
    CHECK(turn.reply.escalated);
    CHECK(turn.reply.state == "escalated");
    CHECK_THAT(FirstParagraph(turn.reply.text), Catch::Contains("today"));
  }
  SECTION("no: it went away") {
    auto turn = engine.Respond(first.state, "no");
    CHECK(turn.reply.red_flags.empty());
    CHECK_FALSE(turn.reply.escalated);
    CHECK(turn.state.urgency == knowledge::Urgency::kNone);
  }
}

TEST_CASE("everyday sentences that look like symptoms raise no flag", "[red_flags]") {
  // Each of these was checked against what the person most likely means:
  const std::vector<const char*> cases = {
      "ice helps numb the pain",                    // numbing the pain is the point of ice
      "numbing cream helps",                        // a product, not a symptom
      "I fell asleep on the couch",                 // not a fall
      "I fell behind on my training",               // not a fall
      "I got hit by DOMS hard",                     // soreness, not a blow
      "chest day yesterday",                        // a training day, not chest pain
      "I did chest press and now my upper back is sore",
      "my chest muscles are sore from bench",       // training soreness in the chest muscles
      "I was sweating a lot during my workout",     // sweating during exercise is normal
      "my rhomboids are weak",                      // weak back muscles are a form issue, not nerve weakness
      "I have weak traps",
      "I'm trying to lose weight",                  // intended weight loss is not a red flag
      "I lost 3 kg on my diet",
      // Being winded by sprints is normal exertion; "out of breath" at rest is a flag (see above).
      "out of breath after sprints",
      "I'm always out of breath during my workouts",
      "I dropped the weights after my last set",    // putting the bar down is not losing grip
      "I dropped the bar after my last rep",
      "I need to chill out",
      "I think I tore a muscle",                    // a strain question, not a tearing pain
      "micro tears in the muscle",
      "my upper back is sore after rows",
      "I can move fine and the pain is mild",
      "the plates fell off the bar",               // things falling are not a fall
      "the weight fell on the floor",
      "my phone fell on the floor",
      "my motivation fell off",
      "I fall asleep at my desk",
      "I fell in love with deadlifts",
      "my form fell apart on the last set",
      "I need to take a breath and relax",
      "should I use hot and cold?",                // a self-care question, not chills
      "hot and cold therapy",
      "I'm sick of this pain",
      "I felt a pop and now it's sore",            // a strain, not a red flag
      "I'm fever-free",
      "I just fall into bad posture at my desk",
      "I slipped into bad habits with my form",
      "I fell off the wagon with stretching",
      "my squat is getting worse every day",       // the lift, not the pain
      "I got winded during my last set",
      "I ran a marathon and was out of breath",
      "my hands were sweaty and I dropped the bar",
      "my breathing is fine",
      "I can breathe normally",
      "my arms and hands are fine, it's just my back",
      "I can't hold the bar in the front rack",    // a mobility limit, not losing grip
  };
  for (const char* text : cases) {
    INFO("text: " << text);
    CAPTURE(Mentions(text));
    CHECK(SelfFlags(text).empty());
    auto reply = FirstReply(text);
    CHECK(reply.red_flags.empty());
    CHECK(std::string(knowledge::UrgencyName(reply.urgency)) == "none");
    CHECK(reply.state != "escalated");
  }
}

TEST_CASE("not knowing why is still having it", "[red_flags]") {
  const std::vector<Case> cases = {
      {"I don't know why my hand is numb", "numbness"},
      {"not sure why but my fingers are tingling", "tingling"},
      {"no idea why, my arm feels weak", "weakness"},
  };
  for (const auto& c : cases) {
    INFO("text: " << c.text);
    CAPTURE(Mentions(c.text));
    CHECK(SelfFlags(c.text) == std::vector<std::string>{c.flag});
  }
}

TEST_CASE("a red flag mentioned before a question is still reported", "[red_flags]") {
  const std::vector<Case> cases = {
      {"My arm is numb, is that serious?", "numbness"},
      {"I have a fever, should I worry?", "fever"},
      {"my fingers tingle. What should I do?", "tingling"},
  };
  for (const auto& c : cases) {
    INFO("text: " << c.text);
    CAPTURE(Mentions(c.text));
    CHECK(Has(SelfFlags(c.text), c.flag));
    CHECK(FirstReply(c.text).state == "escalated");
  }
}

// Known limitations of the detector's C++ logic (see the report that introduced these tests).
TEST_CASE("a negation after the symptom in a short answer", "[red_flags]") {
  // "Fever? No." answers the question with a trailing "no"; the negation cue comes after the
  // symptom, and the detector only looks before it.
  for (const Case& c : {Case{"Fever? No.", "fever"}, Case{"chest pain: none", "chest_pain"}, Case{"numbness - no", "numbness"}}) {
    INFO("text: " << c.text);
    CAPTURE(Mentions(c.text));
    CHECK(SelfFlags(c.text).empty());
    CHECK(Has(Mentions(c.text), std::string(c.flag) + ":negated"));  // seen, then negated
  }
}

TEST_CASE("an attacker named before \"me\" does not make the symptom someone else's", "[red_flags]") {
  // The detector attributes a mention to the nearest person *before* it; in "someone punched me"
  // that is the attacker, not the person hurt, so the person's own trauma is not escalated.
  for (const char* text : {"someone punched me in the back", "my brother kicked me in the back"}) {
    INFO("text: " << text);
    CAPTURE(Mentions(text));
    CHECK(SelfFlags(text) == std::vector<std::string>{"trauma"});
  }
}

TEST_CASE("reported speech about a symptom is not having it", "[red_flags]") {
  // "I read that ..." has a first-person word, so the informational rule does not apply.
  for (const Case& c : {Case{"I read that chest pain can be serious", "chest_pain"},
                        Case{"I heard numbness is a bad sign", "numbness"}}) {
    INFO("text: " << c.text);
    CAPTURE(Mentions(c.text));
    CHECK(SelfFlags(c.text).empty());
    CHECK(Has(Mentions(c.text), std::string(c.flag) + ":hypothetical"));  // seen, then set aside
  }
}

}  // namespace
}  // namespace backcheck

namespace backcheck {
namespace {

// The rules for short answers, reported speech and the person a mention names must not hide a
// report that follows them.
TEST_CASE("a real report next to a short negative answer or reported speech still escalates", "[red_flags]") {
  struct Report {
    const char* text;
    std::vector<std::string> self;
  };
  const Report cases[] = {
      {"Fever? No. But my arm is numb", {"numbness"}},
      {"chest pain: none, tingling: yes", {"tingling"}},
      {"I read that numbness is a bad sign and my hands are numb", {"numbness"}},
      {"I heard chest pain can be serious, and I have chest pain now", {"chest_pain"}},
      {"my friend punched me in the back", {"trauma"}},
      {"Do I have a fever? no idea, I feel hot and cold", {"chills"}},
  };
  for (const auto& c : cases) {
    INFO("text: " << c.text);
    CAPTURE(test::Mentions(c.text));
    auto self = test::SelfFlags(c.text);
    for (const auto& flag : c.self) CHECK(std::find(self.begin(), self.end(), flag) != self.end());
  }
}

}  // namespace
}  // namespace backcheck

namespace backcheck {
TEST_CASE("the detector fails closed: a pattern set RE2 cannot hold is matched one pattern at a time", "[red_flags]") {
  const auto& engine = test::TestEngine();
  // 64 KiB is far too little for the set: RE2 refuses it, and the detector must not then
  // answer "no red flag" for everything.
  dialog::RedFlagDetector tiny(engine.kb().red_flags, 64 << 10);
  dialog::RedFlagDetector normal(engine.kb().red_flags);
  for (const std::string text : {"I can't breathe", "my left arm is numb and my fingers tingle", "what is doms"}) {
    CAPTURE(text);
    const auto normalised = engine.normaliser().Normalise(text);
    const auto a = tiny.Detect(normalised), b = normal.Detect(normalised);
    REQUIRE(a.mentions.size() == b.mentions.size());
    for (std::size_t i = 0; i < a.mentions.size(); ++i) {
      CHECK(a.mentions[i].flag == b.mentions[i].flag);
      CHECK(a.mentions[i].attribution == b.mentions[i].attribution);
    }
  }
  CHECK(tiny.SetFallbacks() == 3);  // counted, for /metrics
  CHECK(normal.SetFallbacks() == 0);
  CHECK_FALSE(tiny.Detect(engine.normaliser().Normalise("I can't breathe")).mentions.empty());
}
}  // namespace backcheck
