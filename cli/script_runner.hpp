// Runs conversation scripts in-process or against a live server, and reports the results as
// readable text or JUnit XML.
#pragma once

#include <chrono>
#include <ostream>
#include <stdexcept>
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

struct LiveOptions {
  std::size_t concurrency = 8;
  std::string token;    // a bridge token: sent as `Authorization: Bearer <token>` on the upgrade
  std::string ca_file;  // wss://: trust this CA (PEM) instead of the system's store
  std::chrono::milliseconds timeout{30000};  // for connecting, TLS, the upgrade, and each answer
  std::size_t max_retries = 10;              // `rate_limited` answers in a row before a script gives up
};

// The server could not be reached (bad URL, DNS, refused, TLS, an HTTP status instead of the
// upgrade, a timeout before the WebSocket was open): what() names the URL and the cause.
class LiveSetupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Runs the scripts over one WebSocket connection to `url` (ws://HOST:PORT/PATH or wss://...),
// each as its own conversation, up to `concurrency` at once, multiplexed on the connection. A
// script that fixes the time (`@now`) is skipped (the server keeps its own clock), and
// expectations on content ids (`says:`) are skipped (a reply frame does not carry them); both are
// counted in the report. Throws LiveSetupError when no connection could be made; once connected,
// a lost connection, a silent server or a limit that never lets up fails the scripts not yet done,
// each with the reason.
std::vector<ScriptResult> RunLive(const std::string& url, const std::vector<Script>& scripts, const LiveOptions& options);

// Each failed script with a diff per failed expectation and the whole reply, then a summary.
void PrintReport(std::ostream& out, const std::vector<ScriptResult>& results);
// JUnit XML: one test case per script.
void WriteJUnit(std::ostream& out, const std::vector<ScriptResult>& results);

}  // namespace backcheck::cli
