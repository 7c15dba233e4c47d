// Splitting data phrases ("pins and needles") into words, shared by the normaliser's rewrite
// table and the red-flag detector's cue lists.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace backcheck::dialog {

// The space-separated words of `phrase`; runs of spaces count as one.
inline std::vector<std::string> SplitWords(std::string_view phrase) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < phrase.size()) {
    while (i < phrase.size() && phrase[i] == ' ') ++i;
    std::size_t j = i;
    while (j < phrase.size() && phrase[j] != ' ') ++j;
    if (j > i) out.emplace_back(phrase.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace backcheck::dialog
