// Messages per second through the whole engine (normalise -> red flags -> intents -> slots ->
// dialogue -> reply), over the messages of the labelled dev set, with the intents matched in one
// RE2::Set pass (the engine's way) and one regex at a time (to show what the set buys), and with
// spelling correction switched off (to show what the speller costs: BM_Engine_RE2Set_NoSpelling),
// and over the misspelled messages of tests/conversations/red_flags/misspellings.convo with and
// without it (BM_Engine_Misspelled*: nearly every message there has a word for the speller).
//
//   build/bench/engine_bench [--benchmark_min_time=2]
//
// Each message is answered as the first message of a new conversation, so the work is the same
// whatever order the messages run in. Results are written down in the README.
#include <benchmark/benchmark.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "dialog/engine.hpp"
#include "knowledge/loader.hpp"

namespace {

using backcheck::dialog::Engine;
using backcheck::dialog::EngineOptions;
using backcheck::dialog::IntentMatcher;

std::vector<std::string> DevMessages() {
  std::ifstream in(BACKCHECK_DEV_SET);
  if (!in) throw std::runtime_error("cannot open " BACKCHECK_DEV_SET);
  std::vector<std::string> messages;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    if (j.contains("turns")) {
      for (const auto& t : j["turns"]) messages.push_back(t["text"]);
    } else {
      messages.push_back(j["text"]);
    }
  }
  return messages;
}

const std::vector<std::string>& Messages() {
  static const auto messages = DevMessages();
  return messages;
}

// The messages of the misspelled-red-flags script: nearly every one has a word for the speller.
const std::vector<std::string>& MisspelledMessages() {
  static const auto messages = [] {
    std::ifstream in(BACKCHECK_MISSPELLINGS);
    if (!in) throw std::runtime_error("cannot open " BACKCHECK_MISSPELLINGS);
    std::vector<std::string> out;
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("> ", 0) == 0) out.push_back(line.substr(2));
    }
    return out;
  }();
  return messages;
}

std::shared_ptr<const backcheck::knowledge::KnowledgeBase> Kb() {
  static auto kb = backcheck::knowledge::LoadKnowledgeBase(BACKCHECK_DEFAULT_KB_DIR);
  return kb;
}

void RunEngine(benchmark::State& bench, IntentMatcher::Strategy strategy, bool spelling = true,
               const std::vector<std::string>& messages = Messages()) {
  EngineOptions options;
  options.matcher = strategy;
  options.spelling = spelling;
  const Engine engine(Kb(), options);
  const auto start = engine.Start();
  std::size_t i = 0;
  for (auto _ : bench) {
    auto turn = engine.Respond(start, messages[i]);
    benchmark::DoNotOptimize(turn);
    if (++i == messages.size()) i = 0;
  }
  bench.SetItemsProcessed(bench.iterations());
  bench.counters["messages"] = static_cast<double>(messages.size());
}

void BM_Engine_RE2Set(benchmark::State& bench) { RunEngine(bench, IntentMatcher::Strategy::kSet); }
void BM_Engine_OneRegexAtATime(benchmark::State& bench) { RunEngine(bench, IntentMatcher::Strategy::kSequential); }
void BM_Engine_RE2Set_NoSpelling(benchmark::State& bench) { RunEngine(bench, IntentMatcher::Strategy::kSet, false); }
void BM_Engine_Misspelled(benchmark::State& bench) {
  RunEngine(bench, IntentMatcher::Strategy::kSet, true, MisspelledMessages());
}
void BM_Engine_Misspelled_NoSpelling(benchmark::State& bench) {
  RunEngine(bench, IntentMatcher::Strategy::kSet, false, MisspelledMessages());
}

// The intent matcher alone, to separate the matching cost from the rest of the pipeline.
void RunMatcher(benchmark::State& bench, IntentMatcher::Strategy strategy) {
  const Engine engine(Kb());
  const IntentMatcher matcher(Kb()->intents, strategy);
  std::vector<std::string> normalised;
  for (const auto& m : Messages()) normalised.push_back(engine.normaliser().Normalise(m));
  std::size_t i = 0;
  for (auto _ : bench) {
    auto matches = matcher.MatchAll(normalised[i], "welcome");
    benchmark::DoNotOptimize(matches);
    if (++i == normalised.size()) i = 0;
  }
  bench.SetItemsProcessed(bench.iterations());
}

void BM_Intents_RE2Set(benchmark::State& bench) { RunMatcher(bench, IntentMatcher::Strategy::kSet); }
void BM_Intents_OneRegexAtATime(benchmark::State& bench) { RunMatcher(bench, IntentMatcher::Strategy::kSequential); }

}  // namespace

BENCHMARK(BM_Engine_RE2Set);
BENCHMARK(BM_Engine_OneRegexAtATime);
BENCHMARK(BM_Engine_RE2Set_NoSpelling);
BENCHMARK(BM_Engine_Misspelled);
BENCHMARK(BM_Engine_Misspelled_NoSpelling);
BENCHMARK(BM_Intents_RE2Set);
BENCHMARK(BM_Intents_OneRegexAtATime);

// The two per-message stages the red-flag pipeline changed, on their own (to see where the
// engine's cost goes; the whole engine is BM_Engine_RE2Set).
const Engine& StageEngine() {
  static const Engine engine(Kb(), EngineOptions{});
  return engine;
}
void BM_Stage_Normalise(benchmark::State& bench) {
  const auto& messages = Messages();
  std::size_t i = 0;
  for (auto _ : bench) {
    benchmark::DoNotOptimize(StageEngine().normaliser().Normalise(messages[i]));
    if (++i == messages.size()) i = 0;
  }
}
void BM_Stage_Detect(benchmark::State& bench) {
  std::vector<std::string> normalised;
  for (const auto& m : Messages()) normalised.push_back(StageEngine().normaliser().Normalise(m));
  std::size_t i = 0;
  for (auto _ : bench) {
    benchmark::DoNotOptimize(StageEngine().detector().Detect(normalised[i]));
    if (++i == normalised.size()) i = 0;
  }
}
BENCHMARK(BM_Stage_Normalise);
BENCHMARK(BM_Stage_Detect);

BENCHMARK_MAIN();
