#include "server/operator_session.hpp"

#include <nlohmann/json.hpp>

namespace backcheck::server {

bool OperatorAuthorized(std::string_view authorization, std::string_view token) {
  constexpr std::string_view kScheme = "Bearer ";
  if (token.empty() || authorization.size() < kScheme.size()) return false;
  if (authorization.substr(0, kScheme.size()) != kScheme) return false;
  const std::string_view given = authorization.substr(kScheme.size());
  // Constant time in the token's content: every byte is compared whatever differs first.
  unsigned diff = given.size() == token.size() ? 0u : 1u;
  for (std::size_t i = 0; i < token.size(); ++i) {
    const char g = i < given.size() ? given[i] : '\0';
    diff |= static_cast<unsigned>(static_cast<unsigned char>(g) ^ static_cast<unsigned char>(token[i]));
  }
  return diff == 0;
}

OperatorSession::OperatorSession(Socket&& socket, ServerContext& context)
    : ws_(std::move(socket)), context_(context) {}

OperatorSession::~OperatorSession() { context_.sessions.Remove(registry_id_); }

void OperatorSession::Run(http::request<http::string_body> upgrade) {
  registry_id_ = context_.sessions.Add(weak_from_this());
  ApplyWebSocketLimits(ws_, context_.config.limits);
  ws_.async_accept(upgrade, beast::bind_front_handler(&OperatorSession::OnAccept, shared_from_this()));
}

void OperatorSession::Shutdown() {
  asio::post(ws_.get_executor(), [self = shared_from_this()] {
    if (!self->ws_.is_open()) return;
    if (self->writing_) {
      self->close_after_write_ = true;  // one write-like operation at a time: close after it
      return;
    }
    self->ws_.async_close(websocket::close_code::going_away, [self](beast::error_code) {});
  });
}

void OperatorSession::OnAccept(beast::error_code ec) {
  if (ec) return;
  accepted_ = true;
  // Register first, then read the backlog: an event made durable in between arrives both ways
  // and `sent_` drops the second copy; none can fall between the two.
  context_.operators.Add(weak_from_this());
  for (const auto& event : context_.store.Unacknowledged()) {
    Send(event.id, std::make_shared<const std::string>(EscalationJson(event)));
  }
  DoRead();
}

void OperatorSession::Deliver(std::int64_t id, std::shared_ptr<const std::string> frame) {
  asio::post(ws_.get_executor(), [self = shared_from_this(), id, frame = std::move(frame)]() mutable {
    if (self->accepted_) self->Send(id, std::move(frame));
  });
}

void OperatorSession::DoRead() {
  ws_.async_read(buffer_, beast::bind_front_handler(&OperatorSession::OnRead, shared_from_this()));
}

void OperatorSession::OnRead(beast::error_code ec, std::size_t) {
  if (ec) return;
  if (!ws_.got_text()) {
    close_after_write_ = true;
    if (!writing_) ws_.async_close(websocket::close_code::unknown_data, [self = shared_from_this()](beast::error_code) {});
    return;
  }
  auto data = buffer_.data();
  Handle(std::string_view(static_cast<const char*>(data.data()), data.size()));
  buffer_.consume(buffer_.size());
  DoRead();
}

void OperatorSession::Handle(std::string_view text) {
  auto error = [&](ErrorCode code, std::string message) {
    Send(0, std::make_shared<const std::string>(ErrorJson(Error{code, std::move(message)}, std::nullopt)));
  };
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return error(ErrorCode::kBadJson, "the frame must be a JSON object");
  auto type = j.find("type");
  if (type == j.end() || !type->is_string()) return error(ErrorCode::kBadRequest, "'type' must be a string");
  if (*type != "ack") return error(ErrorCode::kUnknownType, "operators send {\"type\":\"ack\",\"id\":N}");
  auto id = j.find("id");
  if (id == j.end() || !id->is_number_integer()) return error(ErrorCode::kBadRequest, "'id' must be an integer");
  const std::int64_t ack = id->get<std::int64_t>();
  context_.store.Acknowledge(ack, [self = shared_from_this(), ack](bool found) {
    if (found) {
      self->context_.operators.Broadcast(nlohmann::json{{"type", "acked"}, {"id", ack}}.dump());
      return;
    }
    auto frame = ErrorJson(Error{ErrorCode::kBadRequest, "no unacknowledged escalation has id " + std::to_string(ack)},
                           std::nullopt);
    self->Deliver(0, std::make_shared<const std::string>(std::move(frame)));
  });
}

void OperatorSession::Send(std::int64_t id, std::shared_ptr<const std::string> frame) {
  if (!ws_.is_open()) return;
  if (id != 0 && !sent_.insert(id).second) return;  // delivered already
  if (queue_.size() >= kMaxQueuedFrames) {
    beast::close_socket(ws_.next_layer());  // not keeping up; it gets the backlog on reconnect
    return;
  }
  queue_.push_back(std::move(frame));
  if (!writing_) DoWrite();
}

void OperatorSession::DoWrite() {
  writing_ = true;
  ws_.text(true);
  ws_.async_write(asio::buffer(*queue_.front()), beast::bind_front_handler(&OperatorSession::OnWrite, shared_from_this()));
}

void OperatorSession::OnWrite(beast::error_code ec, std::size_t) {
  writing_ = false;
  if (ec) return;
  queue_.pop_front();
  if (close_after_write_) {
    ws_.async_close(websocket::close_code::going_away, [self = shared_from_this()](beast::error_code) {});
    return;
  }
  if (!queue_.empty()) DoWrite();
}

}  // namespace backcheck::server
