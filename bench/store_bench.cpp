// What durability costs: messages per second through the conversation service (engine + store,
// Load -> Respond -> Commit on the store seam), with the in-memory store and with the SQLite
// store (group commit), at several concurrencies.
//
//   build/bench/store_bench [seconds-per-run]
//
// Each of C client threads owns a conversation and runs a closed loop: send a message, wait for
// its reply (the service hands it over only once the store has committed the turn, when a server
// would send it), repeat. The table gives messages per second, the median and 99th percentile
// time to the reply, and for SQLite how many messages each commit carried (group commit).
// Results are written down in the README.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>
#include <variant>
#include <vector>

#include "knowledge/loader.hpp"
#include "server/conversation_service.hpp"
#include "server/store/memory_store.hpp"
#include "server/store/sqlite_store.hpp"

namespace {

using namespace backcheck;
using Clock = std::chrono::steady_clock;

struct Result {
  double per_second;
  double p50_us, p99_us;
  double per_commit;
  std::size_t errors;
};

// One callback's value, handed from whichever thread ran it (a store's) to the waiting client.
template <typename T>
class Slot {
 public:
  void Set(T value) {
    std::lock_guard lock(mutex_);
    value_ = std::move(value);
    cv_.notify_one();
  }
  T Take() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return value_.has_value(); });
    T out = std::move(*value_);
    value_.reset();
    return out;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::optional<T> value_;
};

Result Run(server::ConversationStore& store, const dialog::Engine& engine, int clients, double seconds,
           const server::SqliteStore* sqlite) {
  server::Limits limits;
  server::Metrics metrics({});
  server::ConversationService service(engine, store, limits, metrics);  // no Post: the engine runs inline
  const char* messages[] = {"My upper back is sore after rows yesterday", "no", "no", "no",
                            "Should I use ice or heat?", "What is DOMS?", "Are there any stretches I can do?"};
  std::vector<std::vector<double>> latencies(static_cast<std::size_t>(clients));
  std::vector<std::size_t> errors(static_cast<std::size_t>(clients), 0);
  const std::uint64_t commits_before = sqlite ? sqlite->Commits() : 0;
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      using StartResult = std::variant<server::ConversationService::Started, server::Error>;
      using MessageResult = std::variant<server::ConversationService::Replied, server::Error>;
      Slot<StartResult> started;
      const std::string id = service.Start(std::nullopt, std::nullopt, [&](StartResult r) { started.Set(std::move(r)); });
      if (id.empty() || !std::holds_alternative<server::ConversationService::Started>(started.Take())) {
        std::fprintf(stderr, "store_bench: a conversation could not be started\n");
        std::exit(1);
      }
      Slot<MessageResult> reply;
      auto& mine = latencies[static_cast<std::size_t>(c)];
      std::size_t i = 0;
      while (Clock::now() < deadline) {
        const auto t0 = Clock::now();
        service.Message(id, messages[i++ % std::size(messages)], t0, [&](MessageResult r) { reply.Set(std::move(r)); });
        if (!std::holds_alternative<server::ConversationService::Replied>(reply.Take())) {
          ++errors[static_cast<std::size_t>(c)];
          continue;
        }
        mine.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
    });
  }
  for (auto& t : threads) t.join();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) { return all.empty() ? 0 : all[static_cast<std::size_t>(p * static_cast<double>(all.size() - 1))]; };
  const double commits = sqlite ? static_cast<double>(sqlite->Commits() - commits_before) : 0;
  std::size_t failed = 0;
  for (std::size_t e : errors) failed += e;
  return Result{static_cast<double>(all.size()) / seconds, pct(0.5), pct(0.99),
                commits > 0 ? static_cast<double>(all.size()) / commits : 0, failed};
}

void Errors(const Result& r) {
  if (r.errors > 0) std::fprintf(stderr, "store_bench: %zu messages got an error instead of a reply\n", r.errors);
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
      Errors(r);
    }
    {
      std::filesystem::remove_all(dir);
      std::filesystem::create_directories(dir);
      // The data directory: SqliteStore locks it and keeps DIR/backcheck.db in it.
      server::SqliteStore sqlite(dir);
      auto r = Run(sqlite, engine, clients, seconds, &sqlite);
      std::printf("| sqlite | %d | %.0f | %.1f us | %.1f us | %.1f |\n", clients, r.per_second, r.p50_us, r.p99_us,
                  r.per_commit);
      Errors(r);
    }
    std::fflush(stdout);
  }
  std::filesystem::remove_all(dir);
}
