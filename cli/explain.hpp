// `backcheck explain "TEXT"`: what the red-flag pipeline makes of one message, for content
// editors fixing a miss without reading C++ (issue 12, item 9): the normalised text, the words
// the speller corrected, the concepts and idioms found with their spans, each candidate mention
// of a flag (which rule or pattern, its context and the cue that decided it, or why it was
// dropped), and the flags and possible flags that result, with the reply's intent.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "dialog/engine.hpp"

namespace backcheck::cli {

// Writes the explanation of each text to `out`, as text or (json) one JSON object a line.
void Explain(const dialog::Engine& engine, const std::vector<std::string>& texts, bool json, std::ostream& out);

}  // namespace backcheck::cli
