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
//   backcheck review --data-dir DIR | --database-url URL [--json] [--delete [--before DATE]]
//                                           what chat-server --review kept, grouped by wording
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/explain.hpp"
#include "cli/labelled_eval.hpp"
#include "cli/lexicon_report.hpp"
#include "cli/review.hpp"
#include "cli/script_runner.hpp"
#include "dialog/engine.hpp"
#include "knowledge/loader.hpp"
#include "common/paths.hpp"
#include "common/version.hpp"

namespace {

using backcheck::dialog::Engine;
namespace knowledge = backcheck::knowledge;

std::string FlagList(const std::vector<std::string>& flags) {
  std::string out;
  for (const auto& f : flags) out += (out.empty() ? "" : ",") + f;
  return out.empty() ? "-" : out;
}

// `chat --record FILE`: the conversation written as a script whose expectations are what was
// observed. The file is created before the greeting (an existing one is refused unless --force)
// and each message is written and flushed as soon as it is answered, so a path that cannot be
// written, or a full disk, is reported at once and an interrupted chat keeps what was said.
class Recorder {
 public:
  // Returns "" on success, else the problem.
  std::string Open(const std::string& path, bool force) {
    path_ = path;
    file_ = std::fopen(path.c_str(), force ? "w" : "wx");  // "x": O_EXCL, never replaces a file
    if (!file_) {
      if (errno == EEXIST) return path + " already exists (--force to overwrite it)";
      return "cannot write " + path + ": " + std::strerror(errno);
    }
    return Write("# Recorded with `backcheck chat --record`: the expectations are what the assistant did.\n"
                 "# Check them before keeping this as a test.\n"
                 "name: " + std::filesystem::path(path).stem().string() + "\n");
  }
  std::string Add(const std::string& text, const backcheck::dialog::Reply& r) {
    std::string out = "\n> " + text + "\n  intent: " + r.intent + "\n  state: " + r.state +
                      "\n  urgency: " + knowledge::UrgencyName(r.urgency) + "\n";
    if (!r.red_flags.empty()) out += "  red flags: " + FlagList(r.red_flags) + "\n";
    if (!r.possible_flags.empty()) out += "  possible flags: " + FlagList(r.possible_flags) + "\n";
    ++messages_;
    return Write(out);
  }
  // Returns "" when the file was closed without an error.
  std::string Close() {
    if (!file_) return {};
    const bool ok = std::fclose(file_) == 0;
    file_ = nullptr;
    return ok ? "" : "cannot write " + path_ + ": " + std::strerror(errno);
  }
  ~Recorder() {
    if (file_) std::fclose(file_);
  }
  std::size_t messages() const { return messages_; }

 private:
  std::string Write(const std::string& text) {
    if (std::fwrite(text.data(), 1, text.size(), file_) != text.size() || std::fflush(file_) != 0) {
      return "cannot write " + path_ + ": " + std::strerror(errno);
    }
    return {};
  }
  std::string path_;
  std::FILE* file_ = nullptr;
  std::size_t messages_ = 0;
};

// Exit status: 0; 2 when the --record file exists (without --force) or cannot be written.
int Chat(const Engine& engine, bool as_json, const std::string& record, bool force) {
  const bool interactive = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
  Recorder recorder;
  if (!record.empty()) {
    if (std::string problem = recorder.Open(record, force); !problem.empty()) {
      std::cerr << "backcheck chat: " << problem << "\n";
      return 2;
    }
  }
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
    if (!record.empty()) {
      if (std::string problem = recorder.Add(line, r); !problem.empty()) {
        std::cerr << "backcheck chat: " << problem << "\n";
        return 2;
      }
    }
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
    if (std::string problem = recorder.Close(); !problem.empty()) {
      std::cerr << "backcheck chat: " << problem << "\n";
      return 2;
    }
    std::cerr << "recorded " << recorder.messages() << " messages to " << record << "\n";
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
    "that does not exist, cannot be read or has a mistake, no script found (or none left by "
    "--filter), a server that cannot be reached (refused, DNS, TLS, an HTTP status such as 401 "
    "instead of the upgrade, a timeout), a JUnit file that cannot be written, "
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

const char* KindName(knowledge::IntentKind kind) {
  switch (kind) {
    case knowledge::IntentKind::kSocial: return "social";
    case knowledge::IntentKind::kReport: return "report";
    case knowledge::IntentKind::kQuestion: return "question";
    case knowledge::IntentKind::kAnswer: return "answer";
    case knowledge::IntentKind::kOther: return "other";
    case knowledge::IntentKind::kFallback: return "fallback";
  }
  return "?";
}

// `kb-report --ids`: the intent and red-flag ids a conversation script may name, as two tables
// read from the knowledge base (tests/cli/test_cli.py checks them against knowledge/data).
int KbIds(const knowledge::KnowledgeBase& kb) {
  std::size_t width = 2;
  for (const auto& i : kb.intents) width = std::max(width, i.id.size());
  for (const auto& f : kb.red_flags.flags) width = std::max(width, f.id.size());
  const int w = static_cast<int>(width) + 2;
  std::cout << "# Intents (" << kb.dir << "/data/intents.jsonc)\n"
            << "# `intent:` matches what a reply reports, the \"reported as\" column: a finer intent reports\n"
            << "# a SPEC one. Any id may follow `says: answer:STATE/`.\n";
  std::printf("%-*s%-10s%s\n", w, "id", "kind", "reported as");
  for (const auto& i : kb.intents) {
    std::printf("%-*s%-10s%s\n", w, i.id.c_str(), KindName(i.kind),
                (i.reported_as.empty() ? i.id : i.reported_as).c_str());
  }
  std::cout << "\n# Red flags (" << kb.dir << "/data/red_flags.jsonc)\n"
            << "# for `red flags:`, `red flags include:`, `says: explanation:ID` and `question:ID`; `possible\n"
            << "# flags:` only those the safety net asks about (\"asks\" yes).\n";
  std::printf("%-*s%-12s%-6s%s\n", w, "id", "level", "asks", "name");
  for (const auto& f : kb.red_flags.flags) {
    std::printf("%-*s%-12s%-6s%s\n", w, f.id.c_str(), knowledge::UrgencyName(f.level), f.question.empty() ? "no" : "yes",
                f.name.c_str());
  }
  std::fflush(stdout);
  return 0;
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
  // Unset, --kb and --tests are found at run time (common/paths.hpp): the installed
  // ../share/backcheck/knowledge next to the binary, or in a build tree the source tree's folders.
  std::string kb_dir;
  app.add_option("--kb", kb_dir, "knowledge base folder (article.txt and data/)")
      ->default_str(backcheck::common::DescribeDefault("knowledge"));
  app.set_version_flag("--version", std::string("backcheck ") + backcheck::common::kVersion + " (git " +
                                        backcheck::common::kGitRevision + ")",
                       "print the version and git revision, then exit");

  bool as_json = false;
  std::string record;
  auto* chat = app.add_subcommand("chat", "talk to the assistant; reads one message a line (interactive or piped)");
  chat->add_flag("--json", as_json, "print each reply as one JSON object a line");
  chat->add_option("--record", record, "write the conversation to this file as a script (.convo), each message as "
                                       "it is answered; an existing file is refused (exit 2) unless --force");
  bool force = false;
  chat->add_flag("--force", force, "with --record: overwrite the file if it exists");
  chat->footer("exit status: 0; 2 when the --record file exists (without --force) or cannot be written (checked "
               "before the greeting; a write error later stops the chat at once), a bad knowledge base or command line");

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
  bool report_ids = false;
  report->add_flag("--ids", report_ids, "instead: the intent and red-flag ids a conversation script may name, as tables");

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
  std::string tests_dir;  // not installed: a build tree's tests/, else --tests
  auto* lexicon = app.add_subcommand("lexicon-report", "list every red-flag pattern, concept term, idiom, rule and cue "
                                                       "with the test sentences exercising it; exit 1 if one has none");
  lexicon->add_flag("--json", lexicon_json, "one JSON document");
  lexicon->add_option("--tests", tests_dir, "the tests folder (conversations/, eval/dev.jsonl, red_flags/sentences.jsonc)")
      ->default_str(backcheck::common::DescribeDefault("tests"))->check(CLI::ExistingDirectory);
  std::string sentences_file;
  auto* sentences = app.add_subcommand("sentences", "run labelled red-flag sentences (tests/red_flags/sentences.jsonc) "
                                                    "as first messages; exit 1 if any fails");
  sentences->add_option("FILE", sentences_file, "the labelled sentences")->required()->check(CLI::ExistingFile);

  std::string review_dir, review_url, review_before;
  bool review_json = false, review_delete = false;
  double review_similarity = 0.5;
  auto* review = app.add_subcommand("review", "what chat-server --review kept (messages it could not answer), "
                                              "grouped by similar wording, most frequent first, with a suggested intent");
  auto* review_dir_option = review->add_option("--data-dir", review_dir, "the SQLite store's folder (opened read-only)")
                                ->check(CLI::ExistingDirectory);
  review->add_option("--database-url", review_url, "the PostgreSQL store (a libpq URI); or set BACKCHECK_DATABASE_URL")
      ->excludes(review_dir_option);
  review->add_flag("--json", review_json, "one JSON document");
  review->add_option("--similarity", review_similarity,
                     "how alike two messages' words must be to share a group (Jaccard, 0-1)")
      ->capture_default_str()->check(CLI::Range(0.0, 1.0));
  review->add_flag("--delete", review_delete, "delete the kept messages (all, or those before --before) instead");
  review->add_option("--before", review_before, "with --delete: only those kept before this date (YYYY-MM-DD, UTC)");
  review->footer("exit status: 0; 2 when the store cannot be read or the command line is wrong");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help is a success; a usage error, like any other run that checked nothing, is 2.
    return app.exit(e) == 0 ? 0 : 2;
  }

  std::vector<backcheck::server::ReviewEntry> review_entries;
  if (*review) {
    if (review_url.empty() && review_dir.empty()) {
      if (const char* url = std::getenv("BACKCHECK_DATABASE_URL")) review_url = url;
    }
    if (review_url.empty() && review_dir.empty()) {
      std::cerr << "backcheck review: give --data-dir DIR (SQLite) or --database-url URL (PostgreSQL)\n";
      return 2;
    }
    try {
      if (review_delete) {
        std::int64_t before = INT64_MAX;
        if (!review_before.empty()) {
          auto at = backcheck::cli::ParseReviewDate(review_before);
          if (!at) {
            std::cerr << "backcheck review: --before " << review_before << ": not a date (YYYY-MM-DD)\n";
            return 2;
          }
          before = *at;
        }
        const auto n = review_url.empty() ? backcheck::server::DeleteReviewSqlite(review_dir, before)
                                          : backcheck::server::DeleteReviewPostgres(review_url, before);
        std::cout << "deleted " << n << " kept message" << (n == 1 ? "" : "s") << "\n";
        return 0;
      }
      review_entries = review_url.empty() ? backcheck::server::ReadReviewSqlite(review_dir)
                                          : backcheck::server::ReadReviewPostgres(review_url);
    } catch (const backcheck::server::ReviewError& e) {
      std::cerr << "backcheck review: " << e.what() << "\n";
      return 2;
    }
  }

  try {
    if (kb_dir.empty()) kb_dir = backcheck::common::RequireResource("knowledge", "--kb DIR");
    if (*lexicon && tests_dir.empty()) tests_dir = backcheck::common::RequireResource("tests", "--tests DIR");
  } catch (const backcheck::common::ResourceError& e) {
    std::cerr << "backcheck: " << e.what() << "\n";
    return 2;
  }
  std::shared_ptr<const knowledge::KnowledgeBase> kb;
  try {
    kb = knowledge::LoadKnowledgeBase(kb_dir);
  } catch (const knowledge::KnowledgeError& e) {
    std::cerr << "backcheck: knowledge base " << kb_dir << " refused: " << e.what() << "\n";
    return 2;
  }
  if (*report) return report_ids ? KbIds(*kb) : KbReport(*kb);
  Engine engine(kb);
  if (*chat) return Chat(engine, as_json, record, force);
  if (*test) return Test(&engine, test_options);
  if (*eval) return Eval(engine, eval_file);
  if (*scores) return RetrievalScores(engine, scores_file);
  if (*review) return backcheck::cli::PrintReview(engine, review_entries, review_json, review_similarity, std::cout);
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
