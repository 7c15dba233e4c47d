#include "knowledge/load_text_stages.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "knowledge/loader.hpp"

namespace backcheck::knowledge {

char32_t DecodeUtf8At(std::string_view s, std::size_t& i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) {
    ++i;
    return c;
  }
  const int extra = (c >= 0xF0 && c <= 0xF4) ? 3 : (c >= 0xE0 && c < 0xF0) ? 2 : (c >= 0xC2 && c < 0xE0) ? 1 : -1;
  if (extra < 0) {
    ++i;
    return kBadUtf8;
  }
  char32_t cp = c & (0x3F >> extra);
  for (int k = 1; k <= extra; ++k) {
    if (i + k >= s.size() || (byte(i + k) & 0xC0) != 0x80) {
      ++i;
      return kBadUtf8;
    }
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  static constexpr char32_t kMin[] = {0, 0x80, 0x800, 0x10000};
  if (cp < kMin[extra] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
    ++i;
    return kBadUtf8;
  }
  i += static_cast<std::size_t>(extra) + 1;
  return cp;
}

bool IsEmojiModifier(char32_t cp) {
  return cp == 0xFE0E || cp == 0xFE0F || (cp >= 0x1F3FB && cp <= 0x1F3FF) || cp == 0x20E3 ||
         (cp >= 0xE0020 && cp <= 0xE007F);
}

bool IsEmojiBase(char32_t cp) {
  if (IsEmojiModifier(cp)) return false;
  return (cp >= 0x1F000 && cp <= 0x1FAFF) || (cp >= 0x2600 && cp <= 0x27BF) || (cp >= 0x2B00 && cp <= 0x2BFF) ||
         (cp >= 0x2300 && cp <= 0x23FF) || cp == 0x203C || cp == 0x2049 || cp == 0x3030 || cp == 0x303D ||
         cp == 0x3297 || cp == 0x3299;
}

std::string EmojiKey(std::string_view emoji) {
  std::string out;
  for (std::size_t i = 0; i < emoji.size();) {
    const std::size_t start = i;
    const char32_t cp = DecodeUtf8At(emoji, i);
    if (cp != kBadUtf8 && IsEmojiModifier(cp)) continue;
    out.append(emoji.substr(start, i - start));
  }
  return out;
}

}  // namespace backcheck::knowledge
