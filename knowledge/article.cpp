#include "knowledge/article.hpp"

#include <algorithm>
#include <stdexcept>

namespace backcheck::knowledge {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::size_t CountWords(std::string_view s) {
  std::size_t words = 0;
  bool in_word = false;
  for (char c : s) {
    if (IsSpace(c)) {
      in_word = false;
    } else if (!in_word) {
      in_word = true;
      ++words;
    }
  }
  return words;
}

// [begin, end) trimmed of surrounding whitespace.
std::pair<std::size_t, std::size_t> Trim(const std::string& text, std::size_t begin, std::size_t end) {
  while (begin < end && IsSpace(text[begin])) ++begin;
  while (end > begin && IsSpace(text[end - 1])) --end;
  return {begin, end};
}

bool IsHeading(std::string_view paragraph) {
  return paragraph.find('\n') == std::string_view::npos && CountWords(paragraph) <= 15 &&
         !paragraph.empty() && paragraph.back() != '.';
}

}  // namespace

Article Article::Parse(std::string text) {
  Article article;
  article.text_ = std::move(text);
  const std::string& t = article.text_;

  // Paragraph boundaries: runs of lines separated by at least one blank line.
  std::vector<std::pair<std::size_t, std::size_t>> paragraphs;
  std::size_t pos = 0;
  while (pos < t.size()) {
    std::size_t next = t.find("\n\n", pos);
    std::size_t end = next == std::string::npos ? t.size() : next;
    auto [b, e] = Trim(t, pos, end);
    if (b < e) paragraphs.emplace_back(b, e);
    if (next == std::string::npos) break;
    pos = next + 2;
  }

  for (auto [b, e] : paragraphs) {
    std::string_view para(t.data() + b, e - b);
    if (IsHeading(para)) {
      if (!article.sections_.empty()) article.sections_.back().end = b;
      article.sections_.push_back(Section{std::string(para), e, t.size()});
      continue;
    }
    if (article.sections_.empty()) {
      throw std::invalid_argument("article: text before the first heading line");
    }
    // Sentences end at . ! or ? followed by whitespace (or the paragraph's end).
    std::size_t start = b;
    for (std::size_t i = b; i < e; ++i) {
      char c = t[i];
      bool terminal = (c == '.' || c == '!' || c == '?') && (i + 1 == e || IsSpace(t[i + 1]));
      if (!terminal) continue;
      auto [sb, se] = Trim(t, start, i + 1);
      if (sb < se) {
        article.sentences_.push_back(
            Sentence{article.sections_.size() - 1, sb, se, t.substr(sb, se - sb)});
      }
      start = i + 1;
    }
    auto [sb, se] = Trim(t, start, e);
    if (sb < se) {
      article.sentences_.push_back(Sentence{article.sections_.size() - 1, sb, se, t.substr(sb, se - sb)});
    }
  }
  if (article.sections_.empty()) throw std::invalid_argument("article: no heading line");
  if (article.sentences_.empty()) throw std::invalid_argument("article: no sentence");
  return article;
}

std::optional<std::size_t> Article::FindSection(std::string_view heading) const {
  for (std::size_t i = 0; i < sections_.size(); ++i) {
    if (sections_[i].heading == heading) return i;
  }
  return std::nullopt;
}

std::optional<std::pair<std::size_t, std::size_t>> Article::FindQuote(std::size_t section,
                                                                      std::string_view quote) const {
  if (section >= sections_.size() || quote.empty()) return std::nullopt;
  const Section& s = sections_[section];
  std::string_view body(text_.data() + s.begin, s.end - s.begin);
  std::size_t at = body.find(quote);
  if (at == std::string_view::npos) return std::nullopt;
  return std::make_pair(s.begin + at, s.begin + at + quote.size());
}

std::vector<std::size_t> Article::SentencesIn(std::size_t begin, std::size_t end) const {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < sentences_.size(); ++i) {
    if (sentences_[i].begin < end && begin < sentences_[i].end) out.push_back(i);
  }
  return out;
}

}  // namespace backcheck::knowledge
