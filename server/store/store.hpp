// The store seam: where conversations and escalations live, for one server process or many.
//
// The service runs each message as Load -> Respond -> Commit. `Load` gives a conversation's
// state and seq; `Commit` writes one change only if the conversation's stored seq is still the
// one the change was computed on, and reports a conflict otherwise (another instance, or an
// earlier turn of ours that failed, came first): the caller reloads and runs the message again.
// Correctness rests on that compare-and-set in the store, never on a lock's lifetime.
//
// Every call is asynchronous: its callback runs later on a store thread, or inline before the
// call returns (the memory store). Callbacks must not block. All calls are thread-safe.
//
// Implementations: MemoryStore (memory_store.hpp, lost on restart), SqliteStore
// (sqlite_store.hpp, the embedded default, one process), PostgresStore (postgres_store.hpp,
// several instances on one database).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "dialog/conversation.hpp"
#include "server/protocol.hpp"
#include "server/store/review.hpp"

namespace backcheck::server {

using Clock = std::chrono::steady_clock;

std::int64_t UnixMillis();

// `n` bytes from the kernel's CSPRNG (getrandom); throws std::runtime_error if it fails.
std::string RandomBytes(std::size_t n);
// `bytes` as lowercase hex, two digits a byte (tokens, session ids, digests).
std::string HexOf(std::string_view bytes);

// An escalation event (SPEC section 5): stored durably with the turn that raised it, then pushed
// to every operator of every instance.
struct EscalationEvent {
  std::int64_t id = 0;  // assigned by the store when it is made durable
  std::string conversation;
  knowledge::Urgency level = knowledge::Urgency::kNone;
  std::vector<std::string> flags;
  std::string text;        // the message that raised the urgency: what an operator needs
  std::int64_t at_ms = 0;  // Unix time, milliseconds
};
std::string EscalationJson(const EscalationEvent& event);
// A stored JSON array of flag ids (escalations.flags); anything unreadable in it is skipped,
// never thrown.
std::vector<std::string> FlagsFromJson(const std::string& json);

// Which turns a history page holds: seqs are 1, 2, 3... with no gap (a message and its reply
// share one), so the last `turns` turns before `before` are the seqs [first, end), and earlier
// ones exist when first > 1.
struct HistoryRange {
  std::uint64_t first = 1;
  std::uint64_t end = 1;
  bool more = false;
};
HistoryRange RangeOf(std::uint64_t last_seq, std::optional<std::uint64_t> before, std::size_t turns);
// Adds a turn's entries to a history page: the person's message (none when empty: an operator
// wrote unprompted) and the reply (none when empty: the message went to an operator), by
// `author` (an operator's name) or the assistant. `reply_first`: for pages built newest first.
// `extras`: the assistant's reply's quick replies and sources (TurnRecord::reply_extras).
void AddTurn(std::vector<HistoryEntry>& entries, std::uint64_t seq, std::string user_text, std::string reply_text,
             std::string author, bool reply_first = false, std::string extras = {});

// What an operator did to a conversation, kept durably (issue 16's audit): who, what, when.
// Kept like the escalations: a purge of the conversation leaves them.
struct AuditEntry {
  std::string conversation;
  std::string action;       // "claim", "join", "say", "leave" or "ack"
  std::string by;           // the operator's name; "" for the unnamed one
  std::uint64_t seq = 0;    // the conversation's seq then (say: the operator's turn)
  std::int64_t at_ms = 0;   // Unix time, milliseconds
  std::int64_t escalation = 0;  // ack: the escalation acknowledged
  std::string note;             // ack: the operator's note, if any
};
// What a commit tells the other instances on the same store (issue 16), which may hold the
// connections it concerns: the person's, or that of the operator who joined. No text travels
// with it: whoever needs one reads it from the turn (seq). PostgreSQL sends it in the commit's
// transaction (NOTIFY, so only once durable); a store that one process uses has nobody to tell.
struct ConversationEvent {
  enum class Kind { kHandedOff, kClaimed, kJoined, kSaid, kLeft } kind = Kind::kHandedOff;
  std::string conversation;
  std::string operator_name;  // kHandedOff: who has joined; otherwise who acted
  std::uint64_t seq = 0;      // kHandedOff: the person's turn; kSaid: the operator's
  knowledge::Urgency urgency = knowledge::Urgency::kNone;  // kHandedOff: the conversation's, after it
  bool escalated = false;     // kHandedOff: the message made an escalation
};
// `event` as JSON, naming the instance that sent it; and back (nullopt: not one of ours).
std::string ConversationEventJson(const ConversationEvent& event, std::string_view instance);
struct ReceivedEvent {
  std::string instance;
  ConversationEvent event;
};
std::optional<ReceivedEvent> ParseConversationEvent(std::string_view json);

// How many of a conversation's newest audit entries a transcript shows.
inline constexpr std::size_t kMaxAuditEntries = 500;

// What the store holds of one conversation besides its turns.
struct StoredConversation {
  std::string id;
  dialog::ConversationState state;
  std::uint64_t seq = 0;             // of the last turn; 0: no message yet
  std::int64_t last_active_ms = 0;   // Unix ms
  // Bumped by every change to the conversation, a state-only one too (a join keeps the seq):
  // a store shared by several instances compares it with TurnRecord::expected_revision.
  std::uint64_t revision = 0;
};

// One change to a conversation: a new conversation, a turn, a state change (an end), or the
// deletion of one that never had a message.
struct TurnRecord {
  enum class Kind { kCreate, kUpdate, kDelete } kind = Kind::kUpdate;
  std::string conversation;
  // An update applies only if the stored seq is `expected_seq`; a create only if the id is new.
  std::uint64_t expected_seq = 0;
  // And only if the stored revision is this one (StoredConversation::revision as loaded), when
  // set: the service always sets it. A store that only one process writes may ignore it.
  std::optional<std::uint64_t> expected_revision;
  std::uint64_t seq = 0;  // the conversation's seq after the change
  bool has_turn = false;  // a message and its reply (seq), or only a state change
  std::string user_text;     // empty on a turn an operator wrote (no message of the person's)
  std::string reply_text;    // empty when the message went to an operator
  std::string reply_author;  // the operator who wrote the reply; empty: the assistant
  std::string reply_extras;  // the assistant's quick replies and sources (ReplyExtrasJson); may be empty
  dialog::ConversationState state;  // the engine's state after the change
  std::int64_t at_ms = 0;           // Unix time, milliseconds
  std::optional<EscalationEvent> escalation;  // inserted in the same transaction as the turn
  std::optional<AuditEntry> audit;             // an operator's action: in the same transaction too
  std::optional<ConversationEvent> event;      // for the other instances, once committed
  // The client's id of the message (empty: none) and the reply as JSON (dialog::Reply's
  // to_json), kept with the turn so that a repeat of the id gets this reply again (FindReply).
  std::string client_id;
  std::string reply_json;
  // --review: the message kept for review (server/store/review.hpp), in the same transaction.
  std::optional<ReviewEntry> review;
};

// A turn found by the client's id of its message.
struct StoredReply {
  enum class Status { kFound, kNotFound, kUnavailable } status = Status::kNotFound;
  std::uint64_t seq = 0;
  std::string reply_json;  // as committed in TurnRecord::reply_json
};

enum class CommitResult {
  kCommitted,    // durable
  kConflict,     // the stored seq was not the expected one (or the id exists): nothing written
  kUnavailable,  // the store cannot write now (a full disk, the database away): nothing written
};

struct Loaded {
  enum class Status { kFound, kNotFound, kUnavailable } status = Status::kNotFound;
  StoredConversation conversation;  // when found
};

// The escalation log: every escalation made durable on any instance, and who acknowledged it.
// Escalations are appended by ConversationStore::Commit, in the transaction of their turn.
class EscalationLog {
 public:
  virtual ~EscalationLog() = default;

  // Unacknowledged escalations with an id above `after_id`, oldest first, at most `limit`: an
  // operator pages through a long backlog. Answered from this instance's copy of the log, which
  // the store keeps current (on another instance's escalation or ack too); never blocks.
  virtual std::vector<EscalationEvent> Unacknowledged(std::int64_t after_id = 0,
                                                      std::size_t limit = SIZE_MAX) const = 0;
  // How many are unacknowledged (this instance's copy, like Unacknowledged).
  virtual std::size_t UnacknowledgedCount() const { return Unacknowledged().size(); }
  // Marks an escalation acknowledged by `by` (an operator's name; "" when unnamed) with the
  // operator's `note` (may be empty), durably, with an "ack" AuditEntry for its conversation in
  // the same transaction; then calls `done(found)`: false when no unacknowledged escalation has
  // this id (nothing written).
  virtual void Acknowledge(std::int64_t id, std::string by, std::string note, std::function<void(bool found)> done) = 0;

  struct Listener {
    // A durable escalation this instance had not seen: made here or on another instance, or
    // retried until durable after its turn failed. Once per id.
    std::function<void(const EscalationEvent&)> escalation;
    // An escalation acknowledged here or on another instance (`event` as this instance held it:
    // its conversation is told, server/notices.hpp). Once per id.
    std::function<void(const EscalationEvent& event, const std::string& by)> acknowledged;
  };
  // Set once, before the first Commit.
  virtual void Subscribe(Listener listener) = 0;
};

// A store that cannot be opened (corrupt, a newer or foreign schema, not writable, unreachable at
// start-up): the server refuses to start with this message.
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Raises a loaded conversation's urgency to one of its stored escalations'
// (dialog::Engine::Escalate): an escalation can be durable when the turn that raised it is not
// (its write failed and the escalation was retried alone), and urgency never goes down.
using RaiseUrgency = std::function<void(dialog::ConversationState& state, const EscalationEvent& escalation)>;

class ConversationStore {
 public:
  virtual ~ConversationStore() = default;

  virtual void Load(std::string id, std::function<void(Loaded)> done) = 0;
  // Makes `record` durable (or not: see CommitResult), then calls `done` with the escalation as
  // stored (with its id) when it was committed. Commits of one caller are applied in call order.
  using CommitDone = std::function<void(CommitResult, const std::optional<EscalationEvent>& escalation)>;
  virtual void Commit(TurnRecord record, CommitDone done) = 0;
  // The last `turns` turns with a seq below `before` (all, when absent), in seq order; nullopt
  // when the store cannot read now.
  virtual void History(std::string id, std::optional<std::uint64_t> before, std::size_t turns,
                       std::function<void(std::optional<HistoryPage>)> done) = 0;
  // The newest kMaxAuditEntries audit entries of conversation `id`, oldest first; nullopt when
  // the store cannot read now.
  virtual void Audit(std::string id, std::function<void(std::optional<std::vector<AuditEntry>>)> done) = 0;
  // The turn of conversation `id` whose message had the client id `client_id`, if any.
  virtual void FindReply(std::string id, std::string client_id, std::function<void(StoredReply)> done) = 0;
  // Deletes conversations idle since before `cutoff_ms`, and those that never had a message idle
  // since before `empty_cutoff_ms` (Unix ms), with their turns, and the review entries
  // (TurnRecord::review) kept since before `review_cutoff_ms`. In the background.
  virtual void Purge(std::int64_t cutoff_ms, std::int64_t empty_cutoff_ms, std::int64_t review_cutoff_ms) = 0;

  // About how many conversations are stored (for --max-conversations and /metrics).
  virtual std::size_t Count() const = 0;
  // False while writes fail; a store that can fail probes by itself and turns healthy again.
  virtual bool Healthy() const { return true; }

  virtual EscalationLog& escalations() = 0;

  // Calls `listener` with each TurnRecord::event another instance committed, on a store thread
  // (it must not block). Set once, before the first Commit. Stores that one process uses never
  // call it. Live only: an event sent while this instance could not hear is not repeated (the
  // turns and the audit are the record; a transcript read shows them).
  virtual void OnOtherInstances(std::function<void(const ConversationEvent&)> listener) { (void)listener; }

  // 32 random bytes made when the store was first created and kept with it: every instance on
  // one store reads the same ones. The ids of keyed conversations are derived from them
  // (ConversationService::KeyedId), so they are found again after a restart, yet cannot be
  // guessed from a key.
  virtual const std::string& KeySecret() const = 0;

  // Where the store may run its completions: it hands `post` the completions of a whole batch
  // at once (one wake-up of an I/O thread, not one per turn, and the continuations allocate
  // and free on the I/O thread). Set once, before the first call; without it (and in stores
  // that ignore it) completions run on the store's thread. `post` must run the work exactly
  // once, or, when it can no longer, destroy it without running it.
  using Post = std::function<void(std::function<void()> work)>;
  virtual void CompleteOn(Post post) { (void)post; }
};

}  // namespace backcheck::server
