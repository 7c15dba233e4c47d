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
};

struct ScriptResult {
  const Script* script = nullptr;
  std::vector<TurnResult> turns;  // as far as the script got
  std::string error;              // a failure that is not an expectation (connection lost, server error)
  double seconds = 0;

  bool Passed() const;
};

std::vector<ScriptResult> RunInProcess(const dialog::Engine& engine, const std::vector<Script>& scripts);

// Runs the scripts over one WebSocket connection to `url` (ws://HOST:PORT/PATH), each as its own
// conversation, up to `concurrency` at once, multiplexed on the connection.
std::vector<ScriptResult> RunLive(const std::string& url, const std::vector<Script>& scripts, std::size_t concurrency);

// Each failed script with a diff per failed expectation and the whole reply, then a summary.
void PrintReport(std::ostream& out, const std::vector<ScriptResult>& results);
// JUnit XML: one test case per script.
void WriteJUnit(std::ostream& out, const std::vector<ScriptResult>& results);

}  // namespace backcheck::cli
