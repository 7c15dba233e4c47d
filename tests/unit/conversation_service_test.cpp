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
