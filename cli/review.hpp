// `backcheck review`: what people asked that the assistant could not answer (issue 17 item 5),
// from the entries `chat-server --review` kept (server/store/review.hpp), grouped by similar
// wording so the content's keepers see the most frequent gaps first, each with a suggested intent
// where the knowledge base has one close.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dialog/engine.hpp"
#include "server/store/review.hpp"

namespace backcheck::cli {

// The Jaccard similarity of two word sets (each sorted, without repeats): shared words over all
// words; 1 for two empty sets.
double Jaccard(const std::vector<std::string>& a, const std::vector<std::string>& b);

struct ReviewGroup {
  std::vector<std::size_t> members;  // indices into the entries, in their order (oldest first)
  std::int64_t first_ms = 0;
  std::int64_t last_ms = 0;
  std::vector<std::string> words;    // the first member's word set
};

// Groups `entries` by wording: each entry's word set (`words` of its text, sorted, unique) joins
// the group holding the entry it is most similar to, when that similarity (Jaccard) is at least
// `threshold`, else starts a group. Most members first; ties: the most recent first.
std::vector<ReviewGroup> GroupReview(const std::vector<server::ReviewEntry>& entries,
                                     const std::function<std::vector<std::string>(std::string_view)>& words,
                                     double threshold);

// The word set of a message as the knowledge code sees it: normalised (spelling, lower case),
// then retrieval's terms (stopwords dropped, light stemming); a message with no such term keeps
// its normalised words.
std::vector<std::string> ReviewWords(const dialog::Engine& engine, const knowledge::PassageIndex& index,
                                     std::string_view text);

struct Suggestion {
  std::string intent;
  std::string by;    // "match": the knowledge base now answers it so; "retrieval": its closest article sentence
  double score = 0;  // retrieval's
};
// An intent for `entry`'s text where one is close: what the engine answers it now (in the state
// it arrived in), unless the fallback; else the intent of the closest article sentence, when its
// score is at least half the retrieval threshold.
std::optional<Suggestion> SuggestIntent(const dialog::Engine& engine, const knowledge::PassageIndex& index,
                                        const server::ReviewEntry& entry);

// Prints the groups as a table (or one JSON document); returns the exit status (0).
int PrintReview(const dialog::Engine& engine, const std::vector<server::ReviewEntry>& entries, bool json,
                double threshold, std::ostream& out);

// "2025-03-01" (UTC midnight) or "2025-03-01T12:30:00" (UTC) as Unix ms; nullopt when neither.
std::optional<std::int64_t> ParseReviewDate(std::string_view text);

}  // namespace backcheck::cli
