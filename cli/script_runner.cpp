#include "cli/script_runner.hpp"

#include <chrono>
#include <sstream>
#include <nlohmann/json.hpp>

namespace backcheck::cli {
namespace {

using Clock = std::chrono::steady_clock;

void EscapeXml(std::ostream& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '<': out << "&lt;"; break;
      case '>': out << "&gt;"; break;
      case '&': out << "&amp;"; break;
      case '"': out << "&quot;"; break;
      case '\'': out << "&apos;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') {
          out << ' ';  // not allowed in XML 1.0
        } else {
          out << c;
        }
    }
  }
}

// The failure report of one script (empty when it passed).
std::string Describe(const ScriptResult& r) {
  std::ostringstream out;
  for (std::size_t t = 0; t < r.turns.size(); ++t) {
    const auto& turn = r.turns[t];
    if (turn.failures.empty()) continue;
    const ScriptTurn& st = r.script->turns[t];
    out << "  " << r.script->file << ":" << st.line << ", message " << (t + 1) << " \"" << st.text << "\"\n";
    for (const auto& f : turn.failures) {
      out << "    " << f.expectation->source << "\n";
      out << "      expected: " << f.expected << "\n";
      out << "      got:      " << f.actual << "\n";
    }
    out << "    the whole reply: " << turn.reply_json << "\n";
    if (!turn.said.empty()) {
      out << "    said:";
      for (const auto& id : turn.said) out << " " << id;
      out << "\n";
    }
  }
  if (!r.error.empty()) out << "  " << r.error << "\n";
  return out.str();
}

}  // namespace

bool ScriptResult::Passed() const {
  if (!skipped.empty()) return true;
  if (!error.empty() || turns.size() != script->turns.size()) return false;
  for (const auto& t : turns) {
    if (!t.failures.empty()) return false;
  }
  return true;
}

std::vector<ScriptResult> RunInProcess(const dialog::Engine& engine, const std::vector<Script>& scripts) {
  std::vector<ScriptResult> results;
  for (const auto& script : scripts) {
    const auto t0 = Clock::now();
    ScriptResult r;
    r.script = &script;
    for (const auto& problem : UnknownContentIds(script, engine.kb())) r.error += (r.error.empty() ? "" : "\n  ") + problem;
    auto state = engine.Start();
    for (const auto& turn : script.turns) {
      auto out = engine.Respond(state, turn.text, turn.now, /*trace=*/true);
      state = std::move(out.state);
      TurnResult tr;
      auto checked = CheckTurn(turn, out.reply, &out.said);
      tr.failures = std::move(checked.failures);
      tr.skipped = checked.skipped.size();
      tr.said = std::move(out.said);
      tr.reply_json = nlohmann::json(out.reply).dump();
      tr.reply = std::move(out.reply);
      r.turns.push_back(std::move(tr));
    }
    r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    results.push_back(std::move(r));
  }
  return results;
}

void PrintReport(std::ostream& out, const std::vector<ScriptResult>& results) {
  std::size_t failed = 0, messages = 0, expectations = 0, broken = 0, skipped_scripts = 0, skipped = 0;
  for (const auto& r : results) {
    if (!r.skipped.empty()) {
      ++skipped_scripts;
      continue;
    }
    messages += r.turns.size();
    for (const auto& t : r.script->turns) expectations += t.expectations.size();
    for (const auto& t : r.turns) {
      broken += t.failures.size();
      skipped += t.skipped;
    }
    if (r.Passed()) continue;
    ++failed;
    out << "FAIL " << r.script->name << " (" << r.script->file << ")\n" << Describe(r) << "\n";
  }
  out << results.size() << " scripts, " << messages << " messages, " << expectations << " expectations: "
      << (results.size() - failed - skipped_scripts) << " passed, " << failed << " failed";
  if (broken) out << " (" << broken << " expectations not met)";
  out << "\n";
  if (skipped_scripts) {
    out << skipped_scripts << " scripts skipped (they fix the time with @now; a live server keeps its own clock)\n";
  }
  if (skipped) out << skipped << " expectations skipped (in-process only)\n";
}

void WriteJUnit(std::ostream& out, const std::vector<ScriptResult>& results) {
  std::size_t failures = 0;
  double seconds = 0;
  for (const auto& r : results) {
    failures += r.Passed() ? 0 : 1;
    seconds += r.seconds;
  }
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  std::size_t skipped = 0;
  for (const auto& r : results) skipped += r.skipped.empty() ? 0 : 1;
  out << "<testsuites tests=\"" << results.size() << "\" failures=\"" << failures << "\" time=\"" << seconds << "\">\n";
  out << "  <testsuite name=\"backcheck conversations\" tests=\"" << results.size() << "\" failures=\"" << failures
      << "\" skipped=\"" << skipped << "\" time=\"" << seconds << "\">\n";
  for (const auto& r : results) {
    out << "    <testcase classname=\"";
    EscapeXml(out, r.script->file);
    out << "\" name=\"";
    EscapeXml(out, r.script->name);
    out << "\" time=\"" << r.seconds << "\"";
    if (!r.skipped.empty()) {
      out << ">\n      <skipped message=\"";
      EscapeXml(out, r.skipped);
      out << "\"/>\n    </testcase>\n";
      continue;
    }
    if (r.Passed()) {
      out << "/>\n";
      continue;
    }
    out << ">\n      <failure message=\"expectations not met\">";
    EscapeXml(out, Describe(r));
    out << "</failure>\n    </testcase>\n";
  }
  out << "  </testsuite>\n</testsuites>\n";
}

}  // namespace backcheck::cli
