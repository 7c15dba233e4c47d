// Runs conversation scripts in-process or against a live server, and reports the results as
// readable text or JUnit XML.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "cli/script.hpp"
#include "dialog/engine.hpp"

namespace backcheck::cli {

struct TurnResult {
  dialog::Reply reply;
  std::string reply_json;  // the whole reply, as shown in a failure report
  std::vector<CheckFailure> failures;
  std::vector<std::string> said;  // the content ids of the reply (in-process only)
  std::size_t skipped = 0;        // expectations not checked: in-process only, and run live
};

struct ScriptResult {
  const Script* script = nullptr;
  std::vector<TurnResult> turns;  // as far as the script got
  std::string error;              // a failure that is not an expectation (connection lost, server error)
  std::string skipped;            // why the script was not run at all (live: it fixes the time with @now)
  double seconds = 0;

  // Not failed: run and every checked expectation met, or skipped (PrintReport counts those apart).
  bool Passed() const;
};

// Each message is sent with its `@now` time, if any, and the reply's content ids are asked for,
// so every expectation is checked.
std::vector<ScriptResult> RunInProcess(const dialog::Engine& engine, const std::vector<Script>& scripts);

// Runs the scripts over one WebSocket connection to `url` (ws://HOST:PORT/PATH), each as its own
// conversation, up to `concurrency` at once, multiplexed on the connection. A script that fixes
// the time (`@now`) is skipped (the server keeps its own clock), and expectations on content ids
// (`says:`) are skipped (a reply frame does not carry them); both are counted in the report.
std::vector<ScriptResult> RunLive(const std::string& url, const std::vector<Script>& scripts, std::size_t concurrency);

// Each failed script with a diff per failed expectation and the whole reply, then a summary.
void PrintReport(std::ostream& out, const std::vector<ScriptResult>& results);
// JUnit XML: one test case per script.
void WriteJUnit(std::ostream& out, const std::vector<ScriptResult>& results);

}  // namespace backcheck::cli
