// The conversation service the WebSocket and HTTP transports share.
#include <catch2/catch.hpp>
#include <set>
#include <thread>

#include "server/conversation_service.hpp"
#include "server/rate_limiter.hpp"
#include "test_support.hpp"

using namespace backcheck::server;

namespace {
// A completion that checks the memory store made the change durable at once.
ConversationService::Durable Durable() {
  return [](std::optional<Error> failure) { CHECK_FALSE(failure); };
}
struct Fixture {
  Limits limits;
  MemoryStore store;
  Metrics metrics{{"greeting", "doms"}};
  ConversationService service{backcheck::test::TestEngine(), store, limits, metrics};
};
std::string StartNew(ConversationService& service) {
  auto r = service.Start(std::nullopt, Durable());
  REQUIRE(std::holds_alternative<ConversationService::Started>(r));
  return std::get<ConversationService::Started>(r).conversation;
}
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
  REQUIRE(std::holds_alternative<ConversationService::Replied>(f.service.Message(id, "my upper back hurts after rows", Clock::now(), Durable())));
  auto replied = f.service.Message(id, "yes", Clock::now(), Durable());
  REQUIRE(std::holds_alternative<ConversationService::Replied>(replied));
  CHECK(std::get<ConversationService::Replied>(replied).seq == 2);

  auto resumed = f.service.Start(id, Durable());
  REQUIRE(std::holds_alternative<ConversationService::Started>(resumed));
  const auto& s = std::get<ConversationService::Started>(resumed);
  CHECK(s.resumed);
  CHECK(s.state.state == "escalated");
  CHECK(s.state.urgency == backcheck::knowledge::Urgency::kUrgent);
  REQUIRE(s.history.entries.size() == 4);
  CHECK(s.history.entries[0].role == "user");
  CHECK(s.history.entries[0].text == "my upper back hurts after rows");
  CHECK(s.history.entries[3].role == "assistant");
  CHECK(s.history.entries[3].seq == 2);
}

TEST_CASE("unknown conversations, long texts and a full server are refused", "[service]") {
  Fixture f;
  f.limits.max_text_chars = 10;
  f.limits.max_conversations = 1;
  auto id = StartNew(f.service);
  CHECK(std::get<Error>(f.service.Start(std::string("nope"), Durable())).code == ErrorCode::kUnknownConversation);
  CHECK(std::get<Error>(f.service.Message("nope", "hi", Clock::now(), Durable())).code == ErrorCode::kUnknownConversation);
  CHECK(std::get<Error>(f.service.Message(id, "ééééééééééé", Clock::now(), Durable())).code == ErrorCode::kTextTooLong);
  CHECK(std::holds_alternative<ConversationService::Replied>(f.service.Message(id, "éééééééééé", Clock::now(), Durable())));  // 10 is fine
  CHECK(std::get<Error>(f.service.Start(std::nullopt, Durable())).code == ErrorCode::kTooManyConversations);
  CHECK(f.service.End("nope", Durable())->code == ErrorCode::kUnknownConversation);
  CHECK_FALSE(f.service.End(id, Durable()));
}

TEST_CASE("idle conversations expire; active ones stay", "[service]") {
  Fixture f;
  f.limits.conversation_expiry = std::chrono::hours(24);
  auto id = StartNew(f.service);
  f.service.Message(id, "hi", Clock::now(), Durable());  // one without a message expires sooner (below)
  CHECK(f.service.PurgeExpired(Clock::now() + std::chrono::hours(23)) == 0);
  CHECK(f.service.Exists(id));
  CHECK(f.service.PurgeExpired(Clock::now() + std::chrono::hours(25)) == 1);
  CHECK_FALSE(f.service.Exists(id));
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
        seqs[t].push_back(std::get<ConversationService::Replied>(f.service.Message(id, "what is doms", Clock::now(), Durable())).seq);
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

namespace {
// A store that can fail: it holds each record until the test completes it, as SQLite's writer
// does from its own thread (never inside Persist), so the service sees the same order of events.
class DeferredStore : public MemoryStore {
 public:
  void Persist(TurnRecord record, Done done) override { pending.push_back({std::move(record), std::move(done)}); }
  bool KeepsRecords() const override { return true; }
  // Completes the oldest pending record.
  void CompleteNext(bool ok) {
    REQUIRE_FALSE(pending.empty());
    auto [record, done] = std::move(pending.front());
    pending.erase(pending.begin());
    if (ok && record.escalation) record.escalation->id = ++escalations;
    done(ok, ok ? record.escalation : std::nullopt);
  }
  std::vector<std::pair<TurnRecord, Done>> pending;
  std::int64_t escalations = 0;
};

struct FailingFixture {
  Limits limits;
  DeferredStore store;
  Metrics metrics{{"greeting", "doms"}};
  std::vector<EscalationEvent> published;
  ConversationService service{backcheck::test::TestEngine(), store, limits, metrics,
                              [this](const EscalationEvent& e) { published.push_back(e); }};
};

// Records what the transport would be told.
struct Outcome {
  bool called = false;
  std::optional<Error> failure;
  ConversationService::Durable Callback() {
    return [this](std::optional<Error> f) {
      called = true;
      failure = std::move(f);
    };
  }
};
}  // namespace

TEST_CASE("a failed write rolls the conversation back and answers with the guidance", "[service][failure]") {
  FailingFixture f;
  Outcome created;
  auto started = f.service.Start(std::nullopt, created.Callback());
  const auto id = std::get<ConversationService::Started>(started).conversation;
  f.store.CompleteNext(true);
  CHECK_FALSE(created.failure);

  Outcome first, emergency, after;
  REQUIRE(std::holds_alternative<ConversationService::Replied>(
      f.service.Message(id, "what is doms", Clock::now(), first.Callback())));
  f.store.CompleteNext(true);
  // The disk fills: this turn and the one computed on top of it both fail.
  f.service.Message(id, "I can't breathe and I have chest pain", Clock::now(), emergency.Callback());
  f.service.Message(id, "thanks", Clock::now(), after.Callback());
  f.store.CompleteNext(false);
  f.store.CompleteNext(false);

  REQUIRE(emergency.failure);
  CHECK(emergency.failure->code == ErrorCode::kStoreUnavailable);
  REQUIRE(emergency.failure->guidance);  // the person is still told what to do
  CHECK(emergency.failure->guidance->urgency == backcheck::knowledge::Urgency::kEmergency);
  CHECK_FALSE(emergency.failure->guidance->text.empty());
  REQUIRE(after.failure);
  CHECK(after.failure->code == ErrorCode::kStoreUnavailable);

  // Memory is back at what the store holds: one turn, no reply the client never saw.
  auto resumed = std::get<ConversationService::Started>(f.service.Start(id, [](std::optional<Error>) {}));
  CHECK(resumed.history.entries.size() == 2);
  CHECK(resumed.history.entries.back().seq == 1);
  // ...but the urgency the person reported stays (the store retries that escalation).
  CHECK(resumed.state.urgency == backcheck::knowledge::Urgency::kEmergency);

  // Writes work again: the next turn gets seq 2, after the durable one.
  Outcome next;
  auto replied = f.service.Message(id, "what should I do", Clock::now(), next.Callback());
  CHECK(std::get<ConversationService::Replied>(replied).seq == 2);
  CHECK(f.store.pending.back().first.expected_seq == 1);
  f.store.CompleteNext(true);
  CHECK(next.called);
  CHECK_FALSE(next.failure);
}

TEST_CASE("a failed write of a safety-net question still asks it and says what to do if so", "[service][failure]") {
  FailingFixture f;
  Outcome created, asked;
  const auto id = std::get<ConversationService::Started>(f.service.Start(std::nullopt, created.Callback())).conversation;
  f.store.CompleteNext(true);
  // Partial evidence of an emergency-level flag: the reply asks about it, nothing is escalated.
  const std::string text = "my upper back hurts and I noticed some blood this morning";
  auto replied = std::get<ConversationService::Replied>(f.service.Message(id, text, Clock::now(), asked.Callback()));
  REQUIRE_FALSE(replied.reply.possible_flags.empty());
  REQUIRE(replied.reply.red_flags.empty());
  f.store.CompleteNext(false);
  REQUIRE(asked.failure);
  CHECK(asked.failure->code == ErrorCode::kStoreUnavailable);
  REQUIRE(asked.failure->guidance);  // the question and its conditional guidance still reach the person
  CHECK(asked.failure->guidance->possible_flags == replied.reply.possible_flags);
  CHECK(asked.failure->guidance->text == replied.reply.text);
  // The same for an error before the engine runs (here: an unknown conversation).
  auto error = std::get<Error>(f.service.Message("gone", text, Clock::now(), Durable()));
  REQUIRE(error.guidance);
  CHECK(error.guidance->possible_flags == replied.reply.possible_flags);
}

TEST_CASE("a failed creation forgets the conversation", "[service][failure]") {
  FailingFixture f;
  Outcome created;
  const auto id = std::get<ConversationService::Started>(f.service.Start(std::nullopt, created.Callback())).conversation;
  CHECK(f.service.Exists(id));
  f.store.CompleteNext(false);
  REQUIRE(created.failure);
  CHECK(created.failure->code == ErrorCode::kStoreUnavailable);
  CHECK_FALSE(f.service.Exists(id));
}

TEST_CASE("errors for a message that reports a red flag carry the guidance", "[service]") {
  Fixture f;
  f.limits.max_text_chars = 40;
  const std::string id = StartNew(f.service);
  auto error = std::get<Error>(f.service.Message("gone", "I can't breathe", Clock::now(), Durable()));
  CHECK(error.code == ErrorCode::kUnknownConversation);
  REQUIRE(error.guidance);
  CHECK(error.guidance->red_flags == std::vector<std::string>{"shortness_of_breath"});
  // Too long: the part within the limit is still read for red flags.
  auto long_one = std::get<Error>(f.service.Message(id, "I can't breathe " + std::string(100, '.'), Clock::now(), Durable()));
  CHECK(long_one.code == ErrorCode::kTextTooLong);
  CHECK(long_one.guidance);
  CHECK_FALSE(f.service.Guide("what causes upper back pain"));
}

TEST_CASE("ending a conversation that never had a message frees its place", "[service]") {
  Fixture f;
  f.limits.max_conversations = 1;
  const std::string empty = StartNew(f.service);
  CHECK(std::get<Error>(f.service.Start(std::nullopt, Durable())).code == ErrorCode::kTooManyConversations);
  CHECK_FALSE(f.service.End(empty, Durable()));
  CHECK_FALSE(f.service.Exists(empty));
  const std::string used = StartNew(f.service);
  f.service.Message(used, "hi", Clock::now(), Durable());
  CHECK_FALSE(f.service.End(used, Durable()));
  CHECK(f.service.Exists(used));  // with a message: resumable until it expires
}

TEST_CASE("history on resume is bounded and pages back without gaps", "[service]") {
  Fixture f;
  f.limits.max_history_turns = 3;
  const std::string id = StartNew(f.service);
  for (int i = 0; i < 7; ++i) f.service.Message(id, "what is doms", Clock::now(), Durable());
  std::vector<std::uint64_t> seqs;
  std::optional<std::uint64_t> before;
  for (int page = 0; page < 10; ++page) {
    auto started = std::get<ConversationService::Started>(f.service.Start(id, Durable(), before));
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
}

TEST_CASE("conversations without a message expire sooner", "[service]") {
  Fixture f;
  f.limits.empty_conversation_expiry = std::chrono::seconds(60);
  const std::string empty = StartNew(f.service);
  const std::string used = StartNew(f.service);
  f.service.Message(used, "hi", Clock::now(), Durable());
  CHECK(f.service.PurgeExpired(Clock::now() + std::chrono::minutes(2)) == 1);
  CHECK_FALSE(f.service.Exists(empty));
  CHECK(f.service.Exists(used));
}
