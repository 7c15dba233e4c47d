// LoadKnowledgeBase(): reads the article and each data file, checks each file, then what the
// files say about each other, then what the specification requires them to cover. The pieces
// are described in loader_internal.hpp.
#include "knowledge/loader.hpp"

#include <iostream>

#include "knowledge/knowledge_version.hpp"
#include "knowledge/load_text_stages.hpp"
#include "knowledge/loader_internal.hpp"

namespace backcheck::knowledge {
namespace {

// Runs one file's loader. Every access in the loaders is typed (loader_support.cpp), so no
// nlohmann exception is expected; should one escape all the same, it is still a refusal naming
// the file, never a crash.
template <typename F>
auto Guarded(const char* file, F&& load) -> decltype(load()) {
  try {
    return load();
  } catch (const nlohmann::json::exception& e) {
    throw KnowledgeError(std::string(file) + ": unexpected value: " + e.what());
  }
}

}  // namespace

std::shared_ptr<const KnowledgeBase> LoadKnowledgeBase(const std::filesystem::path& dir) {
  using namespace load;
  auto kb = std::make_shared<KnowledgeBase>();
  kb->dir = dir.string();
  kb->version = KnowledgeVersion(dir);
  try {
    kb->article = Article::Parse(ReadFile(dir / "article.txt", "article.txt"));
  } catch (const std::invalid_argument& e) {
    throw KnowledgeError(std::string("article.txt: ") + e.what());
  }
  // Each file on its own, and what the specification requires it to hold.
  kb->intents = Guarded("intents.jsonc", [&] { return LoadIntents(ParseJson(dir, "intents.jsonc")); });
  CheckIntentCoverage(kb->intents);
  kb->topics = Guarded("topics.jsonc", [&] { return LoadTopics(ParseJson(dir, "topics.jsonc"), kb->article); });
  Guarded("concepts.jsonc", [&] { LoadConcepts(ParseJson(dir, "concepts.jsonc"), kb->red_flags); });
  Guarded("red_flags.jsonc", [&] { LoadRedFlags(ParseJson(dir, "red_flags.jsonc"), kb->article, kb->red_flags); });
  CheckFlagCoverage(kb->red_flags);
  kb->flow = Guarded("flow.jsonc", [&] { return LoadFlow(ParseJson(dir, "flow.jsonc"), kb->article); });
  CheckStateCoverage(kb->flow);
  CheckTextCoverage(kb->flow);
  kb->language = Guarded("language.jsonc", [&] { return LoadLanguage(ParseJson(dir, "language.jsonc"), kb->warnings); });
  kb->language.quantities = Guarded("quantities.jsonc", [&] { return LoadQuantities(ParseJson(dir, "quantities.jsonc")); });
  kb->language.emoji = Guarded("emoji.jsonc", [&] { return LoadEmoji(ParseJson(dir, "emoji.jsonc")); });
  // What the files say about each other.
  CheckCrossReferences(*kb);
  // Hashed before and after reading: a folder edited while it was read is not given a version
  // that names content it does not hold (a reload then just runs again).
  if (KnowledgeVersion(dir) != kb->version) {
    throw KnowledgeError("the folder changed while it was read: load it again once the edit is saved");
  }
  for (const auto& warning : kb->warnings) std::cerr << "knowledge base " << kb->dir << ": warning: " << warning << "\n";
  return kb;
}

}  // namespace backcheck::knowledge
