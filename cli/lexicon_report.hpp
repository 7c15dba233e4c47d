// `backcheck lexicon-report`: every entry of the red-flag lexicon with the test sentences that
// exercise it (issue 12, "Every lexicon entry is exercised"), and `backcheck sentences`: the
// labelled sentences of tests/red_flags/sentences.jsonc run as tests. See tests/red_flags/README.md.
//
// The test sentences are the messages of every script under tests/conversations (.convo and
// .jsonl), the messages of tests/eval/dev.jsonl and the sentences (and known misses) of
// tests/red_flags/sentences.jsonc. Each goes through the detector with a trace; an entry is
// exercised when:
//   pattern        a candidate by that pattern appeared (dropped or not);
//   except         a candidate of the flag was dropped as "except" and this except regex matches
//                  the normalised text overlapping the candidate;
//   requires       a pattern candidate of the flag was not dropped as "requires" and this regex
//                  matches its sentence;
//   rule, ask      a candidate by that rule (or ask rule);
//   concept term   the concept was found by that term; idiom: the idiom was found;
//   cue            the phrase (whole words) is the cue that decided a candidate, or occurs in a
//                  sentence where a candidate was decided (for the structural lists
//                  clause_breaks, soft_breaks, subject_starts, first_person, definite,
//                  question_starts: where any candidate appeared).
// A term written twice in one concept can never be the one found (the first copy is): it is
// credited with its twin's sentences and listed as a duplicate to tidy, not gated.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <stdexcept>
#include <string>
#include <vector>

#include "dialog/engine.hpp"

namespace backcheck::cli {

class SentencesError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One labelled sentence of tests/red_flags/sentences.jsonc.
struct LabelledSentence {
  std::string text;
  std::vector<std::string> red_flags;       // the exact set the first reply reports
  std::vector<std::string> possible_flags;  // the exact set it asks about ([] when not given)
  std::string exercises;                    // what it is there for (documentation)
  std::string note;                         // known misses: what the detector does instead
  std::size_t line = 0;
  bool known_miss = false;
};

// Reads the `sentences` and `known_misses` arrays. Throws SentencesError naming the file (and the
// line) on a malformed entry or an unknown flag id.
std::vector<LabelledSentence> LoadLabelledSentences(const std::filesystem::path& file,
                                                    const knowledge::KnowledgeBase& kb);

struct TestSentence {
  std::string text;
  std::string source;  // "tests/conversations/red_flags/blood.convo:4"
  bool known_miss = false;
};

// Every test sentence under `tests_dir` (see above). Throws ScriptError or SentencesError.
std::vector<TestSentence> CollectTestSentences(const std::filesystem::path& tests_dir,
                                               const knowledge::KnowledgeBase& kb);

// Prints the report (text, or one JSON document); returns 1 when an entry has no sentence.
int LexiconReport(const dialog::Engine& engine, const std::vector<TestSentence>& sentences, bool json,
                  std::ostream& out);

// Runs each sentence as the first message of a new conversation and checks red_flags and
// possible_flags; known misses are reported, not counted. Returns 1 on any failure.
int RunLabelledSentences(const dialog::Engine& engine, const std::vector<LabelledSentence>& sentences,
                         std::ostream& out);

}  // namespace backcheck::cli
