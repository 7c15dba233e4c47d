#include "cli/script.hpp"

#include "knowledge/knowledge_base.hpp"

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

// A flag id as the knowledge base writes them: lower case letters, digits and '_', starting with a
// letter. Possible flags are checked for that shape, so a typo like "coughing blood" or "none, fever"
// is refused when the script is read instead of failing every run with a confusing report.
// Returns the problem, or "".
std::string FlagIdProblem(const std::string& what, const std::vector<std::string>& flags) {
  static const RE2 kFlagId("[a-z][a-z0-9_]*");
  for (const auto& f : flags) {
    if (Lower(f) == "none") return "'" + what + "': 'none' stands alone (no flag); it cannot be listed with flags";
    if (!RE2::FullMatch(f, kFlagId)) {
      return "'" + what + "': '" + f + "' is not a flag id (lower case letters, digits and '_', e.g. coughing_blood; "
             "several are separated by commas; 'none' for no flag)";
    }
  }
  return {};
}

RE2::Options RegexOptions() {
  RE2::Options o;
  o.set_case_sensitive(false);
  o.set_log_errors(false);
  return o;
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

bool Includes(const std::vector<std::string>& have, const std::vector<std::string>& want) {
  return std::all_of(want.begin(), want.end(),
                     [&](const std::string& w) { return std::find(have.begin(), have.end(), w) != have.end(); });
}

// What a check sees of one reply.
struct Observed {
  const dialog::Reply& reply;
  const std::vector<std::string>* said;  // nullptr: not known (a live server's reply)
};

// An expectation not met: what was expected and what came instead.
struct Miss {
  std::string expected, actual;
};
using Outcome = std::optional<Miss>;

// ---------------------------------------------------------------------------------------------
// The expectations: one entry each. `parse` reads the value as written (trimmed) into e.value or
// e.list and returns the problem ("" when fine); `check` gives the Miss when the reply does not
// meet it. Parse functions for common value forms first.

// Any non-empty text, kept as written.
std::string AnyText(const std::string&, Expectation&) { return {}; }
// A comma-separated list ("none": the empty list).
std::string AnyList(const std::string& value, Expectation& e) {
  e.list = SplitList(value);
  return {};
}

// Content ids (Turn::said, as dialog/compose.cpp names them): "KIND:NAME", or a prefix "KIND:"
// standing for any id of that kind, or "past_clarify"; several are separated by commas.
constexpr std::string_view kContentKinds[] = {"text", "tailoring", "guidance", "conditional", "third_party", "explanation",
                                              "question", "answer", "screening", "retrieval", "fallback"};
constexpr std::string_view kBareContentIds[] = {"past_clarify"};

std::string ContentIds(const std::string& value, Expectation& e) {
  static const RE2 kId("([a-z_]+):([a-z0-9_/]*)");
  std::string kinds;
  for (auto k : kContentKinds) kinds += (kinds.empty() ? "" : ", ") + std::string(k);
  std::stringstream ss(value);
  std::string id;
  while (std::getline(ss, id, ',')) {
    id = Trim(id);
    const std::string shape = "(KIND:NAME, or KIND: for any id of that kind, KIND one of " + kinds +
                              "; or past_clarify; several are separated by commas)";
    if (id.empty()) return "'" + std::string(KeyOf(e.kind)) + "': an empty content id " + shape;
    std::string kind, name;
    const bool bare = std::find(std::begin(kBareContentIds), std::end(kBareContentIds), id) != std::end(kBareContentIds);
    if (!bare && (!RE2::FullMatch(id, kId, &kind, &name) ||
                  std::find(std::begin(kContentKinds), std::end(kContentKinds), kind) == std::end(kContentKinds))) {
      return "'" + std::string(KeyOf(e.kind)) + "': '" + id + "' is not a content id " + shape;
    }
    e.list.push_back(id);
  }
  return {};
}

// Whether `said` holds `id`: that id, or for a prefix "KIND:", some id starting with it.
bool Said(const std::vector<std::string>& said, const std::string& id) {
  const bool prefix = id.back() == ':';
  return std::any_of(said.begin(), said.end(),
                     [&](const std::string& s) { return prefix ? s.starts_with(id) : s == id; });
}

struct ExpectationType {
  Kind kind;
  std::string_view key;
  // Whether an empty value is allowed (it then means "none"); when not, "has no value" + hint.
  bool empty_ok = false;
  std::string_view empty_hint = "";
  bool in_process_only = false;  // needs Turn::said, which a live server does not send
  std::string (*parse)(const std::string& value, Expectation& e) = AnyText;
  Outcome (*check)(const Expectation& e, const Observed& seen) = nullptr;
};

const ExpectationType kExpectationTypes[] = {
    {.kind = Kind::kIntent, .key = "intent",
     .check = [](const Expectation& e, const Observed& o) -> Outcome {
       if (o.reply.intent == e.value) return {};
       return Miss{e.value, o.reply.intent};
     }},
    {.kind = Kind::kState, .key = "state",
     .check = [](const Expectation& e, const Observed& o) -> Outcome {
       if (o.reply.state == e.value) return {};
       return Miss{e.value, o.reply.state};
     }},
    {.kind = Kind::kUrgency, .key = "urgency",
     .parse = [](const std::string& value, Expectation&) -> std::string {
       if (knowledge::ParseUrgency(value)) return {};
       return "unknown urgency '" + value + "' (none, see_doctor, urgent, emergency)";
     },
     .check = [](const Expectation& e, const Observed& o) -> Outcome {
       const std::string got{knowledge::UrgencyName(o.reply.urgency)};
       if (got == e.value) return {};
       return Miss{e.value, got};
     }},
    {.kind = Kind::kEscalated, .key = "escalated",
     .parse = [](const std::string& value, Expectation& e) -> std::string {
       e.value = Lower(value);
       if (e.value == "yes" || e.value == "no") return {};
       return "escalated is 'yes' or 'no', not '" + value + "'";
     },
     .check = [](const Expectation& e, const Observed& o) -> Outcome {
       if ((e.value == "yes") == o.reply.escalated) return {};
       return Miss{e.value, o.reply.escalated ? "yes" : "no"};
     }},
    {.kind = Kind::kRedFlags, .key = "red flags", .empty_ok = true, .parse = AnyList,
     .check = [](const Expectation& e, const Observed& o) -> Outcome {
       if (Sorted(o.reply.red_flags) == Sorted(e.list)) return {};
       return Miss{JoinList(Sorted(e.list)), JoinList(Sorted(o.reply.red_flags))};
     }},
    {.kind = Kind::kRedFlagsInclude, .key = "red flags include", .parse = AnyList,
     .check = [](const Expectation& e, const Observed& o) -> Outcome {
       if (Includes(o.reply.red_flags, e.list)) return {};
       return Miss{"at least " + JoinList(e.list), JoinList(o.reply.red_flags)};
     }},
    {.kind = Kind::kPossibleFlags, .key = "possible flags", .empty_hint = " (flag ids, or none)",
     .parse = [](const std::string& value, Expectation& e) -> std::string {
       e.list = SplitList(value);
       return FlagIdProblem("possible flags", e.list);
     },
     .check = [](const Expectation& e, const Observed& o) -> Outcome {
       if (Sorted(o.reply.possible_flags) == Sorted(e.list)) return {};
       return Miss{JoinList(Sorted(e.list)), JoinList(Sorted(o.reply.possible_flags))};
     }},
    {.kind = Kind::kTextContains, .key = "text contains",
     .check = [](const Expectation& e, const Observed& o) -> Outcome {
       if (ContainsNoCase(o.reply.text, e.value)) return {};
       return Miss{"text containing \"" + e.value + "\"", "not found in the text"};
     }},
    {.kind = Kind::kTextNotContains, .key = "text does not contain",
     .check = [](const Expectation& e, const Observed& o) -> Outcome {
       if (!ContainsNoCase(o.reply.text, e.value)) return {};
       return Miss{"text without \"" + e.value + "\"", "found in the text"};
     }},
    {.kind = Kind::kTextMatches, .key = "text matches",
     .parse = [](const std::string& value, Expectation&) -> std::string {
       RE2 re(value, RegexOptions());
       if (re.ok()) return {};
       return "regular expression '" + value + "': " + re.error();
     },
     .check = [](const Expectation& e, const Observed& o) -> Outcome {
       if (RE2::PartialMatch(o.reply.text, RE2(e.value, RegexOptions()))) return {};
       return Miss{"text matching /" + e.value + "/i", "no match in the text"};
     }},
    {.kind = Kind::kQuickReplies, .key = "quick replies", .parse = AnyList,
     .check = [](const Expectation& e, const Observed& o) -> Outcome {
       if (o.reply.quick_replies == e.list) return {};
       return Miss{JoinList(e.list), JoinList(o.reply.quick_replies)};
     }},
    {.kind = Kind::kQuickRepliesInclude, .key = "quick replies include", .parse = AnyList,
     .check = [](const Expectation& e, const Observed& o) -> Outcome {
       if (Includes(o.reply.quick_replies, e.list)) return {};
       return Miss{"at least " + JoinList(e.list), JoinList(o.reply.quick_replies)};
     }},
    {.kind = Kind::kSourcesInclude, .key = "sources include",
     .check = [](const Expectation& e, const Observed& o) -> Outcome {
       const auto& sources = o.reply.sources;
       if (std::any_of(sources.begin(), sources.end(), [&](const knowledge::Source& s) {
             return ContainsNoCase(s.section, e.value) || ContainsNoCase(s.quote, e.value);
           })) {
         return {};
       }
       std::vector<std::string> sections;
       for (const auto& s : sources) sections.push_back(s.section);
       return Miss{"a source with \"" + e.value + "\"", "sources: " + JoinList(sections)};
     }},
    {.kind = Kind::kSays, .key = "says", .empty_hint = " (content ids, e.g. tailoring:self_care_early)",
     .in_process_only = true, .parse = ContentIds,
     .check = [](const Expectation& e, const Observed& o) -> Outcome {
       std::vector<std::string> missing;
       for (const auto& id : e.list) {
         if (!Said(*o.said, id)) missing.push_back(id);
       }
       if (missing.empty()) return {};
       return Miss{"said: " + JoinList(e.list) + " (missing: " + JoinList(missing) + ")", "said: " + JoinList(*o.said)};
     }},
    {.kind = Kind::kDoesNotSay, .key = "does not say", .empty_hint = " (content ids, e.g. tailoring:doms_window)",
     .in_process_only = true, .parse = ContentIds,
     .check = [](const Expectation& e, const Observed& o) -> Outcome {
       std::vector<std::string> found;  // the ids said that one of e.list names
       for (const auto& s : *o.said) {
         if (std::any_of(e.list.begin(), e.list.end(), [&](const std::string& id) { return Said({s}, id); })) found.push_back(s);
       }
       if (found.empty()) return {};
       return Miss{"none of: " + JoinList(e.list), "said: " + JoinList(*o.said) + " (among them: " + JoinList(found) + ")"};
     }},
    // The reply's first part: "leads with: guidance:urgent" (what to do now comes first).
    {.kind = Kind::kLeadsWith, .key = "leads with", .empty_hint = " (one content id, e.g. guidance:urgent)",
     .in_process_only = true,
     .parse = [](const std::string& value, Expectation& e) -> std::string {
       std::string error = ContentIds(value, e);
       if (error.empty() && e.list.size() != 1) error = "'leads with': one content id, not " + std::to_string(e.list.size());
       return error;
     },
     .check = [](const Expectation& e, const Observed& o) -> Outcome {
       const std::string first = o.said->empty() ? std::string("nothing") : o.said->front();
       if (!o.said->empty() && Said({first}, e.list.front())) return {};
       return Miss{"first: " + JoinList(e.list), "said: " + JoinList(*o.said)};
     }},
};

constexpr std::size_t kKindCount = static_cast<std::size_t>(Kind::kLeadsWith) + 1;
static_assert(std::size(kExpectationTypes) == kKindCount, "one kExpectationTypes entry per Expectation::Kind");

// The entry of `kind` (entries are in Kind order; checked once).
const ExpectationType& TypeOf(Kind kind) {
  static const bool in_order = [] {
    for (std::size_t i = 0; i < kKindCount; ++i) {
      if (static_cast<std::size_t>(kExpectationTypes[i].kind) != i) throw std::logic_error("kExpectationTypes out of Kind order");
    }
    return true;
  }();
  (void)in_order;
  return kExpectationTypes[static_cast<std::size_t>(kind)];
}

const ExpectationType* FindType(const std::string& key) {
  for (const auto& t : kExpectationTypes) {
    if (t.key == key) return &t;
  }
  return nullptr;
}

// Builds an expectation from a key's entry and value; `fail` reports a problem with the line.
template <typename Fail>
Expectation MakeExpectation(Kind kind, const std::string& value, std::size_t line, std::string source, Fail&& fail) {
  const ExpectationType& type = TypeOf(kind);
  Expectation e{kind, value, {}, line, std::move(source)};
  if (value.empty() && !type.empty_ok) fail("'" + e.source + "' has no value" + std::string(type.empty_hint));
  if (std::string problem = type.parse(value, e); !problem.empty()) fail(problem);
  return e;
}

}  // namespace

std::optional<dialog::MessageTime> ParseNow(std::string_view value, std::string* problem) {
  static const RE2 kNow(R"((\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))? ?(Z|[+-]\d{2}:\d{2}))");
  const std::string forms = " (YYYY-MM-DDTHH:MM[:SS] and a UTC offset +HH:MM, -HH:MM or Z, e.g. 2026-12-09T09:30 +01:00)";
  auto refuse = [&](std::string why) -> std::optional<dialog::MessageTime> {
    if (problem) *problem = std::move(why);
    return std::nullopt;
  };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0;
  std::string sec, offset;
  if (!RE2::FullMatch(value, kNow, &y, &mo, &d, &h, &mi, &sec, &offset)) {
    return refuse("'@now': '" + std::string(value) + "' is not a local date-time with a UTC offset" + forms);
  }
  const int s = sec.empty() ? 0 : std::stoi(sec);
  const std::chrono::year_month_day date{std::chrono::year{y}, std::chrono::month(static_cast<unsigned>(mo)),
                                         std::chrono::day(static_cast<unsigned>(d))};
  if (!date.ok()) return refuse("'@now': " + std::string(value.substr(0, 10)) + " is not a date" + forms);
  if (h > 23 || mi > 59 || s > 59) return refuse("'@now': " + std::string(value.substr(11, sec.empty() ? 5 : 8)) + " is not a time of day" + forms);
  std::chrono::minutes off{0};
  if (offset != "Z") {
    const int oh = std::stoi(offset.substr(1, 2)), om = std::stoi(offset.substr(4, 2));
    if (oh > 14 || om > 59 || oh * 60 + om > 14 * 60) return refuse("'@now': UTC offset " + offset + " is not one (-14:00 to +14:00)");
    off = std::chrono::minutes((offset[0] == '-' ? -1 : 1) * (oh * 60 + om));
  }
  const auto local = std::chrono::sys_days(date) + std::chrono::hours(h) + std::chrono::minutes(mi) + std::chrono::seconds(s);
  return dialog::MessageTime{std::chrono::sys_seconds(local - off), off};
}

bool Script::FixesTime() const {
  return without_time || std::any_of(turns.begin(), turns.end(), [](const ScriptTurn& t) { return t.now.has_value(); });
}

Script ParseScript(std::string_view text, const std::string& file) {
  Script script;
  script.file = file;
  script.line = 1;
  std::size_t line_no = 0;
  std::istringstream in{std::string(text)};
  std::string raw;
  std::optional<dialog::MessageTime> now;  // the last `@now:`, for this and later messages
  std::size_t now_line = 0;                // an `@now:` no message has followed yet
  while (std::getline(in, raw)) {
    ++line_no;
    auto fail = [&](const std::string& problem) {
      throw ScriptError(file + ":" + std::to_string(line_no) + ": " + problem);
    };
    const std::string line = Trim(raw);
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '>') {
      ScriptTurn turn{Trim(std::string_view(line).substr(1)), line_no, {}, now};
      if (turn.text.empty()) fail("a message line '>' has no text");
      now_line = 0;
      script.turns.push_back(std::move(turn));
      continue;
    }
    const auto colon = line.find(':');
    if (line[0] == '@') {
      const std::string directive = Lower(Trim(std::string_view(line).substr(0, colon)));
      if (directive != "@now") fail("unknown directive '" + directive + "' (@now)");
      if (colon == std::string::npos) fail("'@now' needs ': ' and a date-time, e.g. @now: 2026-12-09T09:30 +01:00");
      const std::string value = Trim(std::string_view(line).substr(colon + 1));
      if (value.empty()) fail("'@now:' has no value (a date-time, e.g. 2026-12-09T09:30 +01:00)");
      now_line = line_no;
      if (Lower(value) == "none") {  // the next messages carry no time, as from a client that sends none
        now.reset();
        script.without_time = true;
        continue;
      }
      std::string problem;
      now = ParseNow(value, &problem);
      if (!now) fail(problem);
      continue;
    }
    if (colon == std::string::npos) fail("expected '> message', 'key: value' or '# comment', got '" + line + "'");
    const std::string key = Lower(Trim(std::string_view(line).substr(0, colon)));
    const std::string value = Trim(std::string_view(line).substr(colon + 1));
    if (key == "name") {
      if (!script.turns.empty()) fail("'name:' comes before the first message");
      if (value.empty()) fail("'name:' has no value");
      script.name = value;
      continue;
    }
    const ExpectationType* type = FindType(key);
    if (!type) {
      std::string known;
      for (const auto& t : kExpectationTypes) known += (known.empty() ? "" : ", ") + std::string(t.key);
      fail("unknown expectation '" + key + "' (" + known + ")");
    }
    if (script.turns.empty()) fail("an expectation comes before the first '> message'");
    if (now_line) {
      fail("an expectation after '@now' (line " + std::to_string(now_line) +
           "): '@now' goes before the message it applies to, expectations after their message");
    }
    script.turns.back().expectations.push_back(MakeExpectation(type->kind, value, line_no, line, fail));
  }
  if (script.turns.empty()) throw ScriptError(file + ": no message (lines starting with '>')");
  if (now_line) throw ScriptError(file + ":" + std::to_string(now_line) + ": '@now' is not followed by a message");
  if (script.name.empty()) script.name = std::filesystem::path(file).stem().string();
  return script;
}

std::vector<std::string> UnknownContentIds(const Script& script, const knowledge::KnowledgeBase& kb) {
  const auto& flow = kb.flow;
  // What is wrong with `id`, or "".
  auto unknown = [&](const std::string& id) -> std::string {
    const auto colon = id.find(':');
    if (colon == std::string::npos || colon + 1 == id.size()) return {};  // past_clarify, or a prefix
    const std::string kind = id.substr(0, colon), name = id.substr(colon + 1);
    auto has = [&](const auto& items) {
      return std::any_of(items.begin(), items.end(), [&](const auto& item) { return item.id == name; });
    };
    if (kind == "text") return flow.texts.count(name) ? "" : "no text '" + name + "' in flow.jsonc texts";
    if (kind == "screening") return has(flow.screening) ? "" : "no screening question '" + name + "' in flow.jsonc";
    if (kind == "tailoring") return has(flow.tailoring) ? "" : "no tailoring rule '" + name + "' in flow.jsonc";
    if (kind == "explanation" || kind == "question") return kb.FindFlag(name) ? "" : "no red flag '" + name + "'";
    if (kind == "guidance" || kind == "conditional" || kind == "third_party") {
      auto level = knowledge::ParseUrgency(name);
      return level && *level != knowledge::Urgency::kNone ? "" : "'" + name + "' is not a level (see_doctor, urgent, emergency)";
    }
    if (kind == "answer") {
      if (const auto slash = name.find('/'); slash != std::string::npos) {
        const knowledge::FlowState* state = flow.FindState(name.substr(0, slash));
        return state && state->answers.count(name.substr(slash + 1)) ? "" : "no state answer '" + name + "' in flow.jsonc";
      }
      return kb.FindTopic(name) ? "" : "no topic '" + name + "' in topics.jsonc";
    }
    if (kind == "fallback") {
      const bool ok = !name.empty() && name.size() < 4 && std::all_of(name.begin(), name.end(), ::isdigit) &&
                      std::stoul(name) < flow.fallbacks.size();
      return ok ? "" : "no fallback " + name + " (there are " + std::to_string(flow.fallbacks.size()) + ", from 0)";
    }
    return {};  // retrieval:I: any sentence
  };
  std::vector<std::string> problems;
  for (const auto& turn : script.turns) {
    for (const auto& e : turn.expectations) {
      if (e.kind != Kind::kSays && e.kind != Kind::kDoesNotSay && e.kind != Kind::kLeadsWith) continue;
      for (const auto& id : e.list) {
        if (auto why = unknown(id); !why.empty()) {
          problems.push_back(script.file + ":" + std::to_string(e.line) + ": '" + std::string(KeyOf(e.kind)) + "': '" + id +
                             "' can never be said: " + why);
        }
      }
    }
  }
  return problems;
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
        // A one-message line is its own turn: its `name` names the conversation (checked above).
        const bool own_name = !conv.contains("turns") && it.key() == "name";
        if (!own_name && !kFields.count(it.key())) fail("unknown field '" + it.key() + "'");
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
          if (std::string problem = FlagIdProblem("possible_flags", e.list); !problem.empty()) fail(problem);
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

std::string_view KeyOf(Kind kind) { return TypeOf(kind).key; }
bool InProcessOnly(Kind kind) { return TypeOf(kind).in_process_only; }

CheckOutcome CheckTurn(const ScriptTurn& turn, const dialog::Reply& reply, const std::vector<std::string>* said) {
  CheckOutcome out;
  const Observed seen{reply, said};
  for (const auto& e : turn.expectations) {
    const ExpectationType& type = TypeOf(e.kind);
    if (type.in_process_only && !said) {
      out.skipped.push_back(&e);
      continue;
    }
    if (auto miss = type.check(e, seen)) out.failures.push_back(CheckFailure{&e, std::move(miss->expected), std::move(miss->actual)});
  }
  return out;
}

std::vector<CheckFailure> Check(const ScriptTurn& turn, const dialog::Reply& reply) {
  return CheckTurn(turn, reply, nullptr).failures;
}

}  // namespace backcheck::cli
