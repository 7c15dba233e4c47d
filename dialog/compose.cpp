#include "dialog/compose.hpp"

#include <algorithm>
#include <bit>
#include <list>
#include <string_view>

namespace backcheck::dialog {

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

template <typename F>
void ForEachFlag(FlagMask mask, F&& f) {
  for (; mask != 0; mask &= mask - 1) f(static_cast<std::size_t>(std::countr_zero(mask)));
}

const knowledge::Guidance* GuidanceFor(const knowledge::KnowledgeBase& kb, knowledge::Urgency level) {
  for (const auto& g : kb.red_flags.guidance) {
    if (g.level == level) return &g;
  }
  return nullptr;
}

// Whether a tailoring rule fits what the person told us.
bool Applies(const knowledge::TailoringRule& rule, const Slots& slots) {
  if (rule.hours_unknown && slots.hours) return false;
  if (rule.hours_min && (!slots.hours || *slots.hours < *rule.hours_min)) return false;
  if (rule.hours_max && (!slots.hours || *slots.hours > *rule.hours_max)) return false;
  if (!rule.exercise_category.empty() && rule.exercise_category != slots.exercise_category) return false;
  if (!rule.quality.empty() && rule.quality != slots.quality) return false;
  if (!rule.quality_not.empty() && rule.quality_not == slots.quality) return false;
  return true;
}

}  // namespace

// Collects the paragraphs, citations and quick replies of one reply. Paragraphs are views: of
// knowledge-base text (which outlives the reply) or of strings the builder owns.
struct Composer::Builder {
  std::vector<std::string_view> paragraphs;
  // A list: growing it does not move the strings viewed, and unlike a std::deque (which
  // allocates a block up front) it costs nothing in the many replies that own no string.
  std::list<std::string> owned;
  std::vector<knowledge::Source> sources;
  const std::vector<std::string>* quick_replies = nullptr;
  std::vector<std::string>* said = nullptr;

  template <typename... Pieces>
  void Said(const Pieces&... pieces) {
    if (said) said->push_back((std::string() + ... + std::string(pieces)));
  }

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
    if (!quick_replies && !replies.empty()) quick_replies = &replies;
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

Composer::Composer(const knowledge::KnowledgeBase& kb)
    : kb_(kb), default_quick_replies_(&kb_.flow.QuickReplies("default")) {
  for (const auto& intent : kb_.intents) topic_of_intent_.push_back(kb_.FindTopic(intent.id));
}

void Composer::Tailor(const Slots& slots, Builder& out) const {
  const auto& flow = kb_.flow;
  out.Add(flow.Text("tailoring_intro"));
  out.Said("text:tailoring_intro");
  for (const auto& rule : flow.tailoring) {
    if (!Applies(rule, slots)) continue;
    out.Said("tailoring:", rule.id);
    std::string text = Fill(rule.text, "hours", slots.hours ? std::to_string(*slots.hours) : "");
    out.AddOwned(Fill(std::move(text), "exercise", slots.exercise));
    out.Cite(rule.sources);
  }
}

void Composer::Add(const Part& part, const ConversationState& state, Builder& out) const {
  const auto& flow = kb_.flow;
  const auto& flags = kb_.red_flags.flags;
  using K = Part::Kind;
  switch (part.kind) {
    case K::kGuidance:
      if (const auto* g = GuidanceFor(kb_, part.level)) out.Add(g->text);
      out.Said("guidance:", knowledge::UrgencyName(part.level));
      break;
    case K::kConditionalGuidance:
      if (const auto* g = GuidanceFor(kb_, part.level)) out.Add(g->conditional);
      out.Said("conditional:", knowledge::UrgencyName(part.level));
      break;
    case K::kThirdPartyGuidance:
      if (const auto* g = GuidanceFor(kb_, part.level)) out.Add(g->third_party);
      out.Said("third_party:", knowledge::UrgencyName(part.level));
      break;
    case K::kExplanations:
      ForEachFlag(part.flags, [&](std::size_t f) {
        out.Add(flags[f].explanation);
        out.Cite(flags[f].sources);
        out.Said("explanation:", flags[f].id);
      });
      break;
    case K::kQuestions:
      ForEachFlag(part.flags, [&](std::size_t f) {
        out.Add(flags[f].question);
        out.Said("question:", flags[f].id);
      });
      break;
    case K::kAnswer: {
      if (part.state) {
        if (auto it = part.state->answers.find(kb_.intents[part.index].id); it != part.state->answers.end()) {
          out.Add(it->second.text);
          out.Cite(it->second.sources);
          out.Suggest(it->second.quick_replies);
          out.Said("answer:", part.state->id, "/", it->first);
          break;
        }
      }
      const knowledge::Topic* topic = topic_of_intent_[part.index];
      out.Add(topic->answer);
      out.Cite(topic->sources);
      out.Suggest(topic->quick_replies);
      out.Said("answer:", topic->id);
      break;
    }
    case K::kPastClarify: {
      std::vector<std::string> names;
      ForEachFlag(part.flags, [&](std::size_t f) { names.push_back(flags[f].name); });
      out.AddOwned(Fill(flow.Text("past_clarify"), "flags", JoinNames(names)));
      out.Said("past_clarify");
      break;
    }
    case K::kText:
      out.Add(flow.Text(part.name));
      out.Said("text:", part.name);
      break;
    case K::kScreeningQuestion:
      if (part.index < flow.screening.size()) {
        out.Add(flow.screening[part.index].text);
        out.Said("screening:", flow.screening[part.index].id);
      }
      break;
    case K::kTailoring:
      Tailor(state.slots, out);
      break;
    case K::kRetrieval: {
      const auto& sentence = kb_.article.sentences()[part.index];
      const auto& heading = kb_.article.sections()[sentence.section].heading;
      out.AddOwned(Fill(flow.Text("retrieval_intro"), "section", heading) + " " + sentence.text);
      out.Cite({knowledge::Source{heading, sentence.text}});
      out.Said("retrieval:", std::to_string(part.index));
      break;
    }
    case K::kFallback:
      if (!flow.fallbacks.empty()) {
        out.Add(flow.fallbacks[part.index % flow.fallbacks.size()]);
        out.Said("fallback:", std::to_string(part.index % flow.fallbacks.size()));
      }
      break;
    case K::kTopicQuickReplies:
      out.Suggest(topic_of_intent_[part.index]->quick_replies);
      break;
  }
}

void Composer::Compose(const Plan& plan, const ConversationState& state, Reply& reply,
                       std::vector<std::string>* said) const {
  const auto& flow = kb_.flow;
  Builder out;
  out.paragraphs.reserve(8);  // more than nearly any reply has: one allocation, not one per doubling
  out.said = said;
  if (!plan.quick_replies.empty()) out.Suggest(flow.QuickReplies(plan.quick_replies));
  for (const Part& part : plan.parts) Add(part, state, out);
  out.Suggest(flow.QuickReplies(state.state));
  out.Suggest(*default_quick_replies_);
  reply.text = out.Text();
  reply.sources = std::move(out.sources);
  if (out.quick_replies) reply.quick_replies = *out.quick_replies;
}

}  // namespace backcheck::dialog
