#include "server/knowledge_reload.hpp"

#include <exception>

#include "knowledge/loader.hpp"
#include "server/json_writer.hpp"
#include "server/log.hpp"

namespace backcheck::server {

const char* OutcomeName(ReloadResult::Outcome outcome) {
  switch (outcome) {
    case ReloadResult::Outcome::kReloaded: return "reloaded";
    case ReloadResult::Outcome::kRefused: return "refused";
    case ReloadResult::Outcome::kBusy: return "busy";
  }
  return "refused";
}

std::string ReloadResultJson(const ReloadResult& result) {
  JsonObject json(160 + result.error.size());
  json.String("outcome", OutcomeName(result.outcome));
  json.String("knowledge_version", result.version);
  json.String("previous_version", result.previous_version);
  if (!result.error.empty()) json.String("error", result.error);
  json.Int("took_ms", result.took.count());
  return json.Done();
}

KnowledgeReloader::KnowledgeReloader(std::filesystem::path kb_dir, dialog::EngineOptions options,
                                     ConversationService& service, Metrics& metrics)
    : kb_dir_(std::move(kb_dir)), options_(std::move(options)), service_(service), metrics_(metrics) {}

KnowledgeReloader::~KnowledgeReloader() {
  std::thread worker;
  {
    std::lock_guard lock(mutex_);
    worker.swap(worker_);
  }
  if (worker.joinable()) worker.join();
}

void KnowledgeReloader::Start(std::string_view trigger, std::function<void(const ReloadResult&)> done) {
  {
    std::lock_guard lock(mutex_);
    if (!running_) {
      if (worker_.joinable()) worker_.join();  // the last one has ended (running_ is false): at once
      running_ = true;
      worker_ = std::thread(&KnowledgeReloader::Run, this, std::string(trigger), std::move(done));
      return;
    }
    metrics_.reloads_busy.fetch_add(1, std::memory_order_relaxed);
  }
  ReloadResult busy;
  busy.outcome = ReloadResult::Outcome::kBusy;
  busy.version = busy.previous_version = service_.engine()->kb().version;
  busy.error = "a reload is running already; ask again once it has ended";
  BACKCHECK_LOG(kWarn, "knowledge_reload").Str("trigger", trigger).Str("outcome", "busy");
  done(busy);
}

void KnowledgeReloader::Run(std::string trigger, std::function<void(const ReloadResult&)> done) {
  const auto began = std::chrono::steady_clock::now();
  ReloadResult result;
  result.previous_version = result.version = service_.engine()->kb().version;
  std::shared_ptr<const dialog::Engine> engine;
  try {
    engine = std::make_shared<const dialog::Engine>(knowledge::LoadKnowledgeBase(kb_dir_), options_);
  } catch (const std::exception& e) {  // KnowledgeError names file, item and problem; a pattern that fails to compile
    result.error = e.what();
  } catch (...) {
    result.error = "the knowledge base could not be loaded";
  }
  result.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - began);
  {
    // The swap and the counters before the reloader is free again: whoever sees the new version
    // (or the refusal counted) may start the next reload at once.
    std::lock_guard lock(mutex_);
    if (engine) {
      result.outcome = ReloadResult::Outcome::kReloaded;
      result.version = engine->kb().version;
      service_.SetEngine(std::move(engine));
      metrics_.reloads_done.fetch_add(1, std::memory_order_relaxed);
    } else {
      metrics_.reloads_refused.fetch_add(1, std::memory_order_relaxed);
    }
    running_ = false;
  }
  if (result.outcome == ReloadResult::Outcome::kReloaded) {
    BACKCHECK_LOG(kInfo, "knowledge_reload").Str("trigger", trigger).Str("outcome", "reloaded")
        .Str("version", result.version).Str("previous_version", result.previous_version)
        .Int("took_ms", result.took.count());
  } else {  // the loader's message quotes the knowledge files, never what anyone wrote
    BACKCHECK_LOG(kError, "knowledge_reload").Str("trigger", trigger).Str("outcome", "refused")
        .Str("version", result.version).Str("error", result.error).Int("took_ms", result.took.count());
  }
  done(result);
}

}  // namespace backcheck::server
