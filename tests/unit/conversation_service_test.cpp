// The conversation service the WebSocket and HTTP transports share, on the store seam: every
// message runs Load -> Respond -> Commit (server/store/store.hpp). With MemoryStore and no Post
// executor every callback runs inline, before the call returns, so most tests read results from
// locals; ScriptedStore (below) holds or fails commits where a test needs a slow or broken store.
#include <catch2/catch.hpp>
#include <deque>
#include <future>
#include <set>
#include <thread>

#include "server/conversation_service.hpp"
#include "server/rate_limiter.hpp"
#include "server/store/memory_store.hpp"
#include "test_support.hpp"

using namespace backcheck::server;
using backcheck::knowledge::Urgency;

namespace {

using Started = ConversationService::Started;
using Replied = ConversationService::Replied;
using StartResult = std::variant<Started, Error>;
using MessageResult = std::variant<Replied, Error>;

// Runs `call` with a callback and returns what the callback was given; the callback must have
// run before `call` returned (the memory store, no Post executor).
template <typename Result, typename Call>
Result Answer(Call&& call) {
  std::optional<Result> result;
  call([&](Result r) { result = std::move(r); });
  REQUIRE(result);
  return std::move(*result);
}

StartResult Start(ConversationService& service, std::optional<std::string> resume = std::nullopt,
                  std::optional<std::uint64_t> before = std::nullopt) {
  return Answer<StartResult>([&](auto done) { service.Start(resume, before, std::move(done)); });
}
MessageResult Send(ConversationService& service, const std::string& id, const std::string& text) {
  return Answer<MessageResult>([&](auto done) { service.Message(id, text, Clock::now(), std::move(done)); });
}
std::optional<Error> End(ConversationService& service, const std::string& id) {
  return Answer<std::optional<Error>>([&](auto done) { service.End(id, std::move(done)); });
}

std::string StartNew(ConversationService& service) {
  auto r = Start(service);
  REQUIRE(std::holds_alternative<Started>(r));
  return std::get<Started>(r).conversation;
}
Started Resume(ConversationService& service, const std::string& id, std::optional<std::uint64_t> before = std::nullopt) {
  auto r = Start(service, id, before);
  REQUIRE(std::holds_alternative<Started>(r));
  CHECK(std::get<Started>(r).resumed);
  return std::get<Started>(r);
}
bool Resumable(ConversationService& service, const std::string& id) {
  auto r = Start(service, id);
  if (std::holds_alternative<Error>(r)) CHECK(std::get<Error>(r).code == ErrorCode::kUnknownConversation);
  return std::holds_alternative<Started>(r);
}
std::uint64_t SeqOf(const MessageResult& r) {
  REQUIRE(std::holds_alternative<Replied>(r));
  return std::get<Replied>(r).seq;
}
ErrorCode CodeOf(const MessageResult& r) {
  REQUIRE(std::holds_alternative<Error>(r));
  return std::get<Error>(r).code;
}
std::vector<std::string> UserTexts(const HistoryPage& page) {
  std::vector<std::string> out;
  for (const auto& e : page.entries) {
    if (e.role == "user") out.push_back(e.text);
  }
  return out;
}

// Purges as the service would after `idle` more seconds without a message: the expiries are
// shortened by `idle` (the stores compare last activity with "now - expiry"), then restored.
void PurgeAsIfIdleFor(ConversationService& service, Limits& limits, std::chrono::seconds idle) {
  const Limits saved = limits;
  limits.conversation_expiry -= idle;
  limits.empty_conversation_expiry -= idle;
  service.PurgeExpired();
  limits = saved;
}

struct Fixture {
  Limits limits;
  MemoryStore store;
  Metrics metrics{{"greeting", "doms"}};
  ConversationService service{backcheck::test::TestEngine(), store, limits, metrics};
};

// A MemoryStore behind a seam the test drives: commits can be held until the test releases them
// (a slow disk or database; the completion then runs on the releasing thread, as a store's own
// thread would run it), and the next commits can be scripted to report kUnavailable or
// kConflict without writing anything (a full disk; another instance that wrote first).
class ScriptedStore final : public ConversationStore {
 public:
  MemoryStore memory;
  bool hold = false;
  std::deque<CommitResult> script;       // outcomes of the next commits; empty: the memory store's
  std::vector<TurnRecord> attempts;      // every record that reached the store, in order
  std::vector<std::pair<TurnRecord, CommitDone>> held;

  void Load(std::string id, std::function<void(Loaded)> done) override { memory.Load(std::move(id), std::move(done)); }
  void Commit(TurnRecord record, CommitDone done) override {
    if (hold) {
      held.emplace_back(std::move(record), std::move(done));
      return;
    }
    Apply(std::move(record), std::move(done));
  }
  void History(std::string id, std::optional<std::uint64_t> before, std::size_t turns,
               std::function<void(std::optional<HistoryPage>)> done) override {
    memory.History(std::move(id), before, turns, std::move(done));
  }
  void Audit(std::string id, std::function<void(std::optional<std::vector<AuditEntry>>)> done) override {
    memory.Audit(std::move(id), std::move(done));
  }
  void FindReply(std::string id, std::string client_id, std::function<void(StoredReply)> done) override {
    memory.FindReply(std::move(id), std::move(client_id), std::move(done));
  }
  void Purge(std::int64_t cutoff_ms, std::int64_t empty_cutoff_ms, std::int64_t review_cutoff_ms) override {
    memory.Purge(cutoff_ms, empty_cutoff_ms, review_cutoff_ms);
  }
  std::size_t Count() const override { return memory.Count(); }
  EscalationLog& escalations() override { return memory.escalations(); }
  const std::string& KeySecret() const override { return memory.KeySecret(); }

  // Completes the oldest held commit (through the script, then the memory store).
  void ReleaseNext() {
    REQUIRE_FALSE(held.empty());
    auto [record, done] = std::move(held.front());
    held.erase(held.begin());
    Apply(std::move(record), std::move(done));
  }
  // Completes the newest held commit: a store whose writes finish out of order (two instances,
  // two connections).
  void ReleaseNewest() {
    REQUIRE_FALSE(held.empty());
    auto [record, done] = std::move(held.back());
    held.pop_back();
    Apply(std::move(record), std::move(done));
  }

 private:
  void Apply(TurnRecord record, CommitDone done) {
    attempts.push_back(record);
    if (!script.empty()) {
      const CommitResult result = script.front();
      script.pop_front();
      return done(result, std::nullopt);
    }
    memory.Commit(std::move(record), std::move(done));
  }
};

struct ScriptedFixture {
  Limits limits;
  ScriptedStore store;
  Metrics metrics{{"greeting", "doms"}};
  ConversationService service{backcheck::test::TestEngine(), store, limits, metrics};
};

// Records what a transport would be told, for calls answered later (a held commit).
template <typename Result>
struct Later {
  std::optional<Result> result;
  std::function<void(Result)> Callback() {
    return [this](Result r) {
      CHECK_FALSE(result);  // answered once
      result = std::move(r);
    };
  }
};

}  // namespace

TEST_CASE("conversation ids are 128 random bits, URL-safe and distinct", "[service]") {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    auto id = NewConversationId();
    CHECK(id.size() == 22);
    CHECK(id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == std::string::npos);
    ids.insert(id);
  }
  CHECK(ids.size() == 1000);
}

TEST_CASE("a resumed conversation brings back its state and whole history", "[service]") {
  Fixture f;
  auto id = StartNew(f.service);
  CHECK(SeqOf(Send(f.service, id, "my upper back hurts after rows")) == 1);
  CHECK(SeqOf(Send(f.service, id, "yes")) == 2);

  const Started s = Resume(f.service, id);
  CHECK(s.conversation == id);
  CHECK(s.state.state == "escalated");
  CHECK(s.state.urgency == Urgency::kUrgent);
  REQUIRE(s.history.entries.size() == 4);
  CHECK(s.history.entries[0].role == "user");
  CHECK(s.history.entries[0].text == "my upper back hurts after rows");
  CHECK(s.history.entries[0].seq == 1);
  CHECK(s.history.entries[3].role == "assistant");
  CHECK(s.history.entries[3].seq == 2);
  CHECK_FALSE(s.history.more);
}

TEST_CASE("unknown conversations, long texts and a full server are refused", "[service]") {
  Fixture f;
  f.limits.max_text_chars = 10;
  f.limits.max_conversations = 1;
  auto id = StartNew(f.service);
  auto unknown = Start(f.service, std::string("nope"));
  REQUIRE(std::holds_alternative<Error>(unknown));
  CHECK(std::get<Error>(unknown).code == ErrorCode::kUnknownConversation);
  CHECK(CodeOf(Send(f.service, "nope", "hi")) == ErrorCode::kUnknownConversation);
  CHECK(CodeOf(Send(f.service, id, "ééééééééééé")) == ErrorCode::kTextTooLong);
  CHECK(SeqOf(Send(f.service, id, "éééééééééé")) == 1);  // 10 is fine

  std::optional<StartResult> full;
  CHECK(f.service.Start(std::nullopt, std::nullopt, [&](StartResult r) { full = std::move(r); }).empty());
  REQUIRE(full);
  REQUIRE(std::holds_alternative<Error>(*full));
  CHECK(std::get<Error>(*full).code == ErrorCode::kTooManyConversations);

  auto end_unknown = End(f.service, "nope");
  REQUIRE(end_unknown);
  CHECK(end_unknown->code == ErrorCode::kUnknownConversation);
  CHECK_FALSE(End(f.service, id));
}

TEST_CASE("idle conversations expire; active ones stay", "[service]") {
  Fixture f;
  f.limits.conversation_expiry = std::chrono::hours(24);
  auto id = StartNew(f.service);
  CHECK(SeqOf(Send(f.service, id, "hi")) == 1);  // one without a message expires sooner (below)
  PurgeAsIfIdleFor(f.service, f.limits, std::chrono::hours(23));
  CHECK(f.service.Count() == 1);
  CHECK(Resumable(f.service, id));
  PurgeAsIfIdleFor(f.service, f.limits, std::chrono::hours(25));
  CHECK(f.service.Count() == 0);
  CHECK_FALSE(Resumable(f.service, id));  // gone from the cache too, not only from the store
  CHECK(CodeOf(Send(f.service, id, "are you there")) == ErrorCode::kUnknownConversation);
}

TEST_CASE("messages to one conversation from many threads get gapless, distinct seqs", "[service]") {
  Fixture f;
  auto id = StartNew(f.service);
  constexpr int kThreads = 4, kEach = 50;
  std::vector<std::vector<std::uint64_t>> seqs(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        // Another thread may be running this conversation's queue: the reply can come from it.
        std::promise<MessageResult> reply;
        f.service.Message(id, "what is doms", Clock::now(), [&](MessageResult r) { reply.set_value(std::move(r)); });
        auto r = reply.get_future().get();
        seqs[t].push_back(std::holds_alternative<Replied>(r) ? std::get<Replied>(r).seq : 0);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::uint64_t> all;
  for (const auto& s : seqs) {
    CHECK(std::is_sorted(s.begin(), s.end()));  // each sender sees its replies in order
    all.insert(s.begin(), s.end());
  }
  CHECK(all.size() == kThreads * kEach);
  CHECK(*all.begin() == 1);
  CHECK(*all.rbegin() == kThreads * kEach);
  CHECK(Resume(f.service, id).history.more);
}

TEST_CASE("a token bucket allows its burst, then its rate", "[rate]") {
  const auto t0 = TokenBucket::Clock::time_point{};
  TokenBucket bucket(2, 3, t0);
  CHECK(bucket.TryTake(t0));
  CHECK(bucket.TryTake(t0));
  CHECK(bucket.TryTake(t0));
  CHECK_FALSE(bucket.TryTake(t0));
  CHECK(bucket.TryTake(t0 + std::chrono::milliseconds(500)));  // 2/s: one token after 0.5 s
  CHECK_FALSE(bucket.TryTake(t0 + std::chrono::milliseconds(600)));
  CHECK(bucket.TryTake(t0 + std::chrono::seconds(60)));  // refills to the burst, not beyond
  CHECK(bucket.TryTake(t0 + std::chrono::seconds(60)));
  CHECK(bucket.TryTake(t0 + std::chrono::seconds(60)));
  CHECK_FALSE(bucket.TryTake(t0 + std::chrono::seconds(60)));
}

TEST_CASE("a failed write answers with the guidance and leaves the conversation as stored", "[service][failure]") {
  ScriptedFixture f;
  const std::string id = StartNew(f.service);
  CHECK(SeqOf(Send(f.service, id, "what is doms")) == 1);

  // The disk fills: the emergency and the message queued behind it both fail.
  f.store.hold = true;
  Later<MessageResult> emergency, after;
  f.service.Message(id, "I can't breathe and I have chest pain", Clock::now(), emergency.Callback());
  f.service.Message(id, "thanks", Clock::now(), after.Callback());
  REQUIRE(f.store.held.size() == 1);  // one at a time: "thanks" waits for the emergency's commit
  f.store.script = {CommitResult::kUnavailable, CommitResult::kUnavailable};
  f.store.ReleaseNext();
  REQUIRE(emergency.result);
  CHECK_FALSE(after.result);
  REQUIRE(f.store.held.size() == 1);
  CHECK(f.store.held[0].first.expected_seq == 1);  // computed on what the store holds, not on the lost turn
  f.store.ReleaseNext();
  REQUIRE(after.result);

  const Error& e = std::get<Error>(*emergency.result);
  CHECK(e.code == ErrorCode::kStoreUnavailable);
  REQUIRE(e.guidance);  // the person is still told what to do
  CHECK(e.guidance->urgency == Urgency::kEmergency);
  CHECK_FALSE(e.guidance->text.empty());
  CHECK_FALSE(e.message.empty());
  CHECK(CodeOf(*after.result) == ErrorCode::kStoreUnavailable);

  // The conversation is what the store holds: one turn, no reply the client never saw...
  f.store.hold = false;
  const Started resumed = Resume(f.service, id);
  REQUIRE(resumed.history.entries.size() == 2);
  CHECK(resumed.history.entries.back().seq == 1);
  // ...but the urgency the person reported stays (the store retries that escalation).
  CHECK(resumed.state.urgency == Urgency::kEmergency);
  // Another instance (a fresh cache on the same store) sees the same turns.
  Metrics metrics{{"greeting", "doms"}};
  ConversationService other{backcheck::test::TestEngine(), f.store, f.limits, metrics};
  CHECK(Resume(other, id).history.entries.size() == 2);

  // Writes work again: the next turn gets seq 2, after the durable one.
  CHECK(SeqOf(Send(f.service, id, "what should I do")) == 2);
  CHECK(f.store.attempts.back().expected_seq == 1);
  CHECK(Resume(f.service, id).history.entries.size() == 4);
}

TEST_CASE("a failed write of a safety-net question still asks it and says what to do if so", "[service][failure]") {
  ScriptedFixture f;
  const std::string id = StartNew(f.service);
  // Partial evidence of an emergency-level flag: the reply asks about it, nothing is escalated.
  const std::string text = "my upper back hurts and I noticed some blood this morning";
  const auto reply = backcheck::test::FirstReply(text);
  REQUIRE_FALSE(reply.possible_flags.empty());
  REQUIRE(reply.red_flags.empty());
  f.store.script = {CommitResult::kUnavailable};
  auto failed = Send(f.service, id, text);
  REQUIRE(CodeOf(failed) == ErrorCode::kStoreUnavailable);
  const Error& e = std::get<Error>(failed);
  REQUIRE(e.guidance);  // the question and its conditional guidance still reach the person
  CHECK(e.guidance->possible_flags == reply.possible_flags);
  CHECK(e.guidance->text == reply.text);
  // The same for an error before the engine runs (here: an unknown conversation).
  auto unknown = Send(f.service, "gone", text);
  REQUIRE(CodeOf(unknown) == ErrorCode::kUnknownConversation);
  REQUIRE(std::get<Error>(unknown).guidance);
  CHECK(std::get<Error>(unknown).guidance->possible_flags == reply.possible_flags);
}

TEST_CASE("a failed creation forgets the conversation, and what waited for it", "[service][failure]") {
  ScriptedFixture f;
  f.store.hold = true;
  Later<StartResult> created;
  const std::string id = f.service.Start(std::nullopt, std::nullopt, created.Callback());
  REQUIRE_FALSE(id.empty());  // the id is known at once; messages for it queue behind its creation
  Later<MessageResult> early;
  f.service.Message(id, "I can't breathe", Clock::now(), early.Callback());
  CHECK_FALSE(created.result);
  CHECK_FALSE(early.result);
  f.store.script = {CommitResult::kUnavailable};
  f.store.ReleaseNext();
  REQUIRE(created.result);
  REQUIRE(std::holds_alternative<Error>(*created.result));
  CHECK(std::get<Error>(*created.result).code == ErrorCode::kStoreUnavailable);
  REQUIRE(early.result);
  CHECK(CodeOf(*early.result) == ErrorCode::kUnknownConversation);
  CHECK(std::get<Error>(*early.result).guidance);  // still told what to do
  CHECK(f.store.held.empty());  // the message never reached the store
  f.store.hold = false;
  CHECK(f.service.Count() == 0);
  CHECK(f.service.Cached() == 0);
  CHECK_FALSE(Resumable(f.service, id));
}

TEST_CASE("errors for a message that reports a red flag carry the guidance", "[service]") {
  Fixture f;
  f.limits.max_text_chars = 40;
  const std::string id = StartNew(f.service);
  auto unknown = Send(f.service, "gone", "I can't breathe");
  CHECK(CodeOf(unknown) == ErrorCode::kUnknownConversation);
  REQUIRE(std::get<Error>(unknown).guidance);
  CHECK(std::get<Error>(unknown).guidance->red_flags == std::vector<std::string>{"shortness_of_breath"});
  // Too long: the part within the limit is still read for red flags.
  auto long_one = Send(f.service, id, "I can't breathe " + std::string(100, '.'));
  CHECK(CodeOf(long_one) == ErrorCode::kTextTooLong);
  CHECK(std::get<Error>(long_one).guidance);
  CHECK_FALSE(f.service.Guide("what causes upper back pain"));
}

TEST_CASE("ending a conversation that never had a message frees its place", "[service]") {
  Fixture f;
  f.limits.max_conversations = 1;
  const std::string empty = StartNew(f.service);
  auto refused = Start(f.service);
  REQUIRE(std::holds_alternative<Error>(refused));
  CHECK(std::get<Error>(refused).code == ErrorCode::kTooManyConversations);
  CHECK_FALSE(End(f.service, empty));
  CHECK(f.service.Count() == 0);
  CHECK_FALSE(Resumable(f.service, empty));
  const std::string used = StartNew(f.service);
  CHECK(SeqOf(Send(f.service, used, "hi")) == 1);
  CHECK_FALSE(End(f.service, used));
  CHECK(Resumable(f.service, used));  // with a message: resumable until it expires
  CHECK(f.service.Count() == 1);
}

TEST_CASE("history on resume is bounded and pages back without gaps", "[service]") {
  Fixture f;
  f.limits.max_history_turns = 3;
  const std::string id = StartNew(f.service);
  for (int i = 0; i < 7; ++i) CHECK(SeqOf(Send(f.service, id, "what is doms")) == static_cast<std::uint64_t>(i + 1));
  std::vector<std::uint64_t> seqs;
  std::optional<std::uint64_t> before;
  int pages = 0;
  for (; pages < 10; ++pages) {
    const Started started = Resume(f.service, id, before);
    CHECK(started.history.entries.size() <= 6);
    std::vector<std::uint64_t> these;
    for (const auto& e : started.history.entries) {
      if (e.role == "user") these.push_back(e.seq);
    }
    seqs.insert(seqs.begin(), these.begin(), these.end());
    if (!started.history.more) break;
    before = started.history.entries.front().seq;
  }
  CHECK(seqs == std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7});
  CHECK(pages == 2);  // 7 turns, 3 a page
}

TEST_CASE("conversations without a message expire sooner", "[service]") {
  Fixture f;
  f.limits.empty_conversation_expiry = std::chrono::seconds(60);
  const std::string empty = StartNew(f.service);
  const std::string used = StartNew(f.service);
  CHECK(SeqOf(Send(f.service, used, "hi")) == 1);
  PurgeAsIfIdleFor(f.service, f.limits, std::chrono::minutes(2));
  CHECK(f.service.Count() == 1);
  CHECK_FALSE(Resumable(f.service, empty));
  CHECK(Resumable(f.service, used));
}

// ---- the seam: conflicts, the cache, the per-conversation queue -------------------------------

TEST_CASE("two instances on one store: a turn on stale state conflicts, reloads and lands after the other",
          "[service][seam]") {
  Limits limits;
  MemoryStore store;
  Metrics metrics_a{{"greeting", "doms"}}, metrics_b{{"greeting", "doms"}};
  ConversationService a{backcheck::test::TestEngine(), store, limits, metrics_a};
  ConversationService b{backcheck::test::TestEngine(), store, limits, metrics_b};
  const std::string id = StartNew(a);
  CHECK(Resume(b, id).history.entries.empty());  // B's cache now holds the conversation at seq 0

  CHECK(SeqOf(Send(a, id, "my upper back hurts after rows")) == 1);  // A asks the red-flag question
  auto replied = Send(b, id, "yes");  // B computes on seq 0, conflicts, reloads, runs it again
  CHECK(SeqOf(replied) == 2);
  // The answer is to A's question: B ran "yes" on A's state, not on its stale copy.
  CHECK(std::get<Replied>(replied).reply.urgency == Urgency::kUrgent);
  const Started seen = Resume(b, id);
  CHECK(seen.state.state == "escalated");
  CHECK(seen.state.urgency == Urgency::kUrgent);
  CHECK(UserTexts(seen.history) == std::vector<std::string>{"my upper back hurts after rows", "yes"});
  REQUIRE(seen.history.entries.size() == 4);
  CHECK(seen.history.entries[3].seq == 2);
  CHECK(UserTexts(Resume(a, id).history) == UserTexts(seen.history));
  // And back on A, whose cache holds seq 1 now: the same again.
  CHECK(SeqOf(Send(a, id, "what should I do")) == 3);
  CHECK(SeqOf(Send(b, id, "thanks")) == 4);
}

TEST_CASE("a conflict reported by the store runs the message again, once in the history", "[service][seam]") {
  ScriptedFixture f;
  const std::string id = StartNew(f.service);
  f.store.script = {CommitResult::kConflict};
  const std::size_t before = f.store.attempts.size();
  CHECK(SeqOf(Send(f.service, id, "what is doms")) == 1);
  CHECK(f.store.attempts.size() == before + 2);  // the conflicting commit and the one after the reload
  const Started resumed = Resume(f.service, id);
  CHECK(UserTexts(resumed.history) == std::vector<std::string>{"what is doms"});
  // A store that conflicts every time: the client is told to try again, it never hangs.
  for (int i = 0; i < 100; ++i) f.store.script.push_back(CommitResult::kConflict);
  CHECK(CodeOf(Send(f.service, id, "what is doms")) == ErrorCode::kStoreUnavailable);
  f.store.script.clear();
  CHECK(SeqOf(Send(f.service, id, "what is doms")) == 2);
}

TEST_CASE("more conversations than the cache holds: all stay resumable and in order", "[service][seam]") {
  Fixture f;
  f.limits.max_cached_conversations = 3;
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) {
    ids.push_back(StartNew(f.service));
    CHECK(SeqOf(Send(f.service, ids.back(), "what is doms")) == 1);
    CHECK(f.service.Cached() <= 3);
  }
  CHECK(f.service.Count() == 10);
  for (const auto& id : ids) {
    const Started resumed = Resume(f.service, id);
    CHECK(UserTexts(resumed.history) == std::vector<std::string>{"what is doms"});
    CHECK(SeqOf(Send(f.service, id, "should I use ice or heat")) == 2);
    CHECK(f.service.Cached() <= 3);
  }
  for (const auto& id : ids) CHECK(Resume(f.service, id).history.entries.size() == 4);
}

TEST_CASE("messages queued behind a slow commit are answered in order; past the bound, rate_limited",
          "[service][seam]") {
  ScriptedFixture f;
  f.limits.max_pending_per_conversation = 3;
  const std::string id = StartNew(f.service);
  f.store.hold = true;
  const std::vector<std::string> texts = {"what is doms", "should I use ice or heat", "are there stretches I can do",
                                          "how long does it last"};
  std::vector<Later<MessageResult>> replies(texts.size());
  std::vector<std::size_t> order;  // which message each reply answered, in the order they came
  for (std::size_t i = 0; i < texts.size(); ++i) {
    f.service.Message(id, texts[i], Clock::now(), [&, i](MessageResult r) {
      replies[i].result = std::move(r);
      order.push_back(i);
    });
  }
  // One running (its commit held), three waiting: the fifth is refused at once, with guidance.
  std::optional<MessageResult> refused;
  f.service.Message(id, "I can't breathe", Clock::now(), [&](MessageResult r) { refused = std::move(r); });
  REQUIRE(refused);
  CHECK(CodeOf(*refused) == ErrorCode::kRateLimited);
  CHECK(std::get<Error>(*refused).guidance);
  CHECK(order.empty());
  REQUIRE(f.store.held.size() == 1);  // one commit at a time, not one per queued message

  for (std::size_t n = 1; n <= texts.size(); ++n) {
    REQUIRE(f.store.held.size() == 1);
    CHECK(f.store.held[0].first.user_text == texts[n - 1]);
    CHECK(f.store.held[0].first.expected_seq == n - 1);
    f.store.ReleaseNext();
    CHECK(order.size() == n);  // each commit releases exactly its own reply
  }
  CHECK(f.store.held.empty());
  CHECK(order == std::vector<std::size_t>{0, 1, 2, 3});
  for (std::size_t i = 0; i < texts.size(); ++i) CHECK(SeqOf(*replies[i].result) == i + 1);
  f.store.hold = false;
  CHECK(UserTexts(Resume(f.service, id).history) == texts);
  // The queue drained: the conversation takes messages again.
  CHECK(SeqOf(Send(f.service, id, "thanks")) == 5);
}

// ---- two bugs the seam had (each seen failing before its fix) ----------------------------------

TEST_CASE("resumed on an instance whose cache is stale, a conversation shows its stored state", "[service][seam]") {
  // A resume used to answer with the cached state and the history from the store: on instance A,
  // after B took a turn, the person saw B's turn in the history but A's older state (its
  // urgency, hence its banner). A resume now reads the state afresh.
  Limits limits;
  MemoryStore store;
  Metrics metrics_a{{"greeting", "doms"}}, metrics_b{{"greeting", "doms"}};
  ConversationService a{backcheck::test::TestEngine(), store, limits, metrics_a};
  ConversationService b{backcheck::test::TestEngine(), store, limits, metrics_b};
  const std::string id = StartNew(a);
  CHECK(SeqOf(Send(a, id, "my upper back hurts after rows")) == 1);  // A's cache: seq 1
  CHECK(SeqOf(Send(b, id, "yes")) == 2);                             // B escalates it
  const Started on_a = Resume(a, id);
  CHECK(on_a.history.entries.size() == 4);
  CHECK(on_a.state.state == "escalated");
  CHECK(on_a.state.urgency == Urgency::kUrgent);
}

TEST_CASE("a conversation's messages keep their order when the cache is full of busy conversations",
          "[service][seam]") {
  // Enqueue used to evict before marking a new entry running, so when every other entry was
  // busy the new one was evicted at once; the next message of the same conversation then got a
  // second entry and ran beside the first instead of behind it.
  ScriptedFixture f;
  f.limits.max_cached_conversations = 1;
  f.limits.max_pending_per_conversation = 1;
  const std::string busy = StartNew(f.service);
  const std::string id = StartNew(f.service);
  f.store.hold = true;
  Later<MessageResult> busy_reply, first, second;
  f.service.Message(busy, "what is doms", Clock::now(), busy_reply.Callback());  // its commit waits
  f.service.Message(id, "what is doms", Clock::now(), first.Callback());
  f.service.Message(id, "should I use ice or heat", Clock::now(), second.Callback());
  CHECK(f.store.held.size() == 2);  // busy's and the first message's: the second waits behind the first
  while (!f.store.held.empty()) f.store.ReleaseNewest();
  REQUIRE(first.result);
  REQUIRE(second.result);
  CHECK(SeqOf(*first.result) == 1);
  CHECK(SeqOf(*second.result) == 2);
  CHECK(f.service.Cached() <= 2);
}

namespace {
using Action = ConversationService::OperatorAction;
using Operated = ConversationService::Operated;
std::variant<Operated, Error> Operate(ConversationService& service, const std::string& id, Action action) {
  return Answer<std::variant<Operated, Error>>(
      [&](auto done) { service.Operate(id, std::move(action), std::move(done)); });
}
std::vector<AuditEntry> AuditOf(ConversationStore& store, const std::string& id) {
  auto entries = Answer<std::optional<std::vector<AuditEntry>>>([&](auto done) { store.Audit(id, std::move(done)); });
  REQUIRE(entries);
  return *entries;
}
}  // namespace

TEST_CASE("two instances: a join on one is not overwritten by a message on the other, whose cache is older",
          "[service][seam][handoff]") {
  Limits limits;
  MemoryStore store;
  Metrics metrics_a{{"greeting", "doms"}}, metrics_b{{"greeting", "doms"}};
  ConversationService a{backcheck::test::TestEngine(), store, limits, metrics_a};
  ConversationService b{backcheck::test::TestEngine(), store, limits, metrics_b};
  const std::string id = StartNew(a);
  REQUIRE(SeqOf(Send(b, id, "my upper back hurts after rows")) == 1);  // B's cache: seq 1, nobody joined

  // A join changes the state, not the seq: only the revision tells B its copy is old.
  REQUIRE(std::holds_alternative<Operated>(Operate(a, id, Action{Action::Kind::kJoin, "alice", ""})));
  auto replied = Send(b, id, "no");
  REQUIRE(std::holds_alternative<Replied>(replied));
  CHECK(std::get<Replied>(replied).reply.to_operator);  // B ran it on the joined state: the operator answers
  CHECK(Resume(a, id).state.operator_name == "alice");
  CHECK(Resume(b, id).state.operator_name == "alice");
}

TEST_CASE("every operator's action is audited with who and when, in the conversation's order", "[service][handoff]") {
  Limits limits;
  MemoryStore store;
  Metrics metrics{{"greeting", "doms"}};
  ConversationService service{backcheck::test::TestEngine(), store, limits, metrics};
  const std::string id = StartNew(service);
  REQUIRE(SeqOf(Send(service, id, "I have chest pain")) == 1);
  const auto before = UnixMillis();
  for (auto kind : {Action::Kind::kClaim, Action::Kind::kJoin, Action::Kind::kSay, Action::Kind::kLeave}) {
    REQUIRE(std::holds_alternative<Operated>(Operate(service, id, Action{kind, "alice", "I am here"})));
  }
  // A refused action is not audited.
  CHECK(std::holds_alternative<Error>(Operate(service, id, Action{Action::Kind::kLeave, "bob", ""})));
  const auto escalations = store.escalations().Unacknowledged();
  REQUIRE(escalations.size() == 1);
  bool found = false;
  store.escalations().Acknowledge(escalations[0].id, "alice", "called them back", [&](bool f) { found = f; });
  CHECK(found);

  const auto audit = AuditOf(store, id);
  std::vector<std::string> actions;
  for (const auto& a : audit) {
    actions.push_back(a.action);
    CHECK(a.by == "alice");
    CHECK(a.at_ms >= before);
    CHECK(a.conversation == id);
  }
  CHECK(actions == std::vector<std::string>{"claim", "join", "say", "leave", "ack"});
  REQUIRE(audit.size() == 5);
  CHECK(audit[1].seq == 1);  // joined after the person's message
  CHECK(audit[2].seq == 2);  // the operator's message is turn 2
  CHECK(audit[4].escalation == escalations[0].id);
  CHECK(audit[4].note == "called them back");
}

TEST_CASE("a new red flag at the level the conversation already has is a new escalation", "[service][handoff]") {
  Limits limits;
  MemoryStore store;
  std::vector<EscalationEvent> events;
  store.Subscribe({[&](const EscalationEvent& e) { events.push_back(e); }, {}});
  Metrics metrics{{"greeting", "doms"}};
  ConversationService service{backcheck::test::TestEngine(), store, limits, metrics};
  const std::string id = StartNew(service);
  auto first = Send(service, id, "I have chest pain");
  REQUIRE(std::holds_alternative<Replied>(first));
  REQUIRE(std::get<Replied>(first).reply.urgency == Urgency::kEmergency);
  REQUIRE(events.size() == 1);

  // Another emergency: the level stays (the reply is not `escalated`), but operators must hear of it.
  auto second = Send(service, id, "and I am coughing up blood");
  REQUIRE(std::holds_alternative<Replied>(second));
  CHECK_FALSE(std::get<Replied>(second).reply.escalated);
  REQUIRE(events.size() == 2);
  CHECK(events[1].level == Urgency::kEmergency);
  CHECK(events[1].flags == std::vector<std::string>{"coughing_blood"});

  // The same flag again is nothing new.
  REQUIRE(std::holds_alternative<Replied>(Send(service, id, "the chest pain is still there")));
  CHECK(events.size() == 2);
}
