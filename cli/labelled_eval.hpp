// Runs labelled conversations (the JSONL format of tests/eval/README.md) through the engine
// in-process and reports every expectation that does not hold.
#pragma once

#include <istream>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "dialog/engine.hpp"

namespace backcheck::cli {

// A line that is not a valid labelled conversation. The message names the line and the problem.
class EvalFormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct EvalFailure {
  std::size_t line = 0;   // 1-based line of the file
  std::size_t turn = 0;   // 1-based message within the conversation
  std::string name;       // the conversation's name, or its first message
  std::string text;       // the message sent
  std::string field;      // intent, state, urgency, red_flags, facts
  std::string expected;
  std::string actual;
};

struct EvalSummary {
  std::size_t conversations = 0;
  std::size_t messages = 0;
  std::size_t expectations = 0;
  std::vector<EvalFailure> failures;
};

// Reads every line of `in` (blank lines are skipped) and runs it. Throws EvalFormatError on a
// malformed line, naming `source` and the line.
EvalSummary RunLabelledEval(const dialog::Engine& engine, std::istream& in, const std::string& source);

// "line 12 (screening, all clear), message 2 "no": state: expected advising, got screening"
void PrintFailure(std::ostream& out, const EvalFailure& failure);

}  // namespace backcheck::cli
