// Step 3 of a reply on its own: Composer::Compose (dialog/compose.hpp) turns hand-built plans into
// text, sources and quick replies. Every expected text is read from the loaded knowledge base
// (engine.kb()), never copied here; what a reply is made of is checked by its `said` ids.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "test_support.hpp"

using backcheck::dialog::ConversationState;
using backcheck::dialog::Part;
using backcheck::dialog::Plan;
using backcheck::dialog::Reply;
using backcheck::knowledge::StateRole;
using backcheck::knowledge::Urgency;
using backcheck::knowledge::UrgencyName;
using backcheck::test::Contains;
using backcheck::test::InRole;
using backcheck::test::TestEngine;
using K = Part::Kind;

namespace {

const auto& Kb() { return TestEngine().kb(); }
const auto& Core() { return TestEngine().core_intents(); }

struct Composed {
  Reply reply;
  std::vector<std::string> said;
};

Composed Compose(const Plan& plan, const ConversationState& state) {
  Composed c;
  TestEngine().composer().Compose(plan, state, c.reply, &c.said);
  return c;
}
Composed Compose(std::vector<Part> parts, const ConversationState& state, std::string quick_replies = "") {
  return Compose(Plan{std::move(parts), std::move(quick_replies)}, state);
}

bool Has(const std::vector<std::string>& v, const std::string& x) { return std::find(v.begin(), v.end(), x) != v.end(); }
std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : " ") + s;
  return out;
}

std::size_t IntentIndex(const std::string& id) {
  const auto& intents = Kb().intents;
  auto it = std::find_if(intents.begin(), intents.end(), [&](const auto& i) { return i.id == id; });
  REQUIRE(it != intents.end());
  return static_cast<std::size_t>(it - intents.begin());
}

const backcheck::knowledge::TailoringRule& Rule(const std::string& id) {
  const auto& rules = Kb().flow.tailoring;
  auto it = std::find_if(rules.begin(), rules.end(), [&](const auto& r) { return r.id == id; });
  REQUIRE(it != rules.end());
  return *it;
}

}  // namespace

TEST_CASE("Composer: guidance, conditional and third-party texts are the knowledge base's for each level",
          "[compose]") {
  const ConversationState s = InRole(StateRole::kEscalated);
  REQUIRE_FALSE(Kb().red_flags.guidance.empty());
  for (const auto& g : Kb().red_flags.guidance) {
    const std::string level = UrgencyName(g.level);
    INFO("level " << level);
    const auto now = Compose({Part{.kind = K::kGuidance, .level = g.level}}, s);
    CHECK(now.reply.text == g.text);
    CHECK(now.said == std::vector<std::string>{"guidance:" + level});

    const auto conditional = Compose({Part{.kind = K::kConditionalGuidance, .level = g.level}}, s);
    CHECK(conditional.reply.text == g.conditional);
    CHECK(conditional.said == std::vector<std::string>{"conditional:" + level});

    const auto other = Compose({Part{.kind = K::kThirdPartyGuidance, .level = g.level}}, s);
    CHECK(other.reply.text == g.third_party);
    CHECK(other.said == std::vector<std::string>{"third_party:" + level});
  }
  SECTION("the guidance leads, the explanation of each flag follows, with the flag's sources") {
    const auto& flags = Kb().red_flags.flags;
    std::size_t f = 0;
    while (f < flags.size() && flags[f].sources.empty()) ++f;
    REQUIRE(f < flags.size());
    const auto c = Compose({Part{.kind = K::kGuidance, .level = flags[f].level},
                            Part{.kind = K::kExplanations, .flags = backcheck::dialog::FlagMask{1} << f}},
                           s);
    CHECK(c.said == std::vector<std::string>{std::string("guidance:") + UrgencyName(flags[f].level),
                                             "explanation:" + flags[f].id});
    const auto* g = &Kb().red_flags.guidance.front();
    for (const auto& x : Kb().red_flags.guidance) {
      if (x.level == flags[f].level) g = &x;
    }
    CHECK(c.reply.text.rfind(g->text, 0) == 0);
    CHECK(Contains(c.reply.text, flags[f].explanation));
    CHECK(c.reply.text.find(g->text) < c.reply.text.find(flags[f].explanation));
    REQUIRE(c.reply.sources.size() == flags[f].sources.size());
    CHECK(c.reply.sources[0].quote == flags[f].sources[0].quote);
  }
}

TEST_CASE("Composer: a state's own answer wins over the topic's; without one, the topic answers", "[compose]") {
  const auto& escalated = Kb().flow.StateWithRole(StateRole::kEscalated);
  const auto& advising = Kb().flow.StateWithRole(StateRole::kAdvising);
  const std::size_t describe_pain = Core().describe_pain;
  const std::string& id = Kb().intents[describe_pain].id;
  const auto* topic = Kb().FindTopic(id);
  REQUIRE(topic != nullptr);
  REQUIRE(escalated.answers.count(id) == 1);
  REQUIRE(advising.answers.count(id) == 0);
  const auto& own = escalated.answers.at(id);
  REQUIRE(own.text != topic->answer);

  const auto in_escalated = Compose({Part{.kind = K::kAnswer, .index = describe_pain, .state = &escalated}},
                                    InRole(StateRole::kEscalated));
  CHECK(in_escalated.reply.text == own.text);
  CHECK(in_escalated.said == std::vector<std::string>{"answer:" + escalated.id + "/" + id});
  CHECK_FALSE(Has(in_escalated.said, "answer:" + topic->id));

  const auto in_advising = Compose({Part{.kind = K::kAnswer, .index = describe_pain, .state = &advising}},
                                   InRole(StateRole::kAdvising));
  CHECK(in_advising.reply.text == topic->answer);
  CHECK(in_advising.said == std::vector<std::string>{"answer:" + topic->id});
  CHECK(in_advising.reply.sources.size() == topic->sources.size());

  const auto no_state = Compose({Part{.kind = K::kAnswer, .index = describe_pain}}, InRole(StateRole::kEscalated));
  CHECK(no_state.reply.text == topic->answer);
  CHECK(no_state.said == std::vector<std::string>{"answer:" + topic->id});
}

TEST_CASE("Composer: quick replies: the plan's named set, else the first part's, else the state's, else the default",
          "[compose]") {
  const auto& flow = Kb().flow;
  const std::size_t first_intent = IntentIndex("ice_heat"), second_intent = IntentIndex("mobility");
  const auto* first = Kb().FindTopic("ice_heat");
  const auto* second = Kb().FindTopic("mobility");
  REQUIRE(first != nullptr);
  REQUIRE(second != nullptr);
  REQUIRE_FALSE(first->quick_replies.empty());
  REQUIRE(first->quick_replies != second->quick_replies);
  const ConversationState welcome = InRole(StateRole::kWelcome);
  const ConversationState advising = InRole(StateRole::kAdvising);
  REQUIRE_FALSE(flow.QuickReplies(welcome.state).empty());
  REQUIRE(flow.QuickReplies(advising.state).empty());  // advising has no set of its own
  REQUIRE(flow.QuickReplies("yes_no") != first->quick_replies);
  REQUIRE(flow.QuickReplies(welcome.state) != flow.QuickReplies("default"));

  const std::vector<Part> answers = {Part{.kind = K::kAnswer, .index = first_intent},
                                     Part{.kind = K::kAnswer, .index = second_intent}};
  // 1. The plan's named set overrides the answers'.
  CHECK(Compose(answers, welcome, "yes_no").reply.quick_replies == flow.QuickReplies("yes_no"));
  // 2. The first part that has some.
  CHECK(Compose(answers, welcome).reply.quick_replies == first->quick_replies);
  CHECK(Compose({Part{.kind = K::kText, .name = "screening_resume"}, answers[1], answers[0]}, welcome)
            .reply.quick_replies == second->quick_replies);
  // A part offering a topic's quick replies, without saying anything.
  const auto offered = Compose({Part{.kind = K::kText, .name = "screening_resume"},
                                Part{.kind = K::kTopicQuickReplies, .index = second_intent}},
                               welcome);
  CHECK(offered.reply.quick_replies == second->quick_replies);
  CHECK(offered.said == std::vector<std::string>{"text:screening_resume"});
  // 3. No part has any: the state's set.
  const std::vector<Part> text_only = {Part{.kind = K::kText, .name = "screening_resume"}};
  CHECK(Compose(text_only, welcome).reply.quick_replies == flow.QuickReplies(welcome.state));
  // 4. Nor the state: the default set.
  CHECK(Compose(text_only, advising).reply.quick_replies == flow.QuickReplies("default"));
  // An unknown named set does not blank the quick replies.
  CHECK(Compose(text_only, advising, "no_such_set").reply.quick_replies == flow.QuickReplies("default"));
}

TEST_CASE("Composer: self-care tailoring by hours since training: heat late, ice early, both when unknown",
          "[compose]") {
  const auto& late = Rule("self_care_late");
  const auto& early = Rule("self_care_early");
  const auto& any = Rule("self_care_any_time");
  REQUIRE(late.hours_min.has_value());
  REQUIRE(early.hours_max.has_value());
  REQUIRE(any.hours_unknown);
  const int boundary = *late.hours_min;  // 72 in the knowledge base

  const auto tailored = [](std::optional<int> hours) {
    ConversationState s = InRole(StateRole::kAdvising);
    s.slots.hours = hours;
    return Compose({Part{.kind = K::kTailoring}}, s);
  };

  SECTION("at and after the rule's first hour: self_care_late") {
    for (int hours : {boundary, boundary + 1, boundary + 100}) {
      const auto c = tailored(hours);
      INFO(hours << " h: " << Join(c.said));
      CHECK(Has(c.said, "tailoring:self_care_late"));
      CHECK_FALSE(Has(c.said, "tailoring:self_care_early"));
      CHECK_FALSE(Has(c.said, "tailoring:self_care_any_time"));
    }
  }
  SECTION("fewer hours: self_care_early") {
    for (int hours : {boundary - 1, 24, 0}) {
      const auto c = tailored(hours);
      INFO(hours << " h: " << Join(c.said));
      CHECK(Has(c.said, "tailoring:self_care_early"));
      CHECK_FALSE(Has(c.said, "tailoring:self_care_late"));
      CHECK_FALSE(Has(c.said, "tailoring:self_care_any_time"));
    }
  }
  SECTION("unknown: self_care_any_time, and no rule that needs the hours") {
    const auto c = tailored(std::nullopt);
    INFO(Join(c.said));
    CHECK(Has(c.said, "tailoring:self_care_any_time"));
    CHECK_FALSE(Has(c.said, "tailoring:self_care_early"));
    CHECK_FALSE(Has(c.said, "tailoring:self_care_late"));
    for (const auto& rule : Kb().flow.tailoring) {
      if (rule.hours_min || rule.hours_max) CHECK_FALSE(Has(c.said, "tailoring:" + rule.id));
    }
  }
  SECTION("every hour gets exactly one of the three self-care rules") {
    for (int hours = 0; hours <= boundary + 48; ++hours) {
      const auto c = tailored(hours);
      const int n = Has(c.said, "tailoring:self_care_late") + Has(c.said, "tailoring:self_care_early") +
                    Has(c.said, "tailoring:self_care_any_time");
      INFO(hours << " h: " << Join(c.said));
      CHECK(n == 1);
    }
  }
  SECTION("the intro first, the rules' texts filled with the slots, their sources cited") {
    ConversationState s = InRole(StateRole::kAdvising);
    s.slots.hours = 24;
    s.slots.exercise = "rows";
    s.slots.exercise_category = "pull";
    const auto c = Compose({Part{.kind = K::kTailoring}}, s);
    INFO(Join(c.said));
    REQUIRE_FALSE(c.said.empty());
    CHECK(c.said[0] == "text:tailoring_intro");
    CHECK(c.reply.text.rfind(Kb().flow.Text("tailoring_intro"), 0) == 0);
    CHECK(Has(c.said, "tailoring:pull_form"));
    CHECK_FALSE(Contains(c.reply.text, "{hours}"));
    CHECK_FALSE(Contains(c.reply.text, "{exercise}"));
    CHECK(Contains(c.reply.text, "24"));
    CHECK(Contains(c.reply.text, s.slots.exercise));
    CHECK_FALSE(c.reply.sources.empty());
  }
}

TEST_CASE("Composer: fallback wordings rotate by the part's index, modulo their number", "[compose]") {
  const auto& fallbacks = Kb().flow.fallbacks;
  REQUIRE(fallbacks.size() >= 2);
  const ConversationState s = InRole(StateRole::kAdvising);
  const std::size_t n = fallbacks.size();
  for (std::size_t i = 0; i < 2 * n + 1; ++i) {
    const auto c = Compose({Part{.kind = K::kFallback, .index = i}}, s);
    INFO("index " << i);
    CHECK(c.said == std::vector<std::string>{"fallback:" + std::to_string(i % n)});
    CHECK(c.reply.text == fallbacks[i % n]);
  }
  CHECK(Compose({Part{.kind = K::kFallback, .index = 0}}, s).reply.text !=
        Compose({Part{.kind = K::kFallback, .index = 1}}, s).reply.text);
}

TEST_CASE("Composer: texts, screening questions, the past clarification and retrieval come from the knowledge base",
          "[compose]") {
  const auto& flow = Kb().flow;
  const ConversationState s = InRole(StateRole::kScreening);

  for (std::size_t i = 0; i < flow.screening.size(); ++i) {
    const auto c = Compose({Part{.kind = K::kScreeningQuestion, .index = i}}, s);
    CHECK(c.reply.text == flow.screening[i].text);
    CHECK(c.said == std::vector<std::string>{"screening:" + flow.screening[i].id});
  }
  const auto intro = Compose({Part{.kind = K::kText, .name = "screening_intro"},
                              Part{.kind = K::kScreeningQuestion, .index = 0}},
                             s);
  CHECK(intro.said == std::vector<std::string>{"text:screening_intro", "screening:" + flow.screening[0].id});
  CHECK(intro.reply.text == flow.Text("screening_intro") + "\n\n" + flow.screening[0].text);

  // The past clarification names each flag as the knowledge base does.
  const auto& flags = Kb().red_flags.flags;
  REQUIRE(flags.size() >= 2);
  const auto past = Compose({Part{.kind = K::kPastClarify, .flags = 0b11}}, s);
  CHECK(past.said == std::vector<std::string>{"past_clarify"});
  CHECK(Contains(past.reply.text, flags[0].name));
  CHECK(Contains(past.reply.text, flags[1].name));
  CHECK_FALSE(Contains(past.reply.text, "{flags}"));

  // The safety net's questions, one per flag, in the knowledge base's order.
  std::vector<std::size_t> with_question;
  for (std::size_t f = 0; f < flags.size() && with_question.size() < 2; ++f) {
    if (!flags[f].question.empty()) with_question.push_back(f);
  }
  REQUIRE(with_question.size() == 2);
  const std::size_t a = with_question[0], b = with_question[1];
  const auto asked = Compose(
      {Part{.kind = K::kQuestions, .flags = (backcheck::dialog::FlagMask{1} << a) | (backcheck::dialog::FlagMask{1} << b)}},
      s);
  CHECK(asked.said == std::vector<std::string>{"question:" + flags[a].id, "question:" + flags[b].id});
  CHECK(asked.reply.text == flags[a].question + "\n\n" + flags[b].question);

  // A retrieved sentence, with its section as the source.
  const auto& sentences = Kb().article.sentences();
  REQUIRE_FALSE(sentences.empty());
  const std::size_t at = sentences.size() / 2;
  const auto retrieved = Compose({Part{.kind = K::kRetrieval, .index = at}}, InRole(StateRole::kAdvising));
  CHECK(retrieved.said == std::vector<std::string>{"retrieval:" + std::to_string(at)});
  CHECK(Contains(retrieved.reply.text, sentences[at].text));
  const auto& heading = Kb().article.sections()[sentences[at].section].heading;
  CHECK(Contains(retrieved.reply.text, heading));
  REQUIRE(retrieved.reply.sources.size() == 1);
  CHECK(retrieved.reply.sources[0].section == heading);
  CHECK(retrieved.reply.sources[0].quote == sentences[at].text);
}
