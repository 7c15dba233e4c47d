#include "dialog/text/emoji.hpp"

#include <algorithm>

namespace backcheck::dialog {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool IsLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
char Upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }
char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsLower(std::string_view text, std::string_view lower) {
  if (text.size() != lower.size()) return false;
  for (std::size_t k = 0; k < text.size(); ++k) {
    if (Lower(text[k]) != lower[k]) return false;
  }
  return true;
}

bool IsRegionalIndicator(char32_t cp) { return cp >= 0x1F1E6 && cp <= 0x1F1FF; }

// True when `out` ends with the whole words `words` (then maybe one space), case-insensitively.
bool EndsWithWords(const std::string& out, std::string_view words) {
  std::size_t end = out.size();
  while (end > 0 && out[end - 1] == ' ') --end;
  if (end < words.size()) return false;
  const std::size_t begin = end - words.size();
  if (begin > 0 && !IsSpace(out[begin - 1])) return false;
  return EqualsLower(std::string_view(out).substr(begin, words.size()), words);
}

}  // namespace

EmojiRewriter::EmojiRewriter(const knowledge::EmojiTable& table) {
  for (const auto& e : table.emoji) emoji_[e.key] = e.words;
  for (const auto& e : table.emoticons) {
    if (e.key.empty()) continue;
    const auto first = static_cast<unsigned char>(e.key[0]);
    if (first >= 128) continue;  // validated away by the loader
    emoticons_[first].push_back({e.key, e.words});
    trigger_[first] = true;
    if (first >= 'a' && first <= 'z') trigger_[first - 'a' + 'A'] = true;
  }
  for (auto& list : emoticons_) {
    std::stable_sort(list.begin(), list.end(),
                     [](const Emoticon& a, const Emoticon& b) { return a.text.size() > b.text.size(); });
  }
  // Lead bytes of the code points this stage acts on: U+2000-U+3FFF (0xE2, 0xE3: dingbats,
  // symbols, ZWJ, keycap mark), U+FE0E/FE0F (0xEF), U+1F000-U+1FAFF (0xF0) and tags (0xF3).
  for (int b : {0xE2, 0xE3, 0xEF, 0xF0, 0xF3}) trigger_[static_cast<std::size_t>(b)] = true;
  // The pre-check's bytes: the lead bytes above, and for each emoticon one character it cannot
  // be without: its first that is not a letter or digit (":" of ":)", "_" of "t_t"), else its
  // first ("x" of "xd"), in both cases.
  for (std::size_t b = 0x80; b < 256; ++b) precheck_[b] = trigger_[b];
  for (const auto& e : table.emoticons) {
    if (e.key.empty()) continue;
    char need = e.key[0];
    for (char c : e.key) {
      if (!IsLetter(c) && !(c >= '0' && c <= '9')) {
        need = c;
        break;
      }
    }
    precheck_[static_cast<unsigned char>(need)] = 1;
    precheck_[static_cast<unsigned char>(Upper(need))] = 1;
  }
}

bool EmojiRewriter::Rewrite(std::string_view text, std::string& out) const {
  const std::size_t n = text.size();
  // The pre-check, without a branch per byte: is there a byte a rewrite needs (precheck_)?
  unsigned acc = 0;
  for (char ch : text) acc |= precheck_[static_cast<unsigned char>(ch)];
  if (acc == 0) return false;
  std::size_t i = 0;

  std::string res;          // built from the first change on
  bool changed = false;
  std::size_t copied = 0;   // text[copied, here) is still to be copied
  auto begin_change = [&](std::size_t here) {
    if (!changed) {
      res.reserve(n + 16);
      changed = true;
    }
    res.append(text.substr(copied, here - copied));
  };
  // Puts `words` (or, for decoration, nothing) where text[start, end) was, as a word of its own.
  auto put = [&](std::size_t start, std::size_t end, std::string_view words, bool keep) {
    begin_change(start);
    if (!res.empty() && !IsSpace(res.back())) res.push_back(' ');
    if (keep) {
      res.append(text.substr(start, end - start));
    } else if (!words.empty() && !EndsWithWords(res, words)) {
      res.append(words);
    }
    const bool wrote = !res.empty() && !IsSpace(res.back());
    if (end < n && !IsSpace(text[end]) && wrote) res.push_back(' ');
    if (!wrote && end < n && IsSpace(text[end]) && (res.empty() || IsSpace(res.back()))) ++end;  // no double space
    copied = end;
    return end;
  };

  while (i < n) {
    const unsigned char b = static_cast<unsigned char>(text[i]);
    if (!trigger_[b]) {
      ++i;
      continue;
    }
    if (b < 0x80) {  // an emoticon?
      const bool at_start = i == 0 || IsSpace(text[i - 1]);
      const bool after_letter = i > 0 && IsLetter(text[i - 1]);
      if (!at_start && !(after_letter && (b == ':' || b == ';' || b == '='))) {  // inside a word: "t" of "the"
        ++i;
        continue;
      }
      std::size_t matched_end = 0;
      const Emoticon* hit = nullptr;
      for (const auto& e : emoticons_[static_cast<unsigned char>(Lower(static_cast<char>(b)))]) {
        if (i + e.text.size() > n || !EqualsLower(text.substr(i, e.text.size()), e.text)) continue;
        std::size_t end = i + e.text.size();
        const char last = e.text.back();
        if (last == ')' || last == '(') {
          while (end < n && text[end] == last) ++end;
        }
        const bool end_space = end == n || IsSpace(text[end]);
        const bool end_punct = end < n && (text[end] == '.' || text[end] == ',' || text[end] == '!' || text[end] == '?');
        const bool glue_ok = after_letter && (e.text[0] == ':' || e.text[0] == ';' || e.text[0] == '=');
        if ((at_start && (end_space || end_punct)) || (glue_ok && end_space)) {
          hit = &e;
          matched_end = end;
          break;
        }
      }
      if (hit) {
        i = put(i, matched_end, hit->words, false);
      } else {
        ++i;
      }
      continue;
    }
    const std::size_t start = i;
    const char32_t cp = knowledge::DecodeUtf8At(text, i);
    if (cp == knowledge::kBadUtf8) continue;  // copied as it is
    if (knowledge::IsEmojiModifier(cp) || cp == knowledge::kZwj) {
      begin_change(start);  // a modifier with no emoji before it: dropped
      copied = i;
      continue;
    }
    if (!knowledge::IsEmojiBase(cp)) continue;
    // One cluster: base (modifiers)* (ZWJ base (modifiers)*)*, or two regional indicators.
    std::string key(text.substr(start, i - start));
    std::size_t first_end = key.size();
    bool joined = false;
    if (IsRegionalIndicator(cp) && i < n) {
      std::size_t j = i;
      if (IsRegionalIndicator(knowledge::DecodeUtf8At(text, j))) {
        key.append(text.substr(i, j - i));
        first_end = key.size();
        i = j;
      }
    }
    while (i < n) {
      std::size_t j = i;
      const char32_t next = knowledge::DecodeUtf8At(text, j);
      if (next != knowledge::kBadUtf8 && knowledge::IsEmojiModifier(next)) {
        i = j;
        continue;
      }
      if (next == knowledge::kZwj && j < n) {
        std::size_t k = j;
        const char32_t after = knowledge::DecodeUtf8At(text, k);
        if (after != knowledge::kBadUtf8 && knowledge::IsEmojiBase(after)) {
          key.append(text.substr(i, k - i));  // ZWJ and the base
          joined = true;
          i = k;
          continue;
        }
      }
      break;
    }
    auto it = emoji_.find(key);
    if (it == emoji_.end() && joined) it = emoji_.find(key.substr(0, first_end));
    if (it != emoji_.end()) {
      i = put(start, i, it->second, false);
    } else {
      const bool glued = (start > 0 && !IsSpace(text[start - 1])) || (i < n && !IsSpace(text[i]));
      if (glued) i = put(start, i, {}, true);  // kept, as a word of its own
    }
  }
  if (!changed) return false;
  res.append(text.substr(copied));
  out = std::move(res);
  return true;
}

std::string EmojiRewriter::Apply(std::string_view text) const {
  std::string out;
  if (Rewrite(text, out)) return out;
  return std::string(text);
}

}  // namespace backcheck::dialog
