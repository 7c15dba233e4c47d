// build/chat-server: the Backcheck WebSocket + HTTP server. See README "Running the server".
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "knowledge/loader.hpp"
#include "server/beast.hpp"
#include "server/config.hpp"
#include "server/server.hpp"

int main(int argc, char** argv) {
  using namespace backcheck;
  server::ServerConfig config;
  config.kb_dir = BACKCHECK_DEFAULT_KB_DIR;
  config.web_dir = BACKCHECK_DEFAULT_WEB_DIR;
  auto& limits = config.limits;
  std::int64_t expiry = limits.conversation_expiry.count(), handshake = limits.handshake_timeout.count(),
               idle = limits.idle_timeout.count(), send = limits.send_timeout.count();

  CLI::App app{"Backcheck chat server: protocol v1 over WebSocket at /v1/chat, HTTP on the same port"};
  app.add_option("--host", config.host, "address to listen on")->capture_default_str();
  app.add_option("--port", config.port, "port to listen on; 0 picks a free one")->capture_default_str();
  app.add_option("--threads", config.threads, "I/O threads; 0 = one per core")->capture_default_str();
  app.add_option("--data-dir", config.data_dir, "where conversations are kept (created 0700)")->capture_default_str();
  app.add_option("--store", config.store, "sqlite: durable, in --data-dir/backcheck.db; memory: lost on restart")
      ->capture_default_str()->check(CLI::IsMember({"sqlite", "memory"}));
  app.add_option("--kb", config.kb_dir, "knowledge base folder")->capture_default_str();
  app.add_option("--web", config.web_dir, "folder of the widget's static files")->capture_default_str();
  app.add_option("--max-connections", limits.max_connections, "open WebSockets in all (HTTP 503 past it)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-frame-bytes", limits.max_frame_bytes, "largest WebSocket frame (bigger: close 1009)")
      ->capture_default_str()->check(CLI::Range(64, 1 << 24));
  app.add_option("--max-text-chars", limits.max_text_chars, "longest message, in characters")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--rate", limits.messages_per_second, "messages per second per connection")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--burst", limits.burst, "messages a connection may send at once")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-conversations-per-connection", limits.max_conversations_per_connection,
                 "conversations on one connection")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-conversations", limits.max_conversations, "conversations held in all")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--conversation-expiry", expiry, "seconds a conversation stays resumable after its last message")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--handshake-timeout", handshake, "seconds to complete an HTTP request or WebSocket handshake")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--idle-timeout", idle, "seconds a WebSocket may stay silent (pings keep live clients)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-body-bytes", limits.max_body_bytes, "largest HTTP request body")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-queued-frames", limits.max_queued_frames,
                 "replies waiting for a client; when full the server stops reading from it")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--send-timeout", send, "seconds a client may leave a full queue of replies unread before it is dropped")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.footer("Environment: CHAT_OPERATOR_TOKEN enables the operator endpoint /v1/operator "
             "(clients send Authorization: Bearer <token>); without it the endpoint is off.");
  CLI11_PARSE(app, argc, argv);
  if (const char* token = std::getenv("CHAT_OPERATOR_TOKEN")) config.operator_token = token;
  limits.conversation_expiry = std::chrono::seconds(expiry);
  limits.handshake_timeout = std::chrono::seconds(handshake);
  limits.idle_timeout = std::chrono::seconds(idle);
  limits.send_timeout = std::chrono::seconds(send);

  std::shared_ptr<const knowledge::KnowledgeBase> kb;
  try {
    kb = knowledge::LoadKnowledgeBase(config.kb_dir);
  } catch (const knowledge::KnowledgeError& e) {
    std::cerr << "chat-server: knowledge base " << config.kb_dir << " refused: " << e.what() << "\n";
    return 2;
  }
  ::umask(077);  // the database holds what people wrote: files and folders for this user only
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec || ::chmod(config.data_dir.c_str(), 0700) != 0) {
    std::cerr << "chat-server: cannot use data directory " << config.data_dir << ": "
              << (ec ? ec.message() : std::strerror(errno)) << "\n";
    return 2;
  }
  dialog::Engine engine(kb);
  try {
    return server::RunServer(config, engine);
  } catch (const std::exception& e) {  // a refused database, an address in use...
    std::cerr << "chat-server: " << e.what() << "\n";
    return 1;
  }
}
