#include "cli/script.hpp"

#include <re2/re2.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace backcheck::cli {
namespace {

using Kind = Expectation::Kind;

std::string Trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::vector<std::string> SplitList(const std::string& value) {
  std::vector<std::string> out;
  if (Lower(value) == "none") return out;
  std::stringstream ss(value);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item = Trim(item);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::string JoinList(const std::vector<std::string>& items) {
  if (items.empty()) return "none";
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

bool ContainsNoCase(const std::string& haystack, const std::string& needle) {
  return Lower(haystack).find(Lower(needle)) != std::string::npos;
}

struct KeyInfo {
  const char* key;
  Kind kind;
};
constexpr KeyInfo kKeys[] = {
    {"intent", Kind::kIntent},
    {"state", Kind::kState},
    {"urgency", Kind::kUrgency},
    {"escalated", Kind::kEscalated},
    {"red flags", Kind::kRedFlags},
    {"red flags include", Kind::kRedFlagsInclude},
    {"possible flags", Kind::kPossibleFlags},
    {"text contains", Kind::kTextContains},
    {"text does not contain", Kind::kTextNotContains},
    {"text matches", Kind::kTextMatches},
    {"quick replies", Kind::kQuickReplies},
    {"quick replies include", Kind::kQuickRepliesInclude},
    {"sources include", Kind::kSourcesInclude},
};

// A flag id as the knowledge base writes them: lower case letters, digits and '_', starting with a
// letter. Possible flags are checked for that shape, so a typo like "coughing blood" or "none, fever"
// is refused when the script is read instead of failing every run with a confusing report.
template <typename Fail>
void CheckFlagIds(const std::string& what, const std::vector<std::string>& flags, Fail&& fail) {
  static const RE2 kFlagId("[a-z][a-z0-9_]*");
  for (const auto& f : flags) {
    if (Lower(f) == "none") fail("'" + what + "': 'none' stands alone (no flag); it cannot be listed with flags");
    if (!RE2::FullMatch(f, kFlagId)) {
      fail("'" + what + "': '" + f + "' is not a flag id (lower case letters, digits and '_', e.g. coughing_blood; "
           "several are separated by commas; 'none' for no flag)");
    }
  }
}

RE2::Options RegexOptions() {
  RE2::Options o;
  o.set_case_sensitive(false);
  o.set_log_errors(false);
  return o;
}

// Builds an expectation from a key and value; `fail` reports a problem with the line.
template <typename Fail>
Expectation MakeExpectation(Kind kind, const std::string& value, std::size_t line, std::string source, Fail&& fail) {
  Expectation e{kind, value, {}, line, std::move(source)};
  if (value.empty() && kind == Kind::kPossibleFlags) fail("'" + e.source + "' has no value (flag ids, or none)");
  if (value.empty() && kind != Kind::kRedFlags) fail("'" + e.source + "' has no value");
  switch (kind) {
    case Kind::kUrgency:
      if (!knowledge::ParseUrgency(value)) fail("unknown urgency '" + value + "' (none, see_doctor, urgent, emergency)");
      break;
    case Kind::kEscalated:
      e.value = Lower(value);
      if (e.value != "yes" && e.value != "no") fail("escalated is 'yes' or 'no', not '" + value + "'");
      break;
    case Kind::kRedFlags:
    case Kind::kRedFlagsInclude:
    case Kind::kQuickReplies:
    case Kind::kQuickRepliesInclude:
      e.list = SplitList(value);
      break;
    case Kind::kPossibleFlags:
      e.list = SplitList(value);
      CheckFlagIds("possible flags", e.list, fail);
      break;
    case Kind::kTextMatches: {
      RE2 re(value, RegexOptions());
      if (!re.ok()) fail("regular expression '" + value + "': " + re.error());
      break;
    }
    default:
      break;
  }
  return e;
}

}  // namespace

Script ParseScript(std::string_view text, const std::string& file) {
  Script script;
  script.file = file;
  script.line = 1;
  std::size_t line_no = 0;
  std::istringstream in{std::string(text)};
  std::string raw;
  while (std::getline(in, raw)) {
    ++line_no;
    auto fail = [&](const std::string& problem) {
      throw ScriptError(file + ":" + std::to_string(line_no) + ": " + problem);
    };
    const std::string line = Trim(raw);
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '>') {
      ScriptTurn turn{Trim(std::string_view(line).substr(1)), line_no, {}};
      if (turn.text.empty()) fail("a message line '>' has no text");
      script.turns.push_back(std::move(turn));
      continue;
    }
    const auto colon = line.find(':');
    if (colon == std::string::npos) fail("expected '> message', 'key: value' or '# comment', got '" + line + "'");
    const std::string key = Lower(Trim(std::string_view(line).substr(0, colon)));
    const std::string value = Trim(std::string_view(line).substr(colon + 1));
    if (key == "name") {
      if (!script.turns.empty()) fail("'name:' comes before the first message");
      if (value.empty()) fail("'name:' has no value");
      script.name = value;
      continue;
    }
    auto info = std::find_if(std::begin(kKeys), std::end(kKeys), [&](const KeyInfo& k) { return key == k.key; });
    if (info == std::end(kKeys)) {
      std::string known;
      for (const auto& k : kKeys) known += (known.empty() ? "" : ", ") + std::string(k.key);
      fail("unknown expectation '" + key + "' (" + known + ")");
    }
    if (script.turns.empty()) fail("an expectation comes before the first '> message'");
    script.turns.back().expectations.push_back(MakeExpectation(info->kind, value, line_no, line, fail));
  }
  if (script.turns.empty()) throw ScriptError(file + ": no message (lines starting with '>')");
  if (script.name.empty()) script.name = std::filesystem::path(file).stem().string();
  return script;
}

std::vector<Script> ParseLabelledJsonl(std::string_view text, const std::string& file) {
  using nlohmann::json;
  static const std::set<std::string> kFields = {"text", "intent", "state", "urgency", "red_flags", "possible_flags", "facts"};
  std::vector<Script> scripts;
  std::istringstream in{std::string(text)};
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto fail = [&](const std::string& problem) {
      throw ScriptError(file + ":" + std::to_string(line_no) + ": " + problem);
    };
    json conv;
    try {
      conv = json::parse(line);
    } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1e400
      fail(std::string("invalid JSON: ") + e.what());
    }
    if (!conv.is_object()) fail("each line must be a JSON object");
    std::vector<json> turns;
    if (conv.contains("turns")) {
      if (!conv["turns"].is_array() || conv["turns"].empty()) fail("'turns' must be a non-empty array");
      turns = conv["turns"].get<std::vector<json>>();
    } else if (conv.contains("text")) {
      turns.push_back(conv);
    } else {
      fail("a line needs 'text' or 'turns'");
    }
    for (auto it = conv.begin(); it != conv.end(); ++it) {
      if (it.key() != "turns" && it.key() != "name" && !kFields.count(it.key())) fail("unknown field '" + it.key() + "'");
    }
    Script script;
    script.file = file;
    script.line = line_no;
    for (std::size_t t = 0; t < turns.size(); ++t) {
      const json& turn = turns[t];
      if (!turn.is_object() || !turn.contains("text") || !turn["text"].is_string()) {
        fail("message " + std::to_string(t + 1) + " needs a string 'text'");
      }
      ScriptTurn st{turn["text"].get<std::string>(), line_no, {}};
      for (auto it = turn.begin(); it != turn.end(); ++it) {
        if (!kFields.count(it.key())) fail("unknown field '" + it.key() + "'");
      }
      // In the order the format lists them, so reports read the same for every line.
      for (const std::string key : {"intent", "state", "urgency", "red_flags", "possible_flags", "facts"}) {
        if (!turn.contains(key)) continue;
        const json& v = turn[key];
        auto single = [&](Kind kind) {
          if (!v.is_string()) fail("'" + key + "' must be a string");
          st.expectations.push_back(MakeExpectation(kind, v.get<std::string>(), line_no, key + ": " + v.get<std::string>(), fail));
        };
        if (key == "intent") single(Kind::kIntent);
        if (key == "state") single(Kind::kState);
        if (key == "urgency") single(Kind::kUrgency);
        if (key == "red_flags") {
          if (!v.is_array() || !std::all_of(v.begin(), v.end(), [](const json& f) { return f.is_string(); })) {
            fail("'red_flags' must be an array of strings");
          }
          Expectation e{Kind::kRedFlags, {}, v.get<std::vector<std::string>>(), line_no, {}};
          e.source = "red flags: " + JoinList(e.list);
          st.expectations.push_back(std::move(e));
        }
        if (key == "possible_flags") {
          if (!v.is_array() || !std::all_of(v.begin(), v.end(), [](const json& f) { return f.is_string(); })) {
            fail("'possible_flags' must be an array of strings (flag ids; [] for none)");
          }
          Expectation e{Kind::kPossibleFlags, {}, v.get<std::vector<std::string>>(), line_no, {}};
          CheckFlagIds("possible_flags", e.list, fail);
          e.source = "possible flags: " + JoinList(e.list);
          st.expectations.push_back(std::move(e));
        }
        if (key == "facts") {
          if (!v.is_array()) fail("'facts' must be an array of regular expressions");
          for (const auto& fact : v) {
            if (!fact.is_string()) fail("'facts' must be an array of regular expressions");
            const std::string pattern = fact.get<std::string>();
            RE2 re(pattern, RegexOptions());
            if (!re.ok()) fail("fact '" + pattern + "': " + re.error());
            st.expectations.push_back(Expectation{Kind::kTextMatches, pattern, {}, line_no, "text matches: " + pattern});
          }
        }
      }
      script.turns.push_back(std::move(st));
    }
    if (conv.contains("name") && !conv["name"].is_string()) fail("'name' must be a string");
    script.name = conv.value("name", script.turns.front().text);
    scripts.push_back(std::move(script));
  }
  return scripts;
}

std::vector<Script> LoadScripts(const std::vector<std::filesystem::path>& paths) {
  std::vector<std::filesystem::path> files;
  for (const auto& p : paths) {
    if (std::filesystem::is_directory(p)) {
      for (const auto& entry : std::filesystem::recursive_directory_iterator(p)) {
        const auto ext = entry.path().extension();
        if (entry.is_regular_file() && (ext == ".convo" || ext == ".jsonl")) files.push_back(entry.path());
      }
    } else if (std::filesystem::is_regular_file(p)) {
      files.push_back(p);
    } else {
      throw ScriptError(p.string() + ": no such file or folder");
    }
  }
  std::sort(files.begin(), files.end());
  std::vector<Script> scripts;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) throw ScriptError(f.string() + ": cannot be read");
    std::stringstream ss;
    ss << in.rdbuf();
    if (f.extension() == ".jsonl") {
      for (auto& s : ParseLabelledJsonl(ss.str(), f.string())) scripts.push_back(std::move(s));
    } else {
      scripts.push_back(ParseScript(ss.str(), f.string()));
    }
  }
  return scripts;
}

std::vector<CheckFailure> Check(const ScriptTurn& turn, const dialog::Reply& reply) {
  std::vector<CheckFailure> failures;
  auto fail = [&](const Expectation& e, std::string expected, std::string actual) {
    failures.push_back(CheckFailure{&e, std::move(expected), std::move(actual)});
  };
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  auto includes = [](const std::vector<std::string>& have, const std::vector<std::string>& want) {
    return std::all_of(want.begin(), want.end(),
                       [&](const std::string& w) { return std::find(have.begin(), have.end(), w) != have.end(); });
  };
  for (const auto& e : turn.expectations) {
    switch (e.kind) {
      case Kind::kIntent:
        if (reply.intent != e.value) fail(e, e.value, reply.intent);
        break;
      case Kind::kState:
        if (reply.state != e.value) fail(e, e.value, reply.state);
        break;
      case Kind::kUrgency:
        if (knowledge::UrgencyName(reply.urgency) != e.value) fail(e, e.value, knowledge::UrgencyName(reply.urgency));
        break;
      case Kind::kEscalated:
        if ((e.value == "yes") != reply.escalated) fail(e, e.value, reply.escalated ? "yes" : "no");
        break;
      case Kind::kRedFlags:
        if (sorted(reply.red_flags) != sorted(e.list)) fail(e, JoinList(sorted(e.list)), JoinList(sorted(reply.red_flags)));
        break;
      case Kind::kRedFlagsInclude:
        if (!includes(reply.red_flags, e.list)) fail(e, "at least " + JoinList(e.list), JoinList(reply.red_flags));
        break;
      case Kind::kPossibleFlags:
        if (sorted(reply.possible_flags) != sorted(e.list)) {
          fail(e, JoinList(sorted(e.list)), JoinList(sorted(reply.possible_flags)));
        }
        break;
      case Kind::kTextContains:
        if (!ContainsNoCase(reply.text, e.value)) fail(e, "text containing \"" + e.value + "\"", "not found in the text");
        break;
      case Kind::kTextNotContains:
        if (ContainsNoCase(reply.text, e.value)) fail(e, "text without \"" + e.value + "\"", "found in the text");
        break;
      case Kind::kTextMatches:
        if (!RE2::PartialMatch(reply.text, RE2(e.value, RegexOptions()))) {
          fail(e, "text matching /" + e.value + "/i", "no match in the text");
        }
        break;
      case Kind::kQuickReplies:
        if (reply.quick_replies != e.list) fail(e, JoinList(e.list), JoinList(reply.quick_replies));
        break;
      case Kind::kQuickRepliesInclude:
        if (!includes(reply.quick_replies, e.list)) fail(e, "at least " + JoinList(e.list), JoinList(reply.quick_replies));
        break;
      case Kind::kSourcesInclude: {
        bool found = std::any_of(reply.sources.begin(), reply.sources.end(), [&](const knowledge::Source& s) {
          return ContainsNoCase(s.section, e.value) || ContainsNoCase(s.quote, e.value);
        });
        if (!found) {
          std::vector<std::string> sections;
          for (const auto& s : reply.sources) sections.push_back(s.section);
          fail(e, "a source with \"" + e.value + "\"", "sources: " + JoinList(sections));
        }
        break;
      }
    }
  }
  return failures;
}

}  // namespace backcheck::cli
