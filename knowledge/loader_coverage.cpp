// What the specification requires the data to cover, and which article sentences the data cites
// (see loader_internal.hpp).
#include "knowledge/loader_internal.hpp"

namespace backcheck::knowledge {
namespace {

// Texts of flow.jsonc "texts" that may be present although no code reads them yet: the dialogue
// engine being rewritten (dialog/) is to use them. Any other text not in RequiredTexts() is refused.
const std::vector<std::string>& OptionalTexts() {
  static const std::vector<std::string> kTexts = {"informational_intro", "extension_note", "escalated_prefix"};
  return kTexts;
}

bool Contains(const std::vector<std::string>& list, const std::string& s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

}  // namespace

const std::vector<std::string>& RequiredIntents() {
  static const std::vector<std::string> kIntents = {
      "greeting", "goodbye", "thanks", "help", "describe_pain", "cause", "anatomy", "muscles",
      "doms", "strain", "soreness_or_injury", "form_rows", "form_overhead", "posture", "prevention",
      "ice_heat", "rest", "mobility", "medication", "duration", "warning_signs", "affirm", "deny",
      "out_of_scope", "fallback"};
  return kIntents;
}

const std::vector<std::string>& RequiredFlags() {
  static const std::vector<std::string> kFlags = {
      "arm_radiation", "numbness", "tingling", "weakness", "fever", "chills", "weight_loss",
      "breathing_pain", "shortness_of_breath", "severe_persistent", "chest_pain", "tearing_pain",
      "coughing_blood", "cord_signs", "trauma"};
  return kFlags;
}

const std::vector<std::string>& RequiredStates() {
  static const std::vector<std::string> kStates = {"welcome", "screening", "advising", "escalated", "ended"};
  return kStates;
}

const std::vector<std::string>& FlowEvents() {
  static const std::vector<std::string> kEvents = {"red_flag", "start_screening", "screening_passed",
                                                   "question", "message"};
  return kEvents;
}

// Each is read by name with Flow::Text() in dialog/ (the engine, its policy and composer).
const std::vector<std::string>& RequiredTexts() {
  static const std::vector<std::string> kTexts = {
      "greeting", "screening_intro", "screening_resume", "screening_passed", "screening_unsure",
      "ask_training", "tailoring_intro", "past_clarify", "past_denied", "possible_denied", "third_party_intro",
      "retrieval_intro", "care_team_seen"};
  return kTexts;
}

namespace load {

void CheckIntentCoverage(const std::vector<Intent>& intents) {
  const Where file{"intents.jsonc", {}};
  const auto& spec = RequiredIntents();
  for (const auto& id : spec) {
    if (!HasId(intents, id)) file.Fail("missing intent '" + id + "' (SPEC section 4)");
  }
  for (const auto& intent : intents) {
    const bool in_spec = Contains(spec, intent.id);
    Where w = file.With("intent '" + intent.id + "'");
    if (in_spec && !intent.reported_as.empty()) w.Fail("an intent of SPEC section 4 is reported as itself: drop 'as'");
    if (!in_spec && intent.reported_as.empty()) {
      w.Fail("not an intent of SPEC section 4: say which one a reply names with \"as\"");
    }
    if (!in_spec && !Contains(spec, intent.reported_as)) {
      w.Fail("'as' names '" + intent.reported_as + "', not an intent of SPEC section 4");
    }
  }
}

void CheckTopicCoverage(const std::vector<Topic>& topics, const std::vector<Intent>& intents) {
  for (const auto& intent : intents) {
    if (!HasId(topics, intent.id)) Where{"topics.jsonc", {}}.Fail("intent '" + intent.id + "' has no topic");
  }
}

void CheckFlagCoverage(const RedFlagLexicon& lex) {
  for (const auto& id : RequiredFlags()) {
    if (!HasId(lex.flags, id)) Where{"red_flags.jsonc", {}}.Fail("missing flag '" + id + "' (SPEC section 5)");
  }
}

void CheckStateCoverage(const Flow& flow) {
  for (const auto& id : RequiredStates()) {
    if (!flow.FindState(id)) Where{"flow.jsonc", {}}.Fail("missing state '" + id + "' (SPEC section 3)");
  }
}

void CheckTextCoverage(const Flow& flow) {
  const Where file{"flow.jsonc", "texts"};
  for (const auto& name : RequiredTexts()) {
    if (!flow.texts.count(name)) file.Fail("missing text '" + name + "'");
  }
  for (const auto& [name, text] : flow.texts) {
    if (!Contains(RequiredTexts(), name) && !Contains(OptionalTexts(), name)) {
      file.Fail("unknown text '" + name + "': no code reads it (knowledge/loader_coverage.cpp lists the texts read)");
    }
  }
}

}  // namespace load

std::vector<std::vector<std::string>> CitationsBySentence(const KnowledgeBase& kb) {
  std::vector<std::vector<std::string>> cited(kb.article.sentences().size());
  auto cite = [&](const std::string& who, const std::vector<Source>& sources) {
    for (const auto& s : sources) {
      auto section = kb.article.FindSection(s.section);
      if (!section) continue;
      auto span = kb.article.FindQuote(*section, s.quote);
      if (!span) continue;
      for (std::size_t i : kb.article.SentencesIn(span->first, span->second)) {
        auto& list = cited[i];
        if (std::find(list.begin(), list.end(), who) == list.end()) list.push_back(who);
      }
    }
  };
  for (const auto& t : kb.topics) cite(t.id, t.sources);
  for (const auto& f : kb.red_flags.flags) cite("flag:" + f.id, f.sources);
  for (const auto& r : kb.flow.tailoring) cite("tailoring:" + r.id, r.sources);
  return cited;
}

}  // namespace backcheck::knowledge
