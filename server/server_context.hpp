// What every connection shares: configuration, the conversation service, metrics, static files
// and the registry of open connections. Owned by Server; outlives every session.
#pragma once

#include <atomic>

#include "server/address_limits.hpp"
#include "server/config.hpp"
#include "server/conversation_connections.hpp"
#include "server/conversation_service.hpp"
#include "server/handoff_fanout.hpp"
#include "server/metrics.hpp"
#include "server/operator_hub.hpp"
#include "server/operator_sign_ins.hpp"
#include "server/session_registry.hpp"
#include "server/static_files.hpp"

namespace backcheck::server {

class KnowledgeReloader;

struct ServerContext {
  const ServerConfig& config;
  ConversationStore& store;
  ConversationService& service;
  OperatorHub& operators;
  Metrics& metrics;
  const StaticFiles& files;
  SessionRegistry& sessions;
  AddressLimits& addresses;
  ConversationConnections& pushes;  // which connections hold which conversations (notices)
  OperatorSignIns& sign_ins;         // operators' browser sessions (cookies)
  HandoffFanout& handoff;            // who hears of a claim, a join, a message during a handoff
  std::atomic<bool> stopping{false};
  KnowledgeReloader* reloader = nullptr;  // POST /v1/admin/reload; set once, before the first connection

  // Reserves a WebSocket slot under --max-connections; false when full.
  bool TryOpenConnection() { return TryReserve(metrics.connections_open, config.limits.max_connections); }
  void CloseConnection() { metrics.connections_open.fetch_sub(1); }
  // Reserves a plain HTTP connection under --max-http-connections.
  bool TryOpenHttp() { return TryReserve(metrics.http_connections_open, config.limits.max_http_connections); }
  void CloseHttp() { metrics.http_connections_open.fetch_sub(1); }

  // Why the server cannot take a new conversation now, or empty when it can (/readyz).
  std::string NotReadyReason() const {
    if (stopping) return "shutting down";
    if (!service.StoreHealthy()) return "the store is failing";
    if (service.Full()) return "the conversation table is full";
    if (metrics.connections_open.load() >= static_cast<std::int64_t>(config.limits.max_connections)) {
      return "every WebSocket slot is taken";
    }
    return {};
  }

 private:
  static bool TryReserve(std::atomic<std::int64_t>& open_count, std::size_t limit) {
    auto open = open_count.load();
    while (open < static_cast<std::int64_t>(limit)) {
      if (open_count.compare_exchange_weak(open, open + 1)) return true;
    }
    return false;
  }
};

}  // namespace backcheck::server
