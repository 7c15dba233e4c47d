#include "dialog/interpret.hpp"

#include <algorithm>
#include <stdexcept>

#include "knowledge/loader.hpp"

namespace backcheck::dialog {

using knowledge::IntentKind;

namespace {

// The patterns of the three in one pass, when all three match through a set.
std::unique_ptr<const PatternPass> MakePatternPass(const IntentMatcher& matcher, const RedFlagDetector& detector,
                                                   const SlotExtractor& slots) {
  auto intents = matcher.SetPatterns();
  auto red_flags = detector.SetPatterns();
  if (!intents || !red_flags) return nullptr;
  // What the three sets may use, together.
  const std::int64_t max_mem = IntentMatcher::kSetMaxMem + RedFlagDetector::kSetMaxMem + RE2::Options::kDefaultMaxMem;
  auto pass = std::make_unique<const PatternPass>(*intents, *red_flags, slots.SetPatterns(), max_mem);
  if (!pass->active()) return nullptr;
  return pass;
}

std::size_t IntentIndex(const knowledge::KnowledgeBase& kb, std::string_view id) {
  for (std::size_t i = 0; i < kb.intents.size(); ++i) {
    if (kb.intents[i].id == id) return i;
  }
  throw std::runtime_error("knowledge base has no intent '" + std::string(id) + "'");
}

}  // namespace

CoreIntents::CoreIntents(const knowledge::KnowledgeBase& kb)
    : fallback(IntentIndex(kb, "fallback")),
      affirm(IntentIndex(kb, "affirm")),
      deny(IntentIndex(kb, "deny")),
      describe_pain(IntentIndex(kb, "describe_pain")),
      warning_signs(IntentIndex(kb, "warning_signs")) {}

Interpreter::Interpreter(const knowledge::KnowledgeBase& kb, const Normaliser& normaliser,
                         const IntentMatcher& matcher, const RedFlagDetector& detector, const SlotExtractor& slots,
                         const knowledge::PassageIndex& passages, const CoreIntents& core)
    : kb_(kb), normaliser_(normaliser), matcher_(matcher), detector_(detector), slots_(slots), passages_(passages),
      core_(core), pass_(MakePatternPass(matcher, detector, slots)) {
  // A retrieved sentence is answered as the intent of the first topic citing it (topic ids with
  // a ':' are tailoring rules and flags, not intents).
  for (const auto& citers : knowledge::CitationsBySentence(kb_)) {
    auto topic = std::find_if(citers.begin(), citers.end(),
                              [](const std::string& id) { return id.find(':') == std::string::npos; });
    intent_of_sentence_.push_back(topic == citers.end() ? std::nullopt
                                                        : std::optional<std::size_t>(IntentIndex(kb_, *topic)));
  }
}

std::optional<std::size_t> Interpreter::IntentOfSentence(std::size_t sentence) const {
  return sentence < intent_of_sentence_.size() ? intent_of_sentence_[sentence] : std::nullopt;
}

FlagMask Interpreter::MaskOf(const std::vector<std::string>& ids) const {
  const auto& flags = kb_.red_flags.flags;
  FlagMask m = 0;
  for (std::size_t f = 0; f < flags.size(); ++f) {
    if (std::find(ids.begin(), ids.end(), flags[f].id) != ids.end()) m |= FlagMask{1} << f;
  }
  return m;
}

void Interpreter::ReadAnswer(FlagMask asked, const Detection& detection, Reading& r) const {
  const FlagMask negated = detection.Mask(Attribution::kNegated);
  const bool question = kb_.intents[r.intent].kind == IntentKind::kQuestion;
  if (r.intent == core_.affirm) {
    // "Yes" affirms what the question asked about; "yes, the tingling" only the flags it names.
    r.self |= (r.self & asked) ? 0 : asked;
  } else if (r.self == 0 && (negated & asked) && !question) {
    r.intent = core_.deny;  // "no numbness, no tingling" answers a question about them as "no" does
  } else if (r.intent == core_.deny && negated && !(negated & asked)) {
    r.intent = core_.fallback;  // "no fever" to the arm question rules out nothing it asked: ask again
  }
}

// "my back hurts after rows, is it serious?": the question wins and is answered, and the report
// in its own clause still starts the safety screening. "why does my back hurt after the gym?" is
// one clause whose best reading is the question: asking, not reporting.
bool Interpreter::ReportsPain(std::string_view normalised, std::string_view state,
                              const std::vector<IntentMatcher::Match>& matches) const {
  const auto is_report = [&](const IntentMatcher::Match& m) { return kb_.intents[m.intent].kind == IntentKind::kReport; };
  if (matches.empty()) return false;
  if (is_report(matches.front())) return true;
  if (std::none_of(matches.begin(), matches.end(), is_report)) return false;
  std::size_t begin = 0;
  while (begin < normalised.size()) {
    std::size_t end = normalised.find_first_of(".,;!?", begin);
    if (end == std::string_view::npos) end = normalised.size();
    if (end > begin && (begin > 0 || end < normalised.size())) {
      const auto in_clause = matcher_.MatchAll(normalised.substr(begin, end - begin), state);
      if (!in_clause.empty() && is_report(in_clause.front())) return true;
    }
    begin = end + 1;
  }
  return false;
}

Reading Interpreter::Read(const ConversationState& s, std::string_view text,
                          const std::optional<MessageTime>& now, bool question_gone) const {
  Reading r;
  r.normalised = normaliser_.Normalise(text);
  PatternPass::Hits hits;
  const bool passed = pass_ && pass_->Match(r.normalised, hits);  // else each matches on its own
  const Detection detection = passed ? detector_.Detect(r.normalised, hits.red_flags) : detector_.Detect(r.normalised);
  const auto matches = passed ? matcher_.MatchAll(r.normalised, s.state, std::move(hits.intents))
                              : matcher_.MatchAll(r.normalised, s.state);
  r.slots = s.slots;
  r.slots_found = passed ? slots_.Extract(r.normalised, std::move(hits.slots), r.slots, now, s.asked_training)
                         : slots_.Extract(r.normalised, r.slots, now, s.asked_training);
  r.intent = matches.empty() ? core_.fallback : matches.front().intent;
  const auto kind = [&](std::size_t i) { return kb_.intents[i].kind; };
  r.reports_pain = ReportsPain(r.normalised, s.state, matches);

  const knowledge::FlowState* state = kb_.flow.FindState(s.state);
  const bool screening = state && state->role == knowledge::StateRole::kScreening &&
                         s.screening_step < kb_.flow.screening.size();
  r.in_screening = screening && !question_gone;
  r.screening_reask = screening && question_gone;
  r.past_pending = !s.pending_flags.empty();
  r.possible_pending = r.past_pending && s.pending_possible;
  // The flags the pending question (a past symptom, the safety net's or screening) asks about.
  FlagMask asked = 0;
  if (r.past_pending) {
    asked = MaskOf(s.pending_flags);
  } else if (r.in_screening) {
    asked = MaskOf(kb_.flow.screening[s.screening_step].flags);
  }
  // The safety net's question stays open across a question asked in between, or a message not
  // understood ("what would that mean?"), and is asked again after the answer.
  if (r.possible_pending && (kind(r.intent) == IntentKind::kQuestion || r.intent == core_.fallback) &&
      detection.mentions.empty()) {
    r.possible = asked;
  }

  r.self = detection.Mask(Attribution::kSelf);
  if (asked) ReadAnswer(asked, detection, r);
  r.other = r.self ? 0 : detection.Mask(Attribution::kOtherPerson);
  r.past = (r.self || r.other) ? 0 : detection.Mask(Attribution::kPast);
  if (!r.self && !r.other && !r.past &&
      (detection.Mask(Attribution::kHypothetical) | detection.Mask(Attribution::kInformational))) {
    r.intent = core_.warning_signs;  // asking about a warning sign, not reporting one
  }
  // A report of a symptom (theirs, someone else's or a past one) is answered as a warning sign
  // when nothing more specific was asked.
  if (r.other || r.past || (r.self && r.intent == core_.fallback)) r.intent = core_.warning_signs;
  r.possible = (r.possible | detection.possible) & ~r.self;

  // Retrieval answers what no pattern recognises, when a sentence of the article fits well; not
  // after an escalation, where what it finds (soreness, self-care) is no answer.
  const bool escalated = state && state->role == knowledge::StateRole::kEscalated;
  if (r.intent == core_.fallback && !r.in_screening && !r.screening_reask && !r.past_pending && !escalated) {
    auto hit = passages_.Best(r.normalised);
    if (hit && hit->score >= kb_.language.retrieval_min_score) {
      if (auto intent = IntentOfSentence(hit->sentence)) {
        r.intent = *intent;
        r.passage = hit->sentence;
        r.passage_score = hit->score;
      }
    }
  }
  if (s.asked_training && r.slots_found && kind(r.intent) == IntentKind::kQuestion) {
    r.asks = detector_.IsQuestion(r.normalised);
  }
  return r;
}

}  // namespace backcheck::dialog
