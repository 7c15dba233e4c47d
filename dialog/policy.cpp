#include "dialog/policy.hpp"

#include <algorithm>
#include <bit>

namespace backcheck::dialog {

using knowledge::IntentKind;
using knowledge::StateRole;
using knowledge::Urgency;
using K = Part::Kind;

namespace {

template <typename F>
void ForEachFlag(FlagMask mask, F&& f) {
  for (; mask != 0; mask &= mask - 1) f(static_cast<std::size_t>(std::countr_zero(mask)));
}

bool Has(const std::vector<std::string>& list, const std::string& id) {
  return std::find(list.begin(), list.end(), id) != list.end();
}

}  // namespace

// One message's way through the policy: what it says, where the conversation was and is going,
// and the decision being built.
struct Step {
  const knowledge::KnowledgeBase& kb;
  const CoreIntents& core;
  const Reading& r;
  const knowledge::FlowState* from = nullptr;  // the state the message arrived in
  const knowledge::FlowState* to = nullptr;    // the state after the transition
  Decision d;
  bool said_fallback = false;

  ConversationState& s() { return d.state; }
  const ConversationState& s() const { return d.state; }
  IntentKind kind() const { return kb.intents[d.intent].kind; }
  bool entering_screening() const { return to->role == StateRole::kScreening && from->role != StateRole::kScreening; }
  bool staying_in_screening() const {
    return to->role == StateRole::kScreening && (r.in_screening || r.screening_reask);
  }
  bool knows_training() const { return d.state.slots.hours || !d.state.slots.exercise.empty(); }

  void Say(Part part) { d.plan.parts.push_back(part); }
  void SayText(const char* name) { Say({.kind = K::kText, .name = name}); }
  void SayAnswer() { Say({.kind = K::kAnswer, .index = d.intent, .state = to}); }
  void Offer(const char* set) { d.plan.quick_replies = set; }
  Urgency MaxLevel(FlagMask mask) const {
    Urgency level = Urgency::kNone;
    ForEachFlag(mask, [&](std::size_t f) { level = std::max(level, kb.red_flags.flags[f].level); });
    return level;
  }
  // The next fallback wording (never the same twice in a row); the topics after a second miss.
  void SayFallback() {
    Say({.kind = K::kFallback, .index = s().fallbacks_said++});
    said_fallback = true;
    if (++s().misses_in_row >= 2) Offer("topics");
  }
  void AskScreeningQuestion() {
    Say({.kind = K::kScreeningQuestion, .index = s().screening_step});
    Offer("yes_no");
  }
  // The advice fitted to what they told us, or the question that lets us fit it.
  void TailorOrAskTraining() {
    if (knows_training()) {
      Say({.kind = K::kTailoring});
    } else {
      SayText("ask_training");
      s().asked_training = true;
    }
  }
};

// What a state does with a message, beyond what every state does (see policy.hpp).
class RolePolicy {
 public:
  virtual ~RolePolicy() = default;
  // The flow event the message raises here (red_flag is decided before, for every state).
  virtual std::string Event(Step&) const { return ""; }
  // After a side remark (someone else's symptom, a "no" to a pending question): back to what
  // this state was waiting for.
  virtual void Resume(Step&) const {}
  virtual void Plan(Step& t) const = 0;
};

namespace {

// welcome, advising, ended: topics, tailoring, retrieval, the fallback; a first report of their
// own pain starts the safety screening.
class ConversingPolicy final : public RolePolicy {
 public:
  std::string Event(Step& t) const override {
    const bool report = t.kind() == IntentKind::kReport || t.r.reports_pain;
    return report && !t.s().screened && !t.r.in_screening ? "start_screening" : "";
  }
  void Plan(Step& t) const override {
    if (t.entering_screening()) {
      t.s().screening_step = 0;
      t.SayAnswer();
      t.SayText("screening_intro");
      t.AskScreeningQuestion();
    } else if (TellsOfTraining(t)) {
      // Their own pain again, or the answer to "when and what did you train?": tailor the advice.
      t.d.intent = t.core.describe_pain;
      if (t.knows_training()) {
        t.Say({.kind = K::kTailoring});
        t.Say({.kind = K::kTopicQuickReplies, .index = t.d.intent});
      } else {
        t.SayAnswer();
        t.TailorOrAskTraining();
      }
    } else if (t.r.passage) {
      t.Say({.kind = K::kRetrieval, .index = *t.r.passage});
      t.Say({.kind = K::kTopicQuickReplies, .index = t.d.intent});
    } else if (t.d.intent == t.core.fallback) {
      t.SayFallback();
    } else {
      t.SayAnswer();
    }
  }

 private:
  static bool TellsOfTraining(const Step& t) {
    if (t.kind() == IntentKind::kReport) return true;
    if (!t.s().asked_training || !t.r.slots_found) return false;
    return t.d.intent == t.core.fallback || t.kind() == IntentKind::kAnswer ||
           (t.kind() == IntentKind::kQuestion && !t.r.asks);
  }
};

// screening: one question at a time; a "no" moves to the next, the last "no" passes.
class ScreeningPolicy final : public RolePolicy {
 public:
  std::string Event(Step& t) const override {
    // A "no" to "is it there now?" (a past symptom) is not a screening answer.
    if (!t.r.in_screening || t.d.intent != t.core.deny || t.r.past_pending) return "";
    if (++t.s().screening_step < t.kb.flow.screening.size()) return "";
    t.s().screened = true;
    return "screening_passed";
  }
  void Resume(Step& t) const override {
    if (!t.staying_in_screening()) return;
    t.SayText("screening_resume");
    t.AskScreeningQuestion();
  }
  void Plan(Step& t) const override {
    if (t.d.event == "screening_passed") {
      t.SayText("screening_passed");
      t.TailorOrAskTraining();
      return;
    }
    if (!t.staying_in_screening()) {  // leaving ("bye")
      t.SayAnswer();
      return;
    }
    if (t.d.intent == t.core.fallback) {
      t.SayText("screening_unsure");
    } else if (t.d.intent != t.core.deny) {
      t.SayAnswer();  // a question in between is answered, then the screening goes on
      t.SayText("screening_resume");
    }
    t.AskScreeningQuestion();
  }
};

// escalated: every answer fits the escalation (the state's own answers first), and the quick
// replies stay the escalation's; no tailored self-care, no screening.
class EscalatedPolicy final : public RolePolicy {
 public:
  void Plan(Step& t) const override {
    const auto& answers = t.to->answers;
    auto own = answers.find(t.kb.intents[t.d.intent].id);
    if (own != answers.end()) {
      t.SayAnswer();
      if (own->second.quick_replies.empty()) t.Offer("escalated");
      return;
    }
    if (t.d.intent == t.core.fallback) {
      t.SayFallback();
    } else {
      t.SayAnswer();
    }
    t.Offer("escalated");
  }
};

// Flags the person affirms raise the urgency; the rise is the escalation.
void Affirm(Step& t) {
  auto& s = t.s();
  const Urgency before = s.urgency;
  ForEachFlag(t.r.self, [&](std::size_t f) {
    const auto& flag = t.kb.red_flags.flags[f];
    if (!Has(s.flags, flag.id)) s.flags.push_back(flag.id);
    s.urgency = std::max(s.urgency, flag.level);
  });
  t.d.affirmed = t.r.self;
  t.d.escalated = s.urgency > before;
  // The safety net asks about flags not affirmed before, and not once the reply leads with what
  // to do now.
  FlagMask asked = t.d.escalated ? 0 : t.r.possible;
  ForEachFlag(asked, [&](std::size_t f) {
    if (Has(s.flags, t.kb.red_flags.flags[f].id)) asked &= ~(FlagMask{1} << f);
  });
  t.d.asked = asked;
}

const knowledge::FlowState* Next(const Step& t) {
  const auto& on = t.from->on;
  const std::string_view events[] = {t.d.event, t.kb.intents[t.d.intent].id,
                                     t.kind() == IntentKind::kQuestion ? "question" : "", "message"};
  for (std::string_view e : events) {
    if (e.empty()) continue;
    if (auto it = on.find(e); it != on.end()) return t.kb.flow.FindState(it->second);
  }
  return t.from;
}

// An escalated conversation leads every reply with what to do now, and why each new flag matters.
void SaySafetyFirst(Step& t) {
  if (t.s().urgency == Urgency::kNone) return;
  t.Say({.kind = K::kGuidance, .level = t.s().urgency});
  if (t.r.self) t.Say({.kind = K::kExplanations, .flags = t.r.self});
}

bool AnswersQuestionFirst(const Step& t) {
  return t.kind() == IntentKind::kQuestion && t.d.intent != t.core.warning_signs;
}

void PlanEscalationNow(Step& t) {
  if (AnswersQuestionFirst(t)) t.SayAnswer();
  t.Offer("escalated");
}

// The safety net: the question about each flag with partial evidence, and, so that nobody has to
// answer first to learn what to do in an emergency, what to do if so.
void PlanSafetyNet(Step& t) {
  if (AnswersQuestionFirst(t)) t.SayAnswer();
  t.Say({.kind = K::kQuestions, .flags = t.d.asked});
  t.Say({.kind = K::kConditionalGuidance, .level = t.MaxLevel(t.d.asked)});
  ForEachFlag(t.d.asked, [&](std::size_t f) { t.s().pending_flags.push_back(t.kb.red_flags.flags[f].id); });
  t.s().pending_possible = true;
  t.Offer("yes_no");
  if (t.entering_screening()) t.s().screening_step = 0;  // screening starts after the answer
}

void PlanPastSymptom(Step& t) {
  ForEachFlag(t.r.past, [&](std::size_t f) { t.s().pending_flags.push_back(t.kb.red_flags.flags[f].id); });
  t.Say({.kind = K::kPastClarify, .flags = t.r.past});
  t.Offer("yes_no");
}

// What every state does the same way; false when the state's own policy decides.
bool PlanCommon(Step& t, const RolePolicy& here) {
  if (t.d.escalated) {
    PlanEscalationNow(t);
  } else if (t.d.asked) {
    PlanSafetyNet(t);
  } else if (t.r.other) {
    t.SayText("third_party_intro");
    t.Say({.kind = K::kThirdPartyGuidance, .level = t.MaxLevel(t.r.other)});
    here.Resume(t);
  } else if (t.r.past) {
    PlanPastSymptom(t);
  } else if (t.r.past_pending && t.d.intent == t.core.deny) {
    t.SayText(t.r.possible_pending ? "possible_denied" : "past_denied");
    here.Resume(t);
  } else {
    return false;
  }
  return true;
}

}  // namespace

Policy::Policy(const knowledge::KnowledgeBase& kb, const CoreIntents& core) : kb_(kb), core_(core) {
  roles_[static_cast<int>(StateRole::kWelcome)] = std::make_unique<ConversingPolicy>();
  roles_[static_cast<int>(StateRole::kAdvising)] = std::make_unique<ConversingPolicy>();
  roles_[static_cast<int>(StateRole::kEnded)] = std::make_unique<ConversingPolicy>();
  roles_[static_cast<int>(StateRole::kScreening)] = std::make_unique<ScreeningPolicy>();
  roles_[static_cast<int>(StateRole::kEscalated)] = std::make_unique<EscalatedPolicy>();
}

Policy::~Policy() = default;

Decision Policy::Decide(const ConversationState& previous, const Reading& r) const {
  Step t{kb_, core_, r};
  t.d.plan.parts.reserve(8);  // more than nearly any plan has: one allocation, not one per doubling
  t.d.state = previous;
  t.d.intent = r.intent;
  t.from = kb_.flow.FindState(previous.state);
  if (!t.from) t.from = kb_.flow.FindState(kb_.flow.initial);
  auto& s = t.s();
  ++s.turns;
  s.slots = r.slots;
  s.pending_flags.clear();  // a question about them is asked once (the safety net's again, via r.possible)
  s.pending_possible = false;

  Affirm(t);
  const RolePolicy& here = *roles_[static_cast<int>(t.from->role)];
  t.d.event = t.d.escalated ? "red_flag" : here.Event(t);
  t.to = Next(t);
  s.state = t.to->id;

  SaySafetyFirst(t);
  if (!PlanCommon(t, here)) here.Plan(t);
  if (!t.said_fallback) s.misses_in_row = 0;
  return std::move(t.d);
}

}  // namespace backcheck::dialog
