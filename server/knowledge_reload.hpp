// Reloading the knowledge base without a restart (SIGHUP, POST /v1/admin/reload).
//
// A reload reads and validates the folder and builds a new engine on a worker thread of its
// own, never on an I/O thread. If the folder is valid, the service's engine is replaced
// (ConversationService::SetEngine): each message runs on the engine it started with, and the
// old engine is freed when the last message holding it ends; conversations in flight go on
// (their state names the screening question by id, see dialog::Engine::Adopt). If it is not,
// the old engine stays and the loader's error is the answer. One reload runs at a time: one
// asked meanwhile is answered "busy" at once.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "dialog/engine.hpp"
#include "server/conversation_service.hpp"
#include "server/metrics.hpp"

namespace backcheck::server {

struct ReloadResult {
  enum class Outcome { kReloaded, kRefused, kBusy } outcome = Outcome::kRefused;
  std::string version;           // the knowledge version loaded now (the new one when reloaded)
  std::string previous_version;  // the one before
  std::string error;             // kRefused: the loader's message; kBusy: why
  std::chrono::milliseconds took{0};
};

const char* OutcomeName(ReloadResult::Outcome outcome);  // "reloaded", "refused", "busy"
// The result as JSON: {"outcome", "knowledge_version", "previous_version", "error"?, "took_ms"}.
std::string ReloadResultJson(const ReloadResult& result);

class KnowledgeReloader {
 public:
  KnowledgeReloader(std::filesystem::path kb_dir, dialog::EngineOptions options, ConversationService& service,
                    Metrics& metrics);
  ~KnowledgeReloader();  // waits for a reload that is running
  KnowledgeReloader(const KnowledgeReloader&) = delete;
  KnowledgeReloader& operator=(const KnowledgeReloader&) = delete;

  // Starts a reload; `done` runs on the worker thread once it has ended (the engine replaced,
  // or refused), and must not block. While one runs, `done` gets kBusy at once, on this thread.
  // `trigger` ("sighup", "http") is for the log.
  void Start(std::string_view trigger, std::function<void(const ReloadResult&)> done);

 private:
  void Run(std::string trigger, std::function<void(const ReloadResult&)> done);

  const std::filesystem::path kb_dir_;
  const dialog::EngineOptions options_;
  ConversationService& service_;
  Metrics& metrics_;
  std::mutex mutex_;  // guards running_ and worker_
  bool running_ = false;
  std::thread worker_;
};

}  // namespace backcheck::server
