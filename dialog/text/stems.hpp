// Word forms without listing them (issue 12, item 2): Snowball's English stemmer (Porter2, Debian
// libstemmer), so that "tingle", "tingles", "tingling" and "tingly" are one lexicon entry.
//
// Stem() runs the stemmer; Forms() lists the regular inflections of a word that share its stem,
// so that a lexicon can be expanded once at start-up into the surface forms a message may use
// ("tingle" -> tingle, tingles, tingled, tingling, tingly) and a message word is then found by
// one hash look-up instead of stemming every word of every message.
//
// Thread-safe: each thread uses its own stemmer (libstemmer's objects are not shareable).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace backcheck::dialog {

// The Porter2 stem of a lower-case ASCII word ("breathing" -> "breath", "tingly" -> "ting").
// Anything else (digits, non-ASCII) is returned as it is.
std::string Stem(std::string_view word);

// `word` and the regular inflections of it and of its stem (-s, -es, -ed, -ing, -er, -y, -ly,
// -ness, with a final e dropped, y -> i and a doubled final consonant) whose stem is Stem(word).
// Also the "-ly" adjective of a "-le" word (tingle -> tingly), whose Porter2 stem differs.
// Irregular forms ("bled", "fell") are not found: a lexicon lists them.
std::vector<std::string> Forms(std::string_view word);

// A cheap pre-check before stemming: the key of a word's first three bytes, 'y' read as 'i' and
// every byte but a-z as one value (a shorter word is padded with that value), in [0, kStemKeys).
// Porter2 strips suffixes and turns a 'y' into 'i' ("cry" -> "cri") but never otherwise changes
// the first three letters, so StemKey(Stem(w)) == StemKey(w) for every word w of three or more
// bytes whose stem has three or more, except StemsOutsideItsKey(w) and a stem of three bytes
// ending in 'e', which may come from a word that shares only its first two ("aging" -> "age"):
// checked over the whole dictionary in tests/unit/stems_test.cpp.
inline constexpr std::size_t kStemKeys = 27 * 27 * 27;
std::size_t StemKey(std::string_view word);
bool StemsOutsideItsKey(std::string_view word);  // Porter2's "dying", "lying", "tying" (-> "die"...)

}  // namespace backcheck::dialog
