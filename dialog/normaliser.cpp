#include "dialog/normaliser.hpp"

#include <algorithm>
#include <cctype>

namespace backcheck::dialog {
namespace {

std::vector<std::string> SplitWords(std::string_view s) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    std::size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// Decodes one UTF-8 code point at s[i]; returns it and advances i. Invalid bytes decode as U+FFFD.
char32_t DecodeUtf8(std::string_view s, std::size_t& i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  if (c < 0x80) {
    ++i;
    return c;
  }
  int extra = (c >= 0xF0) ? 3 : (c >= 0xE0) ? 2 : (c >= 0xC0) ? 1 : -1;
  if (extra < 0) {
    ++i;
    return 0xFFFD;
  }
  char32_t cp = c & (0x3F >> extra);
  for (int k = 1; k <= extra; ++k) {
    if (i + k >= s.size() || (byte(i + k) & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  i += static_cast<std::size_t>(extra) + 1;
  return cp;
}

// What a code point becomes: an ASCII replacement, or 0 to keep its UTF-8 bytes.
char FoldCodePoint(char32_t cp) {
  switch (cp) {
    case 0x2018: case 0x2019: case 0x201A: case 0x201B: case 0x2032: case 0x0060: case 0x00B4:
      return '\'';
    case 0x201C: case 0x201D: case 0x201E: case 0x201F: case 0x2033: case 0x00AB: case 0x00BB:
      return '"';
    case 0x2010: case 0x2011: case 0x2012: case 0x2013: case 0x2014: case 0x2015: case 0x2212:
      return '-';
    case 0x00A0: case 0x2002: case 0x2003: case 0x2009: case 0x200A: case 0x202F: case 0x3000:
    case '\t': case '\n': case '\r': case '\f': case '\v':
      return ' ';
    case 0x2026:
      return '.';
    default:
      return 0;
  }
}

bool IsWordChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '\'' ||
         static_cast<unsigned char>(c) >= 0x80;
}

bool IsKeptPunct(char c) { return c == '.' || c == ',' || c == ';' || c == ':' || c == '!' || c == '?'; }

}  // namespace

Normaliser::Normaliser(const knowledge::Language& language) {
  for (const auto& [from, to] : language.rewrites) {
    Rewrite r{SplitWords(from), SplitWords(to)};
    if (r.from.size() == 1) {
      single_[r.from.front()] = std::move(r.to);
    } else if (r.from.size() > 1) {
      phrases_[r.from.front()].push_back(std::move(r));
    }
  }
  for (auto& [key, list] : phrases_) {
    std::sort(list.begin(), list.end(),
              [](const Rewrite& a, const Rewrite& b) { return a.from.size() > b.from.size(); });
  }
}

std::string Normaliser::Normalise(std::string_view text) const {
  // Pass 1: fold to lower-case ASCII where we can, tokenise into words and punctuation.
  // A token is a word ([a-z0-9'] and non-ASCII letters) or one kept punctuation mark.
  std::vector<std::string> tokens;
  tokens.reserve(text.size() / 4 + 1);
  std::string word;
  auto flush = [&] {
    if (word.empty()) return;
    // Apostrophes: keep inside words for the rewrite table ("don't"), drop at the edges.
    std::size_t b = word.find_first_not_of('\'');
    std::size_t e = word.find_last_not_of('\'');
    if (b != std::string::npos) tokens.push_back(word.substr(b, e - b + 1));
    word.clear();
  };
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t start = i;
    char32_t cp = DecodeUtf8(text, i);
    char c;
    if (cp < 0x80) {
      c = static_cast<char>(cp);
      if (FoldCodePoint(cp)) c = FoldCodePoint(cp);
    } else {
      c = FoldCodePoint(cp);
      if (c == 0) {  // keep other non-ASCII characters as they are
        word.append(text.substr(start, i - start));
        continue;
      }
    }
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (IsWordChar(c)) {
      word.push_back(c);
    } else if (c == '-' && !word.empty() && i < text.size() &&
               IsWordChar(static_cast<char>(std::tolower(static_cast<unsigned char>(text[i]))))) {
      flush();  // "shoulder-blades" -> "shoulder blades", "pull-downs" -> "pull downs"
    } else {
      flush();
      if (IsKeptPunct(c)) {
        // Collapse runs ("!!!", "...") to one mark.
        if (tokens.empty() || tokens.back().size() != 1 || !IsKeptPunct(tokens.back()[0])) {
          tokens.emplace_back(1, c);
        }
      } else if (c == '-' || c == '/' || c == '&') {
        tokens.emplace_back(1, c == '&' ? ',' : c == '/' ? ' ' : '-');
        if (tokens.back() == " ") tokens.pop_back();
      }
    }
  }
  flush();

  // Pass 2: single-word rewrites (contractions, misspellings); a possessive "'s" is dropped.
  std::vector<std::string> words;
  words.reserve(tokens.size() + 4);
  for (auto& w : tokens) {
    auto it = single_.find(w);
    if (it != single_.end()) {
      words.insert(words.end(), it->second.begin(), it->second.end());
      continue;
    }
    if (w.size() > 2 && w.compare(w.size() - 2, 2, "'s") == 0) w.resize(w.size() - 2);
    w.erase(std::remove(w.begin(), w.end(), '\''), w.end());
    if (!w.empty()) words.push_back(std::move(w));
  }

  // Pass 3: phrase rewrites, written in already-rewritten words ("cannot breath" -> "cannot
  // breathe", so "can't breath" and "cant breath" both end up right).
  std::vector<std::string> final_tokens;
  final_tokens.reserve(words.size());
  for (std::size_t t = 0; t < words.size();) {
    const Rewrite* hit = nullptr;
    if (auto it = phrases_.find(words[t]); it != phrases_.end()) {
      for (const auto& r : it->second) {
        if (t + r.from.size() <= words.size() &&
            std::equal(r.from.begin(), r.from.end(), words.begin() + static_cast<std::ptrdiff_t>(t))) {
          hit = &r;
          break;
        }
      }
    }
    if (hit) {
      final_tokens.insert(final_tokens.end(), hit->to.begin(), hit->to.end());
      t += hit->from.size();
    } else {
      final_tokens.push_back(std::move(words[t++]));
    }
  }

  std::string result;
  result.reserve(text.size() + 8);
  for (const auto& tok : final_tokens) {
    bool punct = tok.size() == 1 && IsKeptPunct(tok[0]);
    if (!result.empty() && !punct) result.push_back(' ');
    result += tok;
  }
  return result;
}

}  // namespace backcheck::dialog
