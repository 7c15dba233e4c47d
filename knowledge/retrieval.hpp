// Passage retrieval: BM25 over the article's sentences, for messages no intent pattern matches.
//
// Immutable after construction and safe to query from many threads.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "knowledge/article.hpp"

namespace backcheck::knowledge {

class PassageIndex {
 public:
  struct Hit {
    std::size_t sentence = 0;  // index into Article::sentences()
    double score = 0;
  };

  // Indexes every sentence of `article`; `stopwords` are ignored in sentences and queries.
  PassageIndex(const Article& article, const std::vector<std::string>& stopwords);

  // The best-scoring sentence for `query`, or nullopt when no query term occurs in the article.
  std::optional<Hit> Best(std::string_view query) const;

  // Lower-case terms of `text` with stopwords removed and a light suffix stemming applied.
  std::vector<std::string> Terms(std::string_view text) const;

 private:
  struct Posting {
    std::size_t sentence;
    int count;
  };
  std::unordered_set<std::string> stopwords_;
  std::unordered_map<std::string, std::vector<Posting>> postings_;
  std::vector<double> length_;  // terms per sentence
  double average_length_ = 0;
};

}  // namespace backcheck::knowledge
