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
  // A message is read in pieces: first at most kFirstReadBytes, then the rest. Beast sets aside
  // the buffer space for a read before any byte arrives, so a whole read would hold 1.5 KiB per
  // waiting connection; most messages fit in the first piece. The message size limit
  // (read_message_max) still applies to the whole message.
  const std::size_t limit = buffer_.size() == 0 ? kFirstReadBytes : context_.config.limits.max_frame_bytes;
  ws_.async_read_some(buffer_, limit, beast::bind_front_handler(&ChatSession::OnRead, shared_from_this()));
}

void ChatSession::OnRead(beast::error_code ec, std::size_t) {
  // Frames over the size limit (1009) and invalid UTF-8 (1007) fail the read: Beast has sent
  // the close frame. Any error ends the session.
  if (ec) return;
  if (!ws_.is_message_done()) return DoRead();
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
  if (buffer_.capacity() > kFirstReadBytes) buffer_.shrink_to_fit();  // a big message's space goes back
  if (closing_) return;
  if (QueuedFrames() >= context_.config.limits.max_queued_frames) return PauseReading();
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
  const auto ticket = Hold();
  auto result = context_.service.Start(start.resume, SettleWhenDurable(ticket));
  if (auto* error = std::get_if<Error>(&result)) return FailSlot(ticket, std::move(*error), ref);
  auto& started = std::get<ConversationService::Started>(result);
  if (!start.resume) conversations_.push_back(started.conversation);
  Fill(ticket, StartedJson(started.conversation, started.resumed, started.state, started.history));
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
  const auto ticket = Hold();
  auto result = context_.service.Message(conversation, message.text, received, SettleWhenDurable(ticket));
  if (auto* error = std::get_if<Error>(&result)) return FailSlot(ticket, std::move(*error), ref);
  auto& replied = std::get<ConversationService::Replied>(result);
  Fill(ticket, ReplyJson(replied.conversation, replied.seq, ref, replied.reply));
}

void ChatSession::HandleEnd(const EndFrame& end, const std::optional<std::string>& ref) {
  const auto ticket = Hold();
  if (auto error = context_.service.End(end.conversation, SettleWhenDurable(ticket))) {
    return FailSlot(ticket, std::move(*error), ref);
  }
  std::erase(conversations_, end.conversation);
  Fill(ticket, EndedJson(end.conversation));
}

std::uint64_t ChatSession::Hold() {
  outgoing_.emplace_back();
  return front_ticket_ + outgoing_.size() - 1;
}

ChatSession::Outgoing* ChatSession::Find(std::uint64_t ticket) {
  if (ticket < front_ticket_ || ticket - front_ticket_ >= outgoing_.size()) return nullptr;
  return &outgoing_[ticket - front_ticket_];
}

std::function<void(bool)> ChatSession::SettleWhenDurable(std::uint64_t ticket) {
  return [self = shared_from_this(), ticket](bool ok) {
    // Inline (memory store, or nothing to write): we are inside the service call on this strand,
    // and settling now spares a trip through the strand's queue. The frame is filled in after
    // the call returns, and Fill sends it.
    if (self->ws_.get_executor().running_in_this_thread()) return self->Settle(ticket, ok);
    asio::post(self->ws_.get_executor(), [self, ticket, ok] { self->Settle(ticket, ok); });
  };
}

void ChatSession::Settle(std::uint64_t ticket, bool ok) {
  if (!ok) {
    // The store could not keep this turn: never claim it was handled. The client may resume.
    return CloseWith(websocket::close_code::internal_error);
  }
  if (auto* slot = Find(ticket)) {
    slot->durable = true;
    Pump();
  }
}

void ChatSession::Fill(std::uint64_t ticket, std::string frame) {
  if (auto* slot = Find(ticket)) {
    slot->frame = std::move(frame);
    slot->filled = true;
    Pump();
  }
}

void ChatSession::Pump() {
  while (!outgoing_.empty() && outgoing_.front().filled && outgoing_.front().durable) {
    std::string frame = std::move(outgoing_.front().frame);
    outgoing_.pop_front();
    ++front_ticket_;
    Send(std::move(frame));
  }
}

void ChatSession::FailSlot(std::uint64_t ticket, Error error, const std::optional<std::string>& ref) {
  context_.metrics.ErrorSent(error.code);
  if (auto* slot = Find(ticket)) slot->durable = true;  // nothing to wait for
  Fill(ticket, ErrorJson(error, ref));
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
  // The frame being written lives outside the queue, which may move its items as it grows.
  in_flight_ = std::move(queue_.front());
  queue_.pop_front();
  ws_.async_write(asio::buffer(in_flight_), beast::bind_front_handler(&ChatSession::OnWrite, shared_from_this()));
}

void ChatSession::OnWrite(beast::error_code ec, std::size_t) {
  writing_ = false;
  if (ec) return;
  std::string().swap(in_flight_);  // an idle connection keeps no frame-sized buffer
  if (!queue_.empty()) {
    DoWrite();
  } else if (close_code_ && outgoing_.empty()) {  // a close waited for the replies; they are out
    auto code = *close_code_;
    close_code_.reset();
    ws_.async_close(code, [self = shared_from_this()](beast::error_code) {});
    return;
  }
  if (read_paused_ && !closing_ && QueuedFrames() <= context_.config.limits.max_queued_frames / 2) {
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
  if (code == websocket::close_code::internal_error) {  // those replies are not durable
    front_ticket_ += outgoing_.size();
    outgoing_.clear();
  }
  if (writing_ || !queue_.empty() || !outgoing_.empty()) {
    close_code_ = code;  // sent by OnWrite once every queued and held reply is out
    return;
  }
  close_code_.reset();
  ws_.async_close(code, [self = shared_from_this()](beast::error_code) {});
}

}  // namespace backcheck::server
