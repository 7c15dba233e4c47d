// The ids one data file names that another defines (see loader_internal.hpp).
#include "knowledge/loader_internal.hpp"

namespace backcheck::knowledge::load {
namespace {

std::string List(const std::set<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

void CheckCrossReferences(const KnowledgeBase& kb) {
  // topics.jsonc -> intents.jsonc
  for (const auto& topic : kb.topics) {
    if (!HasId(kb.intents, topic.id)) {
      Where{"topics.jsonc", "topic '" + topic.id + "'"}.Fail("no intent with this id in intents.jsonc");
    }
  }
  CheckTopicCoverage(kb.topics, kb.intents);

  // intents.jsonc state_priority -> flow.jsonc states
  for (const auto& intent : kb.intents) {
    for (const auto& [state, priority] : intent.state_priority) {
      if (!kb.flow.FindState(state)) {
        Where{"intents.jsonc", "intent '" + intent.id + "'"}.Fail(
            "state_priority '" + state + "': no state with this id in flow.jsonc");
      }
    }
  }

  // flow.jsonc -> intents.jsonc, red_flags.jsonc, language.jsonc
  const Where flow{"flow.jsonc", {}};
  const auto& events = FlowEvents();
  for (const auto& state : kb.flow.states) {
    const Where w = flow.With("state '" + state.id + "'");
    for (const auto& [event, target] : state.on) {
      const bool known = std::find(events.begin(), events.end(), event) != events.end() || HasId(kb.intents, event);
      if (!known) w.Fail("unknown event '" + event + "' (an intent id or one of the flow events)");
    }
    for (const auto& [intent, answer] : state.answers) {
      if (!HasId(kb.intents, intent)) w.With("answer to '" + intent + "'").Fail("no intent with this id in intents.jsonc");
    }
  }
  for (const auto& q : kb.flow.screening) {
    for (const auto& f : q.flags) {
      if (!HasId(kb.red_flags.flags, f)) flow.With("screening question '" + q.id + "'").Fail("unknown flag '" + f + "'");
    }
  }
  // Tailoring rules fit slots the extractor fills from language.jsonc (dialog/slots.cpp): the
  // exercise's category is an "exercises" category, the quality a "qualities" value.
  std::set<std::string> categories, qualities;
  for (const auto& e : kb.language.exercises) categories.insert(e.category);
  for (const auto& q : kb.language.qualities) qualities.insert(q.value);
  for (const auto& rule : kb.flow.tailoring) {
    const Where w = flow.With("tailoring rule '" + rule.id + "'");
    if (!rule.exercise_category.empty() && !categories.count(rule.exercise_category)) {
      w.Fail("exercise_category '" + rule.exercise_category + "' is not a category of language.jsonc 'exercises' (" +
             List(categories) + ")");
    }
    for (const auto& [key, value] : {std::pair<const char*, const std::string&>{"quality", rule.quality},
                                     std::pair<const char*, const std::string&>{"quality_not", rule.quality_not}}) {
      if (!value.empty() && !qualities.count(value)) {
        w.Fail(std::string(key) + " '" + value + "' is not a quality of language.jsonc 'qualities' (" + List(qualities) +
               ")");
      }
    }
  }
}

}  // namespace backcheck::knowledge::load
