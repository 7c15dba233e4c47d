// Conversation scripts (tests/conversations/FORMAT.md): parsing, and checking a reply against a
// turn's expectations. The labelled JSONL format of tests/eval/README.md parses into the same
// Script values, so both run through one checker.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "dialog/conversation.hpp"

namespace backcheck::cli {

// A script that cannot be read. The message starts with "FILE:LINE: ".
class ScriptError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Expectation {
  enum class Kind {
    kIntent, kState, kUrgency, kEscalated, kRedFlags, kRedFlagsInclude, kPossibleFlags, kTextContains,
    kTextNotContains, kTextMatches, kQuickReplies, kQuickRepliesInclude, kSourcesInclude,
  };
  Kind kind;
  std::string value;              // for single values and text checks
  std::vector<std::string> list;  // for red flags, possible flags and quick replies
  std::size_t line = 0;
  std::string source;             // the expectation as written, for reports
};

struct ScriptTurn {
  std::string text;
  std::size_t line = 0;
  std::vector<Expectation> expectations;
};

struct Script {
  std::string name;
  std::string file;
  std::size_t line = 0;  // where it starts (JSONL: its line)
  std::vector<ScriptTurn> turns;
};

// Parses one .convo file's text. Throws ScriptError naming `file` and the line.
Script ParseScript(std::string_view text, const std::string& file);
// Parses labelled JSONL (one script a line). Throws ScriptError naming `file` and the line.
std::vector<Script> ParseLabelledJsonl(std::string_view text, const std::string& file);
// Every .convo and .jsonl file under `paths` (files or folders, recursively), sorted by path.
std::vector<Script> LoadScripts(const std::vector<std::filesystem::path>& paths);

struct CheckFailure {
  const Expectation* expectation;
  std::string expected;
  std::string actual;
};
// The expectations of `turn` that `reply` does not meet.
std::vector<CheckFailure> Check(const ScriptTurn& turn, const dialog::Reply& reply);

}  // namespace backcheck::cli
