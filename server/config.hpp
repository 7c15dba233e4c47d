// Everything the server can be told, with safe defaults (SPEC section 7). Every limit is a flag.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

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
};

struct ServerConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  unsigned threads = 0;  // 0: one per core
  std::string data_dir = "./var";
  std::string store = "sqlite";      // or "memory": nothing survives a restart
  std::string operator_token;        // from CHAT_OPERATOR_TOKEN; empty: /v1/operator is off
  std::string kb_dir;
  std::string web_dir;
  Limits limits;
};

}  // namespace backcheck::server
