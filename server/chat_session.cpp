#include "server/chat_session.hpp"

#include <algorithm>

namespace backcheck::server {

ChatSession::ChatSession(Socket&& socket, ServerContext& context)
    : ws_(std::move(socket)),
      context_(context),
      bucket_(context.config.limits.messages_per_second, context.config.limits.burst),
      stall_timer_(ws_.get_executor()) {}

ChatSession::~ChatSession() {
  context_.sessions.Remove(registry_id_);
  context_.CloseConnection();
}

void ChatSession::Run(http::request<http::string_body> upgrade) {
  registry_id_ = context_.sessions.Add(weak_from_this());
  ApplyWebSocketLimits(ws_, context_.config.limits);
  ws_.async_accept(upgrade, beast::bind_front_handler(&ChatSession::OnAccept, shared_from_this()));
}

void ChatSession::Shutdown() {
  asio::post(ws_.get_executor(), [self = shared_from_this()] { self->CloseWith(websocket::close_code::going_away); });
}

void ChatSession::OnAccept(beast::error_code ec) {
  if (ec) return;
  if (context_.stopping) return CloseWith(websocket::close_code::going_away);
  DoRead();
}

void ChatSession::DoRead() {
  ws_.async_read(buffer_, beast::bind_front_handler(&ChatSession::OnRead, shared_from_this()));
}

void ChatSession::OnRead(beast::error_code ec, std::size_t) {
  // Frames over the size limit (1009) and invalid UTF-8 (1007) fail the read: Beast has sent
  // the close frame. Any error ends the session.
  if (ec) return;
  if (!ws_.got_text()) return CloseWith(websocket::close_code::unknown_data);  // 1003
  const auto received = Clock::now();
  auto data = buffer_.data();
  std::string_view frame(static_cast<const char*>(data.data()), data.size());
  if (!bucket_.TryTake()) {
    SendError(ErrorCode::kRateLimited, "too many messages; slow down", ParseClientFrame(frame).ref);
  } else {
    auto parsed = ParseClientFrame(frame);
    if (parsed.error) {
      SendError(parsed.error->code, std::move(parsed.error->message), parsed.ref);
    } else {
      const auto& ref = parsed.frame->ref;
      std::visit(
          [&](const auto& body) {
            using T = std::decay_t<decltype(body)>;
            if constexpr (std::is_same_v<T, StartFrame>) HandleStart(body, ref);
            if constexpr (std::is_same_v<T, MessageFrame>) HandleMessage(body, ref, received);
            if constexpr (std::is_same_v<T, EndFrame>) HandleEnd(body, ref);
          },
          parsed.frame->body);
    }
  }
  buffer_.consume(buffer_.size());
  if (closing_) return;
  if (queue_.size() + outgoing_.size() >= context_.config.limits.max_queued_frames) return PauseReading();
  DoRead();
}

void ChatSession::PauseReading() {
  read_paused_ = true;
  stall_timer_.expires_after(context_.config.limits.send_timeout);
  stall_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (!ec && self->read_paused_) self->Drop();  // the client is not taking its replies
  });
}

void ChatSession::Drop() {
  closing_ = true;
  beast::error_code ignored;
  ws_.next_layer().shutdown(tcp::socket::shutdown_both, ignored);
  ws_.next_layer().close(ignored);
}

bool ChatSession::Attach(const std::string& conversation, const std::optional<std::string>& ref) {
  if (std::find(conversations_.begin(), conversations_.end(), conversation) != conversations_.end()) return true;
  if (conversations_.size() >= context_.config.limits.max_conversations_per_connection) {
    SendError(ErrorCode::kTooManyConversations,
              "this connection has " + std::to_string(conversations_.size()) + " conversations, the most it may",
              ref);
    return false;
  }
  conversations_.push_back(conversation);
  return true;
}

void ChatSession::HandleStart(const StartFrame& start, const std::optional<std::string>& ref) {
  if (start.resume) {
    if (!context_.service.Exists(*start.resume)) {
      return SendError(ErrorCode::kUnknownConversation, "no conversation with this id (it may have expired)", ref);
    }
    if (!Attach(*start.resume, ref)) return;
  } else if (conversations_.size() >= context_.config.limits.max_conversations_per_connection) {
    return SendError(ErrorCode::kTooManyConversations,
                     "this connection has " + std::to_string(conversations_.size()) + " conversations, the most it may",
                     ref);
  }
  auto slot = Hold();
  auto result = context_.service.Start(start.resume, ReleaseWhenDurable(slot));
  if (auto* error = std::get_if<Error>(&result)) return FailSlot(slot, std::move(*error), ref);
  auto& started = std::get<ConversationService::Started>(result);
  if (!start.resume) conversations_.push_back(started.conversation);
  slot->frame = StartedJson(started.conversation, started.resumed, started.state, started.history);
}

void ChatSession::HandleMessage(const MessageFrame& message, const std::optional<std::string>& ref,
                                Clock::time_point received) {
  if (auto error = context_.service.CheckText(message.text)) return SendError(error->code, std::move(error->message), ref);
  std::string conversation;
  if (message.conversation) {
    if (!context_.service.Exists(*message.conversation)) {
      return SendError(ErrorCode::kUnknownConversation, "no conversation with this id (it may have expired)", ref);
    }
    if (!Attach(*message.conversation, ref)) return;
    conversation = *message.conversation;
  } else if (conversations_.size() == 1) {
    conversation = conversations_.front();
  } else if (conversations_.empty()) {
    HandleStart(StartFrame{}, ref);  // a message on a fresh connection starts a conversation
    if (conversations_.empty()) return;
    conversation = conversations_.front();
  } else {
    return SendError(ErrorCode::kBadRequest,
                     "'conversation' is required: this connection has " + std::to_string(conversations_.size()), ref);
  }
  auto slot = Hold();
  auto result = context_.service.Message(conversation, message.text, received, ReleaseWhenDurable(slot));
  if (auto* error = std::get_if<Error>(&result)) return FailSlot(slot, std::move(*error), ref);
  auto& replied = std::get<ConversationService::Replied>(result);
  slot->frame = ReplyJson(replied.conversation, replied.seq, ref, replied.reply);
}

void ChatSession::HandleEnd(const EndFrame& end, const std::optional<std::string>& ref) {
  auto slot = Hold();
  if (auto error = context_.service.End(end.conversation, ReleaseWhenDurable(slot))) {
    return FailSlot(slot, std::move(*error), ref);
  }
  std::erase(conversations_, end.conversation);
  slot->frame = EndedJson(end.conversation);
}

std::shared_ptr<ChatSession::Outgoing> ChatSession::Hold() {
  outgoing_.push_back(std::make_shared<Outgoing>());
  return outgoing_.back();
}

std::function<void(bool)> ChatSession::ReleaseWhenDurable(std::shared_ptr<Outgoing> slot) {
  // Called from the store's writer thread (or inline): hop to this session's strand. Posted, so
  // the frame is in the slot before the release runs.
  return [self = shared_from_this(), slot = std::move(slot)](bool ok) {
    asio::post(self->ws_.get_executor(), [self, slot, ok] { self->Release(slot, ok); });
  };
}

void ChatSession::Release(const std::shared_ptr<Outgoing>& slot, bool ok) {
  if (!ok) {
    // The store could not keep this turn: never claim it was handled. The client may resume.
    return CloseWith(websocket::close_code::internal_error);
  }
  slot->ready = true;
  Pump();
}

void ChatSession::Pump() {
  while (!outgoing_.empty() && outgoing_.front()->ready) {
    std::string frame = std::move(outgoing_.front()->frame);
    outgoing_.pop_front();
    Send(std::move(frame));
  }
}

void ChatSession::FailSlot(const std::shared_ptr<Outgoing>& slot, Error error, const std::optional<std::string>& ref) {
  context_.metrics.ErrorSent(error.code);
  slot->frame = ErrorJson(error, ref);
  Release(slot, true);
}

void ChatSession::SendError(ErrorCode code, std::string message, const std::optional<std::string>& ref) {
  FailSlot(Hold(), Error{code, std::move(message)}, ref);
}

void ChatSession::Send(std::string frame) {
  if (closing_ && !close_code_) return;
  // The queue stays bounded: reading pauses once it holds max_queued_frames, and one frame
  // read adds at most two (started + reply).
  queue_.push_back(std::move(frame));
  if (!writing_) DoWrite();
}

void ChatSession::DoWrite() {
  writing_ = true;
  ws_.text(true);
  ws_.async_write(asio::buffer(queue_.front()), beast::bind_front_handler(&ChatSession::OnWrite, shared_from_this()));
}

void ChatSession::OnWrite(beast::error_code ec, std::size_t) {
  writing_ = false;
  if (ec) return;
  queue_.pop_front();
  if (!queue_.empty()) {
    DoWrite();
  } else if (close_code_ && outgoing_.empty()) {  // a close waited for the replies; they are out
    auto code = *close_code_;
    close_code_.reset();
    ws_.async_close(code, [self = shared_from_this()](beast::error_code) {});
    return;
  }
  if (read_paused_ && !closing_ && queue_.size() + outgoing_.size() <= context_.config.limits.max_queued_frames / 2) {
    read_paused_ = false;  // the client is taking its replies again
    stall_timer_.cancel();
    DoRead();
  }
}

void ChatSession::CloseWith(websocket::close_code code) {
  if (!ws_.is_open() || (closing_ && !close_code_)) return;
  closing_ = true;
  read_paused_ = false;
  stall_timer_.cancel();
  if (code == websocket::close_code::internal_error) outgoing_.clear();  // those replies are not durable
  if (writing_ || !queue_.empty() || !outgoing_.empty()) {
    close_code_ = code;  // sent by OnWrite once every queued and held reply is out
    return;
  }
  close_code_.reset();
  ws_.async_close(code, [self = shared_from_this()](beast::error_code) {});
}

}  // namespace backcheck::server
