#include "server/conversation_service.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <tuple>

namespace backcheck::server {

namespace {

// 16 bytes as a conversation id: base64url without padding (22 characters).
std::string IdOf(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string id;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (char c : bytes.substr(0, 16)) {
    const auto b = static_cast<unsigned char>(c);
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      id.push_back(kAlphabet[(buffer >> bits) & 0x3F]);
    }
  }
  if (bits > 0) id.push_back(kAlphabet[(buffer << (6 - bits)) & 0x3F]);
  return id;
}

}  // namespace

std::string NewConversationId() { return IdOf(RandomBytes(16)); }

std::string ConversationService::KeyedId(std::string_view bridge, std::string_view key) const {
  // A bridge name has no NUL (BridgeTokens), so (bridge, key) -> message is one to one.
  std::string message;
  message.reserve(bridge.size() + 1 + key.size());
  message.append(bridge).push_back('\0');
  message.append(key);
  const std::string& secret = store_.KeySecret();
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &length) ||
      length < 16) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  return IdOf(std::string_view(reinterpret_cast<const char*>(mac), 16));
}

namespace {

// The byte offset of code point `n` of `text` (its size when it has fewer).
std::size_t CodePointOffset(std::string_view text, std::size_t n) {
  std::size_t seen = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80 && seen++ == n) return i;
  }
  return text.size();
}

// A reply that reports a red flag or asks about one carries safety guidance; others none.
std::optional<Guidance> GuidanceOf(const dialog::Reply& reply) {
  if (reply.red_flags.empty() && reply.possible_flags.empty()) return std::nullopt;
  return Guidance{reply.text, reply.urgency, reply.red_flags, reply.possible_flags};
}

// Whether a message makes an escalation event (stored, pushed to operators, paged): it raised
// the urgency, or it affirmed a flag the conversation did not have, at any level. An operator
// who is already looking at an emergency must still hear of a new symptom (issue 16), though
// the reply does not say `escalated` (the level did not rise, SPEC section 4).
bool Escalates(const dialog::ConversationState& before, const dialog::Reply& reply) {
  if (reply.escalated) return true;
  return std::any_of(reply.red_flags.begin(), reply.red_flags.end(), [&](const std::string& flag) {
    return std::find(before.flags.begin(), before.flags.end(), flag) == before.flags.end();
  });
}

// How often one message is run again after a conflict before the client is told to retry
// (store_unavailable). A conflict means another instance wrote this conversation in between. When
// two instances take a burst of one conversation at once, the one that just committed needs one
// round trip for its next turn and the one that lost needs two (reload, commit), so the loser can
// lose for as long as the other's burst lasts: the bound is generous (a test sends 25 messages
// to each of two instances at once; none is refused).
constexpr int kMaxAttempts = 64;

}  // namespace

// One request waiting in a conversation's queue.
struct ConversationService::Job {
  enum class Kind { kMessage, kEnd, kResume, kCreate, kOperate } kind = Kind::kMessage;
  std::string text;  // kMessage
  Clock::time_point received;
  std::optional<std::uint64_t> history_before;  // kResume
  StartOptions start_options;                   // kResume
  std::optional<std::string> client_id;         // kMessage: the client's id of the message
  bool id_checked = false;  // kMessage: no earlier turn has client_id (as of the state loaded)
  OperatorAction action;  // kOperate
  MessageDone on_message;
  EndDone on_end;
  StartDone on_start;
  OperateDone on_operate;
  int attempts = 0;
  bool reloaded = false;  // kResume: the state was read from the store for it
};

// A conversation the service is using or used lately. Guarded by the service's mutex.
struct ConversationService::Active {
  std::string id;
  std::optional<StoredConversation> stored;  // as committed; nullopt until loaded
  bool stale = false;                         // another instance wrote it: read it again before use
  std::unique_ptr<Job> current;               // the job being run
  std::deque<std::unique_ptr<Job>> waiting;   // the jobs behind it, in arrival order
  bool running = false;                        // a job is being run (the queue has an owner)
  std::list<ActivePtr>::iterator lru;
};

namespace {
// The welcome and the banners of `engine`'s knowledge data, with `emergency_number`.
StartedTexts TextsOf(const dialog::Engine& engine, std::string emergency_number) {
  StartedTexts texts;
  dialog::Engine::Welcome welcome = engine.WelcomeReply();
  texts.welcome_text = std::move(welcome.text);
  texts.welcome_quick_replies = std::move(welcome.quick_replies);
  for (const auto& g : engine.kb().red_flags.guidance) {
    if (g.level != knowledge::Urgency::kNone && !g.banner.empty()) texts.banners.push_back({g.level, g.banner});
  }
  texts.emergency_number = std::move(emergency_number);
  return texts;
}
}  // namespace

ConversationService::ConversationService(const dialog::Engine& engine, ConversationStore& store,
                                         const Limits& limits, Metrics& metrics, Post post)
    : ConversationService(std::shared_ptr<const dialog::Engine>(std::shared_ptr<const dialog::Engine>(), &engine),
                          store, limits, metrics, std::move(post)) {}  // not owned: the caller's

ConversationService::ConversationService(std::shared_ptr<const dialog::Engine> engine, ConversationStore& store,
                                         const Limits& limits, Metrics& metrics, Post post)
    : engine_(std::move(engine)), store_(store), limits_(limits), metrics_(metrics), post_(std::move(post)) {
  started_texts_ = TextsOf(*engine_, "");
}

std::shared_ptr<const dialog::Engine> ConversationService::engine() const {
  std::lock_guard lock(engine_mutex_);
  return engine_;
}

void ConversationService::SetEngine(std::shared_ptr<const dialog::Engine> engine) {
  StartedTexts texts = TextsOf(*engine, started_texts().emergency_number);
  std::lock_guard lock(engine_mutex_);
  engine_.swap(engine);
  started_texts_ = std::move(texts);
}  // the old engine is freed here, or by the last job still holding it

StartedTexts ConversationService::started_texts() const {
  std::lock_guard lock(engine_mutex_);
  return started_texts_;
}

void ConversationService::SetEmergencyNumber(std::string number) {
  std::lock_guard lock(engine_mutex_);
  started_texts_.emergency_number = std::move(number);
}

ConversationService::~ConversationService() = default;

std::optional<Guidance> ConversationService::Guide(std::string_view text) const {
  // The detector runs on a fresh conversation: no state is needed to know "I can't breathe" needs
  // the emergency guidance. A text over the length limit (bounded by the frame or body size) is
  // read in windows of the allowed length that overlap, so that a red flag at its end, or across
  // a window's edge, is not missed; the most urgent window's guidance wins. Each window costs
  // what one allowed message costs.
  const std::size_t window = std::max<std::size_t>(limits_.max_text_chars, 1);
  const std::size_t step = window - window / 4;
  std::optional<Guidance> most_urgent;
  const auto engine = this->engine();
  for (std::size_t first = 0;; first += step) {
    const std::size_t begin = CodePointOffset(text, first);
    const std::size_t end = CodePointOffset(text, first + window);
    const dialog::Turn turn = engine->Respond(engine->Start(), text.substr(begin, end - begin));
    auto guidance = GuidanceOf(turn.reply);
    const bool more_urgent = guidance && (!most_urgent || guidance->urgency > most_urgent->urgency ||
                                          (guidance->urgency == most_urgent->urgency &&
                                           most_urgent->red_flags.empty() && !guidance->red_flags.empty()));
    if (more_urgent) {
      most_urgent = std::move(guidance);
    }
    if (end == text.size()) return most_urgent;
  }
}

Error ConversationService::WithGuidance(Error error, std::string_view text) const {
  if (!error.guidance) error.guidance = Guide(text);
  return error;
}

Error ConversationService::StoreFailure(std::optional<Guidance> guidance) const {
  return Error{ErrorCode::kStoreUnavailable,
               "the server cannot store this conversation right now; nothing was kept, please try again shortly",
               std::move(guidance)};
}

std::optional<Error> ConversationService::CheckText(std::string_view text) const {
  if (CountCodePoints(text) <= limits_.max_text_chars) return std::nullopt;
  return Error{ErrorCode::kTextTooLong,
               "a message may have at most " + std::to_string(limits_.max_text_chars) + " characters"};
}

std::size_t ConversationService::Cached() const {
  std::lock_guard lock(mutex_);
  return active_.size();
}

// ---- starting -------------------------------------------------------------------------------

std::string ConversationService::Start(const std::optional<std::string>& resume, std::optional<std::uint64_t> before,
                                       StartDone done, StartOptions options) {
  if (!resume) return CreateConversation(std::move(done));
  if (options.create_if_missing && Full()) {
    // Before queueing: a keyed start that would create is refused at once, like any new one.
    std::lock_guard lock(mutex_);
    if (!active_.contains(*resume)) {
      done(Error{ErrorCode::kTooManyConversations, "the server holds as many conversations as it may; try again later"});
      return "";
    }
  }
  auto job = std::make_unique<Job>();
  job->kind = Job::Kind::kResume;
  job->history_before = before;
  job->start_options = options;
  job->on_start = std::move(done);
  if (!Enqueue(*resume, job)) {
    job->on_start(Error{ErrorCode::kRateLimited, "too many requests wait for this conversation; try again shortly"});
    return "";
  }
  return *resume;
}

// The creation is the new conversation's first job: messages sent before it is committed wait
// behind it, and fail with it.
std::string ConversationService::CreateConversation(StartDone done) {
  if (Full()) {
    done(Error{ErrorCode::kTooManyConversations, "the server holds as many conversations as it may; try again later"});
    return "";
  }
  TurnRecord record;
  record.kind = TurnRecord::Kind::kCreate;
  record.conversation = NewConversationId();
  record.state = engine()->Start();
  record.at_ms = UnixMillis();
  StoredConversation stored{record.conversation, record.state, 0, record.at_ms};
  auto a = std::make_shared<Active>();
  a->id = record.conversation;
  a->running = true;
  a->current = std::make_unique<Job>();
  a->current->kind = Job::Kind::kCreate;
  a->current->on_start = std::move(done);
  {
    std::lock_guard lock(mutex_);
    lru_.push_front(a);
    a->lru = lru_.begin();
    active_.emplace(a->id, a);  // 128 random bits: never taken
    EvictIdleLocked();
  }
  store_.Commit(std::move(record), [this, a, stored = std::move(stored)](CommitResult result, const auto&) mutable {
    Job& job = *a->current;
    if (result != CommitResult::kCommitted) {
      job.on_start(StoreFailure(std::nullopt));  // what waits behind it finds no conversation
      return Finish(a);
    }
    Started started{stored.id, false, stored.state, {}};
    Remember(a, std::move(stored));
    job.on_start(std::move(started));
    Finish(a);
  });
  return a->id;
}

// ---- the per-conversation queue --------------------------------------------------------------

bool ConversationService::Enqueue(const std::string& id, std::unique_ptr<Job>& job) {
  ActivePtr a;
  {
    std::lock_guard lock(mutex_);
    auto it = active_.find(id);
    if (it == active_.end()) {
      a = std::make_shared<Active>();
      a->id = id;
      lru_.push_front(a);
      a->lru = lru_.begin();
      active_.emplace(id, a);
    } else {
      a = it->second;
      lru_.splice(lru_.begin(), lru_, a->lru);
    }
    if (a->running) {
      if (a->waiting.size() >= limits_.max_pending_per_conversation) return false;
      a->waiting.push_back(std::move(job));
      return true;
    }
    a->running = true;  // before evicting: a running entry is never evicted
    a->current = std::move(job);
    EvictIdleLocked();
  }
  Drive(a);
  return true;
}

void ConversationService::Drive(const ActivePtr& a) {
  std::optional<StoredConversation> stored;
  Job* job = nullptr;
  {
    std::lock_guard lock(mutex_);
    job = a->current.get();
    // A resume reads the state afresh: another instance may have taken a turn (and raised the
    // urgency) since this cache last saw the conversation. A message needs no such read: a
    // stale state makes its commit conflict, and it is answered again on the fresh one.
    const bool reload = !a->stored || a->stale || (job->kind == Job::Kind::kResume && !job->reloaded);
    if (!reload) stored = a->stored;
  }
  if (!stored) {
    job->reloaded = true;
    return store_.Load(a->id, [this, a](Loaded loaded) { OnLoaded(a, std::move(loaded)); });
  }
  switch (job->kind) {
    case Job::Kind::kMessage: return RunMessage(a, *job, *stored);
    case Job::Kind::kEnd: return RunEnd(a, *job, *stored);
    case Job::Kind::kResume: return RunResume(a, *job, *stored);
    case Job::Kind::kOperate: return RunOperate(a, *job, *stored);
    case Job::Kind::kCreate: return;  // never queued: it is the first job, run by CreateConversation
  }
}

void ConversationService::OnLoaded(const ActivePtr& a, Loaded loaded) {
  if (loaded.status == Loaded::Status::kFound) {
    {
      std::lock_guard lock(mutex_);
      // Urgency never goes down: a turn that failed to commit raised this cache's urgency, and
      // the store has that escalation only once its retry succeeds.
      if (a->stored && a->stored->state.urgency > loaded.conversation.state.urgency) {
        loaded.conversation.state =
            engine()->Escalate(loaded.conversation.state, a->stored->state.urgency, a->stored->state.flags);
      }
      a->stored = std::move(loaded.conversation);
      a->stale = false;
    }
    return Continue(a);  // loads complete on a store thread: the engine runs elsewhere
  }
  if (loaded.status == Loaded::Status::kUnavailable) {
    Fail(*a->current, StoreFailure(std::nullopt));
    return Finish(a);
  }
  if (a->current->kind == Job::Kind::kResume && a->current->start_options.create_if_missing) {
    return CreateFor(a, *a->current);
  }
  // No such conversation: every request waiting for it gets the same answer.
  std::deque<std::unique_ptr<Job>> waiting;
  {
    std::lock_guard lock(mutex_);
    waiting.swap(a->waiting);
    a->stored.reset();  // gone (expired, or purged by another instance): Finish drops it
  }
  Fail(*a->current, UnknownConversation());
  for (auto& job : waiting) Fail(*job, UnknownConversation());
  Finish(a);
}

void ConversationService::Fail(Job& job, const Error& error) {
  switch (job.kind) {
    case Job::Kind::kMessage: return job.on_message(WithGuidance(error, job.text));
    case Job::Kind::kEnd: return job.on_end(error);
    case Job::Kind::kOperate: return job.on_operate(error);
    case Job::Kind::kResume:
    case Job::Kind::kCreate: return job.on_start(error);
  }
}

void ConversationService::Finish(const ActivePtr& a) {
  {
    std::lock_guard lock(mutex_);
    a->current.reset();
    if (a->waiting.empty()) {
      a->running = false;
      if (!a->stored) {  // unknown or unreadable: nothing worth caching
        if (auto it = active_.find(a->id); it != active_.end() && it->second == a) {
          lru_.erase(a->lru);
          active_.erase(it);
        }
      }
      return;
    }
    a->current = std::move(a->waiting.front());
    a->waiting.pop_front();
  }
  Continue(a);
}

void ConversationService::Continue(const ActivePtr& a) {
  if (!post_) return Drive(a);
  post_([this, a] { Drive(a); });
}

void ConversationService::Retry(const ActivePtr& a) {
  Job& job = *a->current;
  {
    std::lock_guard lock(mutex_);
    a->stale = true;  // somebody else wrote it: read it again
  }
  job.id_checked = false;  // ...and the turn it wrote may have been this very message
  if (++job.attempts >= kMaxAttempts) {
    Fail(job, StoreFailure(std::nullopt));
    return Finish(a);
  }
  Continue(a);
}

void ConversationService::Remember(const ActivePtr& a, StoredConversation stored) {
  std::lock_guard lock(mutex_);
  a->stored = std::move(stored);
}

// ---- the three kinds of job -----------------------------------------------------------------

void ConversationService::Message(const std::string& id, std::string text, Clock::time_point received,
                                  MessageDone done, std::optional<std::string> client_id) {
  if (auto error = CheckText(text)) return done(WithGuidance(std::move(*error), text));
  metrics_.messages_received.fetch_add(1, std::memory_order_relaxed);
  auto job = std::make_unique<Job>();
  job->kind = Job::Kind::kMessage;
  job->text = std::move(text);
  job->received = received;
  job->client_id = std::move(client_id);
  job->on_message = std::move(done);
  if (!Enqueue(id, job)) {
    Fail(*job, Error{ErrorCode::kRateLimited,
                     "too many messages of this conversation wait for an answer; send the next one after a reply"});
  }
}

void ConversationService::FindDuplicate(const ActivePtr& a, Job& job) {
  store_.FindReply(a->id, *job.client_id, [this, a, &job](StoredReply found) {
    if (found.status == StoredReply::Status::kNotFound) {
      job.id_checked = true;
      return Continue(a);  // run it (on the Post executor: this may be a store thread)
    }
    std::optional<dialog::Reply> reply;
    if (found.status == StoredReply::Status::kFound) {
      auto j = nlohmann::json::parse(found.reply_json, nullptr, /*allow_exceptions=*/false);
      try {
        if (!j.is_discarded()) reply = j.get<dialog::Reply>();
      } catch (const std::exception&) {
      }
    }
    if (!reply) {
      Fail(job, StoreFailure(std::nullopt));  // unreadable now: not run again either
      return Finish(a);
    }
    metrics_.messages_duplicate.fetch_add(1, std::memory_order_relaxed);
    job.on_message(Replied{a->id, found.seq, std::move(*reply), true});
    Finish(a);
  });
}

void ConversationService::RunMessage(const ActivePtr& a, Job& job, const StoredConversation& stored) {
  // A repeated client id is answered from the store, before the engine sees the text again.
  if (job.client_id && !job.id_checked) return FindDuplicate(a, job);
  auto engine = this->engine();  // this message runs on one engine, its commit included
  dialog::Turn turn = engine->Respond(stored.state, job.text, dialog::LocalNow());
  TurnRecord record;
  record.conversation = a->id;
  record.expected_seq = stored.seq;
  record.seq = stored.seq + 1;
  record.has_turn = true;
  record.at_ms = UnixMillis();
  record.user_text = job.text;
  record.reply_text = turn.reply.text;
  record.reply_extras = ReplyExtrasJson(turn.reply);
  record.state = turn.state;
  if (job.client_id) {
    record.client_id = *job.client_id;
    record.reply_json = nlohmann::json(turn.reply).dump();
  }
  record.expected_revision = stored.revision;
  if (review_ && (turn.fell_back || turn.retrieval_score)) {
    record.review = ReviewEntry{job.text, record.at_ms, stored.state.state, turn.retrieval_score.value_or(0),
                                turn.reply.intent};
  }
  const bool escalates = Escalates(stored.state, turn.reply);
  if (escalates) {
    record.escalation = EscalationEvent{0, a->id, turn.reply.urgency, turn.reply.red_flags, job.text, record.at_ms};
  }
  std::optional<ConversationEvent> handed_off;
  if (!turn.state.operator_name.empty()) {  // someone has joined: the message is theirs
    handed_off = ConversationEvent{ConversationEvent::Kind::kHandedOff, a->id, turn.state.operator_name, record.seq,
                                   turn.state.urgency, escalates};
    record.event = handed_off;
  }
  StoredConversation after{a->id, std::move(turn.state), record.seq, record.at_ms, stored.revision + 1};
  store_.Commit(std::move(record), [this, a, &job, engine = std::move(engine), after = std::move(after),
                                    reply = std::move(turn.reply),
                                    handed_off = std::move(handed_off), escalates](
                                       CommitResult result, const std::optional<EscalationEvent>& escalation) mutable {
    if (result == CommitResult::kConflict) return Retry(a);
    if (result == CommitResult::kUnavailable) {
      // The store keeps the escalation and retries it; its urgency stays with the conversation
      // (a reload reads it from the stored escalation; the cache is raised now).
      if (escalates) {
        std::lock_guard lock(mutex_);
        if (a->stored) a->stored->state = engine->Escalate(a->stored->state, reply.urgency, reply.red_flags);
      }
      job.on_message(StoreFailure(GuidanceOf(reply)));
      return Finish(a);
    }
    const std::uint64_t seq = after.seq;
    Remember(a, std::move(after));
    metrics_.Reply(metrics_.IntentIndex(reply.intent), Clock::now() - job.received);
    if (escalation) metrics_.Escalation(escalation->level);
    if (handed_off && handed_off_) {
      handed_off_(HandedOffMessage{std::move(*handed_off), job.text});
    }
    job.on_message(Replied{a->id, seq, std::move(reply)});
    Finish(a);
  });
}

void ConversationService::Operate(const std::string& id, OperatorAction action, OperateDone done) {
  auto job = std::make_unique<Job>();
  job->kind = Job::Kind::kOperate;
  job->action = std::move(action);
  job->on_operate = std::move(done);
  if (!Enqueue(id, job)) {
    job->on_operate(Error{ErrorCode::kRateLimited, "too many requests wait for this conversation; try again shortly"});
  }
}

void ConversationService::RunOperate(const ActivePtr& a, Job& job, const StoredConversation& stored) {
  const OperatorAction& act = job.action;
  const dialog::ConversationState& now = stored.state;
  auto refuse = [&](std::string why) {
    job.on_operate(Error{ErrorCode::kBadRequest, std::move(why)});
    Finish(a);
  };
  TurnRecord record;
  record.conversation = a->id;
  record.expected_seq = stored.seq;
  record.expected_revision = stored.revision;
  record.seq = stored.seq;  // a claim, a join or a leave changes the state only
  record.at_ms = UnixMillis();
  record.state = now;
  using Kind = OperatorAction::Kind;
  using Event = ConversationEvent::Kind;
  static constexpr std::tuple<Kind, std::string_view, Event> kAudited[] = {{Kind::kClaim, "claim", Event::kClaimed},
                                                                          {Kind::kJoin, "join", Event::kJoined},
                                                                          {Kind::kSay, "say", Event::kSaid},
                                                                          {Kind::kLeave, "leave", Event::kLeft}};
  for (const auto& [kind, name, event] : kAudited) {
    if (kind != act.kind) continue;
    record.audit = AuditEntry{a->id, std::string(name), act.operator_name, 0, record.at_ms};
    record.event = ConversationEvent{event, a->id, act.operator_name};
  }
  switch (act.kind) {
    case Kind::kClaim: record.state.claimed_by = act.operator_name; break;
    case Kind::kJoin:
      if (!now.operator_name.empty() && now.operator_name != act.operator_name) {
        return refuse(now.operator_name + " has joined this conversation; they must leave it first");
      }
      record.state = engine()->Join(now, act.operator_name);
      record.state.claimed_by = act.operator_name;
      break;
    case Kind::kLeave:
      if (now.operator_name != act.operator_name) return refuse("you have not joined this conversation");
      record.state = engine()->Leave(now);
      break;
    case Kind::kSay:
      if (now.operator_name != act.operator_name) return refuse("join the conversation before writing to the person");
      record.has_turn = true;
      record.seq = stored.seq + 1;
      record.reply_text = act.text;
      record.reply_author = act.operator_name;
      break;
  }
  record.audit->seq = record.seq;
  record.event->seq = record.seq;
  record.event->urgency = record.state.urgency;
  ConversationEvent event = *record.event;
  StoredConversation after{a->id, record.state, record.seq, record.at_ms, stored.revision + 1};
  store_.Commit(std::move(record), [this, a, &job, after = std::move(after), event = std::move(event)](
                                       CommitResult result, const auto&) mutable {
    if (result == CommitResult::kConflict) return Retry(a);
    if (result == CommitResult::kUnavailable) {
      job.on_operate(StoreFailure(std::nullopt));
      return Finish(a);
    }
    Operated operated{a->id, after.seq, after.state, std::move(event)};
    Remember(a, std::move(after));
    job.on_operate(std::move(operated));
    Finish(a);
  });
}

void ConversationService::End(const std::string& id, EndDone done) {
  auto job = std::make_unique<Job>();
  job->kind = Job::Kind::kEnd;
  job->on_end = std::move(done);
  if (!Enqueue(id, job)) {
    job->on_end(Error{ErrorCode::kRateLimited, "too many requests wait for this conversation; try again shortly"});
  }
}

void ConversationService::RunEnd(const ActivePtr& a, Job& job, const StoredConversation& stored) {
  TurnRecord record;
  record.conversation = a->id;
  record.expected_seq = stored.seq;
  record.expected_revision = stored.revision;
  record.seq = stored.seq;
  record.at_ms = UnixMillis();
  // One that never had a message has nothing to resume: it is deleted, freeing its place.
  const bool erase = stored.seq == 0;
  record.kind = erase ? TurnRecord::Kind::kDelete : TurnRecord::Kind::kUpdate;
  record.state = engine()->End(stored.state);
  StoredConversation after{a->id, record.state, stored.seq, record.at_ms, stored.revision + 1};
  store_.Commit(std::move(record), [this, a, &job, erase, after = std::move(after)](CommitResult result,
                                                                                   const auto&) mutable {
    if (result == CommitResult::kConflict) return Retry(a);
    if (result == CommitResult::kUnavailable) {
      job.on_end(StoreFailure(std::nullopt));
      return Finish(a);
    }
    if (erase) {
      std::lock_guard lock(mutex_);
      a->stored.reset();  // gone: Finish drops it from the cache
    } else {
      Remember(a, std::move(after));
    }
    job.on_end(std::nullopt);
    Finish(a);
  });
}

void ConversationService::CreateFor(const ActivePtr& a, Job& job) {
  TurnRecord record;
  record.kind = TurnRecord::Kind::kCreate;
  record.conversation = a->id;
  record.state = engine()->Start();
  record.at_ms = UnixMillis();
  StoredConversation stored{a->id, record.state, 0, record.at_ms};
  store_.Commit(std::move(record), [this, a, &job, stored = std::move(stored)](CommitResult result, const auto&) mutable {
    if (result == CommitResult::kConflict) return Retry(a);  // made elsewhere just now: load that one
    if (result == CommitResult::kUnavailable) {
      job.on_start(StoreFailure(std::nullopt));
      return Finish(a);
    }
    Started started{stored.id, false, stored.state, {}};
    Remember(a, std::move(stored));
    job.on_start(std::move(started));
    Finish(a);
  });
}

void ConversationService::RunResume(const ActivePtr& a, Job& job, const StoredConversation& stored) {
  if (!job.start_options.history) {
    job.on_start(Started{a->id, true, stored.state, {}});
    return Finish(a);
  }
  store_.History(a->id, job.history_before, limits_.max_history_turns,
                 [this, a, &job, state = stored.state](std::optional<HistoryPage> page) mutable {
                   if (!page) {
                     job.on_start(StoreFailure(std::nullopt));
                   } else {
                     job.on_start(Started{a->id, true, std::move(state), std::move(*page)});
                   }
                   Finish(a);
                 });
}

// ---- the cache --------------------------------------------------------------------------------

void ConversationService::EvictIdleLocked() {
  // From the least recently used end: an entry with a job running or waiting stays, whatever
  // the bound (it is evicted once idle). The store holds everything an evicted one had.
  auto it = lru_.end();
  while (active_.size() > limits_.max_cached_conversations && it != lru_.begin()) {
    --it;
    if ((*it)->running) continue;
    active_.erase((*it)->id);
    it = lru_.erase(it);
  }
}

void ConversationService::PurgeExpired() {
  const std::int64_t now = UnixMillis();
  const auto ms = [](std::chrono::seconds s) { return std::chrono::duration_cast<std::chrono::milliseconds>(s).count(); };
  const std::int64_t cutoff = now - ms(limits_.conversation_expiry);
  const std::int64_t empty_cutoff = now - ms(limits_.empty_conversation_expiry);
  {
    std::lock_guard lock(mutex_);
    for (auto it = lru_.begin(); it != lru_.end();) {
      const Active& a = **it;
      const bool expired = a.stored && (a.stored->last_active_ms < cutoff ||
                                        (a.stored->seq == 0 && a.stored->last_active_ms < empty_cutoff));
      if (!a.running && expired) {
        active_.erase(a.id);
        it = lru_.erase(it);
      } else {
        ++it;
      }
    }
  }
  store_.Purge(cutoff, empty_cutoff, now - ms(review_keep_));
}

}  // namespace backcheck::server
