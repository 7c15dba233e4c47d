#include "cli/labelled_eval.hpp"

#include <sstream>

#include "cli/script.hpp"
#include "cli/script_runner.hpp"

namespace backcheck::cli {
namespace {

// The labelled format's name for what an expectation checks.
const char* FieldName(Expectation::Kind kind) {
  switch (kind) {
    case Expectation::Kind::kIntent: return "intent";
    case Expectation::Kind::kState: return "state";
    case Expectation::Kind::kUrgency: return "urgency";
    case Expectation::Kind::kRedFlags: return "red_flags";
    case Expectation::Kind::kPossibleFlags: return "possible_flags";
    case Expectation::Kind::kTextMatches: return "facts";
    default: return "expectation";
  }
}

}  // namespace

EvalSummary RunLabelledEval(const dialog::Engine& engine, std::istream& in, const std::string& source) {
  std::stringstream text;
  text << in.rdbuf();
  std::vector<Script> scripts;
  try {
    scripts = ParseLabelledJsonl(text.str(), source);
  } catch (const ScriptError& e) {
    throw EvalFormatError(e.what());
  }
  EvalSummary summary;
  const auto results = RunInProcess(engine, scripts);
  for (const auto& r : results) {
    ++summary.conversations;
    for (std::size_t t = 0; t < r.turns.size(); ++t) {
      const ScriptTurn& turn = r.script->turns[t];
      ++summary.messages;
      summary.expectations += turn.expectations.size();
      for (const auto& f : r.turns[t].failures) {
        const bool fact = f.expectation->kind == Expectation::Kind::kTextMatches;
        summary.failures.push_back(EvalFailure{r.script->line, t + 1, r.script->name, turn.text,
                                               FieldName(f.expectation->kind), f.expected,
                                               fact ? r.turns[t].reply.text : f.actual});
      }
    }
  }
  return summary;
}

void PrintFailure(std::ostream& out, const EvalFailure& f) {
  out << "line " << f.line << " (" << f.name << "), message " << f.turn << " \"" << f.text << "\": " << f.field
      << ": expected " << f.expected << ", got " << f.actual << "\n";
}

}  // namespace backcheck::cli
