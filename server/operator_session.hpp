// One operator WebSocket (/v1/operator), authenticated before the upgrade. On connect it sends
// every unacknowledged escalation, oldest first, then new ones as they become durable; an
// {"type":"ack","id":N} marks one handled, durably, and every operator is told {"type":"acked"}.
// Operators must keep up: one whose backlog of unsent frames passes a bound is disconnected
// (nothing is lost; unacknowledged escalations are sent again when it reconnects).
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <unordered_set>

#include "server/beast.hpp"
#include "server/operator_hub.hpp"
#include "server/server_context.hpp"

namespace backcheck::server {

class OperatorSession : public Closeable,
                        public OperatorConnection,
                        public std::enable_shared_from_this<OperatorSession> {
 public:
  OperatorSession(Socket&& socket, ServerContext& context);
  ~OperatorSession() override;

  void Run(http::request<http::string_body> upgrade);
  void Shutdown() override;
  void Deliver(std::int64_t id, std::shared_ptr<const std::string> frame) override;

 private:
  static constexpr std::size_t kMaxQueuedFrames = 4096;

  void OnAccept(beast::error_code ec);
  void DoRead();
  void OnRead(beast::error_code ec, std::size_t bytes);
  void Handle(std::string_view frame);
  void Send(std::int64_t id, std::shared_ptr<const std::string> frame);
  void DoWrite();
  void OnWrite(beast::error_code ec, std::size_t bytes);

  WebSocket ws_;
  beast::flat_buffer buffer_;
  ServerContext& context_;
  std::deque<std::shared_ptr<const std::string>> queue_;
  bool writing_ = false;
  bool accepted_ = false;
  bool close_after_write_ = false;  // a shutdown came while a write was in flight
  std::unordered_set<std::int64_t> sent_;  // escalation ids delivered: the backlog and live events may overlap
  std::uint64_t registry_id_ = 0;
};

// True when `authorization` is "Bearer <token>"; compares in constant time.
bool OperatorAuthorized(std::string_view authorization, std::string_view token);

}  // namespace backcheck::server
