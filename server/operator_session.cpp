#include "server/operator_session.hpp"

#include "server/json_writer.hpp"
#include "server/request_checks.hpp"

namespace backcheck::server {

OperatorSession::OperatorSession(Socket&& socket, ServerContext& context, std::string name)
    : ws_(std::move(socket)), context_(context), name_(std::move(name)) {}

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
  // Register first, then page the backlog: an escalation is in the store's backlog before it is
  // published, so one published while paging is found by the paging, and one published after the
  // last page arrives live; none can fall between the two.
  context_.operators.Add(weak_from_this());
  AtBoundary(context_.metrics.handler_exceptions, [&] { NextPage(); }, [&] { beast::close_socket(ws_.next_layer()); });
  DoRead();
}

void OperatorSession::NextPage() {
  const auto page = context_.store.escalations().Unacknowledged(paged_to_, kPageSize);
  for (const auto& event : page) {
    paged_to_ = event.id;
    if (!Remember(event.id)) continue;  // went out live while we were behind
    Queue(std::make_shared<const std::string>(EscalationJson(event)));
  }
  if (page.size() < kPageSize) paging_ = false;  // caught up: from now on escalations arrive live
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
  AtBoundary(context_.metrics.handler_exceptions, [&] { ReadFrame(); }, [&] { beast::close_socket(ws_.next_layer()); });
}

void OperatorSession::ReadFrame() {
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
  auto parsed = ParseOperatorFrame(text);
  if (parsed.error) {
    const std::string* conversation = parsed.conversation ? &*parsed.conversation : nullptr;
    Send(0, std::make_shared<const std::string>(ErrorJson(*parsed.error, parsed.ref, conversation)));
    return;
  }
  if (parsed.frame->kind != OperatorFrame::Kind::kAck) return Act(*parsed.frame);
  const std::int64_t ack = parsed.frame->ack;
  // Every operator of every instance hears of the ack through the escalation log's listener.
  // Its error echoes the ref; the conversation is not known when no such escalation is open.
  context_.store.escalations().Acknowledge(ack, name_, parsed.frame->note,
                                           [self = shared_from_this(), ack, ref = parsed.frame->ref](bool found) {
    if (found) return;
    auto frame = ErrorJson(Error{ErrorCode::kBadRequest, "no unacknowledged escalation has id " + std::to_string(ack)},
                           ref);
    self->Deliver(0, std::make_shared<const std::string>(std::move(frame)));
  });
}

void OperatorSession::Act(const OperatorFrame& frame) {
  using Kind = OperatorFrame::Kind;
  using Action = ConversationService::OperatorAction;
  static constexpr std::pair<Kind, Action::Kind> kActions[] = {
      {Kind::kClaim, Action::Kind::kClaim}, {Kind::kJoin, Action::Kind::kJoin},
      {Kind::kSay, Action::Kind::kSay}, {Kind::kLeave, Action::Kind::kLeave}};
  Action action;
  for (const auto& [from, to] : kActions) {
    if (from == frame.kind) action.kind = to;
  }
  action.operator_name = name_;
  action.text = frame.text;
  const auto kind = action.kind;
  context_.service.Operate(
      frame.conversation, std::move(action),
      [self = shared_from_this(), kind, text = frame.text, ref = frame.ref, conversation = frame.conversation](auto result) {
        if (auto* error = std::get_if<Error>(&result)) {  // to this operator: the ref and the conversation echoed
          return self->Deliver(0, std::make_shared<const std::string>(ErrorJson(*error, ref, &conversation)));
        }
        self->Announce(kind, std::get<ConversationService::Operated>(result), text, ref);
      });
}

// Tells every operator what happened, and the person what they need to know, here; the other
// instances hear of it from the store (the event went with the commit). The ref is the writer's
// own: only `said` carries it, never what every operator is told.
void OperatorSession::Announce(ConversationService::OperatorAction::Kind kind,
                               const ConversationService::Operated& done, const std::string& text,
                               const std::optional<std::string>& ref) {
  if (kind == ConversationService::OperatorAction::Kind::kSay) {  // to the writer; nobody else
    JsonObject said(done.conversation.size() + name_.size() + text.size() + (ref ? ref->size() : 0) + 112);
    said.String("type", "said")
        .String("conversation", done.conversation)
        .String("operator", name_)
        .Int("seq", static_cast<std::int64_t>(done.seq))
        .String("text", text);
    if (ref) said.String("ref", *ref);
    Deliver(0, std::make_shared<const std::string>(said.Done()));
  }
  context_.handoff.Announce(done.event, text);
}

void OperatorSession::Send(std::int64_t id, std::shared_ptr<const std::string> frame) {
  if (id == 0) return Queue(std::move(frame));
  // A live escalation. While paging it waits in the store's backlog; after, it is new unless
  // the paging or an earlier live delivery queued it already.
  // While paging, one above the pages so far waits in the store's backlog for a later page. One
  // at or below them was added to the backlog after its page was read (ids need not reach the
  // backlog in order: a batch, another instance), so no page will carry it: it goes now.
  if (sent_.count(id) || (paging_ && id > paged_to_)) return;
  if (queue_.size() >= kLiveHighWater && id > paged_to_) {  // behind: let the backlog carry the rest, in pages
    paging_ = true;
    return;
  }
  Remember(id);
  Queue(std::move(frame));
}

bool OperatorSession::Remember(std::int64_t id) {
  if (!sent_.insert(id).second) return false;
  // Only recent ids can come twice (a page and its live event are close in time); the oldest
  // are forgotten so the set stays bounded however long the operator stays.
  if (sent_.size() > kRememberedIds) sent_.erase(sent_.begin());
  return true;
}

void OperatorSession::Queue(std::shared_ptr<const std::string> frame) {
  if (!ws_.is_open()) return;
  if (queue_.size() >= kMaxQueuedFrames) {
    beast::close_socket(ws_.next_layer());  // not reading at all; unacknowledged ones come back on reconnect
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
  if (paging_ && queue_.size() < kPageSize / 2) {  // the operator is reading: the next page
    AtBoundary(context_.metrics.handler_exceptions, [&] { NextPage(); }, [&] { beast::close_socket(ws_.next_layer()); });
  }
  if (!queue_.empty() && !writing_) DoWrite();
}

}  // namespace backcheck::server
