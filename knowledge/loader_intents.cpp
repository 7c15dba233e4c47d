// intents.jsonc: intent ids, kinds, priorities and RE2 patterns.
#include "knowledge/loader_internal.hpp"

namespace backcheck::knowledge::load {
namespace {

IntentKind ParseKind(const std::string& kind, const Where& where) {
  if (kind == "social") return IntentKind::kSocial;
  if (kind == "report") return IntentKind::kReport;
  if (kind == "question") return IntentKind::kQuestion;
  if (kind == "answer") return IntentKind::kAnswer;
  if (kind == "other") return IntentKind::kOther;
  if (kind == "fallback") return IntentKind::kFallback;
  where.Fail("unknown kind '" + kind + "' (social, report, question, answer, other, fallback)");
}

constexpr long long kMaxPriority = 1000000;

}  // namespace

std::vector<Intent> LoadIntents(const json& doc) {
  const Where file{"intents.jsonc", {}};
  CheckKeys(doc, file, {"intents"});
  std::vector<Intent> intents;
  const json& list = Array(doc, "intents", file);
  for (std::size_t n = 0; n < list.size(); ++n) {
    const json& j = list[n];
    Intent intent;
    intent.id = String(j, "id", file.With("intent " + std::to_string(n + 1)));
    Where w = file.With("intent '" + intent.id + "'");
    CheckKeys(j, w, {"id", "kind", "as", "priority", "state_priority", "patterns"});
    intent.kind = ParseKind(String(j, "kind", w), w);
    intent.reported_as = OptString(j, "as", w);
    intent.priority = OptInt(j, "priority", w, -kMaxPriority, kMaxPriority).value_or(0);
    if (j.contains("state_priority")) {
      const json& sp = Object(j, "state_priority", w);
      for (auto it = sp.begin(); it != sp.end(); ++it) {
        intent.state_priority[it.key()] =
            IntValue(*it, w, "state_priority '" + it.key() + "'", -kMaxPriority, kMaxPriority);
      }
    }
    intent.patterns = Strings(j, "patterns", w);
    if (intent.kind != IntentKind::kFallback && intent.patterns.empty()) w.Fail("no patterns");
    if (intent.kind == IntentKind::kFallback && !intent.patterns.empty()) {
      w.Fail("the fallback intent has no patterns: it is what remains when nothing matches");
    }
    CheckPatterns(intent.patterns, w);
    intents.push_back(std::move(intent));
  }
  CheckUnique(intents, file, "intent");
  return intents;
}

}  // namespace backcheck::knowledge::load
