// What durability costs: messages per second through the conversation service (engine + store),
// with the in-memory store and with the SQLite store (group commit), at several concurrencies.
//
//   build/bench/store_bench [seconds-per-run]
//
// Each of C client threads owns a conversation and runs a closed loop: send a message, wait until
// the store reports it durable (when a server would release the reply), repeat. The table gives
// messages per second, the median and 99th percentile time to durable, and for SQLite how many
// messages each commit carried (group commit). Results are written down in the README.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "knowledge/loader.hpp"
#include "server/conversation_service.hpp"
#include "server/sqlite_store.hpp"

namespace {

using namespace backcheck;
using Clock = std::chrono::steady_clock;

struct Result {
  double per_second;
  double p50_us, p99_us;
  double per_commit;
};

Result Run(server::ConversationStore& store, const dialog::Engine& engine, int clients, double seconds,
           const server::SqliteStore* sqlite) {
  server::Limits limits;
  server::Metrics metrics({});
  server::ConversationService service(engine, store, limits, metrics);
  const char* messages[] = {"My upper back is sore after rows yesterday", "no", "no", "no",
                            "Should I use ice or heat?", "What is DOMS?", "Are there any stretches I can do?"};
  std::vector<std::vector<double>> latencies(static_cast<std::size_t>(clients));
  const std::uint64_t commits_before = sqlite ? sqlite->Commits() : 0;
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      auto started = service.Start(std::nullopt, [](std::optional<backcheck::server::Error>) {});
      const std::string id = std::get<server::ConversationService::Started>(started).conversation;
      std::mutex m;
      std::condition_variable cv;
      std::size_t i = 0;
      while (Clock::now() < deadline) {
        bool done = false;
        const auto t0 = Clock::now();
        service.Message(id, messages[i++ % std::size(messages)], t0, [&](std::optional<backcheck::server::Error>) {
          std::lock_guard lock(m);
          done = true;
          cv.notify_one();
        });
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return done; });
        latencies[static_cast<std::size_t>(c)].push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
    });
  }
  for (auto& t : threads) t.join();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) { return all.empty() ? 0 : all[static_cast<std::size_t>(p * static_cast<double>(all.size() - 1))]; };
  const double commits = sqlite ? static_cast<double>(sqlite->Commits() - commits_before) : 0;
  return Result{static_cast<double>(all.size()) / seconds, pct(0.5), pct(0.99),
                commits > 0 ? static_cast<double>(all.size()) / commits : 0};
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
  auto kb = knowledge::LoadKnowledgeBase(BACKCHECK_DEFAULT_KB_DIR);
  dialog::Engine engine(kb);
  const auto dir = std::filesystem::temp_directory_path() / "backcheck-store-bench";
  std::printf("| store | clients | messages/s | p50 to durable | p99 to durable | messages per commit |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (int clients : {1, 16, 128}) {
    {
      server::MemoryStore memory;
      auto r = Run(memory, engine, clients, seconds, nullptr);
      std::printf("| memory | %d | %.0f | %.1f us | %.1f us | - |\n", clients, r.per_second, r.p50_us, r.p99_us);
    }
    {
      std::filesystem::remove_all(dir);
      std::filesystem::create_directories(dir);
      server::SqliteStore sqlite(dir / "bench.db");
      auto r = Run(sqlite, engine, clients, seconds, &sqlite);
      std::printf("| sqlite | %d | %.0f | %.1f us | %.1f us | %.1f |\n", clients, r.per_second, r.p50_us, r.p99_us,
                  r.per_commit);
    }
    std::fflush(stdout);
  }
  std::filesystem::remove_all(dir);
}
