// One operator WebSocket (/v1/operator), authenticated before the upgrade. On connect it sends
// every unacknowledged escalation, oldest first, then new ones as they become durable; an
// {"type":"ack","id":N} marks one handled, durably, and every operator is told {"type":"acked"}.
// A frame's `ref` is echoed on the answers to this operator alone (an error, `said`).
//
// The backlog is streamed with flow control, however long it is: a page of kPageSize is read
// from the store when the previous one has been written, so memory holds a page, not the
// backlog, and no operator is ever dropped because many escalations wait. While paging (and
// whenever the operator falls behind live events by kLiveHighWater frames) live escalations are
// not queued: they are in the store's backlog, and the paging picks them up in order. Each
// escalation reaches an operator once.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <set>

#include "server/beast.hpp"
#include "server/operator_hub.hpp"
#include "server/server_context.hpp"

namespace backcheck::server {

class OperatorSession : public Closeable,
                        public OperatorConnection,
                        public std::enable_shared_from_this<OperatorSession> {
 public:
  // `name`: the operator, as authenticated at the upgrade (acks are made in that name).
  OperatorSession(Socket&& socket, ServerContext& context, std::string name);
  ~OperatorSession() override;

  void Run(http::request<http::string_body> upgrade);
  void Shutdown() override;
  void Deliver(std::int64_t id, std::shared_ptr<const std::string> frame) override;
  const std::string& OperatorName() const override { return name_; }

 private:
  static constexpr std::size_t kPageSize = 64;
  static constexpr std::size_t kLiveHighWater = 256;
  static constexpr std::size_t kRememberedIds = 4096;  // of sent_
  // Other frames (acked notices, errors) are small and few; an operator that lets this many pile
  // up unread is not reading at all.
  static constexpr std::size_t kMaxQueuedFrames = 4096;

  void OnAccept(beast::error_code ec);
  void DoRead();
  void OnRead(beast::error_code ec, std::size_t bytes);
  void ReadFrame();
  void Handle(std::string_view frame);
  void Act(const OperatorFrame& frame);  // claim, join, say, leave
  void Announce(ConversationService::OperatorAction::Kind kind, const ConversationService::Operated& done,
                const std::string& text, const std::optional<std::string>& ref);
  void Send(std::int64_t id, std::shared_ptr<const std::string> frame);
  void Queue(std::shared_ptr<const std::string> frame);
  bool Remember(std::int64_t id);  // false when it was queued already
  void NextPage();  // queues the next page of the backlog, or goes live when it is done
  void DoWrite();
  void OnWrite(beast::error_code ec, std::size_t bytes);

  WebSocket ws_;
  beast::flat_buffer buffer_;
  ServerContext& context_;
  const std::string name_;
  std::deque<std::shared_ptr<const std::string>> queue_;
  bool writing_ = false;
  bool accepted_ = false;
  bool close_after_write_ = false;  // a shutdown came while a write was in flight
  bool paging_ = true;            // streaming the backlog: live escalations wait in the store
  std::int64_t paged_to_ = 0;     // every unacknowledged escalation up to this id has been queued
  std::set<std::int64_t> sent_;   // ids queued to this operator lately, by a page or live (never twice)
  std::uint64_t registry_id_ = 0;
};


}  // namespace backcheck::server
