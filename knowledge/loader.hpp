// Loading and validating a knowledge base folder.
//
// The folder holds `article.txt` and `data/{topics,intents,red_flags,flow,language}.jsonc`
// (JSON with // and /* */ comments). Loading validates everything the assistant relies on and
// refuses a bad folder with a KnowledgeError whose message names the file, the item (topic,
// intent, flag, state...) and the problem, e.g.
//   topics.jsonc: topic 'doms': source 2: quote not found in section 'Common Muscular Causes...'
#pragma once

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "knowledge/knowledge_base.hpp"

namespace backcheck::knowledge {

class KnowledgeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The intent ids of SPEC section 4 and the flag ids of SPEC section 5; the data must define each.
const std::vector<std::string>& RequiredIntents();
const std::vector<std::string>& RequiredFlags();
// The dialogue states of SPEC section 3; the flow must define exactly these.
const std::vector<std::string>& RequiredStates();
// Events the flow may name besides intent ids: see dialog/engine.hpp.
const std::vector<std::string>& FlowEvents();
// Named texts of flow.jsonc the dialogue uses.
const std::vector<std::string>& RequiredTexts();

// Loads and validates the knowledge base in `dir`. Throws KnowledgeError on any problem.
std::shared_ptr<const KnowledgeBase> LoadKnowledgeBase(const std::filesystem::path& dir);

// The sentences each topic (and red flag, and tailoring rule) cites: for sentence i,
// result[i] lists the citing ids. Used by the coverage report.
std::vector<std::vector<std::string>> CitationsBySentence(const KnowledgeBase& kb);

}  // namespace backcheck::knowledge
