#include "knowledge/retrieval.hpp"

#include <cctype>
#include <cmath>

namespace backcheck::knowledge {
namespace {

// BM25 parameters: the usual defaults; sentences are short, so length normalisation matters little.
constexpr double kK1 = 1.2;
constexpr double kB = 0.75;

// Strips common English suffixes so "rows"/"rowing" and "strains"/"strained" meet.
std::string Stem(std::string word) {
  auto ends = [&](std::string_view s) {
    return word.size() > s.size() + 2 && word.compare(word.size() - s.size(), s.size(), s) == 0;
  };
  if (ends("ing")) {
    word.resize(word.size() - 3);
  } else if (ends("ed")) {
    word.resize(word.size() - 2);
  } else if (ends("es") && word[word.size() - 3] == 's') {
    word.resize(word.size() - 2);
  } else if (ends("s") && word[word.size() - 2] != 's') {
    word.resize(word.size() - 1);
  }
  return word;
}

}  // namespace

PassageIndex::PassageIndex(const Article& article, const std::vector<std::string>& stopwords)
    : stopwords_(stopwords.begin(), stopwords.end()) {
  const auto& sentences = article.sentences();
  length_.resize(sentences.size());
  double total = 0;
  for (std::size_t i = 0; i < sentences.size(); ++i) {
    std::unordered_map<std::string, int> counts;
    for (auto& term : Terms(sentences[i].text)) ++counts[term];
    double len = 0;
    for (auto& [term, count] : counts) {
      postings_[term].push_back(Posting{i, count});
      len += count;
    }
    length_[i] = len;
    total += len;
  }
  average_length_ = sentences.empty() ? 1 : total / static_cast<double>(sentences.size());
}

std::vector<std::string> PassageIndex::Terms(std::string_view text) const {
  std::vector<std::string> terms;
  std::string word;
  auto flush = [&] {
    if (!word.empty() && !stopwords_.count(word)) terms.push_back(Stem(word));
    word.clear();
  };
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u)) {
      word.push_back(static_cast<char>(std::tolower(u)));
    } else if (c != '\'') {
      flush();
    }
  }
  flush();
  return terms;
}

std::optional<PassageIndex::Hit> PassageIndex::Best(std::string_view query) const {
  const double n = static_cast<double>(length_.size());
  std::vector<double> scores(length_.size(), 0.0);
  bool any = false;
  for (const auto& term : Terms(query)) {
    auto it = postings_.find(term);
    if (it == postings_.end()) continue;
    any = true;
    const double df = static_cast<double>(it->second.size());
    const double idf = std::log(1.0 + (n - df + 0.5) / (df + 0.5));
    for (const auto& p : it->second) {
      const double tf = p.count;
      const double norm = kK1 * (1 - kB + kB * length_[p.sentence] / average_length_);
      scores[p.sentence] += idf * tf * (kK1 + 1) / (tf + norm);
    }
  }
  if (!any) return std::nullopt;
  Hit best;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    if (scores[i] > best.score) best = Hit{i, scores[i]};
  }
  return best;
}

}  // namespace backcheck::knowledge
