// One HTTP connection: GET /healthz, /readyz, /metrics, static files, POST /v1/messages (and its
// CORS preflight), and the upgrade to a chat WebSocket on /v1/chat or an operator one on
// /v1/operator. Keep-alive, one request at a time, on the connection's strand.
//
// Before anything is served or upgraded the request is checked: its Origin (a browser page from
// elsewhere is refused, 403), its WebSocket key, the connection limits (per client address: 429;
// in all: 503). Handlers run inside AtBoundary: an exception answers 500 and closes this
// connection only.
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
  using Request = http::request<http::string_body>;
  using Response = http::response<http::string_body>;

  void DoRead();
  void OnRead(beast::error_code ec, std::size_t bytes);
  void Serve(Request& req);
  void Upgrade(Request& req, std::string_view path);
  Response Handle(const Request& req);
  void PostMessage(const Request& req);  // answers when the turn is durable
  void ServeOperator(const Request& req, std::string_view path);  // /v1/operator/... (operator_api.hpp)
  // Adds the CORS headers when the request comes from another allowed origin.
  void AllowOrigin(const Request& req, Response& res) const;
  void Write(Response&& res);
  void OnWrite(bool close, beast::error_code ec, std::size_t bytes);
  void Close();

  HttpStream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<Response> response_;  // alive until written
  ServerContext& context_;
  TokenBucket bucket_;
  std::string peer_;             // the peer's IP address
  std::string address_;          // the client address of the current request (ClientAddress)
  bool counted_ = false;         // holds an --max-http-connections slot
  bool head_ = false;            // the request being answered is a HEAD
  std::uint64_t registry_id_ = 0;
};

}  // namespace backcheck::server
