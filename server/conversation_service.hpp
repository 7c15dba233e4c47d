// The conversation logic the transports share: start or resume a conversation, handle a message,
// end one. WebSocket sessions and POST /v1/messages both call this; it knows nothing of sockets.
//
// Each message runs as Load -> Respond -> Commit (server/store/store.hpp): the conversation's
// state comes from a bounded cache of active conversations, else from the store; the engine
// answers; the turn is committed only if nobody else (another instance) committed one first,
// otherwise the service reloads and runs the message again. The result is handed to `done` only
// once the store has committed it, so no client ever sees a reply the store could lose. When the
// store cannot take the turn, `done` gets store_unavailable instead, with the safety guidance
// when the message raised a red flag; the store keeps that escalation and retries it.
//
// Within this process the messages of one conversation run one at a time, in arrival order,
// whatever connection they come from: a per-conversation queue, not a lock held across the
// commit. Across processes the store's compare-and-set on seq keeps the order.
//
// Thread-safe. Callbacks run on a store thread, on the Post executor, or inline before the call
// returns (the memory store); they must not block. The engine runs only on the Post executor
// or the calling thread, never on a store's thread.
#pragma once

#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "dialog/engine.hpp"
#include "server/config.hpp"
#include "server/metrics.hpp"
#include "server/protocol.hpp"
#include "server/store/store.hpp"

namespace backcheck::server {

// A new conversation id: 128 bits from the kernel's CSPRNG, base64url without padding (22 chars).
std::string NewConversationId();

// How ConversationService::Start treats the conversation `resume` names.
struct StartOptions {
  bool create_if_missing = false;  // a keyed conversation: made on first use (Started::resumed false)
  bool history = true;             // read its history (a start no client sees needs none)
};

class ConversationService {
 public:
  // Runs `work` soon on a thread that may run the engine (the server's io_context). Empty: inline.
  using Post = std::function<void(std::function<void()> work)>;

  // `engine` must outlive the service (or the SetEngine that replaces it).
  ConversationService(const dialog::Engine& engine, ConversationStore& store, const Limits& limits, Metrics& metrics,
                      Post post = {});
  ConversationService(std::shared_ptr<const dialog::Engine> engine, ConversationStore& store, const Limits& limits,
                      Metrics& metrics, Post post = {});
  ~ConversationService();

  struct Started {
    std::string conversation;
    bool resumed = false;
    dialog::ConversationState state;
    HistoryPage history;  // the last --max-history-turns turns (before `history_before`)
  };
  using StartDone = std::function<void(std::variant<Started, Error>)>;
  // A new conversation, or the one `resume` names (unknown_conversation if there is none,
  // unless `options.create_if_missing`). Returns the conversation's id at once (a new one's
  // before it is committed: messages for it queue behind its creation), or "" when refused at
  // once (`done` has the error).
  std::string Start(const std::optional<std::string>& resume, std::optional<std::uint64_t> history_before,
                    StartDone done, StartOptions options = {});

  // The id of the conversation a bridge names by `key`: an HMAC of (bridge, key) under the
  // store's KeySecret, so every instance and every restart finds the same conversation, a key
  // of one bridge never names another's, and nobody can derive an id from a key.
  std::string KeyedId(std::string_view bridge, std::string_view key) const;

  struct Replied {
    std::string conversation;
    std::uint64_t seq = 0;
    dialog::Reply reply;
    bool duplicate = false;  // the message's client id was answered before: this is that reply
  };
  using MessageDone = std::function<void(std::variant<Replied, Error>)>;
  // text_too_long when `text` has more characters than the limit.
  std::optional<Error> CheckText(std::string_view text) const;
  // Handles one user message (text_too_long, unknown_conversation, rate_limited when too many
  // messages of this conversation wait, store_unavailable). With `client_id`, a message whose id
  // this conversation has answered before is not run again: `done` gets the stored reply, marked
  // duplicate.
  void Message(const std::string& conversation, std::string text, Clock::time_point received, MessageDone done,
               std::optional<std::string> client_id = std::nullopt);

  using EndDone = std::function<void(std::optional<Error>)>;
  // Ends a conversation: it stays resumable until it expires. One that never had a message is
  // deleted, so it stops counting against --max-conversations.
  void End(const std::string& conversation, EndDone done);

  // The safety guidance for `text` without any conversation: what an error frame carries when a
  // message that raised a red flag cannot be handled (a full table, a limit, a store failure).
  std::optional<Guidance> Guide(std::string_view text) const;
  // `error` with the guidance for `text` added, when it raises a red flag.
  Error WithGuidance(Error error, std::string_view text) const;

  static Error UnknownConversation() {
    return Error{ErrorCode::kUnknownConversation, "no conversation with this id (it may have expired)"};
  }
  // The error for a change the store could not keep: store_unavailable, with `guidance`.
  Error StoreFailure(std::optional<Guidance> guidance) const;

  // The engine now. Each job takes one snapshot and runs on it from start to end (its commit
  // included), so a message never sees two knowledge bases; an engine replaced by SetEngine is
  // freed when the last job holding it ends.
  std::shared_ptr<const dialog::Engine> engine() const;
  // Replaces the engine (a knowledge-base reload): jobs that start from now on use `engine`.
  void SetEngine(std::shared_ptr<const dialog::Engine> engine);
  // The welcome and the banners every `started` frame carries, from the knowledge data.
  StartedTexts started_texts() const;
  // The number `started` offers to call (--emergency-number); set before the first start.
  void SetEmergencyNumber(std::string number);
  // --review: keep the messages the assistant could not answer (a fallback, or retrieval only:
  // server/store/review.hpp) with their turns; entries older than `keep` are purged (on or off:
  // what an earlier run kept still expires). Set before the first message.
  void SetReview(bool on, std::chrono::seconds keep) {
    review_ = on;
    review_keep_ = keep;
  }

  std::size_t Count() const { return store_.Count(); }
  std::size_t Cached() const;  // conversations in the active cache
  bool Full() const { return store_.Count() >= limits_.max_conversations; }
  bool StoreHealthy() const { return store_.Healthy(); }
  // Purges conversations idle past the expiry (or the empty-conversation expiry) from the store
  // and idle entries from the cache.
  void PurgeExpired();

  // ---- people in the loop: an operator claims, joins, writes to the person, leaves ----
  struct OperatorAction {
    enum class Kind { kClaim, kJoin, kSay, kLeave } kind = Kind::kClaim;
    std::string operator_name;
    std::string text;  // kSay
  };
  struct Operated {
    std::string conversation;
    std::uint64_t seq = 0;            // kSay: the operator's turn; otherwise the conversation's
    dialog::ConversationState state;  // after the action
    ConversationEvent event;          // what it tells everyone (also sent to the other instances)
  };
  using OperateDone = std::function<void(std::variant<Operated, Error>)>;
  // Runs in the conversation's queue like a message, and commits like one: a claim or a join
  // (which claims too) names the operator in the state; a join is refused while another operator
  // has joined, say and leave while this one has not. unknown_conversation, store_unavailable.
  void Operate(const std::string& conversation, OperatorAction action, OperateDone done);

  // A person's message, committed, in a conversation an operator has joined: for that operator.
  // The same event (without the text) goes to the other instances with the commit.
  struct HandedOffMessage {
    ConversationEvent event;  // kHandedOff
    std::string text;
  };
  // Set once, before the first message; called on the store's or an I/O thread.
  void OnHandedOffMessage(std::function<void(const HandedOffMessage&)> listener) {
    handed_off_ = std::move(listener);
  }

 private:
  struct Job;
  struct Active;
  using ActivePtr = std::shared_ptr<Active>;

  // Queues `job` on the conversation's queue and runs it when its turn comes; false (and the
  // job untouched) when too many jobs of this conversation wait already.
  bool Enqueue(const std::string& id, std::unique_ptr<Job>& job);
  void Drive(const ActivePtr& a);         // runs the next job of `a`, loading it first if needed
  void Continue(const ActivePtr& a);      // after a job: the next one, through Post
  void OnLoaded(const ActivePtr& a, Loaded loaded);
  void RunMessage(const ActivePtr& a, Job& job, const StoredConversation& stored);
  void RunEnd(const ActivePtr& a, Job& job, const StoredConversation& stored);
  void RunResume(const ActivePtr& a, Job& job, const StoredConversation& stored);
  void RunOperate(const ActivePtr& a, Job& job, const StoredConversation& stored);
  void FindDuplicate(const ActivePtr& a, Job& job);  // before a message with a client id runs
  void CreateFor(const ActivePtr& a, Job& job);      // a keyed start found no conversation
  void Fail(Job& job, const Error& error);
  void Finish(const ActivePtr& a);        // the current job is answered: drop it, go on
  void Retry(const ActivePtr& a);         // the commit conflicted: reload and run it again
  void Remember(const ActivePtr& a, StoredConversation stored);
  void EvictIdleLocked();
  std::string CreateConversation(StartDone done);

  mutable std::mutex engine_mutex_;  // guards engine_ and started_texts_
  std::shared_ptr<const dialog::Engine> engine_;
  ConversationStore& store_;
  const Limits& limits_;
  Metrics& metrics_;
  Post post_;
  bool review_ = false;
  std::chrono::seconds review_keep_{30 * 24 * 3600};
  StartedTexts started_texts_;
  std::function<void(const HandedOffMessage&)> handed_off_;

  mutable std::mutex mutex_;  // guards active_, lru_ and every Active's fields
  std::unordered_map<std::string, ActivePtr> active_;
  std::list<ActivePtr> lru_;  // most recently used first
};

}  // namespace backcheck::server
