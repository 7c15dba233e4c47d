// What `chat-server --review` keeps and `backcheck review` shows (issue 17 item 5): grouping by
// wording, the service keeping only fallbacks and retrieval-only answers (and nothing when off),
// and the SQLite store's entries read back, purged and deleted.
#include <catch2/catch.hpp>
#include <filesystem>
#include <future>
#include <random>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/review.hpp"
#include "server/conversation_service.hpp"
#include "server/store/memory_store.hpp"
#include "server/store/sqlite_store.hpp"
#include "test_support.hpp"

using namespace backcheck::server;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> Split(std::string_view text) {
  std::vector<std::string> out;
  std::string word;
  for (char c : std::string(text) + " ") {
    if (c == ' ') {
      if (!word.empty()) out.push_back(word);
      word.clear();
    } else {
      word += c;
    }
  }
  return out;
}

ReviewEntry Entry(std::string text, std::int64_t at_ms) {
  return ReviewEntry{std::move(text), at_ms, "welcome", 0, "fallback"};
}

std::string StartNew(ConversationService& service) {
  std::string id;
  service.Start(std::nullopt, std::nullopt, [&](std::variant<ConversationService::Started, Error> r) {
    REQUIRE(std::holds_alternative<ConversationService::Started>(r));
    id = std::get<ConversationService::Started>(r).conversation;
  });
  REQUIRE(!id.empty());
  return id;
}

std::string Send(ConversationService& service, const std::string& id, const std::string& text) {
  std::string intent;
  service.Message(id, text, Clock::now(), [&](std::variant<ConversationService::Replied, Error> r) {
    REQUIRE(std::holds_alternative<ConversationService::Replied>(r));
    intent = std::get<ConversationService::Replied>(r).reply.intent;
  });
  return intent;
}

// Messages the built-in knowledge base does not understand, and one it answers by its patterns.
const std::string kGibberish = "zorblax quintessential flimflam";
const std::string kGibberishToo = "zorblax quintessential flimflam again";
const std::string kAnswered = "what should I tell the doctor?";
// ...and one that no pattern matches but retrieval answers from the article.
const std::string kRetrieved = "the rhomboid muscles pull the shoulder blades toward the spine and stabilise them";

struct Fixture {
  Limits limits;
  MemoryStore store;
  Metrics metrics{{"greeting", "doms"}};
  ConversationService service{backcheck::test::TestEngine(), store, limits, metrics};
};

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("backcheck-review-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

}  // namespace

TEST_CASE("Jaccard similarity of word sets", "[review]") {
  using backcheck::cli::Jaccard;
  CHECK(Jaccard({"a", "b"}, {"a", "b"}) == 1.0);
  CHECK(Jaccard({"a", "b"}, {"c"}) == 0.0);
  CHECK(Jaccard({"a", "b", "c"}, {"b", "c", "d"}) == Approx(0.5));
  CHECK(Jaccard({}, {}) == 1.0);
}

TEST_CASE("similar wordings share a group, most frequent first, with first and last times", "[review]") {
  const std::vector<ReviewEntry> entries = {
      Entry("can i drive", 1000),           Entry("foam roller use", 2000),     Entry("foam roller ok", 3000),
      Entry("use the foam roller", 4000),   Entry("something else entirely", 5000),
  };
  const auto groups = backcheck::cli::GroupReview(entries, Split, 0.5);
  REQUIRE(groups.size() == 3);
  CHECK(groups[0].members == std::vector<std::size_t>{1, 2, 3});
  CHECK(groups[0].first_ms == 2000);
  CHECK(groups[0].last_ms == 4000);
  // Ties: the most recent first.
  CHECK(groups[1].members == std::vector<std::size_t>{4});
  CHECK(groups[2].members == std::vector<std::size_t>{0});
  // A threshold of 1 keeps only identical word sets together.
  CHECK(backcheck::cli::GroupReview(entries, Split, 1.0).size() == 5);
}

TEST_CASE("the knowledge code's words: normalised, stopwords dropped, stemmed", "[review]") {
  const auto& engine = backcheck::test::TestEngine();
  const backcheck::knowledge::PassageIndex index(engine.kb().article, engine.kb().language.stopwords);
  auto a = backcheck::cli::ReviewWords(engine, index, "Can I use the FOAM rollers?");
  auto b = backcheck::cli::ReviewWords(engine, index, "foam roller use");
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  a.erase(std::unique(a.begin(), a.end()), a.end());
  b.erase(std::unique(b.begin(), b.end()), b.end());
  CHECK(backcheck::cli::Jaccard(a, b) >= 0.5);
}

TEST_CASE("the review table and JSON: groups, counts, examples and a suggestion where one is close", "[review]") {
  const auto& engine = backcheck::test::TestEngine();
  const std::vector<ReviewEntry> entries = {Entry(kGibberish, 1'700'000'000'000), Entry(kAnswered, 1'700'000'100'000),
                                            Entry(kGibberishToo, 1'700'000'200'000)};
  std::ostringstream json;
  REQUIRE(backcheck::cli::PrintReview(engine, entries, true, 0.5, json) == 0);
  const auto doc = nlohmann::json::parse(json.str());
  CHECK(doc["messages"] == 3);
  REQUIRE(doc["groups"].size() == 2);
  CHECK(doc["groups"][0]["count"] == 2);
  CHECK(doc["groups"][0]["examples"][0] == kGibberish);
  CHECK(doc["groups"][0]["first"] == "2023-11-14T22:13:20Z");
  CHECK(doc["groups"][0]["suggested"].is_null());
  // What the knowledge base answers now is suggested, by its match.
  CHECK(doc["groups"][1]["suggested"]["by"] == "match");
  std::ostringstream table;
  backcheck::cli::PrintReview(engine, entries, false, 0.5, table);
  CHECK_THAT(table.str(), Catch::Contains("3 messages in 2 groups"));
  CHECK_THAT(table.str(), Catch::Contains("    2  2023-11-14 22:13"));
}

TEST_CASE("review dates", "[review]") {
  CHECK(backcheck::cli::ParseReviewDate("2023-11-14") == 1'699'920'000'000);
  CHECK(backcheck::cli::ParseReviewDate("2023-11-14T22:13:20Z") == 1'700'000'000'000);
  CHECK(!backcheck::cli::ParseReviewDate("yesterday"));
  CHECK(!backcheck::cli::ParseReviewDate("2023-13-01"));
}

TEST_CASE("with --review the service keeps fallbacks and retrieval-only answers, nothing else", "[review]") {
  Fixture f;
  f.service.SetReview(true, std::chrono::hours(24));
  const std::string id = StartNew(f.service);
  CHECK(Send(f.service, id, kGibberish) == "fallback");
  Send(f.service, id, kAnswered);
  const auto kept = f.store.Review();
  REQUIRE(kept.size() == 1);
  CHECK(kept[0].text == kGibberish);
  CHECK(kept[0].intent == "fallback");
  CHECK(kept[0].state == "welcome");
  CHECK(kept[0].score == 0);
  CHECK(kept[0].at_ms > 0);
  // Kept for the retention, then purged with the rest.
  f.service.PurgeExpired();
  CHECK(f.store.Review().size() == 1);
  f.service.SetReview(true, std::chrono::seconds(0));
  f.store.Purge(0, 0, kept[0].at_ms + 1);
  CHECK(f.store.Review().empty());
}

TEST_CASE("a retrieval-only answer is kept with its score", "[review]") {
  const auto& engine = backcheck::test::TestEngine();
  // Find one: a message that matched no pattern and that retrieval answered.
  const auto turn = engine.Respond(engine.Start(), kRetrieved);
  REQUIRE(turn.retrieval_score);
  CHECK(*turn.retrieval_score >= engine.kb().language.retrieval_min_score);
  CHECK(!turn.fell_back);
  Fixture f;
  f.service.SetReview(true, std::chrono::hours(24));
  const std::string id = StartNew(f.service);
  Send(f.service, id, kRetrieved);
  const auto kept = f.store.Review();
  REQUIRE(kept.size() == 1);
  CHECK(kept[0].score == Approx(*turn.retrieval_score));
  CHECK(kept[0].intent == turn.reply.intent);
}

TEST_CASE("without --review nothing is kept", "[review]") {
  Fixture f;
  const std::string id = StartNew(f.service);
  CHECK(Send(f.service, id, kGibberish) == "fallback");
  Send(f.service, id, kRetrieved);
  CHECK(f.store.Review().empty());
}

TEST_CASE("the SQLite store keeps review entries with their turn; backcheck review reads, purges and deletes them",
          "[review][sqlite]") {
  TempDir dir;
  {
    SqliteStore store(dir.path());
    Limits limits;
    Metrics metrics{{"greeting", "doms"}};
    ConversationService service(backcheck::test::TestEngine(), store, limits, metrics);
    service.SetReview(true, std::chrono::hours(24));
    std::promise<std::string> started;
    service.Start(std::nullopt, std::nullopt, [&](std::variant<ConversationService::Started, Error> r) {
      started.set_value(std::get<ConversationService::Started>(r).conversation);
    });
    const std::string id = started.get_future().get();
    for (const auto& text : {kGibberish, kAnswered, kGibberishToo}) {
      std::promise<void> done;
      service.Message(id, text, Clock::now(), [&](std::variant<ConversationService::Replied, Error>) { done.set_value(); });
      done.get_future().wait();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // each its own millisecond
    }
    // Read while the server has it open: read-only, beside a running store.
    const auto kept = ReadReviewSqlite(dir.path());
    REQUIRE(kept.size() == 2);
    CHECK(kept[0].text == kGibberish);
    CHECK(kept[1].text == kGibberishToo);
    CHECK(kept[0].state == "welcome");
    CHECK(kept[0].intent == "fallback");
    // A purge keeps what is younger than the retention...
    store.Purge(0, 0, kept[0].at_ms);
    std::promise<void> flushed;  // the writer runs jobs in order: a commit after the purge
    store.Commit(TurnRecord{}, [&](CommitResult, const std::optional<EscalationEvent>&) { flushed.set_value(); });
    flushed.get_future().wait();
    CHECK(ReadReviewSqlite(dir.path()).size() == 2);
    // ...and drops what is older.
    REQUIRE(kept[1].at_ms > kept[0].at_ms);
    store.Purge(0, 0, kept[1].at_ms);
    std::promise<void> flushed_too;
    store.Commit(TurnRecord{}, [&](CommitResult, const std::optional<EscalationEvent>&) { flushed_too.set_value(); });
    flushed_too.get_future().wait();
    CHECK(ReadReviewSqlite(dir.path()).size() == 1);
  }
  // The server stopped: a listing leaves no -wal or -shm file behind (owned by whoever ran it,
  // they could keep the server's user out of its database).
  CHECK(ReadReviewSqlite(dir.path()).size() == 1);
  CHECK(!fs::exists(dir.path() / "backcheck.db-wal"));
  CHECK(!fs::exists(dir.path() / "backcheck.db-shm"));
  CHECK(DeleteReviewSqlite(dir.path(), INT64_MAX) == 1);
  CHECK(ReadReviewSqlite(dir.path()).empty());
}

TEST_CASE("backcheck review refuses a folder without a database", "[review][sqlite]") {
  TempDir dir;
  CHECK_THROWS_AS(ReadReviewSqlite(dir.path()), ReviewError);
}
