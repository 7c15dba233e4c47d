// Which connections hold which conversations, for frames that answer no request: a `notice` (an
// operator has seen the person's escalation) goes to every connection that holds the
// conversation on this instance; every instance hears of an acknowledgement (EscalationLog's
// listener) and tells its own connections. Thread-safe; Notify may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace backcheck::server {

// A frame pushed to a conversation; the connection adds what only it knows (the bridge's key).
struct PushedNotice {
  enum class Frame { kNotice, kHandoff, kOperatorMessage } frame = Frame::kNotice;
  std::string notice;         // kNotice: the kind, e.g. "escalation_acknowledged"; kHandoff: "joined" / "left"
  std::string text;           // kNotice: what to tell the person (knowledge data); kOperatorMessage: the message
  std::string operator_name;  // kHandoff, kOperatorMessage
  std::uint64_t seq = 0;      // kOperatorMessage: its turn

  static PushedNotice Notice(std::string kind, std::string text) {
    PushedNotice n;
    n.notice = std::move(kind);
    n.text = std::move(text);
    return n;
  }
};

class PushTarget {
 public:
  virtual ~PushTarget() = default;
  // Called on the notifying thread: the target hands it to its own executor.
  virtual void Push(const std::string& conversation, std::shared_ptr<const PushedNotice> notice) = 0;
};

class ConversationConnections {
 public:
  // `target` holds `conversation` from now on (once per pair: a second Attach is ignored).
  void Attach(const std::string& conversation, const std::shared_ptr<PushTarget>& target);
  void Detach(const std::string& conversation, const PushTarget* target);
  // Pushes `notice` to every target holding `conversation`; how many were told.
  std::size_t Notify(const std::string& conversation, std::shared_ptr<const PushedNotice> notice);
  std::size_t Size() const;  // conversations with at least one target
  bool Holds(const std::string& conversation) const;  // whether any target holds it

 private:
  using Entry = std::pair<const PushTarget*, std::weak_ptr<PushTarget>>;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::vector<Entry>> targets_;
};

}  // namespace backcheck::server
