// What every connection shares: configuration, the conversation service, metrics, static files
// and the registry of open connections. Owned by Server; outlives every session.
#pragma once

#include <atomic>

#include "server/config.hpp"
#include "server/conversation_service.hpp"
#include "server/metrics.hpp"
#include "server/operator_hub.hpp"
#include "server/session_registry.hpp"
#include "server/static_files.hpp"

namespace backcheck::server {

struct ServerContext {
  const ServerConfig& config;
  ConversationStore& store;
  ConversationService& service;
  OperatorHub& operators;
  Metrics& metrics;
  const StaticFiles& files;
  SessionRegistry& sessions;
  std::atomic<bool> stopping{false};

  // Reserves a WebSocket slot under --max-connections; false when full.
  bool TryOpenConnection() {
    auto open = metrics.connections_open.load();
    while (open < static_cast<std::int64_t>(config.limits.max_connections)) {
      if (metrics.connections_open.compare_exchange_weak(open, open + 1)) return true;
    }
    return false;
  }
  void CloseConnection() { metrics.connections_open.fetch_sub(1); }
};

}  // namespace backcheck::server
