// Everything the server can be told, with safe defaults (SPEC section 7). Every limit is a flag.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "server/bridge_tokens.hpp"
#include "server/operator_accounts.hpp"

namespace backcheck::server {

struct Limits {
  std::size_t max_connections = 1000;               // open WebSockets in all; past it: HTTP 503
  std::size_t max_frame_bytes = 16 * 1024;          // a bigger frame closes the socket with 1009
  std::size_t max_text_chars = 2000;                // Unicode code points in one message
  double messages_per_second = 20;                  // per connection, token bucket refill
  double burst = 40;                                // per connection, token bucket capacity
  std::size_t max_conversations_per_connection = 16;
  std::size_t max_conversations = 100000;           // in all
  std::chrono::seconds conversation_expiry{24 * 3600};  // idle time after which it is purged
  std::chrono::seconds handshake_timeout{10};
  std::chrono::seconds idle_timeout{300};
  std::size_t max_body_bytes = 16 * 1024;           // POST /v1/messages
  std::size_t max_queued_frames = 64;               // per connection; when full, reading pauses
  std::chrono::seconds send_timeout{30};            // a full queue that makes no progress for this long: drop the client
  // Abuse limits (README "Security"): what one client address may do, and the server in all.
  std::size_t max_connections_per_ip = 64;          // open WebSockets per client address; past it: HTTP 429
  std::size_t max_http_connections = 1024;          // plain HTTP connections in all; past it: 503 and close
  double new_conversations_per_minute = 60;         // per client address (burst kNewConversationBurst)
  double ip_messages_per_second = 50;               // per client address, all its connections together
  double ip_burst = 100;
  double global_messages_per_second = 5000;         // the whole server (burst: one second's worth)
  std::chrono::seconds empty_conversation_expiry{600};  // a conversation that never had a message
  std::size_t max_queued_bytes = 1 << 20;           // per connection; past it reading pauses
  std::size_t max_history_turns = 50;               // in started.history; history_before pages back
  std::chrono::seconds max_idle_without_message{1800};  // a chat socket that sends nothing this long is closed
  std::size_t max_cached_conversations = 10000;     // active conversations kept in memory; others load from the store
  std::size_t max_pending_per_conversation = 256;   // messages of one conversation waiting their turn; past it: rate_limited
  // Bridge connections (--bridge-tokens): limits per conversation instead of per connection.
  double bridge_messages_per_second = 5;            // per conversation of a bridge connection
  double bridge_burst = 10;
  double bridge_new_conversations_per_second = 50;  // per bridge connection (burst: one second's worth)
  std::size_t max_conversations_per_bridge_connection = 10000;
};
inline constexpr double kNewConversationBurst = 20;

struct ServerConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  unsigned threads = 0;  // 0: one per core
  std::string data_dir = "./var";
  std::string store = "sqlite";      // "postgres": several instances on one database; "memory": nothing survives a restart
  std::string database_url;          // --store postgres: a libpq connection URI
  unsigned commit_delay_us = 200;    // under load, the durable store's wait for more turns to commit together
  OperatorAccounts operators;        // --operators FILE and CHAT_OPERATOR_TOKEN; none: /v1/operator is off
  std::chrono::seconds operator_session_ttl{12 * 3600};  // a browser sign-in lasts this long
  std::size_t max_operator_sessions = 1024;
  std::string escalation_webhook;  // --escalation-webhook URL: each escalation POSTed there (docs/webhook.md)
  std::string webhook_secret;      // BACKCHECK_WEBHOOK_SECRET: the HMAC key of its signature
  std::string emergency_number;  // --emergency-number: what the widget's urgent banner offers to call
  bool review = false;           // --review: keep what the assistant could not answer (server/store/review.hpp)
  unsigned review_days = 30;     // --review-days: ...for this long
  std::string kb_dir;
  std::string web_dir;
  std::vector<std::string> trusted_proxies;  // peers whose X-Forwarded-For is believed
  std::vector<std::string> allowed_origins;  // besides the server's own; "*": any
  BridgeTokens bridges;                      // from --bridge-tokens; empty: every client is anonymous
  Limits limits;
};

}  // namespace backcheck::server
