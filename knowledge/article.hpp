// The source article, split into sections (its heading lines) and sentences.
//
// An Article is immutable once parsed. Offsets are byte offsets into text(), so a quote found in
// the text can be mapped back to the sentences it covers (for citation coverage).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace backcheck::knowledge {

struct Section {
  std::string heading;
  std::size_t begin = 0;  // body: [begin, end) of Article::text(), the heading line excluded
  std::size_t end = 0;
};

struct Sentence {
  std::size_t section = 0;  // index into Article::sections()
  std::size_t begin = 0;    // [begin, end) of Article::text()
  std::size_t end = 0;
  std::string text;
};

class Article {
 public:
  // Splits `text` into paragraphs at blank lines. A one-line paragraph of at most 15 words that
  // does not end with '.' is a heading and opens a section; other paragraphs are split into
  // sentences at '.', '!' or '?' followed by whitespace. Throws std::invalid_argument when the
  // text has no heading or no sentence.
  static Article Parse(std::string text);

  const std::string& text() const { return text_; }
  const std::vector<Section>& sections() const { return sections_; }
  const std::vector<Sentence>& sentences() const { return sentences_; }

  // The index of the section whose heading is exactly `heading`.
  std::optional<std::size_t> FindSection(std::string_view heading) const;

  // Where `quote` occurs verbatim inside the body of section `section`, as [begin, end).
  std::optional<std::pair<std::size_t, std::size_t>> FindQuote(std::size_t section,
                                                               std::string_view quote) const;

  // Indices of the sentences overlapping [begin, end).
  std::vector<std::size_t> SentencesIn(std::size_t begin, std::size_t end) const;

 private:
  std::string text_;
  std::vector<Section> sections_;
  std::vector<Sentence> sentences_;
};

}  // namespace backcheck::knowledge
