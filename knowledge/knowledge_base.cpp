#include "knowledge/knowledge_base.hpp"

namespace backcheck::knowledge {

const char* UrgencyName(Urgency u) {
  switch (u) {
    case Urgency::kNone: return "none";
    case Urgency::kSeeDoctor: return "see_doctor";
    case Urgency::kUrgent: return "urgent";
    case Urgency::kEmergency: return "emergency";
  }
  return "none";
}

std::optional<Urgency> ParseUrgency(std::string_view name) {
  for (Urgency u : {Urgency::kNone, Urgency::kSeeDoctor, Urgency::kUrgent, Urgency::kEmergency}) {
    if (name == UrgencyName(u)) return u;
  }
  return std::nullopt;
}

const FlowState* Flow::FindState(std::string_view id) const {
  for (const auto& s : states) {
    if (s.id == id) return &s;
  }
  return nullptr;
}

const FlowState& Flow::StateWithRole(StateRole role) const {
  for (const auto& s : states) {
    if (s.role == role) return s;
  }
  return states.front();  // unreachable for a loaded flow
}

const std::string& Flow::Text(const std::string& name) const {
  static const std::string kEmpty;
  auto it = texts.find(name);
  return it == texts.end() ? kEmpty : it->second;
}

const std::vector<std::string>& Flow::QuickReplies(const std::string& name) const {
  static const std::vector<std::string> kNone;
  auto it = quick_replies.find(name);
  return it == quick_replies.end() ? kNone : it->second;
}

const Topic* KnowledgeBase::FindTopic(std::string_view id) const {
  for (const auto& t : topics) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

const Intent* KnowledgeBase::FindIntent(std::string_view id) const {
  for (const auto& i : intents) {
    if (i.id == id) return &i;
  }
  return nullptr;
}

const RedFlag* KnowledgeBase::FindFlag(std::string_view id) const {
  for (const auto& f : red_flags.flags) {
    if (f.id == id) return &f;
  }
  return nullptr;
}

}  // namespace backcheck::knowledge
