#include "server/chat_session.hpp"

#include <algorithm>

#include "server/json_writer.hpp"
#include "server/log.hpp"

namespace backcheck::server {
namespace {

// What a service completion carries, as one variant: End's optional error becomes monostate or
// the error.
template <typename T, typename R>
std::variant<T, Error> AsResult(R&& result) {
  if constexpr (std::is_same_v<std::decay_t<R>, std::optional<Error>>) {
    if (result) return std::move(*result);
    return T{};
  } else {
    return std::forward<R>(result);
  }
}

// How a read error ends a connection, in its connection_closed line.
const char* ReadErrorCause(beast::error_code ec) {
  if (ec == websocket::error::closed) return "client_closed";
  if (ec == websocket::error::message_too_big || ec == websocket::error::buffer_overflow) return "frame_too_big";
  if (ec == websocket::error::bad_frame_payload) return "invalid_utf8";
  if (ec == beast::error::timeout) return "idle_timeout";  // no pong: the client is gone
  if (ec.category() == beast::error_code(websocket::error::closed).category()) return "protocol_error";
  return "connection_lost";
}

// A refusal by a limit is a warning (at most 10 lines a second, whatever the flood); any other
// error frame is for debugging. Only the code and the limit's flag: never the frame.
void LogRefusal(ErrorCode code, const char* limit, bool bridge) {
  if (code != ErrorCode::kRateLimited && code != ErrorCode::kTextTooLong && code != ErrorCode::kTooManyConversations) {
    BACKCHECK_LOG(kDebug, "error_sent").Str("code", ErrorCodeName(code));
    return;
  }
  if (!limit && code == ErrorCode::kTextTooLong) limit = "max_text_chars";
  BACKCHECK_LOG_EVERY(kWarn, "limit_hit", 10).Str("code", ErrorCodeName(code)).OptStr("limit", limit)
      .Str("kind", bridge ? "bridge" : "chat");
}

}  // namespace

template <typename T, typename F>
auto ChatSession::OnStrand(F handle) {
  return [self = shared_from_this(), handle = std::move(handle)](auto result) {
    asio::post(self->ws_.get_executor(), [self, handle, value = AsResult<T>(std::move(result))]() mutable {
      AtBoundary(self->context_.metrics.handler_exceptions, [&] { handle(std::move(value)); },
                 [&] { self->OnException(); });
    });
  };
}

ChatSession::ChatSession(Socket&& socket, ServerContext& context, std::string address, std::optional<std::string> bridge)
    : ws_(std::move(socket)),
      context_(context),
      address_(std::move(address)),
      bucket_(bridge ? TokenBucket(context.config.limits.bridge_new_conversations_per_second,
                                   context.config.limits.bridge_new_conversations_per_second)
                     : TokenBucket(context.config.limits.messages_per_second, context.config.limits.burst)),
      stall_timer_(ws_.get_executor()),
      idle_timer_(ws_.get_executor()),
      bridge_(std::move(bridge)) {}

ChatSession::~ChatSession() {
  if (opened_) {
    const std::string_view cause = close_cause_ ? close_cause_ : "connection_lost";
    const bool expected = cause == "client_closed" || cause == "shutdown" || cause == "connection_lost";
    const auto level = cause == "internal_error" ? log::Level::kError : expected ? log::Level::kDebug : log::Level::kInfo;
    if (log::Enabled(level)) {
      log::Line(level, "connection_closed").Str("kind", bridge_ ? "bridge" : "chat").Str("cause", cause)
          .Double("seconds", std::chrono::duration<double>(Clock::now() - opened_at_).count())
          .Uint("limited", limited_).OptStr("bridge", bridge_ ? bridge_->c_str() : nullptr);
    }
  }
  for (const auto& conversation : conversations_) context_.pushes.Detach(conversation, this);
  context_.sessions.Remove(registry_id_);
  context_.addresses.CloseConnection(address_);
  context_.CloseConnection();
}

void ChatSession::Run(http::request<http::string_body> upgrade) {
  registry_id_ = context_.sessions.Add(weak_from_this());
  ApplyWebSocketLimits(ws_, context_.config.limits);
  ws_.async_accept(upgrade, beast::bind_front_handler(&ChatSession::OnAccept, shared_from_this()));
}

void ChatSession::Shutdown() {
  asio::post(ws_.get_executor(), [self = shared_from_this()] {
    AtBoundary(self->context_.metrics.handler_exceptions, [&] {
          self->SetCloseCause("shutdown");
          self->CloseWith(websocket::close_code::going_away);
        }, [&] { self->OnException(); });
  });
}

void ChatSession::Push(const std::string& conversation, std::shared_ptr<const PushedNotice> notice) {
  asio::post(ws_.get_executor(), [self = shared_from_this(), conversation, notice = std::move(notice)] {
    AtBoundary(self->context_.metrics.handler_exceptions, [&] { self->SendNotice(conversation, *notice); },
               [&] { self->OnException(); });
  });
}

void ChatSession::SendNotice(const std::string& conversation, const PushedNotice& notice) {
  if (closing_ || !Holds(conversation)) return;
  if (QueueFull()) {  // a client not taking its replies: a notice is not worth more memory
    context_.metrics.notices_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  context_.metrics.notices_sent.fetch_add(1, std::memory_order_relaxed);
  const std::string* key = KeyOf(conversation);
  switch (notice.frame) {
    case PushedNotice::Frame::kNotice: return Send(NoticeJson(conversation, key, notice.notice, notice.text));
    case PushedNotice::Frame::kHandoff: return Send(HandoffJson(conversation, key, notice.notice, notice.operator_name));
    case PushedNotice::Frame::kOperatorMessage:
      return Send(OperatorMessageJson(conversation, key, notice.text, notice.operator_name, notice.seq));
  }
}

const std::string* ChatSession::KeyOf(const std::string& conversation) const {
  auto it = keys_.find(conversation);
  return it == keys_.end() ? nullptr : &it->second;
}

void ChatSession::OnException() {
  BACKCHECK_LOG(kError, "handler_exception").Str("where", "chat_connection").Str("closed_with", "1011")
      .Str("metric", "backcheck_handler_exceptions_total");
  SetCloseCause("internal_error");
  CloseWith(websocket::close_code::internal_error);
  if (!closing_) Drop();
}

void ChatSession::OnAccept(beast::error_code ec) {
  if (ec) return;
  if (context_.stopping) return CloseWith(websocket::close_code::going_away);
  last_frame_ = Clock::now();
  opened_ = true;
  opened_at_ = last_frame_;
  BACKCHECK_LOG(kDebug, "connection_opened").Str("kind", bridge_ ? "bridge" : "chat")
      .OptStr("bridge", bridge_ ? bridge_->c_str() : nullptr);
  ArmIdleTimer(context_.config.limits.max_idle_without_message);
  DoRead();
}

// Pings keep a live but silent client connected (the WebSocket idle timeout); this timer closes a
// client that has sent no frame at all for --max-idle-without-message, so sockets that only
// answer pings cannot hold every slot forever. It is re-armed lazily from last_frame_, not on
// every frame.
void ChatSession::ArmIdleTimer(Clock::duration after) {
  idle_timer_.expires_after(after);
  idle_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->closing_) return;
    const auto limit = self->context_.config.limits.max_idle_without_message;
    const auto idle = Clock::now() - self->last_frame_;
    if (idle >= limit) {
      self->SetCloseCause("idle_without_message");
      return self->CloseWith(websocket::close_code::going_away);
    }
    self->ArmIdleTimer(limit - idle);
  });
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
  // the close frame. Any error ends the session, once its timers let go of it.
  if (ec) {
    if (ec != asio::error::operation_aborted) SetCloseCause(ReadErrorCause(ec));
    return StopTimers();
  }
  AtBoundary(context_.metrics.handler_exceptions, [&] { ReadFrame(); }, [&] { OnException(); });
}

void ChatSession::ReadFrame() {
  if (!ws_.is_message_done()) return DoRead();
  if (!ws_.got_text()) {
    SetCloseCause("binary_frame");
    return CloseWith(websocket::close_code::unknown_data);  // 1003
  }
  const auto received = Clock::now();
  last_frame_ = received;
  auto data = buffer_.data();
  // Trace only: the frame as it came, with what the person wrote (README "Logs").
  BACKCHECK_LOG(kTrace, "frame_received").Str("kind", bridge_ ? "bridge" : "chat")
      .Str("frame", TruncateUtf8(std::string_view(static_cast<const char*>(data.data()), data.size()),
                                 log::kTraceFrameBytes));
  Handle(std::string_view(static_cast<const char*>(data.data()), data.size()), received);
  buffer_.consume(buffer_.size());
  if (buffer_.capacity() > kFirstReadBytes) buffer_.shrink_to_fit();  // a big message's space goes back
  if (closing_) return;
  if (QueueFull()) return PauseReading();
  // A `started` frame can be large (a page of history) and its size is known only once the
  // store has read it: one start at a time, so the bound on queued bytes holds for resumes.
  if (awaiting_start_) {
    read_deferred_ = true;
    return;
  }
  DoRead();
}

void ChatSession::StartSettled() {
  awaiting_start_ = false;
  if (read_deferred_ && !closing_ && !read_paused_) {
    read_deferred_ = false;
    DoRead();
  }
}

// A bridge's key becomes the conversation's id here, so that its rate, its limits and its handling
// are those of the conversation it names. Keys are a bridge's: an anonymous client gets false.
bool ChatSession::ResolveKey(ClientFrame& frame) const {
  auto resolve = [&](const std::optional<std::string>& key, auto& id) {
    if (!key) return true;
    if (!bridge_) return false;
    id = context_.service.KeyedId(*bridge_, *key);
    return true;
  };
  return std::visit(
      [&](auto& body) {
        using T = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<T, StartFrame>) return resolve(body.key, body.resume);
        if constexpr (std::is_same_v<T, MessageFrame>) return resolve(body.key, body.conversation);
        if constexpr (std::is_same_v<T, EndFrame>) return resolve(body.key, body.conversation);
      },
      frame.body);
}

void ChatSession::Handle(std::string_view frame, Clock::time_point received) {
  auto parsed = ParseClientFrame(frame);
  const bool key_allowed = !parsed.frame || ResolveKey(*parsed.frame);
  // Limits first. A limited message still gets the safety guidance if it reports a red flag.
  if (const char* limit = OverRate(parsed, received)) {
    Error error{ErrorCode::kRateLimited, "too many messages; slow down"};
    if (parsed.frame) {
      if (auto* m = std::get_if<MessageFrame>(&parsed.frame->body)) error = context_.service.WithGuidance(error, m->text);
    }
    return SendError(std::move(error), parsed.ref, limit);
  }
  if (parsed.error) return SendError(std::move(*parsed.error), parsed.ref);
  const auto& ref = parsed.frame->ref;
  if (!key_allowed) {
    Error error{ErrorCode::kBadRequest, "'key' is for bridge connections (Authorization: Bearer <bridge token>)"};
    if (auto* m = std::get_if<MessageFrame>(&parsed.frame->body)) error = context_.service.WithGuidance(error, m->text);
    return SendError(std::move(error), ref);
  }
  std::visit(
      [&](const auto& body) {
        using T = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<T, StartFrame>) {
          if (auto error = HandleStart(body, ref)) SendError(std::move(*error), ref);
        }
        if constexpr (std::is_same_v<T, MessageFrame>) HandleMessage(body, ref, received);
        if constexpr (std::is_same_v<T, EndFrame>) HandleEnd(body, ref);
      },
      parsed.frame->body);
}

void ChatSession::StopTimers() {
  // A pending wait holds the session alive: without this a closed socket would keep its slot
  // until --max-idle-without-message.
  stall_timer_.cancel();
  idle_timer_.cancel();
}

void ChatSession::PauseReading() {
  read_paused_ = true;
  stall_timer_.expires_after(context_.config.limits.send_timeout);
  stall_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (!ec && self->read_paused_) {  // the client is not taking its replies
      self->SetCloseCause("send_timeout");
      self->Drop();
    }
  });
}

bool ChatSession::QueueFull() const {
  const auto& limits = context_.config.limits;
  return QueuedFrames() >= limits.max_queued_frames || queued_bytes_ >= limits.max_queued_bytes;
}

void ChatSession::Drop() {
  closing_ = true;
  beast::error_code ignored;
  ws_.next_layer().shutdown(tcp::socket::shutdown_both, ignored);
  ws_.next_layer().close(ignored);
}

const char* ChatSession::OverRate(const ParseResult& parsed, Clock::time_point received) {
  if (!bridge_) {
    if (!bucket_.TryTake(received)) return "rate";
    return context_.addresses.TryMessage(address_, received) ? nullptr : "ip_rate";  // or --global-rate
  }
  // A bridge carries many people from one address: its conversations are limited one by one.
  TokenBucket& bucket = BridgeBucketFor(parsed);
  if (!bucket.TryTake(received)) return &bucket == &bucket_ ? "bridge_new_conversations_per_second" : "bridge_rate";
  return context_.addresses.TryGlobalMessage(received) ? nullptr : "global_rate";
}

TokenBucket& ChatSession::BridgeBucketFor(const ParseResult& parsed) {
  const std::string* about = nullptr;
  if (parsed.frame) {
    if (const auto* m = std::get_if<MessageFrame>(&parsed.frame->body)) {
      about = m->conversation ? &*m->conversation : (conversations_.size() == 1 ? &conversations_.front() : nullptr);
    } else if (const auto* s = std::get_if<StartFrame>(&parsed.frame->body); s && s->resume) {
      about = &*s->resume;
    } else if (const auto* e = std::get_if<EndFrame>(&parsed.frame->body); e && !e->conversation.empty()) {
      about = &e->conversation;
    }
  }
  if (about) {
    if (auto it = conversation_buckets_.find(*about); it != conversation_buckets_.end()) return it->second;
  }
  return bucket_;  // new conversations, ones not held yet, frames that do not parse
}

bool ChatSession::Holds(const std::string& conversation) const {
  if (bridge_) return conversation_buckets_.contains(conversation);
  return std::find(conversations_.begin(), conversations_.end(), conversation) != conversations_.end();
}

void ChatSession::Remember(const std::string& conversation) {
  conversations_.push_back(conversation);
  context_.pushes.Attach(conversation, shared_from_this());
  if (bridge_) {
    const auto& limits = context_.config.limits;
    conversation_buckets_.try_emplace(conversation, limits.bridge_messages_per_second, limits.bridge_burst);
  }
}

void ChatSession::Forget(const std::string& conversation) {
  if (std::erase(conversations_, conversation) > 0) context_.pushes.Detach(conversation, this);
  conversation_buckets_.erase(conversation);
  keys_.erase(conversation);
}

std::optional<Error> ChatSession::ConnectionFull() const {
  const auto& limits = context_.config.limits;
  const std::size_t most = bridge_ ? limits.max_conversations_per_bridge_connection : limits.max_conversations_per_connection;
  if (conversations_.size() < most) return std::nullopt;
  return Error{ErrorCode::kTooManyConversations,
               "this connection has " + std::to_string(conversations_.size()) + " conversations, the most it may"};
}

std::optional<Error> ChatSession::Attach(const std::string& conversation) {
  if (Holds(conversation)) return std::nullopt;
  if (auto full = ConnectionFull()) return full;
  Remember(conversation);
  return std::nullopt;
}

std::optional<Error> ChatSession::HandleStart(const StartFrame& start, const std::optional<std::string>& ref,
                                              std::string_view message) {
  if (start.resume) {
    if (auto error = Attach(*start.resume)) return error;
    if (start.key) keys_.try_emplace(*start.resume, *start.key);
  } else {
    if (auto full = ConnectionFull()) return full;
    // A bridge's new conversations are limited by its own bucket (WithinRate), not its address's.
    if (!bridge_ && !context_.addresses.TryNewConversation(address_)) {
      return Error{ErrorCode::kRateLimited, "too many new conversations from your address; try again in a minute"};
    }
  }
  const auto ticket = Hold();
  // A start the client's message made says nothing when its commit fails: the message's own
  // error, which follows, is the answer. Refused at once (a full table), it answers for the
  // message, with the guidance for `message`. Completions run on this strand after this
  // function returns, so `refused` is known by then. A keyed message's start says something
  // only when it made the conversation (its welcome); one that found it says nothing.
  const bool silent = !message.empty();
  auto refused = std::make_shared<bool>(false);
  const StartOptions options{.create_if_missing = start.key.has_value(), .history = !silent};
  const std::string id = context_.service.Start(
      start.resume, start.history_before,
      OnStrand<ConversationService::Started>([this, ticket, ref, silent, refused, resume = start.resume, key = start.key,
                                              text = std::string(message)](auto result) {
        StartSettled();
        if (auto* error = std::get_if<Error>(&result)) {
          if (resume) Forget(*resume);
          if (silent && !*refused) return Fill(ticket, std::string());
          return FailSlot(ticket, silent ? context_.service.WithGuidance(std::move(*error), text) : std::move(*error),
                          ref);
        }
        const auto& started = std::get<ConversationService::Started>(result);
        if (silent && started.resumed) return Fill(ticket, std::string());
        Fill(ticket, StartedJson(started.conversation, started.resumed, started.state, started.history,
                                 context_.service.started_texts(), key));
      }),
      options);
  *refused = id.empty();
  awaiting_start_ = true;
  if (!id.empty() && !start.resume) Remember(id);
  return std::nullopt;
}

void ChatSession::HandleMessage(const MessageFrame& message, const std::optional<std::string>& ref,
                                Clock::time_point received) {
  auto fail = [&](Error error) { SendError(context_.service.WithGuidance(std::move(error), message.text), ref); };
  if (auto error = context_.service.CheckText(message.text)) return fail(std::move(*error));
  std::string conversation;
  bool implicit = false;  // started for this message just now
  if (message.key && !Holds(*message.conversation)) {
    // The first message of a key on this connection: its start finds the conversation, or makes
    // it (and sends its `started`) when the key is new.
    if (auto error = HandleStart(StartFrame{message.conversation, std::nullopt, message.key}, ref, message.text)) {
      return fail(std::move(*error));
    }
    if (!Holds(*message.conversation)) return;  // refused at once, and its error carries the guidance
    conversation = *message.conversation;
    implicit = true;
  } else if (message.conversation) {
    if (auto error = Attach(*message.conversation)) return fail(std::move(*error));
    conversation = *message.conversation;
  } else if (conversations_.size() == 1) {
    conversation = conversations_.front();
  } else if (conversations_.empty()) {
    // A message on a fresh connection starts a conversation.
    if (auto error = HandleStart(StartFrame{}, ref, message.text)) return fail(std::move(*error));
    if (conversations_.empty()) return;  // refused at once, and its error carries the guidance
    conversation = conversations_.front();
    implicit = true;
  } else {
    return fail(Error{ErrorCode::kBadRequest,
                      "'conversation' is required: this connection has " + std::to_string(conversations_.size())});
  }
  const auto ticket = Hold();
  context_.service.Message(
      conversation, message.text, received,
      OnStrand<ConversationService::Replied>([this, ticket, ref, conversation, implicit, key = message.key,
                                              id = message.id](auto result) {
        if (auto* error = std::get_if<Error>(&result)) {
          // Gone (expired, or never there): detach it, so the next message starts a fresh one.
          if (error->code == ErrorCode::kUnknownConversation) {
            Forget(conversation);
            // The one this message just started is gone only if the store failed to create it.
            if (implicit) *error = context_.service.StoreFailure(error->guidance);
          }
          return FailSlot(ticket, std::move(*error), ref);
        }
        const auto& replied = std::get<ConversationService::Replied>(result);
        const ReplyEcho echo{key ? &*key : nullptr, id ? &*id : nullptr, replied.duplicate};
        if (replied.reply.to_operator) {  // an operator has joined: it went to them, nothing is said
          return Fill(ticket, ReceivedJson(replied.conversation, replied.seq, ref, echo));
        }
        Fill(ticket, ReplyJson(replied.conversation, replied.seq, ref, replied.reply, true, echo));
      }),
      message.id);
}

void ChatSession::HandleEnd(const EndFrame& end, const std::optional<std::string>& ref) {
  const auto ticket = Hold();
  Forget(end.conversation);
  context_.service.End(end.conversation, OnStrand<std::monostate>([this, ticket, ref, id = end.conversation,
                                                                   key = end.key](auto result) {
    if (auto* error = std::get_if<Error>(&result)) return FailSlot(ticket, std::move(*error), ref);
    Fill(ticket, EndedJson(id, key));
  }));
}

std::uint64_t ChatSession::Hold() {
  outgoing_.emplace_back();
  return front_ticket_ + outgoing_.size() - 1;
}

ChatSession::Outgoing* ChatSession::Find(std::uint64_t ticket) {
  if (ticket < front_ticket_ || ticket - front_ticket_ >= outgoing_.size()) return nullptr;
  return &outgoing_[ticket - front_ticket_];
}

void ChatSession::Fill(std::uint64_t ticket, std::string frame) {
  if (auto* slot = Find(ticket)) {
    slot->frame = std::move(frame);
    slot->filled = true;
    Pump();
  }
}

void ChatSession::Pump() {
  while (!outgoing_.empty() && outgoing_.front().filled) {
    std::string frame = std::move(outgoing_.front().frame);
    outgoing_.pop_front();
    ++front_ticket_;
    if (!frame.empty()) Send(std::move(frame));  // empty: a slot that settled with nothing to say
  }
}

void ChatSession::FailSlot(std::uint64_t ticket, Error error, const std::optional<std::string>& ref,
                           const char* limit) {
  context_.metrics.ErrorSent(error.code);
  if (error.code == ErrorCode::kRateLimited || error.code == ErrorCode::kTextTooLong ||
      error.code == ErrorCode::kTooManyConversations) {
    ++limited_;
  }
  LogRefusal(error.code, limit, bridge_.has_value());
  Fill(ticket, ErrorJson(error, ref));
}

void ChatSession::SendError(ErrorCode code, std::string message, const std::optional<std::string>& ref) {
  SendError(Error{code, std::move(message)}, ref);
}

void ChatSession::SendError(Error error, const std::optional<std::string>& ref, const char* limit) {
  FailSlot(Hold(), std::move(error), ref, limit);
}

void ChatSession::Send(std::string frame) {
  if (closing_ && !close_code_) return;
  BACKCHECK_LOG(kTrace, "frame_sent").Str("kind", bridge_ ? "bridge" : "chat")
      .Str("frame", TruncateUtf8(frame, log::kTraceFrameBytes));
  // The queue stays bounded: reading pauses once it holds max_queued_frames or max_queued_bytes,
  // and one frame read adds at most two (started + reply), each bounded in size.
  queued_bytes_ += frame.size();
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
  if (ec) {
    if (ec != asio::error::operation_aborted) SetCloseCause("connection_lost");
    return StopTimers();
  }
  AtBoundary(
      context_.metrics.handler_exceptions,
      [&] {
        queued_bytes_ -= std::min(queued_bytes_, in_flight_.size());
        std::string().swap(in_flight_);  // an idle connection keeps no frame-sized buffer
        if (!queue_.empty()) {
          DoWrite();
        } else if (close_code_ && outgoing_.empty()) {  // a close waited for the replies; they are out
          auto code = *close_code_;
          close_code_.reset();
          ws_.async_close(code, [self = shared_from_this()](beast::error_code) {});
          return;
        }
        const auto& limits = context_.config.limits;
        if (read_paused_ && !closing_ && QueuedFrames() <= limits.max_queued_frames / 2 &&
            queued_bytes_ <= limits.max_queued_bytes / 2) {
          read_paused_ = false;  // the client is taking its replies again
          stall_timer_.cancel();
          DoRead();
        }
      },
      [&] { OnException(); });
}

void ChatSession::CloseWith(websocket::close_code code) {
  if (!ws_.is_open() || (closing_ && !close_code_)) return;
  closing_ = true;
  read_paused_ = false;
  StopTimers();
  if (code == websocket::close_code::internal_error) {  // whatever is held is not to be trusted
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
