#include "cli/labelled_eval.hpp"

#include <re2/re2.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

namespace backcheck::cli {
namespace {

using nlohmann::json;

std::string Join(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i];
  return out + "]";
}

const std::set<std::string>& KnownFields() {
  static const std::set<std::string> kFields = {"text", "intent", "state", "urgency", "red_flags", "facts"};
  return kFields;
}

}  // namespace

EvalSummary RunLabelledEval(const dialog::Engine& engine, std::istream& in, const std::string& source) {
  EvalSummary summary;
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto fail_format = [&](const std::string& problem) {
      throw EvalFormatError(source + ":" + std::to_string(line_no) + ": " + problem);
    };
    json conv;
    try {
      conv = json::parse(line);
    } catch (const json::parse_error& e) {
      fail_format(std::string("invalid JSON: ") + e.what());
    }
    if (!conv.is_object()) fail_format("each line must be a JSON object");
    std::vector<json> turns;
    if (conv.contains("turns")) {
      if (!conv["turns"].is_array() || conv["turns"].empty()) fail_format("'turns' must be a non-empty array");
      turns = conv["turns"].get<std::vector<json>>();
    } else if (conv.contains("text")) {
      turns.push_back(conv);
    } else {
      fail_format("a line needs 'text' or 'turns'");
    }
    for (auto it = conv.begin(); it != conv.end(); ++it) {
      if (it.key() != "turns" && it.key() != "name" && !KnownFields().count(it.key())) {
        fail_format("unknown field '" + it.key() + "'");
      }
    }
    std::string name = conv.value("name", std::string());
    ++summary.conversations;

    dialog::ConversationState state = engine.Start();
    for (std::size_t t = 0; t < turns.size(); ++t) {
      const json& turn = turns[t];
      if (!turn.is_object() || !turn.contains("text") || !turn["text"].is_string()) {
        fail_format("message " + std::to_string(t + 1) + " needs a string 'text'");
      }
      for (auto it = turn.begin(); it != turn.end(); ++it) {
        if (!KnownFields().count(it.key())) fail_format("unknown field '" + it.key() + "'");
      }
      const std::string text = turn["text"].get<std::string>();
      dialog::Turn result = engine.Respond(state, text);
      state = result.state;
      const dialog::Reply& reply = result.reply;
      ++summary.messages;
      auto check = [&](const std::string& field, const std::string& expected, const std::string& actual) {
        ++summary.expectations;
        if (expected != actual) {
          summary.failures.push_back(EvalFailure{line_no, t + 1, name.empty() ? turns[0]["text"].get<std::string>() : name,
                                                 text, field, expected, actual});
        }
      };
      auto expect_string = [&](const char* field) -> std::string {
        if (!turn[field].is_string()) fail_format(std::string("'") + field + "' must be a string");
        return turn[field].get<std::string>();
      };
      if (turn.contains("intent")) check("intent", expect_string("intent"), reply.intent);
      if (turn.contains("state")) check("state", expect_string("state"), reply.state);
      if (turn.contains("urgency")) check("urgency", expect_string("urgency"), knowledge::UrgencyName(reply.urgency));
      if (turn.contains("red_flags")) {
        if (!turn["red_flags"].is_array()) fail_format("'red_flags' must be an array");
        auto expected = turn["red_flags"].get<std::vector<std::string>>();
        auto actual = reply.red_flags;
        std::sort(expected.begin(), expected.end());
        std::sort(actual.begin(), actual.end());
        check("red_flags", Join(expected), Join(actual));
      }
      if (turn.contains("facts")) {
        if (!turn["facts"].is_array()) fail_format("'facts' must be an array of regular expressions");
        for (const auto& fact : turn["facts"]) {
          if (!fact.is_string()) fail_format("'facts' must be an array of regular expressions");
          RE2::Options options;
          options.set_case_sensitive(false);
          options.set_log_errors(false);
          RE2 re(fact.get<std::string>(), options);
          if (!re.ok()) fail_format("fact '" + fact.get<std::string>() + "': " + re.error());
          ++summary.expectations;
          if (!RE2::PartialMatch(reply.text, re)) {
            summary.failures.push_back(EvalFailure{line_no, t + 1,
                                                   name.empty() ? turns[0]["text"].get<std::string>() : name, text,
                                                   "facts", "text matching /" + fact.get<std::string>() + "/i",
                                                   reply.text});
          }
        }
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
