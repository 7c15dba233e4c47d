#include "dialog/engine.hpp"

#include <algorithm>
#include <bit>
#include <cstdio>

namespace backcheck::dialog {

namespace {

std::shared_ptr<const Speller> MakeSpeller(const knowledge::KnowledgeBase& kb, const EngineOptions& options) {
  if (!options.spelling) return nullptr;
  auto speller = std::make_shared<const Speller>(DomainWords(kb), options.dictionaries);
  if (!speller->active()) {
    std::string which;
    for (const auto& path : speller->unreadable()) which += (which.empty() ? "" : ", ") + path;
    std::fprintf(stderr, "backcheck: spelling correction is off: cannot read %s (Debian packages wamerican, wbritish)\n",
                 which.empty() ? "the word lists" : which.c_str());
    return nullptr;
  }
  return speller;
}

}  // namespace

Engine::Engine(std::shared_ptr<const knowledge::KnowledgeBase> kb, EngineOptions options)
    : kb_(std::move(kb)),
      normaliser_(kb_->language, MakeSpeller(*kb_, options)),
      matcher_(kb_->intents, options.matcher),
      detector_(kb_->red_flags, RedFlagDetector::kSetMaxMem, normaliser_.speller()),
      slots_(kb_->language),
      passages_(kb_->article, kb_->language.stopwords),
      core_(*kb_),
      interpreter_(*kb_, normaliser_, matcher_, detector_, slots_, passages_, core_),
      policy_(*kb_, core_),
      composer_(*kb_) {}

ConversationState Engine::Start() const {
  ConversationState s;
  s.state = kb_->flow.initial;
  Stamp(s);
  return s;
}

ConversationState Engine::Adopt(const ConversationState& state, bool* question_gone) const {
  if (question_gone) *question_gone = false;
  const knowledge::FlowState* here = kb_->flow.FindState(state.state);
  const auto& questions = kb_->flow.screening;  // never empty (the loader checks)
  if (!here || here->role != knowledge::StateRole::kScreening || questions.empty()) return state;
  ConversationState out = state;
  if (!state.screening_question.empty()) {
    const auto it = std::find_if(questions.begin(), questions.end(),
                                 [&](const knowledge::ScreeningQuestion& q) { return q.id == state.screening_question; });
    if (it != questions.end()) {
      out.screening_step = static_cast<std::uint32_t>(it - questions.begin());
      return out;
    }
    if (question_gone) *question_gone = true;
  }
  out.screening_step = std::min<std::uint32_t>(state.screening_step, static_cast<std::uint32_t>(questions.size() - 1));
  return out;
}

void Engine::Stamp(ConversationState& state) const {
  state.kb_version = kb_->version;
  const knowledge::FlowState* here = kb_->flow.FindState(state.state);
  const bool screening = here && here->role == knowledge::StateRole::kScreening &&
                         state.screening_step < kb_->flow.screening.size();
  state.screening_question = screening ? kb_->flow.screening[state.screening_step].id : std::string();
}

ConversationState Engine::End(const ConversationState& state) const {
  ConversationState out = state;
  const knowledge::FlowState* current = kb_->flow.FindState(state.state);
  if (!current) current = kb_->flow.FindState(kb_->flow.initial);
  if (auto it = current->on.find("goodbye"); it != current->on.end()) out.state = it->second;
  out.pending_flags.clear();
  return out;
}

ConversationState Engine::Escalate(const ConversationState& state, knowledge::Urgency level,
                                  const std::vector<std::string>& flags) const {
  ConversationState out = state;
  for (const auto& f : flags) {
    if (std::find(out.flags.begin(), out.flags.end(), f) == out.flags.end()) out.flags.push_back(f);
  }
  if (level <= out.urgency) return out;
  out.urgency = level;
  const knowledge::FlowState* current = kb_->flow.FindState(out.state);
  if (!current) current = kb_->flow.FindState(kb_->flow.initial);
  if (auto it = current->on.find("red_flag"); it != current->on.end()) out.state = it->second;
  return out;
}

const std::string& Engine::Greeting() const { return kb_->flow.Text("greeting"); }

Engine::Welcome Engine::WelcomeReply() const {
  const auto& flow = kb_->flow;
  auto replies = flow.QuickReplies("welcome");
  return Welcome{flow.Text("greeting"), replies.empty() ? flow.QuickReplies("default") : replies};
}

Turn Engine::Respond(const ConversationState& state, std::string_view text,
                     const std::optional<MessageTime>& now, bool trace) const {
  bool question_gone = false;
  const ConversationState adopted = Adopt(state, &question_gone);
  Turn turn = Answer(adopted, text, now, trace, question_gone);
  Stamp(turn.state);
  if (state.operator_name.empty()) return turn;
  // An operator has joined: they answer. The red-flag layer still ran on the message: a new or
  // higher flag, or one the safety net asks about, is said at once (and escalates); anything
  // else is for the operator alone, and the conversation's flow waits where it was.
  const bool safety = turn.reply.escalated || !turn.reply.red_flags.empty() || !turn.reply.possible_flags.empty();
  if (safety) return turn;
  Turn silent{Reply{}, adopted, {}};
  ++silent.state.turns;
  Stamp(silent.state);
  silent.reply.intent = turn.reply.intent;
  silent.reply.state = state.state;
  silent.reply.urgency = state.urgency;
  silent.reply.to_operator = true;
  return silent;
}

ConversationState Engine::Join(const ConversationState& state, const std::string& operator_name) const {
  ConversationState joined = state;
  joined.operator_name = operator_name;
  return joined;
}

ConversationState Engine::Leave(const ConversationState& state) const {
  ConversationState left = state;
  left.operator_name.clear();
  return left;
}

Turn Engine::Answer(const ConversationState& state, std::string_view text, const std::optional<MessageTime>& now,
                    bool trace, bool question_gone) const {
  const Reading reading = interpreter_.Read(state, text, now, question_gone);
  Decision decision = policy_.Decide(state, reading);
  Turn turn{Reply{}, std::move(decision.state)};
  Reply& reply = turn.reply;
  composer_.Compose(decision.plan, turn.state, reply, trace ? &turn.said : nullptr);
  const auto& flags = kb_->red_flags.flags;
  for (FlagMask m = decision.affirmed; m != 0; m &= m - 1) reply.red_flags.push_back(flags[std::countr_zero(m)].id);
  for (FlagMask m = decision.asked; m != 0; m &= m - 1) reply.possible_flags.push_back(flags[std::countr_zero(m)].id);
  const auto& intent = kb_->intents[decision.intent];
  reply.intent = intent.reported_as.empty() ? intent.id : intent.reported_as;
  reply.state = turn.state.state;
  reply.urgency = turn.state.urgency;
  reply.escalated = decision.escalated;
  turn.fell_back = decision.intent == core_.fallback;
  for (const auto& part : decision.plan.parts) {
    if (part.kind == Part::Kind::kRetrieval) turn.retrieval_score = reading.passage_score;
  }
  return turn;
}

}  // namespace backcheck::dialog
