#include "dialog/engine.hpp"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <deque>
#include <stdexcept>

#include "knowledge/loader.hpp"

namespace backcheck::dialog {

using knowledge::IntentKind;
using knowledge::Urgency;

namespace {

// Replaces every "{name}" in `text` with `value`.
std::string Fill(std::string text, std::string_view name, std::string_view value) {
  std::string key;
  key.reserve(name.size() + 2);
  key.append(1, '{').append(name).append(1, '}');
  for (std::size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + value.size())) {
    text.replace(at, key.size(), value);
  }
  return text;
}

// "a", "a or b", "a, b or c".
std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += (i + 1 == names.size()) ? " or " : ", ";
    out += names[i];
  }
  return out;
}

// Calls f(i) for each flag i in `mask`, in order (only the set bits are visited: this runs several
// times for every message, and most masks are empty).
template <typename F>
void ForEachFlag(FlagMask mask, F&& f) {
  for (; mask != 0; mask &= mask - 1) f(static_cast<std::size_t>(std::countr_zero(mask)));
}

}  // namespace

// Collects the paragraphs, citations and quick replies of one reply. Paragraphs are views: of
// knowledge-base text (which outlives the reply) or of strings the composer owns.
struct Engine::Composer {
  std::vector<std::string_view> paragraphs;
  std::deque<std::string> owned;  // a deque: growing it does not move the strings viewed
  std::vector<knowledge::Source> sources;
  std::vector<std::string> quick_replies;

  // `text` must outlive the composer (knowledge-base text does).
  void Add(std::string_view text) {
    if (!text.empty()) paragraphs.push_back(text);
  }
  void AddOwned(std::string text) {
    if (!text.empty()) paragraphs.push_back(owned.emplace_back(std::move(text)));
  }
  void Cite(const std::vector<knowledge::Source>& list) {
    for (const auto& s : list) {
      bool seen = std::any_of(sources.begin(), sources.end(), [&](const knowledge::Source& x) {
        return x.section == s.section && x.quote == s.quote;
      });
      if (!seen) sources.push_back(s);
    }
  }
  void Suggest(const std::vector<std::string>& replies) {
    if (quick_replies.empty()) quick_replies = replies;
  }
  std::string Text() const {
    std::size_t size = 0;
    for (const auto& p : paragraphs) size += p.size() + 2;
    std::string out;
    out.reserve(size);
    for (const auto& p : paragraphs) {
      if (!out.empty()) out += "\n\n";
      out += p;
    }
    return out;
  }
};

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
      passages_(kb_->article, kb_->language.stopwords) {
  for (const auto& intent : kb_->intents) topic_of_intent_.push_back(kb_->FindTopic(intent.id));
  fallback_ = IntentIndex("fallback");
  affirm_ = IntentIndex("affirm");
  deny_ = IntentIndex("deny");
  describe_pain_ = IntentIndex("describe_pain");
  warning_signs_ = IntentIndex("warning_signs");
  // A retrieved sentence is answered as the intent of the first topic citing it.
  for (const auto& citers : knowledge::CitationsBySentence(*kb_)) {
    auto topic = std::find_if(citers.begin(), citers.end(),
                              [](const std::string& id) { return id.find(':') == std::string::npos; });
    sentence_topic_.push_back(topic == citers.end() ? std::string() : *topic);
  }
}

std::size_t Engine::IntentIndex(std::string_view id) const {
  for (std::size_t i = 0; i < kb_->intents.size(); ++i) {
    if (kb_->intents[i].id == id) return i;
  }
  throw std::runtime_error("knowledge base has no intent '" + std::string(id) + "'");
}

ConversationState Engine::Start() const {
  ConversationState s;
  s.state = kb_->flow.initial;
  return s;
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

void Engine::Answer(Composer& out, std::size_t intent) const {
  const knowledge::Topic* topic = topic_of_intent_[intent];
  out.Add(topic->answer);
  out.Cite(topic->sources);
  out.Suggest(topic->quick_replies);
}

void Engine::AskPossible(Composer& out, FlagMask possible, ConversationState& s) const {
  const auto& flags = kb_->red_flags.flags;
  Urgency level = Urgency::kNone;
  ForEachFlag(possible, [&](std::size_t f) {
    out.Add(flags[f].question);
    s.pending_flags.push_back(flags[f].id);
    level = std::max(level, flags[f].level);
  });
  s.pending_possible = true;
  // For an emergency the person must not have to answer first to learn what to do.
  for (const auto& g : kb_->red_flags.guidance) {
    if (g.level == level) out.Add(g.conditional);
  }
  out.quick_replies = kb_->flow.QuickReplies("yes_no");  // the question wants a yes or a no
}

void Engine::Tailor(Composer& out, const Slots& slots) const {
  const auto& flow = kb_->flow;
  out.Add(flow.Text("tailoring_intro"));
  for (const auto& rule : flow.tailoring) {
    if (rule.hours_min && (!slots.hours || *slots.hours < *rule.hours_min)) continue;
    if (rule.hours_max && (!slots.hours || *slots.hours > *rule.hours_max)) continue;
    if (!rule.exercise_category.empty() && rule.exercise_category != slots.exercise_category) continue;
    if (!rule.quality.empty() && rule.quality != slots.quality) continue;
    if (!rule.quality_not.empty() && rule.quality_not == slots.quality) continue;
    std::string text = Fill(rule.text, "hours", slots.hours ? std::to_string(*slots.hours) : "");
    out.AddOwned(Fill(std::move(text), "exercise", slots.exercise));
    out.Cite(rule.sources);
  }
}

Turn Engine::Respond(const ConversationState& previous, std::string_view text,
                     const std::optional<MessageTime>& now) const {
  const auto& flow = kb_->flow;
  const auto& flags = kb_->red_flags.flags;
  Turn turn{Reply{}, previous};
  ConversationState& s = turn.state;
  Reply& reply = turn.reply;
  if (!flow.FindState(s.state)) s.state = flow.initial;
  ++s.turns;

  const std::string normalised = normaliser_.Normalise(text);
  const Detection detection = detector_.Detect(normalised);
  const auto matches = matcher_.MatchAll(normalised, s.state);
  const bool slots_found = slots_.Extract(normalised, s.slots, now);
  std::size_t intent = matches.empty() ? fallback_ : matches.front().intent;

  const bool screening = s.state == "screening" && s.screening_step < flow.screening.size();
  const auto kind_of = [&](std::size_t i) { return kb_->intents[i].kind; };
  FlagMask asked = 0;  // the flags the pending question (screening or past symptom) asks about
  auto mask_of = [&](const std::vector<std::string>& ids) {
    FlagMask m = 0;
    for (std::size_t f = 0; f < flags.size(); ++f) {
      if (std::find(ids.begin(), ids.end(), flags[f].id) != ids.end()) m |= FlagMask{1} << f;
    }
    return m;
  };
  const bool past_pending = !s.pending_flags.empty();
  const bool possible_pending = past_pending && s.pending_possible;
  if (past_pending) {
    asked = mask_of(s.pending_flags);
  } else if (screening) {
    asked = mask_of(flow.screening[s.screening_step].flags);
  }
  // A clarifying question is asked once; the safety net's question stays open across a question
  // the person asks in between, or a message not understood ("what would that mean?"), and is
  // asked again after the answer.
  std::vector<std::string> still_pending;
  if (possible_pending && (kind_of(intent) == IntentKind::kQuestion || intent == fallback_) &&
      detection.mentions.empty()) {
    still_pending = s.pending_flags;
  }
  s.pending_flags.clear();
  s.pending_possible = false;

  // What the person affirms for themselves: symptoms they report, or "yes" to the question.
  FlagMask self = detection.Mask(Attribution::kSelf);
  const auto kind = [&](std::size_t i) { return kb_->intents[i].kind; };
  if (asked && intent == affirm_) {
    // "Yes" affirms what the question asked about; "yes, the tingling" only the flags it names.
    self |= (self & asked) ? 0 : asked;
  } else if (asked && self == 0 && (detection.Mask(Attribution::kNegated) & asked) &&
             kind(intent) != IntentKind::kQuestion) {
    intent = deny_;  // "no numbness, no tingling" answers a question about them as "no" does
  } else if (asked && intent == deny_ && detection.Mask(Attribution::kNegated) &&
             !(detection.Mask(Attribution::kNegated) & asked)) {
    intent = fallback_;  // "no fever" to the arm question rules out nothing it asked: ask again
  }
  const FlagMask other = self ? 0 : detection.Mask(Attribution::kOtherPerson);
  const FlagMask past = (self || other) ? 0 : detection.Mask(Attribution::kPast);
  if (!self && !other && !past &&
      (detection.Mask(Attribution::kHypothetical) | detection.Mask(Attribution::kInformational))) {
    intent = warning_signs_;  // asking about a warning sign, not reporting one
  }
  // A report of a symptom (theirs, someone else's or a past one) is answered as a warning sign
  // when nothing more specific was asked.
  if (other || past || (self && intent == fallback_)) intent = warning_signs_;

  const Urgency before = s.urgency;
  ForEachFlag(self, [&](std::size_t f) {
    reply.red_flags.push_back(flags[f].id);
    if (std::find(s.flags.begin(), s.flags.end(), flags[f].id) == s.flags.end()) s.flags.push_back(flags[f].id);
    s.urgency = std::max(s.urgency, flags[f].level);
  });
  reply.escalated = s.urgency > before;

  // The safety net: flags with partial evidence, not affirmed before, are asked about (urgency
  // unchanged until a "yes"). A question asked again after an answer in between counts too.
  FlagMask possible = detection.possible & ~self;
  if (!still_pending.empty()) possible |= mask_of(still_pending) & ~self;
  ForEachFlag(possible, [&](std::size_t f) {
    if (std::find(s.flags.begin(), s.flags.end(), flags[f].id) != s.flags.end()) possible &= ~(FlagMask{1} << f);
  });
  if (reply.escalated) possible = 0;  // the reply already leads with what to do now

  // Retrieval answers what no pattern recognises, when a sentence of the article fits well.
  std::optional<knowledge::PassageIndex::Hit> passage;
  if (intent == fallback_ && !screening && !past_pending) {
    passage = passages_.Best(normalised);
    if (passage && passage->score >= kb_->language.retrieval_min_score &&
        !sentence_topic_[passage->sentence].empty()) {
      intent = IntentIndex(sentence_topic_[passage->sentence]);
    } else {
      passage.reset();
    }
  }

  // The flow decides the next state from the most specific event it has a transition for.
  std::string event;
  if (reply.escalated) {
    event = "red_flag";
  } else if (screening && intent == deny_ && !past_pending) {  // a "no" to "is it there now?" is not a screening answer
    if (++s.screening_step >= flow.screening.size()) {
      s.screened = true;
      event = "screening_passed";
    }
  } else if (kind(intent) == IntentKind::kReport && !s.screened && !screening) {
    event = "start_screening";
  }
  const knowledge::FlowState* state = flow.FindState(s.state);
  std::string next = s.state;
  for (const std::string& e : {event, kb_->intents[intent].id,
                               std::string(kind(intent) == IntentKind::kQuestion ? "question" : ""),
                               std::string("message")}) {
    if (e.empty()) continue;
    if (auto it = state->on.find(e); it != state->on.end()) {
      next = it->second;
      break;
    }
  }
  const bool entering_screening = next == "screening" && s.state != "screening";
  const bool staying_in_screening = next == "screening" && screening;
  s.state = next;

  Composer out;
  const auto& yes_no = flow.QuickReplies("yes_no");
  // An escalated conversation leads every reply with what to do now.
  if (s.urgency > Urgency::kNone) {
    for (const auto& g : kb_->red_flags.guidance) {
      if (g.level == s.urgency) out.Add(g.text);
    }
    ForEachFlag(self, [&](std::size_t f) {
      out.Add(flags[f].explanation);
      out.Cite(flags[f].sources);
    });
  }

  if (reply.escalated) {
    if (kind(intent) == IntentKind::kQuestion && intent != warning_signs_) Answer(out, intent);
    out.Suggest(flow.QuickReplies("escalated"));
  } else if (possible) {
    if (kind(intent) == IntentKind::kQuestion && intent != warning_signs_) Answer(out, intent);
    AskPossible(out, possible, s);
    if (entering_screening) s.screening_step = 0;  // screening starts after the answer
  } else if (other) {
    Urgency level = Urgency::kNone;
    ForEachFlag(other, [&](std::size_t f) { level = std::max(level, flags[f].level); });
    out.Add(flow.Text("third_party_intro"));
    for (const auto& g : kb_->red_flags.guidance) {
      if (g.level == level) out.Add(g.third_party);
    }
    if (staying_in_screening) {
      out.Add(flow.Text("screening_resume"));
      out.Add(flow.screening[s.screening_step].text);
      out.quick_replies = yes_no;
    }
  } else if (past) {
    std::vector<std::string> names;
    ForEachFlag(past, [&](std::size_t f) {
      s.pending_flags.push_back(flags[f].id);
      names.push_back(flags[f].name);
    });
    out.AddOwned(Fill(flow.Text("past_clarify"), "flags", JoinNames(names)));
    out.Suggest(yes_no);
  } else if (past_pending && intent == deny_) {
    out.Add(flow.Text(possible_pending ? "possible_denied" : "past_denied"));
    if (screening) {  // then back to the screening question that was pending
      out.Add(flow.Text("screening_resume"));
      out.Add(flow.screening[s.screening_step].text);
      out.quick_replies = yes_no;
    }
  } else if (entering_screening) {
    s.screening_step = 0;
    Answer(out, intent);
    out.Add(flow.Text("screening_intro"));
    out.Add(flow.screening.front().text);
    out.quick_replies = yes_no;
  } else if (staying_in_screening) {
    if (intent != deny_) {
      if (intent == fallback_) {
        out.Add(flow.Text("screening_unsure"));
      } else {
        Answer(out, intent);
        out.Add(flow.Text("screening_resume"));
      }
    }
    out.Add(flow.screening[s.screening_step].text);
    out.quick_replies = yes_no;
  } else if (event == "screening_passed") {
    out.Add(flow.Text("screening_passed"));
    if (s.slots.hours || !s.slots.exercise.empty()) {
      Tailor(out, s.slots);
    } else {
      out.Add(flow.Text("ask_training"));
      s.asked_training = true;
    }
  } else if (kind(intent) == IntentKind::kReport ||
             (s.asked_training && slots_found &&
              (intent == fallback_ || kind(intent) == IntentKind::kAnswer ||
               (kind(intent) == IntentKind::kQuestion && !detector_.IsQuestion(normalised))))) {
    // Their own pain again, or the answer to "when and what did you train?": tailor the advice.
    intent = describe_pain_;
    if (s.slots.hours || !s.slots.exercise.empty()) {
      Tailor(out, s.slots);
      out.Suggest(topic_of_intent_[describe_pain_]->quick_replies);
    } else {
      Answer(out, intent);
      out.Add(flow.Text("ask_training"));
      s.asked_training = true;
    }
  } else if (passage) {
    const auto& sentence = kb_->article.sentences()[passage->sentence];
    const auto& heading = kb_->article.sections()[sentence.section].heading;
    out.AddOwned(Fill(flow.Text("retrieval_intro"), "section", heading) + " " + sentence.text);
    out.Cite({knowledge::Source{heading, sentence.text}});
    out.Suggest(topic_of_intent_[intent]->quick_replies);
  } else {
    Answer(out, intent);
  }
  if (out.quick_replies.empty()) out.quick_replies = flow.QuickReplies(s.state);
  if (out.quick_replies.empty()) out.quick_replies = flow.QuickReplies("default");

  ForEachFlag(possible, [&](std::size_t f) { reply.possible_flags.push_back(flags[f].id); });
  reply.text = out.Text();
  reply.intent = kb_->intents[intent].id;
  reply.state = s.state;
  reply.urgency = s.urgency;
  reply.quick_replies = std::move(out.quick_replies);
  reply.sources = std::move(out.sources);
  return turn;
}

}  // namespace backcheck::dialog
