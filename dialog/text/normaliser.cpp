#include "dialog/text/normaliser.hpp"

#include "dialog/words.hpp"
#include "knowledge/text_stages.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>

namespace backcheck::dialog {
namespace {

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

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// An ASCII letter, digit or apostrophe: a byte the loop below folds to nothing and lower-cases
// into the current word, whatever comes before or after it.
bool IsAsciiWordByte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c) || c == '\'';
}

// Appends the run of ASCII word bytes at text[i...] to `word`, lower-cased, and moves i past it:
// what the loop would do a byte at a time, without decoding and folding each (most of a message).
void AppendAsciiWordRun(std::string_view text, std::size_t& i, std::string& word) {
  std::size_t end = i;
  while (end < text.size() && IsAsciiWordByte(text[end])) ++end;
  for (; i < end; ++i) {
    const char c = text[i];
    word.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  }
}

bool IsKeptPunct(char c) { return c == '.' || c == ',' || c == ';' || c == ':' || c == '!' || c == '?'; }

bool IsSpaceByte(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// A whitespace-delimited chunk of the raw text that is a URL or an e-mail address.
bool IsLink(std::string_view c) {
  if (c.find("://") != std::string_view::npos) return true;
  for (std::size_t k = 0; k + 4 <= c.size(); ++k) {  // "www." at the start of a word
    if ((c[k] == 'w' || c[k] == 'W') && (c[k + 1] == 'w' || c[k + 1] == 'W') && (c[k + 2] == 'w' || c[k + 2] == 'W') &&
        c[k + 3] == '.' && (k == 0 || !IsAlpha(c[k - 1])))
      return true;
  }
  if (std::size_t at = c.find('@'); at != std::string_view::npos && at > 0) {  // name@host.tld
    std::size_t dot = c.find('.', at);
    if (dot != std::string_view::npos && dot > at + 1 && dot + 1 < c.size() && IsAlpha(c[dot + 1])) return true;
  }
  if (std::size_t slash = c.find('/'); slash != std::string_view::npos && slash > 0) {  // host.tld/path
    std::size_t dot = c.rfind('.', slash);
    if (dot != std::string_view::npos && dot > 0 && dot + 1 < slash && IsAlpha(c[dot - 1]) && IsAlpha(c[dot + 1]))
      return true;
  }
  return false;
}

// The byte ranges [begin, end) of `text` that are links (IsLink), in order.
std::vector<std::pair<std::size_t, std::size_t>> LinkSpans(std::string_view text) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  bool maybe = false;  // one cheap pass first: most messages have no '@', no '/' and no "www."
  for (std::size_t k = 0; k < text.size() && !maybe; ++k) {
    const char c = text[k];
    maybe = c == '@' || c == '/' || (c == '.' && k >= 2 && (text[k - 1] | 0x20) == 'w' && (text[k - 2] | 0x20) == 'w');
  }
  if (!maybe) return out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && IsSpaceByte(text[i])) ++i;
    std::size_t j = i;
    while (j < text.size() && !IsSpaceByte(text[j])) ++j;
    if (j > i && IsLink(text.substr(i, j - i))) out.emplace_back(i, j);
    i = j;
  }
  return out;
}

}  // namespace

Normaliser::Normaliser(const knowledge::Language& language, std::shared_ptr<const Speller> speller)
    : speller_(speller && speller->active() ? std::move(speller) : nullptr),
      emoji_(language.emoji),
      quantities_(language.quantities) {
  WordMap<Entry> rewrites;  // while building
  for (const auto& [from, to] : language.rewrites) {
    Rewrite r{SplitWords(from), SplitWords(to)};
    if (r.from.size() == 1) {
      Entry& e = rewrites[r.from.front()];
      e.has_single = true;
      e.single = std::move(r.to);
    } else if (r.from.size() > 1) {
      rewrites[r.from.front()].phrases.push_back(std::move(r));
    }
  }
  for (auto& [key, entry] : rewrites) {
    auto& list = entry.phrases;
    std::sort(list.begin(), list.end(),
              [](const Rewrite& a, const Rewrite& b) { return a.from.size() > b.from.size(); });
  }
  rewrites_.Build(rewrites);
}

std::string Normaliser::Normalise(std::string_view text) const {
  std::string without_emoji;
  if (emoji_.Rewrite(text, without_emoji)) text = without_emoji;
  std::string words = NormaliseWords(text);
  std::string out;
  if (quantities_.Rewrite(words, out)) return out;
  return words;
}

std::string Normaliser::NormaliseWords(std::string_view text) const {
  // Pass 1: fold to lower-case ASCII where we can and cut into tokens (a word, or one kept
  // punctuation mark), applying single-word rewrites as each word ends. Tokens are spans of
  // `buf`, so no token costs an allocation of its own.
  struct Span {
    std::uint32_t begin, size;
    const Entry* entry;  // the token's rewrite entry, when already looked up
    bool looked_up;
  };
  // Scratch space kept per thread (cleared, capacity kept): this runs for every message, and
  // allocating the buffer and the token list anew each time was two allocations a message.
  thread_local std::string buf;
  thread_local std::vector<Span> tokens;
  buf.clear();
  tokens.clear();
  buf.reserve(text.size() + 16);
  tokens.reserve(text.size() / 4 + 4);
  auto push = [&](std::string_view tok) {
    tokens.push_back(Span{static_cast<std::uint32_t>(buf.size()), static_cast<std::uint32_t>(tok.size()), nullptr, false});
    buf.append(tok);
  };
  // Words of links are neither spell-checked nor rewritten ("reddit.com/r/..." keeps its "r");
  // `word_start` is where the current word began in `text`.
  const auto links = LinkSpans(text);
  std::size_t word_start = 0;
  auto in_link = [&](std::size_t pos) {
    for (const auto& [b, e] : links) {
      if (pos >= b && pos < e) return true;
    }
    return false;
  };
  thread_local std::string word;  // the word being read (scratch, as above)
  word.clear();
  auto flush = [&] {
    if (word.empty()) return;
    // Apostrophes: kept inside the word for the rewrite table ("don't"), dropped at the edges.
    std::size_t b = word.find_first_not_of('\'');
    std::size_t e = word.find_last_not_of('\'');
    if (b != std::string::npos) {
      std::string_view w(word.data() + b, e - b + 1);
      const bool link_word = !links.empty() && in_link(word_start);
      const Entry* found = link_word ? nullptr : rewrites_.Find(w);
      if (found != nullptr && found->has_single) {
        for (const auto& r : found->single) push(r);
      } else {
        const bool plain = !link_word && w.find('\'') == std::string_view::npos;  // the lookup above stands
        if (w.size() > 2 && w.substr(w.size() - 2) == "'s") w.remove_suffix(2);  // possessive
        std::uint32_t at = static_cast<std::uint32_t>(buf.size());
        if (w.find('\'') == std::string_view::npos) {
          buf.append(w);  // the common case, at once
        } else {
          for (char c : w) {
            if (c != '\'') buf.push_back(c);
          }
        }
        const Entry* entry = plain ? found : nullptr;
        bool looked_up = plain;
        // Spelling: a word the table knows is the table's; any other may be a typo of ours.
        if (speller_ && buf.size() > at && found == nullptr && !link_word) {
          if (auto fixed = speller_->Correct(std::string_view(buf.data() + at, buf.size() - at))) {
            buf.resize(at);
            const Entry* fixed_entry = rewrites_.Find(*fixed);
            if (fixed_entry != nullptr && fixed_entry->has_single) {
              for (const auto& r : fixed_entry->single) push(r);
              word.clear();
              return;
            }
            buf.append(*fixed);
            entry = fixed_entry;
            looked_up = true;
          }
        }
        if (buf.size() > at) {
          tokens.push_back(Span{at, static_cast<std::uint32_t>(buf.size() - at), entry, looked_up});
        }
      }
    }
    word.clear();
  };
  auto last_is_punct = [&] {
    return !tokens.empty() && tokens.back().size == 1 && IsKeptPunct(buf[tokens.back().begin]);
  };
  auto last_is_number = [&] {
    return !tokens.empty() && tokens.back().size > 0 && IsDigit(buf[tokens.back().begin + tokens.back().size - 1]);
  };
  auto digit_after_space = [&](std::size_t k) {
    while (k < text.size() && text[k] == ' ') ++k;
    return k < text.size() && IsDigit(text[k]);
  };
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t start = i;
    // ASCII, nearly every byte of a message, without the call to the UTF-8 decoder.
    const auto byte = static_cast<unsigned char>(text[i]);
    char32_t cp = byte < 0x80 ? (++i, char32_t{byte}) : knowledge::DecodeUtf8At(text, i);
    if (cp == knowledge::kBadUtf8) cp = 0xFFFD;  // an invalid byte reads as U+FFFD
    char c = FoldCodePoint(cp);
    if (c == 0) {
      if (cp >= 0x80) {  // keep other non-ASCII characters; invalid bytes become U+FFFD
        if (word.empty()) word_start = start;
        word.append(cp == 0xFFFD ? std::string_view("\xEF\xBF\xBD") : text.substr(start, i - start));
        continue;
      }
      c = static_cast<char>(cp);
    }
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    const bool digit_before = !word.empty() && IsDigit(word.back());
    const bool digit_after = i < text.size() && IsDigit(text[i]);
    if (IsWordChar(c)) {
      if (word.empty()) word_start = start;
      word.push_back(c);
      AppendAsciiWordRun(text, i, word);
    } else if ((c == '.' || c == ',' || c == '/') && digit_before && digit_after) {
      word.push_back(c);  // "38.5", "38,5", "9/10": for the quantities stage
    } else if (c == '/' && (digit_before || (word.empty() && last_is_number())) && digit_after_space(i)) {
      flush();
      push("/");  // "9 / 10", "9/ 10"
    } else if (c == '-' && !word.empty() && i < text.size() &&
               IsWordChar(static_cast<char>(std::tolower(static_cast<unsigned char>(text[i]))))) {
      flush();  // "shoulder-blades" -> "shoulder blades", "pull-downs" -> "pull downs"
    } else {
      flush();
      if (IsKeptPunct(c)) {
        if (!last_is_punct()) push(std::string_view(&c, 1));  // "!!!" and "..." become one mark
      } else if (c == '-') {
        push("-");
      } else if (c == '&') {
        // Between letters it is an abbreviation's ("a&e", "r&r"): read "a and e"; elsewhere it
        // joins clauses as "and" does ("sore & stiff & my arm is numb").
        const bool letter_before = start > 0 && std::isalpha(static_cast<unsigned char>(text[start - 1]));
        const bool letter_after = i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]));
        push(letter_before && letter_after ? "and" : ",");
      }
    }
  }
  flush();

  // Pass 2: phrase rewrites, written in already-rewritten words ("cannot breath" -> "cannot
  // breathe", so "can't breath" and "cant breath" both end up right), joined with single spaces.
  auto tok = [&](std::size_t t) { return std::string_view(buf.data() + tokens[t].begin, tokens[t].size); };
  std::string result;
  result.reserve(buf.size() + tokens.size() + 8);
  auto emit = [&](std::string_view w) {
    bool punct = w.size() == 1 && IsKeptPunct(w[0]);
    if (!result.empty() && !punct) result.push_back(' ');
    result.append(w);
  };
  for (std::size_t t = 0; t < tokens.size();) {
    const Rewrite* hit = nullptr;
    const Entry* entry = tokens[t].entry;
    if (!tokens[t].looked_up) {
      entry = rewrites_.Find(tok(t));
    }
    if (entry) {
      for (const auto& r : entry->phrases) {
        if (t + r.from.size() > tokens.size()) continue;
        bool all = true;
        for (std::size_t k = 1; k < r.from.size() && all; ++k) all = tok(t + k) == r.from[k];
        if (all) {
          hit = &r;
          break;
        }
      }
    }
    if (hit) {
      for (const auto& w : hit->to) emit(w);
      t += hit->from.size();
    } else {
      emit(tok(t++));
    }
  }
  return result;
}

}  // namespace backcheck::dialog
