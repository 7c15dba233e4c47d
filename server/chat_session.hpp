// One chat WebSocket (/v1/chat): protocol v1 frames in, replies out, several conversations on one
// socket. As in Beast's advanced_server: everything runs on the connection's strand, one read
// and one write are outstanding at a time, and outgoing frames wait in a bounded queue. When the
// queue is full the session stops reading (backpressure: a fast sender is slowed to the pace its
// replies are taken), and a client whose full queue makes no progress for the send timeout is
// disconnected rather than buffered forever.
//
// Frames leave in the order their requests were read. A reply is held until the store has made
// its turn durable; frames after it (errors, other replies) wait behind it. If the store fails,
// the reply's place gets a store_unavailable error instead (with the safety guidance when the
// message raised a red flag), and the connection stays open.
//
// Every handler runs inside AtBoundary: an exception closes this connection with 1011 and is
// counted; it never reaches the threads other connections share.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/beast.hpp"
#include "server/conversation_connections.hpp"
#include "server/fifo.hpp"
#include "server/protocol.hpp"
#include "server/rate_limiter.hpp"
#include "server/server_context.hpp"

namespace backcheck::server {

class ChatSession : public Closeable, public PushTarget, public std::enable_shared_from_this<ChatSession> {
 public:
  // Takes over an accepted socket whose HTTP upgrade request has been read. The caller has
  // reserved a connection slot (ServerContext::TryOpenConnection); the session releases it.
  // `address`: the client address (ClientAddress), which has a connection reserved in
  // context.addresses; the session releases it.
  // `bridge`: the bridge the upgrade authenticated (BridgeTokens), if any: its limits are then
  // per conversation (--bridge-rate) and its conversations many.
  ChatSession(Socket&& socket, ServerContext& context, std::string address, std::optional<std::string> bridge = {});
  ~ChatSession() override;

  void Run(http::request<http::string_body> upgrade);
  void Shutdown() override;
  // A `notice` for a conversation this connection holds (from any thread; sent on the strand,
  // dropped when the outgoing queue is full or the conversation is no longer held).
  void Push(const std::string& conversation, std::shared_ptr<const PushedNotice> notice) override;

 private:
  static constexpr std::size_t kFirstReadBytes = 512;

  void OnAccept(beast::error_code ec);
  void DoRead();
  void OnRead(beast::error_code ec, std::size_t bytes);
  void ReadFrame();
  void Handle(std::string_view frame, Clock::time_point received);
  // Puts the id of the conversation a `key` names in the frame; false when this connection may
  // not use keys (it is not a bridge's).
  bool ResolveKey(ClientFrame& frame) const;
  // Starts or resumes a conversation and queues its `started` frame (or the service's error,
  // with the guidance for `message`, the text that made the start, if any); or returns why not.
  std::optional<Error> HandleStart(const StartFrame& start, const std::optional<std::string>& ref,
                                   std::string_view message = {});
  void HandleMessage(const MessageFrame& message, const std::optional<std::string>& ref, Clock::time_point received);
  void HandleEnd(const EndFrame& end, const std::optional<std::string>& ref);
  // Whether the frame is within its rate: an anonymous connection's and its address's, or, on a
  // bridge connection, the rate of the conversation it is about; and the server's.
  // nullptr: within every rate; otherwise the limit it is over (its flag's name, for the log).
  const char* OverRate(const ParseResult& parsed, Clock::time_point received);
  TokenBucket& BridgeBucketFor(const ParseResult& parsed);
  bool Holds(const std::string& conversation) const;
  void Remember(const std::string& conversation);
  void Forget(const std::string& conversation);
  void SendNotice(const std::string& conversation, const PushedNotice& notice);
  const std::string* KeyOf(const std::string& conversation) const;  // the bridge's key, if it used one
  // too_many_conversations when this connection holds as many as it may.
  std::optional<Error> ConnectionFull() const;
  // Attaches a conversation to this connection, within the per-connection limit.
  std::optional<Error> Attach(const std::string& conversation);
  void ArmIdleTimer(Clock::duration after);
  void StartSettled();  // a start was answered: a read deferred behind it goes ahead
  void OnException();
  // An outgoing frame, in request order. It is sent once it is filled in, which for a reply is
  // once the store has committed its turn; frames behind it wait. Slots are numbered by tickets,
  // so a completion can name its slot without holding a pointer into the queue.
  struct Outgoing {
    std::string frame;
    bool filled = false;
  };
  std::uint64_t Hold();  // a new slot at the back; returns its ticket
  Outgoing* Find(std::uint64_t ticket);  // nullptr once the slot is gone (sent, or dropped on close)
  // A service completion that runs `handle(result)` on this connection's strand: the service
  // calls it from a store thread or another I/O thread. `T` is what success carries
  // (std::monostate for End, whose completion carries only an optional error).
  template <typename T, typename F>
  auto OnStrand(F handle);
  void Fill(std::uint64_t ticket, std::string frame);
  void Pump();  // sends the filled, durable frames at the front of `outgoing_`
  // Fills the slot with an error frame and settles it: a failed request answers in its place.
  // `limit`: the flag of the limit that refused it, when known (logged; the code is logged anyway).
  void FailSlot(std::uint64_t ticket, Error error, const std::optional<std::string>& ref, const char* limit = nullptr);
  void SendError(ErrorCode code, std::string message, const std::optional<std::string>& ref);
  void SendError(Error error, const std::optional<std::string>& ref, const char* limit = nullptr);
  // Why the connection ends, for its connection_closed log line: the first cause given wins.
  void SetCloseCause(const char* cause) {
    if (!close_cause_) close_cause_ = cause;
  }
  void Send(std::string frame);
  void DoWrite();
  // Frames waiting or being written: what the bound on the queue counts.
  std::size_t QueuedFrames() const { return queue_.size() + outgoing_.size() + (writing_ ? 1 : 0); }
  bool QueueFull() const;
  void OnWrite(beast::error_code ec, std::size_t bytes);
  void CloseWith(websocket::close_code code);
  void PauseReading();
  void StopTimers();
  void Drop();

  WebSocket ws_;
  beast::flat_buffer buffer_;
  ServerContext& context_;
  const std::string address_;
  TokenBucket bucket_;
  Fifo<Outgoing> outgoing_;  // held replies and the frames behind them
  std::uint64_t front_ticket_ = 0;  // the ticket of outgoing_.front()
  Fifo<std::string> queue_;  // ready to write, behind in_flight_
  std::string in_flight_;    // the frame being written while writing_
  std::size_t queued_bytes_ = 0;  // of queue_ and in_flight_: bounded by --max-queued-bytes
  bool writing_ = false;
  bool closing_ = false;
  bool read_paused_ = false;             // the queue is full; OnWrite resumes reading
  bool awaiting_start_ = false;          // a start's `started` frame is not filled in yet
  bool read_deferred_ = false;           // ...and the next read waits for it (StartSettled)
  Timer stall_timer_;                    // runs while reading is paused
  Timer idle_timer_;                     // closes a socket that sends no frame (pings do not count)
  Clock::time_point last_frame_;
  std::optional<websocket::close_code> close_code_;  // a close to send once the write finishes
  std::vector<std::string> conversations_;           // attached to this connection
  const std::optional<std::string> bridge_;
  // A bridge connection's rate per conversation it holds; bucket_ is then for the rest (starts).
  std::unordered_map<std::string, TokenBucket> conversation_buckets_;
  // A bridge's keys of the conversations it named by key (echoed in frames it did not ask for).
  std::unordered_map<std::string, std::string> keys_;
  std::uint64_t registry_id_ = 0;
  const char* close_cause_ = nullptr;  // see SetCloseCause
  bool opened_ = false;                // the handshake completed (connection_opened was logged)
  Clock::time_point opened_at_;
  std::uint64_t limited_ = 0;          // frames refused by a limit, for connection_closed
};

}  // namespace backcheck::server
