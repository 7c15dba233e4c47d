// build/backcheck: the conversation engine on the command line.
//
//   backcheck chat [--json] [--record FILE.convo]   talk to the assistant (interactive, or piped lines)
//   backcheck test PATH... [--url ws://...|wss://...] [--token T]   run conversation scripts
//   backcheck kb-report            every article sentence and the topics citing it
//   backcheck eval FILE.jsonl      run labelled conversations, exit 1 on any failure
//   backcheck retrieval-scores FILE.jsonl   passage scores, for tuning the retrieval threshold
//   backcheck explain [--json] TEXT...      what the red-flag pipeline makes of a message
//   backcheck lexicon-report [--json]       every red-flag lexicon entry and the test sentences exercising it
//   backcheck sentences FILE.jsonc          run labelled red-flag sentences, exit 1 on any failure
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/explain.hpp"
#include "cli/labelled_eval.hpp"
#include "cli/lexicon_report.hpp"
#include "cli/script_runner.hpp"
#include "dialog/engine.hpp"
#include "knowledge/loader.hpp"

namespace {

using backcheck::dialog::Engine;
namespace knowledge = backcheck::knowledge;

std::string FlagList(const std::vector<std::string>& flags) {
  std::string out;
  for (const auto& f : flags) out += (out.empty() ? "" : ",") + f;
  return out.empty() ? "-" : out;
}

// Writes the conversation as a script whose expectations are what was observed.
bool Record(const std::string& path, const std::vector<std::pair<std::string, backcheck::dialog::Reply>>& turns) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) return false;
  out << "# Recorded with `backcheck chat --record`: the expectations are what the assistant did.\n"
      << "# Check them before keeping this as a test.\n"
      << "name: " << std::filesystem::path(path).stem().string() << "\n";
  for (const auto& [text, r] : turns) {
    out << "\n> " << text << "\n  intent: " << r.intent << "\n  state: " << r.state
        << "\n  urgency: " << knowledge::UrgencyName(r.urgency) << "\n";
    if (!r.red_flags.empty()) out << "  red flags: " << FlagList(r.red_flags) << "\n";
    if (!r.possible_flags.empty()) out << "  possible flags: " << FlagList(r.possible_flags) << "\n";
  }
  return static_cast<bool>(out);
}

int Chat(const Engine& engine, bool as_json, const std::string& record) {
  const bool interactive = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
  std::vector<std::pair<std::string, backcheck::dialog::Reply>> transcript;
  auto state = engine.Start();
  if (!as_json) std::cout << "assistant: " << engine.Greeting() << "\n";
  std::string line;
  while (true) {
    if (interactive) std::cout << "\nyou> " << std::flush;
    if (!std::getline(std::cin, line)) break;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto turn = engine.Respond(state, line, backcheck::dialog::LocalNow());
    state = turn.state;
    const auto& r = turn.reply;
    if (!record.empty()) transcript.emplace_back(line, r);
    if (as_json) {
      std::cout << nlohmann::json(r).dump() << "\n";
      continue;
    }
    std::cout << "assistant: " << r.text << "\n";
    std::cout << "  [intent=" << r.intent << " state=" << r.state
              << " urgency=" << knowledge::UrgencyName(r.urgency) << " red_flags=" << FlagList(r.red_flags)
              << (r.escalated ? " ESCALATED" : "") << "]\n";
    // The safety net's question (SPEC section 5): not affirmed, the urgency is unchanged.
    if (!r.possible_flags.empty()) std::cout << "  asking about: " << FlagList(r.possible_flags) << "\n";
    if (!r.quick_replies.empty()) {
      std::cout << "  quick replies:";
      for (const auto& q : r.quick_replies) std::cout << " [" << q << "]";
      std::cout << "\n";
    }
  }
  if (!record.empty()) {
    if (!Record(record, transcript)) {
      std::cerr << "backcheck chat: cannot write " << record << "\n";
      return 2;
    }
    std::cerr << "recorded " << transcript.size() << " messages to " << record << "\n";
  }
  return 0;
}

struct TestOptions {
  std::vector<std::string> paths;
  std::string url;
  std::string junit;
  std::string filter;
  backcheck::cli::LiveOptions live;
  double timeout_seconds = 30;
};

// `backcheck test` exits 0 when every script passed, 1 when one failed, and 2 when it could not
// run them at all: a script that cannot be read, no script, a server that cannot be reached, a
// JUnit file that cannot be written (and, as every subcommand, a bad knowledge base or usage).
constexpr const char* kTestExitCodes =
    "exit status: 0 every script passed; 1 a script failed; 2 nothing could be checked: a script "
    "that cannot be read, no script found, a server that cannot be reached (refused, DNS, TLS, an "
    "HTTP status such as 401 instead of the upgrade, a timeout), a JUnit file that cannot be written, "
    "a bad knowledge base or command line";

int Test(const Engine* engine, const TestOptions& o) {
  std::vector<backcheck::cli::Script> scripts;
  try {
    std::vector<std::filesystem::path> paths(o.paths.begin(), o.paths.end());
    scripts = backcheck::cli::LoadScripts(paths);
  } catch (const backcheck::cli::ScriptError& e) {
    std::cerr << "backcheck test: " << e.what() << "\n";
    return 2;
  }
  if (!o.filter.empty()) {
    auto lower = [](std::string v) {
      for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return v;
    };
    const std::string f = lower(o.filter);
    std::erase_if(scripts, [&](const backcheck::cli::Script& s) {
      return lower(s.name).find(f) == std::string::npos && lower(s.file).find(f) == std::string::npos;
    });
  }
  if (scripts.empty()) {
    std::cerr << "backcheck test: no script found\n";
    return 2;
  }
  std::vector<backcheck::cli::ScriptResult> results;
  if (o.url.empty()) {
    results = backcheck::cli::RunInProcess(*engine, scripts);
  } else {
    auto live = o.live;
    if (live.token.empty()) {
      if (const char* env = std::getenv("BACKCHECK_BRIDGE_TOKEN")) live.token = env;
    }
    live.timeout = std::chrono::milliseconds(static_cast<long long>(o.timeout_seconds * 1000));
    try {
      results = backcheck::cli::RunLive(o.url, scripts, live);
    } catch (const backcheck::cli::LiveSetupError& e) {
      std::cerr << "backcheck test: " << e.what() << "\n";
      return 2;
    }
  }
  backcheck::cli::PrintReport(std::cout, results);
  if (!o.junit.empty()) {
    std::ofstream out(o.junit, std::ios::trunc);
    backcheck::cli::WriteJUnit(out, results);
    if (!out) {
      std::cerr << "backcheck test: cannot write " << o.junit << "\n";
      return 2;
    }
  }
  return std::all_of(results.begin(), results.end(), [](const auto& r) { return r.Passed(); }) ? 0 : 1;
}

int KbReport(const knowledge::KnowledgeBase& kb) {
  const auto cited = knowledge::CitationsBySentence(kb);
  const auto& article = kb.article;
  std::size_t covered = 0;
  std::size_t section = SIZE_MAX;
  for (std::size_t i = 0; i < article.sentences().size(); ++i) {
    const auto& s = article.sentences()[i];
    if (s.section != section) {
      section = s.section;
      std::cout << "\n## " << article.sections()[section].heading << "\n";
    }
    // Coverage counts topics; red flags and tailoring rules are listed but do not count.
    std::vector<std::string> topics;
    for (const auto& who : cited[i]) {
      if (who.find(':') == std::string::npos) topics.push_back(who);
    }
    if (!topics.empty()) ++covered;
    std::cout << "\n" << (topics.empty() ? "[NOT CITED] " : "") << s.text << "\n  cited by: "
              << (cited[i].empty() ? "-" : FlagList(cited[i])) << "\n";
  }
  const std::size_t total = article.sentences().size();
  std::cout << "\ncoverage: " << covered << "/" << total << " sentences cited by a topic ("
            << (total ? covered * 100 / total : 0) << "%)\n";
  return covered == total ? 0 : 1;
}

int Eval(const Engine& engine, const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    std::cerr << "backcheck eval: cannot open " << path << "\n";
    return 2;
  }
  try {
    auto summary = backcheck::cli::RunLabelledEval(engine, in, path);
    for (const auto& f : summary.failures) backcheck::cli::PrintFailure(std::cout, f);
    std::cout << summary.conversations << " conversations, " << summary.messages << " messages, "
              << summary.expectations << " expectations, " << summary.failures.size() << " failed\n";
    return summary.failures.empty() ? 0 : 1;
  } catch (const backcheck::cli::EvalFormatError& e) {
    std::cerr << "backcheck eval: " << e.what() << "\n";
    return 2;
  }
}

// For tuning language.jsonc "retrieval.min_score": the best passage score of every labelled
// message, with its expected intent. In-scope questions should score above the threshold,
// out_of_scope and fallback messages below it.
int RetrievalScores(const Engine& engine, const std::string& path) {
  const auto& kb = engine.kb();
  backcheck::knowledge::PassageIndex index(kb.article, kb.language.stopwords);
  std::ifstream in(path);
  if (!in) {
    std::cerr << "backcheck retrieval-scores: cannot open " << path << "\n";
    return 2;
  }
  std::cout << "threshold " << kb.language.retrieval_min_score << "\n";
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) continue;
    std::vector<nlohmann::json> turns = j.contains("turns") ? j["turns"].get<std::vector<nlohmann::json>>()
                                                            : std::vector<nlohmann::json>{j};
    for (const auto& t : turns) {
      const std::string text = t.value("text", "");
      auto hit = index.Best(engine.normaliser().Normalise(text));
      std::printf("%6.2f  %-20s %s\n", hit ? hit->score : 0.0, t.value("intent", "-").c_str(), text.c_str());
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Backcheck: a chat assistant for upper back pain after a workout (engine tools)"};
  app.require_subcommand(1);
  std::string kb_dir = BACKCHECK_DEFAULT_KB_DIR;
  app.add_option("--kb", kb_dir, "knowledge base folder (article.txt and data/)")->capture_default_str();

  bool as_json = false;
  std::string record;
  auto* chat = app.add_subcommand("chat", "talk to the assistant; reads one message a line (interactive or piped)");
  chat->add_flag("--json", as_json, "print each reply as one JSON object a line");
  chat->add_option("--record", record, "write the conversation to this file as a script (.convo)");

  TestOptions test_options;
  auto* test = app.add_subcommand("test", "run conversation scripts (.convo, or labelled .jsonl); exit 1 on any failure");
  test->footer(kTestExitCodes);
  test->add_option("PATH", test_options.paths, "script files or folders (searched recursively)")
      ->required()->check(CLI::ExistingPath);
  test->add_option("--url", test_options.url,
                   "run against a live server: ws://127.0.0.1:8080/v1/chat, or wss://HOST/v1/chat (TLS, the "
                   "certificate checked against the system's CAs and the host name)");
  test->add_option("--token", test_options.live.token,
                   "bridge token, sent as 'Authorization: Bearer TOKEN' on the upgrade (the server's --bridge-tokens): "
                   "per-conversation limits; the environment variable BACKCHECK_BRIDGE_TOKEN keeps it out of the "
                   "process list (this flag wins)");
  test->add_option("--ca-file", test_options.live.ca_file, "wss://: trust the CA certificate(s) in this PEM file "
                                                           "instead of the system's")
      ->check(CLI::ExistingFile);
  test->add_option("--retries", test_options.live.max_retries,
                   "times a live run resends a frame the server answered 'rate_limited' (waiting 0.1 s, doubling "
                   "to 2 s) before the script fails")
      ->capture_default_str();
  test->add_option("--timeout", test_options.timeout_seconds,
                   "seconds to wait for a live server: to connect, for TLS and the upgrade, and for each answer")
      ->capture_default_str()->check(CLI::PositiveNumber);
  test->add_option("--junit", test_options.junit, "also write the results as JUnit XML to this file");
  test->add_option("--filter", test_options.filter, "only scripts whose name or file contains this text");
  test->add_option("--concurrency", test_options.live.concurrency, "scripts run at once against a live server")
      ->capture_default_str()->check(CLI::PositiveNumber);

  auto* report = app.add_subcommand("kb-report", "list every article sentence with the topics citing it; exit 1 below 100%");

  std::string eval_file;
  auto* eval = app.add_subcommand("eval", "run labelled conversations (JSONL); exit 1 if any expectation fails");
  eval->add_option("FILE", eval_file, "labelled conversations, one JSON object a line")->required()->check(CLI::ExistingFile);

  std::string scores_file;
  auto* scores = app.add_subcommand("retrieval-scores",
                                    "print the best passage score of each labelled message (to tune retrieval.min_score)");
  scores->add_option("FILE", scores_file, "labelled conversations, one JSON object a line")->required()->check(CLI::ExistingFile);

  std::vector<std::string> explain_texts;
  bool explain_json = false;
  auto* explain = app.add_subcommand("explain", "show what the red-flag pipeline makes of messages (each argument, "
                                                "or one a line on stdin): corrections, concepts, context, flags");
  explain->add_option("TEXT", explain_texts, "messages (none: read one a line from stdin)");
  explain->add_flag("--json", explain_json, "one JSON object a line");

  bool lexicon_json = false;
  std::string tests_dir = BACKCHECK_TESTS_DIR;
  auto* lexicon = app.add_subcommand("lexicon-report", "list every red-flag pattern, concept term, idiom, rule and cue "
                                                       "with the test sentences exercising it; exit 1 if one has none");
  lexicon->add_flag("--json", lexicon_json, "one JSON document");
  lexicon->add_option("--tests", tests_dir, "the tests folder (conversations/, eval/dev.jsonl, red_flags/sentences.jsonc)")
      ->capture_default_str()->check(CLI::ExistingDirectory);
  std::string sentences_file;
  auto* sentences = app.add_subcommand("sentences", "run labelled red-flag sentences (tests/red_flags/sentences.jsonc) "
                                                    "as first messages; exit 1 if any fails");
  sentences->add_option("FILE", sentences_file, "the labelled sentences")->required()->check(CLI::ExistingFile);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help is a success; a usage error, like any other run that checked nothing, is 2.
    return app.exit(e) == 0 ? 0 : 2;
  }

  std::shared_ptr<const knowledge::KnowledgeBase> kb;
  try {
    kb = knowledge::LoadKnowledgeBase(kb_dir);
  } catch (const knowledge::KnowledgeError& e) {
    std::cerr << "backcheck: knowledge base " << kb_dir << " refused: " << e.what() << "\n";
    return 2;
  }
  if (*report) return KbReport(*kb);
  Engine engine(kb);
  if (*chat) return Chat(engine, as_json, record);
  if (*test) return Test(&engine, test_options);
  if (*eval) return Eval(engine, eval_file);
  if (*scores) return RetrievalScores(engine, scores_file);
  if (*lexicon || *sentences) {
    try {
      if (*sentences) {
        return backcheck::cli::RunLabelledSentences(engine, backcheck::cli::LoadLabelledSentences(sentences_file, *kb),
                                                    std::cout);
      }
      return backcheck::cli::LexiconReport(engine, backcheck::cli::CollectTestSentences(tests_dir, *kb), lexicon_json,
                                           std::cout);
    } catch (const std::exception& e) {
      std::cerr << "backcheck: " << e.what() << "\n";
      return 2;
    }
  }
  if (*explain) {
    if (explain_texts.empty()) {
      for (std::string line; std::getline(std::cin, line);) explain_texts.push_back(line);
    }
    backcheck::cli::Explain(engine, explain_texts, explain_json, std::cout);
  }
  return 0;
}
