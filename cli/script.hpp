// Conversation scripts (tests/conversations/FORMAT.md): parsing, and checking a reply against a
// turn's expectations. The labelled JSONL format of tests/eval/README.md parses into the same
// Script values, so both run through one checker.
#pragma once

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "dialog/conversation.hpp"
#include "dialog/slots.hpp"

namespace backcheck::knowledge {
struct KnowledgeBase;
}

namespace backcheck::cli {

// A script that cannot be read. The message starts with "FILE:LINE: ".
class ScriptError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One expectation on a reply. What each key means, how its value is read and how it is checked
// are one entry each of the table in script.cpp (kExpectationTypes); a new expectation is a Kind
// name here and an entry there.
struct Expectation {
  enum class Kind {
    kIntent, kState, kUrgency, kEscalated, kRedFlags, kRedFlagsInclude, kPossibleFlags, kTextContains,
    kTextNotContains, kTextMatches, kQuickReplies, kQuickRepliesInclude, kSourcesInclude, kSays, kDoesNotSay,
    kLeadsWith,
  };
  Kind kind;
  std::string value;              // for single values and text checks
  std::vector<std::string> list;  // for red flags, possible flags, quick replies and content ids
  std::size_t line = 0;
  std::string source;             // the expectation as written, for reports
};

// The key of `kind` as scripts write it ("possible flags").
std::string_view KeyOf(Expectation::Kind kind);
// Whether `kind` needs what only the in-process engine knows (Turn::said): a live server's reply
// does not carry it, so the live runner skips (and counts) these.
bool InProcessOnly(Expectation::Kind kind);

struct ScriptTurn {
  std::string text;
  std::size_t line = 0;
  std::vector<Expectation> expectations;
  // When the message was written, fixed by an `@now:` line before it or an earlier message;
  // unset: no time is passed (a weekday is then not resolved).
  std::optional<dialog::MessageTime> now;
};

struct Script {
  std::string name;
  std::string file;
  std::size_t line = 0;  // where it starts (JSONL: its line)
  std::vector<ScriptTurn> turns;

  // `@now: none`: some message is sent without a time on purpose (in-process; a live server
  // always stamps its own).
  bool without_time = false;

  // Whether some message's time is fixed, or left out, by `@now:` (a live server keeps its own
  // clock, so the live runner skips these).
  bool FixesTime() const;
};

// Reads the value of an `@now:` line: "YYYY-MM-DDTHH:MM[:SS] +HH:MM" (or -HH:MM, or Z for UTC;
// the space before the offset is optional, a space may stand for the 'T'). Returns the problem
// (without file and line) when it is not that, or not a real date and time.
std::optional<dialog::MessageTime> ParseNow(std::string_view value, std::string* problem);

// Parses one .convo file's text. Throws ScriptError naming `file` and the line.
Script ParseScript(std::string_view text, const std::string& file);
// Parses labelled JSONL (one script a line). Throws ScriptError naming `file` and the line.
std::vector<Script> ParseLabelledJsonl(std::string_view text, const std::string& file);
// Every .convo and .jsonl file under `paths` (files or folders, recursively), sorted by path.
std::vector<Script> LoadScripts(const std::vector<std::filesystem::path>& paths);

// The content ids of `script`'s `says:` / `does not say:` that `kb` could never say (no such
// tailoring rule, screening question, text, flag, topic, state answer, level or fallback), one
// "FILE:LINE: ..." line each: a `does not say:` of such an id would always hold. Prefixes
// ("tailoring:") and retrieval ids are not looked up.
std::vector<std::string> UnknownContentIds(const Script& script, const knowledge::KnowledgeBase& kb);

struct CheckFailure {
  const Expectation* expectation;
  std::string expected;
  std::string actual;
};
struct CheckOutcome {
  std::vector<CheckFailure> failures;
  // Expectations not checked because `said` was not known (in-process only ones, live).
  std::vector<const Expectation*> skipped;
};
// Checks `turn`'s expectations against `reply` and, when known, the content ids it is made of
// (Turn::said; nullptr: not known, so the in-process-only expectations are skipped and listed).
CheckOutcome CheckTurn(const ScriptTurn& turn, const dialog::Reply& reply, const std::vector<std::string>* said);
// The expectations of `turn` that `reply` does not meet, `said` unknown (CheckTurn's failures).
std::vector<CheckFailure> Check(const ScriptTurn& turn, const dialog::Reply& reply);

}  // namespace backcheck::cli
