// Conversation scripts (cli/script.hpp): the `possible flags:` expectation (and the JSONL
// `possible_flags` field) are parsed like `red flags:`, refused with a clear message when the
// value is not a list of flag ids, and checked against Reply::possible_flags as a set.
// `says:` / `does not say:` take content ids (Turn::said) and are skipped, and counted, when
// `said` is not known (live); `@now:` fixes the message time for that and later messages.
#include <catch2/catch.hpp>

#include <sstream>

#include "cli/script.hpp"
#include "cli/script_runner.hpp"
#include "test_support.hpp"

using backcheck::cli::Check;
using backcheck::cli::Expectation;
using backcheck::cli::ParseLabelledJsonl;
using backcheck::cli::ParseScript;
using backcheck::cli::ScriptError;

namespace {

// The one expectation of a one-message script whose expectation line is `line`.
Expectation Only(const std::string& line) {
  auto s = ParseScript("> I noticed some blood this morning\n  " + line + "\n", "t.convo");
  REQUIRE(s.turns.size() == 1);
  REQUIRE(s.turns[0].expectations.size() == 1);
  return s.turns[0].expectations[0];
}

backcheck::dialog::Reply WithPossible(std::vector<std::string> flags) {
  backcheck::dialog::Reply r;
  r.possible_flags = std::move(flags);
  return r;
}

}  // namespace

TEST_CASE("'possible flags:' parses a list of flag ids, or none", "[script]") {
  auto e = Only("possible flags: coughing_blood");
  CHECK(e.kind == Expectation::Kind::kPossibleFlags);
  CHECK(e.list == std::vector<std::string>{"coughing_blood"});
  CHECK(e.line == 2);
  CHECK(e.source == "possible flags: coughing_blood");

  CHECK(Only("Possible Flags:  chest_pain ,coughing_blood ").list == std::vector<std::string>{"chest_pain", "coughing_blood"});
  CHECK(Only("possible flags: none").list.empty());
  CHECK(Only("possible flags: NONE").list.empty());
  CHECK(Only("possible flags: tingling, cord_signs2").list == std::vector<std::string>{"tingling", "cord_signs2"});
}

TEST_CASE("'possible flags:' refuses what is not a list of flag ids, naming the file and line", "[script]") {
  auto parse = [](const std::string& line) { return ParseScript("name: x\n> hi\n  " + line + "\n", "bad.convo"); };
  CHECK_THROWS_AS(parse("possible flags:"), ScriptError);
  CHECK_THROWS_WITH(parse("possible flags:"), "bad.convo:3: 'possible flags:' has no value (flag ids, or none)");
  CHECK_THROWS_WITH(parse("possible flags: coughing blood"),
                    Catch::StartsWith("bad.convo:3: 'possible flags': 'coughing blood' is not a flag id"));
  CHECK_THROWS_WITH(parse("possible flags: Coughing_Blood"), Catch::Contains("'Coughing_Blood' is not a flag id"));
  CHECK_THROWS_WITH(parse("possible flags: coughing-blood"), Catch::Contains("'coughing-blood' is not a flag id"));
  CHECK_THROWS_WITH(parse("possible flags: [\"coughing_blood\"]"), Catch::Contains("is not a flag id"));
  CHECK_THROWS_WITH(parse("possible flags: none, fever"),
                    "bad.convo:3: 'possible flags': 'none' stands alone (no flag); it cannot be listed with flags");
  CHECK_THROWS_WITH(parse("possible flag: fever"), Catch::Contains("unknown expectation 'possible flag'"));
  // The error for an unknown key lists the new key among the known ones.
  CHECK_THROWS_WITH(parse("possible flag: fever"), Catch::Contains("possible flags"));
}

TEST_CASE("'possible flags:' holds when the reply asks about exactly those flags, in any order", "[script]") {
  auto s = ParseScript("> x\n  possible flags: chest_pain, coughing_blood\n> y\n  possible flags: none\n", "t.convo");
  const auto& two = s.turns[0];
  const auto& none = s.turns[1];
  CHECK(Check(two, WithPossible({"coughing_blood", "chest_pain"})).empty());
  CHECK(Check(none, WithPossible({})).empty());

  auto missing = Check(two, WithPossible({"coughing_blood"}));
  REQUIRE(missing.size() == 1);
  CHECK(missing[0].expected == "chest_pain, coughing_blood");
  CHECK(missing[0].actual == "coughing_blood");
  auto extra = Check(none, WithPossible({"coughing_blood"}));
  REQUIRE(extra.size() == 1);
  CHECK(extra[0].expected == "none");
  CHECK(extra[0].actual == "coughing_blood");

  // Red flags and possible flags are different fields: an affirmed flag does not meet a possible one.
  backcheck::dialog::Reply affirmed;
  affirmed.red_flags = {"coughing_blood"};
  CHECK(Check(ParseScript("> x\n  possible flags: coughing_blood\n", "t.convo").turns[0], affirmed).size() == 1);
}

TEST_CASE("JSONL 'possible_flags' is an array of flag ids, [] for none", "[script]") {
  auto scripts = ParseLabelledJsonl(R"({"text": "I noticed some blood this morning", "possible_flags": ["coughing_blood"], "red_flags": []})"
                                    "\n"
                                    R"({"text": "hi", "possible_flags": []})",
                                    "t.jsonl");
  REQUIRE(scripts.size() == 2);
  const auto& first = scripts[0].turns[0].expectations;
  REQUIRE(first.size() == 2);
  CHECK(first[0].kind == Expectation::Kind::kRedFlags);
  CHECK(first[1].kind == Expectation::Kind::kPossibleFlags);
  CHECK(first[1].list == std::vector<std::string>{"coughing_blood"});
  CHECK(first[1].source == "possible flags: coughing_blood");
  CHECK(Check(scripts[0].turns[0], WithPossible({"coughing_blood"})).empty());
  CHECK(scripts[1].turns[0].expectations[0].list.empty());
  CHECK(Check(scripts[1].turns[0], WithPossible({"fever"})).size() == 1);

  auto parse = [](const std::string& line) { return ParseLabelledJsonl(line, "bad.jsonl"); };
  CHECK_THROWS_WITH(parse(R"({"text": "hi", "possible_flags": "coughing_blood"})"),
                    "bad.jsonl:1: 'possible_flags' must be an array of strings (flag ids; [] for none)");
  CHECK_THROWS_WITH(parse(R"({"text": "hi", "possible_flags": [1]})"), Catch::Contains("must be an array of strings"));
  CHECK_THROWS_WITH(parse(R"({"text": "hi", "possible_flags": ["coughing blood"]})"),
                    Catch::StartsWith("bad.jsonl:1: 'possible_flags': 'coughing blood' is not a flag id"));
  CHECK_THROWS_WITH(parse(R"({"text": "hi", "possible_flags": ["none"]})"), Catch::Contains("'none' stands alone"));
  CHECK_THROWS_WITH(parse(R"({"turns": [{"text": "hi", "posible_flags": []}]})"), Catch::Contains("unknown field 'posible_flags'"));
}

namespace {

using backcheck::cli::CheckTurn;
using backcheck::cli::InProcessOnly;
using backcheck::cli::KeyOf;
using Kind = Expectation::Kind;

backcheck::cli::Script Parse(const std::string& text) { return ParseScript(text, "t.convo"); }

}  // namespace

TEST_CASE("'says:' and 'does not say:' parse comma-separated content ids and prefixes", "[script]") {
  auto e = Only("says: tailoring:self_care_early, guidance:, answer:advising/ask_ice_heat");
  CHECK(e.kind == Kind::kSays);
  CHECK(e.list == std::vector<std::string>{"tailoring:self_care_early", "guidance:", "answer:advising/ask_ice_heat"});
  CHECK(e.line == 2);
  CHECK(KeyOf(e.kind) == "says");
  CHECK(InProcessOnly(Kind::kSays));
  CHECK(InProcessOnly(Kind::kDoesNotSay));
  CHECK_FALSE(InProcessOnly(Kind::kTextContains));

  auto n = Only("Does Not Say:  tailoring:doms_window ,past_clarify");
  CHECK(n.kind == Kind::kDoesNotSay);
  CHECK(n.list == std::vector<std::string>{"tailoring:doms_window", "past_clarify"});
  CHECK(Only("says: question:coughing_blood").list == std::vector<std::string>{"question:coughing_blood"});
  CHECK(Only("says: fallback:0").list == std::vector<std::string>{"fallback:0"});
}

TEST_CASE("'says:' and 'does not say:' refuse what is not a content id, naming the file and line", "[script]") {
  auto parse = [](const std::string& line) { return ParseScript("name: x\n> hi\n  " + line + "\n", "bad.convo"); };
  CHECK_THROWS_WITH(parse("says:"), "bad.convo:3: 'says:' has no value (content ids, e.g. tailoring:self_care_early)");
  CHECK_THROWS_WITH(parse("does not say:"), "bad.convo:3: 'does not say:' has no value (content ids, e.g. tailoring:doms_window)");
  CHECK_THROWS_WITH(parse("says: tailoring doms_window"),
                    Catch::StartsWith("bad.convo:3: 'says': 'tailoring doms_window' is not a content id (KIND:NAME"));
  CHECK_THROWS_WITH(parse("does not say: tailor:doms_window"),
                    Catch::StartsWith("bad.convo:3: 'does not say': 'tailor:doms_window' is not a content id"));
  CHECK_THROWS_WITH(parse("says: Tailoring:Doms_Window"), Catch::Contains("'Tailoring:Doms_Window' is not a content id"));
  CHECK_THROWS_WITH(parse("says: doms_window"), Catch::Contains("'doms_window' is not a content id"));
  CHECK_THROWS_WITH(parse("says: none"), Catch::Contains("'none' is not a content id"));
  CHECK_THROWS_WITH(parse("says: text:greeting,,text:x"), Catch::Contains("bad.convo:3: 'says': an empty content id"));
  // The message lists the kinds there are.
  CHECK_THROWS_WITH(parse("says: x:y"), Catch::Contains("tailoring, guidance"));
  CHECK_THROWS_WITH(parse("say: text:x"), Catch::Contains("unknown expectation 'say'"));
  CHECK_THROWS_WITH(parse("say: text:x"), Catch::Contains("says, does not say"));
}

TEST_CASE("'says:' holds when every id (or prefix) is said; 'does not say:' when none is", "[script]") {
  auto s = Parse("> x\n  says: tailoring:doms_window, guidance:\n  does not say: tailoring:self_care_late, question:\n");
  const auto& turn = s.turns[0];
  const backcheck::dialog::Reply reply;
  std::vector<std::string> said = {"text:tailoring_intro", "tailoring:doms_window", "guidance:urgent"};
  CHECK(CheckTurn(turn, reply, &said).failures.empty());

  said = {"tailoring:doms_window_x", "guidance:urgent"};  // an id is matched exactly, not as a prefix
  auto missing = CheckTurn(turn, reply, &said).failures;
  REQUIRE(missing.size() == 1);
  CHECK(missing[0].expectation->kind == Kind::kSays);
  CHECK(missing[0].expected == "said: tailoring:doms_window, guidance: (missing: tailoring:doms_window)");

  said = {"tailoring:doms_window", "guidance:urgent", "question:numbness", "tailoring:self_care_late"};
  auto found = CheckTurn(turn, reply, &said).failures;
  REQUIRE(found.size() == 1);
  CHECK(found[0].expectation->kind == Kind::kDoesNotSay);
  CHECK(found[0].expected == "none of: tailoring:self_care_late, question:");
  CHECK_THAT(found[0].actual, Catch::EndsWith("(among them: question:numbness, tailoring:self_care_late)"));

  std::vector<std::string> nothing;
  CHECK(CheckTurn(turn, reply, &nothing).failures.size() == 1);  // says: fails, does not say: holds
}

TEST_CASE("without 'said' (live), 'says:' and 'does not say:' are skipped and counted, never passed", "[script]") {
  auto s = Parse("> x\n  says: text:greeting\n  does not say: guidance:\n  intent: greet\n");
  backcheck::dialog::Reply reply;
  reply.intent = "other";
  auto out = CheckTurn(s.turns[0], reply, nullptr);
  CHECK(out.skipped.size() == 2);
  REQUIRE(out.failures.size() == 1);  // the other expectations are still checked
  CHECK(out.failures[0].expectation->kind == Kind::kIntent);
  CHECK(Check(s.turns[0], reply).size() == 1);

  // The report says how many were skipped.
  backcheck::cli::ScriptResult r;
  r.script = &s;
  backcheck::cli::TurnResult tr;
  tr.reply = reply;
  tr.reply.intent = "greet";
  tr.skipped = 2;
  r.turns.push_back(tr);
  auto timed = Parse("@now: 2026-12-09T09:30 +01:00\n> x\n");
  backcheck::cli::ScriptResult skipped;
  skipped.script = &timed;
  skipped.skipped = "it fixes the time with @now; a live server keeps its own clock";
  std::ostringstream report;
  backcheck::cli::PrintReport(report, {r, skipped});
  CHECK_THAT(report.str(), Catch::Contains("2 scripts, 1 messages, 3 expectations: 1 passed, 0 failed\n"));
  CHECK_THAT(report.str(), Catch::Contains("1 scripts skipped (they fix the time with @now"));
  CHECK_THAT(report.str(), Catch::Contains("2 expectations skipped (in-process only)"));
  std::ostringstream junit;
  backcheck::cli::WriteJUnit(junit, {r, skipped});
  CHECK_THAT(junit.str(), Catch::Contains("skipped=\"1\""));
  CHECK_THAT(junit.str(), Catch::Contains("<skipped message="));
}

TEST_CASE("'@now:' fixes the time of that message and the later ones", "[script]") {
  using namespace std::chrono;
  auto s = Parse("> before\n@now: 2026-12-09T09:30 +01:00\n> at\n  intent: x\n> later\n@NOW: 2026-12-11T18:05:30Z\n> friday\n");
  REQUIRE(s.turns.size() == 4);
  CHECK_FALSE(s.turns[0].now.has_value());
  REQUIRE(s.turns[1].now.has_value());
  CHECK(s.turns[1].now->utc == sys_days(2026y / December / 9) + 8h + 30min);
  CHECK(s.turns[1].now->utc_offset == 60min);
  REQUIRE(s.turns[2].now.has_value());
  CHECK(s.turns[2].now->utc == s.turns[1].now->utc);
  CHECK(s.turns[3].now->utc == sys_days(2026y / December / 11) + 18h + 5min + 30s);
  CHECK(s.turns[3].now->utc_offset == 0min);
  CHECK(s.FixesTime());
  CHECK_FALSE(Parse("> x\n").FixesTime());
  // `@now: none`: the later messages carry no time, and a live runner skips the script too.
  auto clockless = Parse("@now: 2026-12-09T09:30 +01:00\n> at\n@now: none\n> without\n");
  REQUIRE(clockless.turns.size() == 2);
  CHECK(clockless.turns[0].now.has_value());
  CHECK_FALSE(clockless.turns[1].now.has_value());
  CHECK(Parse("@now: None\n> x\n").FixesTime());

  std::string problem;
  auto west = backcheck::cli::ParseNow("2026-12-09 23:45-05:30", &problem);
  REQUIRE(west.has_value());
  CHECK(west->utc == sys_days(2026y / December / 10) + 5h + 15min);
  CHECK(west->utc_offset == -330min);
}

TEST_CASE("a malformed '@now:' is refused with the file and line", "[script]") {
  auto parse = [](const std::string& line) { return ParseScript("name: x\n" + line + "\n> hi\n", "bad.convo"); };
  CHECK_THROWS_WITH(parse("@now: 2026-12-09T09:30"),
                    Catch::StartsWith("bad.convo:2: '@now': '2026-12-09T09:30' is not a local date-time with a UTC offset (YYYY-MM-DDTHH:MM[:SS]"));
  CHECK_THROWS_WITH(parse("@now: monday 09:30"), Catch::Contains("is not a local date-time with a UTC offset"));
  CHECK_THROWS_WITH(parse("@now: 2026-12-9T09:30 +01:00"), Catch::Contains("is not a local date-time"));
  CHECK_THROWS_WITH(parse("@now: 2026-12-09T09:30 +0100"), Catch::Contains("is not a local date-time"));
  CHECK_THROWS_WITH(parse("@now: 2026-02-30T09:30 +01:00"), Catch::StartsWith("bad.convo:2: '@now': 2026-02-30 is not a date"));
  CHECK_THROWS_WITH(parse("@now: 2026-13-01T09:30 +01:00"), Catch::Contains("2026-13-01 is not a date"));
  CHECK_THROWS_WITH(parse("@now: 2026-12-09T24:00 +01:00"), Catch::Contains("'@now': 24:00 is not a time of day"));
  CHECK_THROWS_WITH(parse("@now: 2026-12-09T09:60:00 +01:00"), Catch::Contains("09:60:00 is not a time of day"));
  CHECK_THROWS_WITH(parse("@now: 2026-12-09T09:30 +15:00"), Catch::Contains("UTC offset +15:00 is not one"));
  CHECK_THROWS_WITH(parse("@now:"), "bad.convo:2: '@now:' has no value (a date-time, e.g. 2026-12-09T09:30 +01:00)");
  CHECK_THROWS_WITH(parse("@now 2026-12-09T09:30 +01:00"), Catch::StartsWith("bad.convo:2: unknown directive '@now 2026"));
  CHECK_THROWS_WITH(parse("@today: 2026-12-09"), "bad.convo:2: unknown directive '@today' (@now)");
  CHECK_THROWS_WITH(ParseScript("> hi\n@now: 2026-12-09T09:30 +01:00\n", "bad.convo"),
                    "bad.convo:2: '@now' is not followed by a message");
  CHECK_THROWS_WITH(ParseScript("> hi\n@now: 2026-12-09T09:30 +01:00\n  intent: greet\n> later\n", "bad.convo"),
                    Catch::StartsWith("bad.convo:3: an expectation after '@now' (line 2)"));
}

TEST_CASE("in-process, a script's messages carry their '@now' time and 'said' is checked", "[script]") {
  // 2026-12-09 is a Wednesday: "on monday" is 48 hours then; without the time it is not known.
  const std::string walk = "> My upper back is sore after rows on monday\n> no\n> no\n> no\n";
  auto timed = Parse("@now: 2026-12-09T09:30 +01:00\n" + walk +
                     "  says: tailoring:doms_window, tailoring:self_care_early\n  does not say: tailoring:self_care_any_time\n");
  auto untimed = Parse(walk + "  says: tailoring:self_care_any_time\n  does not say: tailoring:doms_window\n");
  auto wrong = Parse(walk + "  says: tailoring:doms_window\n");
  const std::vector<backcheck::cli::Script> scripts = {timed, untimed, wrong};  // the results point into it
  auto results = backcheck::cli::RunInProcess(backcheck::test::TestEngine(), scripts);
  REQUIRE(results.size() == 3);
  CHECK(results[0].Passed());
  CHECK(results[1].Passed());
  CHECK_FALSE(results[2].Passed());
  CHECK(results[0].turns.back().skipped == 0);
  CHECK_FALSE(results[0].turns.back().said.empty());
}

TEST_CASE("in-process, an id the knowledge base could never say fails the script, with file and line", "[script]") {
  const auto& kb = backcheck::test::TestEngine().kb();
  auto ok = Parse("> x\n  says: tailoring:doms_window, screening:arm, text:greeting, guidance:urgent, question:numbness\n"
                  "  does not say: answer:doms, tailoring:, fallback:0, past_clarify, retrieval:7\n");
  CHECK(backcheck::cli::UnknownContentIds(ok, kb).empty());
  auto bad = Parse("> x\n  intent: greeting\n  does not say: tailoring:doms_windw, guidance:none\n> y\n  says: question:fevr, fallback:99\n");
  CHECK(backcheck::cli::UnknownContentIds(bad, kb) ==
        std::vector<std::string>{"t.convo:3: 'does not say': 'tailoring:doms_windw' can never be said: no tailoring rule 'doms_windw' in flow.jsonc",
                                 "t.convo:3: 'does not say': 'guidance:none' can never be said: 'none' is not a level (see_doctor, urgent, emergency)",
                                 "t.convo:5: 'says': 'question:fevr' can never be said: no red flag 'fevr'",
                                 "t.convo:5: 'says': 'fallback:99' can never be said: no fallback 99 (there are " +
                                     std::to_string(kb.flow.fallbacks.size()) + ", from 0)"});
  const std::vector<backcheck::cli::Script> scripts = {bad};
  auto results = backcheck::cli::RunInProcess(backcheck::test::TestEngine(), scripts);
  CHECK_FALSE(results[0].Passed());
  CHECK_THAT(results[0].error, Catch::Contains("'tailoring:doms_windw' can never be said"));
}

TEST_CASE("'leads with:' takes one content id and holds when the reply's first part is it", "[script]") {
  auto e = Only("leads with: guidance:urgent");
  CHECK(e.kind == Kind::kLeadsWith);
  CHECK(e.list == std::vector<std::string>{"guidance:urgent"});
  CHECK(InProcessOnly(Kind::kLeadsWith));
  CHECK_THROWS_WITH(Parse("> hi\n  leads with: guidance:urgent, text:greeting\n"), Catch::Contains("one content id"));
  CHECK_THROWS_WITH(Parse("> hi\n  leads with: urgent\n"), Catch::Contains("is not a content id"));
}
