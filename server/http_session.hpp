// One HTTP connection: GET /healthz, /metrics, static files, POST /v1/messages, and the upgrade
// to a chat WebSocket on /v1/chat. Keep-alive, one request at a time, on the connection's strand.
#pragma once

#include <memory>
#include <optional>

#include "server/beast.hpp"
#include "server/rate_limiter.hpp"
#include "server/server_context.hpp"

namespace backcheck::server {

class HttpSession : public Closeable, public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(Socket&& socket, ServerContext& context);
  ~HttpSession() override;

  void Run();
  void Shutdown() override;

 private:
  void DoRead();
  void OnRead(beast::error_code ec, std::size_t bytes);
  http::response<http::string_body> Handle(const http::request<http::string_body>& req);
  void PostMessage(const http::request<http::string_body>& req);  // answers when the turn is durable
  void Write(http::response<http::string_body>&& res);
  void OnWrite(bool close, beast::error_code ec, std::size_t bytes);
  void Close();

  HttpStream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<http::response<http::string_body>> response_;  // alive until written
  ServerContext& context_;
  TokenBucket bucket_;
  std::uint64_t registry_id_ = 0;
};

}  // namespace backcheck::server
