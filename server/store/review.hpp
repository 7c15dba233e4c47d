// What people asked that the assistant could not answer (issue 17, `chat-server --review`): a
// message whose reply was the fallback, or that only retrieval answered, kept for the people who
// keep the content, for --review-days, then purged (ConversationStore::Purge). Only with --review:
// this is message text, i.e. health data. No conversation id is kept with it, only the flow state
// the message arrived in.
//
// The server writes entries through the store (TurnRecord::review, in the turn's transaction);
// `backcheck review` reads and deletes them with the functions below, straight from the database.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace backcheck::server {

struct ReviewEntry {
  std::string text;        // the person's message
  std::int64_t at_ms = 0;  // Unix time, milliseconds
  std::string state;       // the flow state the message arrived in ("welcome", "advising"...)
  double score = 0;        // the retrieval score when retrieval answered it; 0: the fallback
  std::string intent;      // the intent the reply was reported as ("fallback", or retrieval's topic)
};

// The database cannot be opened or read (no such file, a schema without the review table...).
class ReviewError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The entries of the SQLite store in `data_dir` (DIR/backcheck.db, opened read-only: a running
// server is not disturbed), oldest first. Throws ReviewError.
std::vector<ReviewEntry> ReadReviewSqlite(const std::filesystem::path& data_dir);
// Deletes the entries older than `before_ms` (all: INT64_MAX); how many. Throws ReviewError.
std::int64_t DeleteReviewSqlite(const std::filesystem::path& data_dir, std::int64_t before_ms);
// The same for the PostgreSQL store at `url` (a libpq connection URI).
std::vector<ReviewEntry> ReadReviewPostgres(const std::string& url);
std::int64_t DeleteReviewPostgres(const std::string& url, std::int64_t before_ms);

}  // namespace backcheck::server
