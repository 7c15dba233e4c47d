// A read-only map from words to values, for the per-word look-ups of every message (concepts,
// cue phrases): an open-addressing table of 8-byte slots (32 bits of the word's hash, and where
// its entry is), so a word that is not there (most words of most messages) costs one hash and,
// nearly always, one probe of an empty or mismatched slot, in a table small enough to stay in
// cache. Built once; Find() is safe to call from many threads.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace backcheck::dialog {

// A fast 64-bit hash of a short string (8 bytes a step), never 0 (0 marks an empty slot in the
// tables that use it: here and the speller's word sets and deletion index).
inline std::uint64_t HashWord(std::string_view s) {
  constexpr std::uint64_t kMul = 0x9E3779B97F4A7C15ull;
  std::uint64_t h = 0x2545F4914F6CDD1Dull ^ (s.size() * kMul);
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t v;
    std::memcpy(&v, s.data() + i, 8);
    h = (h ^ v) * kMul;
    h ^= h >> 29;
  }
  // The last 1-7 bytes, little-endian (what a memcpy gives on x86), a byte at a time: a memcpy of
  // a variable length is a call to memmove, which was most of the cost of hashing a short word.
  std::uint64_t tail = 0;
  for (std::size_t k = 0; i + k < s.size(); ++k) {
    tail |= std::uint64_t{static_cast<unsigned char>(s[i + k])} << (8 * k);
  }
  h = (h ^ tail) * kMul;
  h ^= h >> 32;
  h = h * 0xBF58476D1CE4E5B9ull ^ (h >> 31);
  return h == 0 ? 1 : h;
}

// A std::unordered_map keyed by words that can be searched with a string_view, without building
// a std::string per look-up: for the tables built at start-up (per-message look-ups use
// WordTable below).
struct WordHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using WordMap = std::unordered_map<std::string, V, WordHash, std::equal_to<>>;

template <typename V>
class WordTable {
 public:
  // Takes (word, value) pairs with distinct words; pointers to the values stay valid.
  template <typename Range>
  void Build(const Range& entries) {
    entries_.assign(entries.begin(), entries.end());
    std::size_t cap = 64;
    while (cap < entries_.size() * 2) cap <<= 1;
    slots_.assign(cap, Slot{});
    for (std::uint32_t e = 0; e < entries_.size(); ++e) {
      const std::uint64_t h = HashWord(entries_[e].first);
      std::size_t k = h & (cap - 1);
      while (slots_[k].entry != kEmpty) k = (k + 1) & (cap - 1);
      slots_[k] = Slot{Tag(h), e};
    }
  }

  // The value of `word`, or null.
  const V* Find(std::string_view word) const { return Find(word, HashWord(word)); }
  // The same, for a word whose HashWord `h` is known (a token looked up in several tables).
  const V* Find(std::string_view word, std::uint64_t h) const {
    if (slots_.empty()) return nullptr;
    const std::uint32_t tag = Tag(h);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t k = h & mask; slots_[k].entry != kEmpty; k = (k + 1) & mask) {
      if (slots_[k].tag == tag && entries_[slots_[k].entry].first == word) return &entries_[slots_[k].entry].second;
    }
    return nullptr;
  }

 private:
  static constexpr std::uint32_t kEmpty = 0xFFFFFFFF;
  // The hash's high half: the low bits choose the slot, so the tag tells apart what collides there.
  static std::uint32_t Tag(std::uint64_t h) { return static_cast<std::uint32_t>(h >> 32); }
  struct Slot {
    std::uint32_t tag = 0;
    std::uint32_t entry = kEmpty;  // kEmpty: an empty slot
  };
  std::vector<Slot> slots_;
  std::vector<std::pair<std::string, V>> entries_;
};

}  // namespace backcheck::dialog
