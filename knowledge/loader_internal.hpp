// Internal to the knowledge library: the pieces LoadKnowledgeBase() (loader.cpp) is made of.
//
//   loader_support.cpp       reading JSON with comments; typed access to fields that refuses a
//                            value of the wrong type or an unknown key with a KnowledgeError
//                            naming the file, the item and the problem (no nlohmann exception
//                            ever leaves the loader); patterns; sources
//   loader_<file>.cpp        one loader per data file: its shape and what it can check alone
//   loader_cross_checks.cpp  the ids one file names that another defines
//   loader_coverage.cpp      what the specification requires the data to cover (intents, flags,
//                            states, texts) and which article sentences the data cites
#pragma once

#include <algorithm>
#include <filesystem>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "knowledge/knowledge_base.hpp"
#include "knowledge/loader.hpp"

namespace backcheck::knowledge::load {

using nlohmann::json;

// Names the place in the data a problem was found: "topics.jsonc: topic 'doms'".
struct Where {
  std::string file;
  std::string item;  // may be empty

  [[noreturn]] void Fail(const std::string& problem) const;
  Where With(const std::string& what) const { return {file, item.empty() ? what : item + ": " + what}; }
};

// ---- reading -------------------------------------------------------------------------------
std::string ReadFile(const std::filesystem::path& path, const std::string& name);
// data/`name` of `dir`, JSON with // and /* */ comments.
json ParseJson(const std::filesystem::path& dir, const std::string& name);

// ---- typed access ---------------------------------------------------------------------------
// `obj` must be an object whose keys are all in `known`.
void CheckKeys(const json& obj, const Where& where, std::initializer_list<std::string_view> known);
// The field `key` of object `obj` (which must exist).
const json& Field(const json& obj, const char* key, const Where& where);
const json& Object(const json& obj, const char* key, const Where& where);  // an object
const json& Array(const json& obj, const char* key, const Where& where);   // an array
std::string String(const json& obj, const char* key, const Where& where, bool allow_empty = false);
std::string OptString(const json& obj, const char* key, const Where& where);  // "" when absent
// An array of non-empty strings; absent: empty unless `required`.
std::vector<std::string> Strings(const json& obj, const char* key, const Where& where, bool required = false);
int Int(const json& obj, const char* key, const Where& where, long long lo, long long hi);
std::optional<int> OptInt(const json& obj, const char* key, const Where& where, long long lo, long long hi);
std::optional<bool> OptBool(const json& obj, const char* key, const Where& where);
double Number(const json& obj, const char* key, const Where& where);  // finite
// A value already in hand (an array element or a map value), described by `what` in errors.
const std::string& StringValue(const json& v, const Where& where, const std::string& what, bool allow_empty = false);
int IntValue(const json& v, const Where& where, const std::string& what, long long lo, long long hi);

// ---- shared checks --------------------------------------------------------------------------
void CheckPattern(const std::string& pattern, std::size_t index, const Where& where);
void CheckPatterns(const std::vector<std::string>& patterns, const Where& where);
// The optional "sources" array: each {section, quote} must occur verbatim in the article.
std::vector<Source> Sources(const json& obj, const Article& article, const Where& where);
bool ValidUtf8(std::string_view s);
// Words as the normaliser writes them: lower-case a-z, digits, ' and non-ASCII letters or signs
// ("°c"), separated by single spaces.
std::vector<std::string> NormalisedWords(const std::string& text, const Where& where, const char* what);
// Replacement words: lower-case ASCII words and digits, single spaces; empty only if allowed.
std::string OutputWords(const std::string& text, const Where& where, const char* what, bool allow_empty);

template <typename T>
void CheckUnique(const std::vector<T>& items, const Where& where, const char* what) {
  std::set<std::string> seen;
  for (const auto& item : items) {
    if (!seen.insert(item.id).second) where.Fail(std::string("duplicate ") + what + " '" + item.id + "'");
  }
}

template <typename T>
bool HasId(const std::vector<T>& items, std::string_view id) {
  return std::any_of(items.begin(), items.end(), [&](const T& x) { return x.id == id; });
}

// ---- one loader per file --------------------------------------------------------------------
std::vector<Intent> LoadIntents(const json& doc);
std::vector<Topic> LoadTopics(const json& doc, const Article& article);
void LoadConcepts(const json& doc, RedFlagLexicon& lex);
// Needs the concepts (LoadConcepts) first: rules name them.
void LoadRedFlags(const json& doc, const Article& article, RedFlagLexicon& lex);
Flow LoadFlow(const json& doc, const Article& article);
// Problems that do not refuse the file (a rewrite that can never apply) go to `warnings`.
Language LoadLanguage(const json& doc, std::vector<std::string>& warnings);

// ---- across files ---------------------------------------------------------------------------
// Every id a file names that another file defines: topics and state answers name intents,
// intents' state_priority names flow states, flow events name intents, screening questions name
// flags, tailoring rules name exercise categories and pain qualities of language.jsonc.
void CheckCrossReferences(const KnowledgeBase& kb);

// ---- coverage -------------------------------------------------------------------------------
void CheckIntentCoverage(const std::vector<Intent>& intents);   // SPEC section 4, "as"
void CheckFlagCoverage(const RedFlagLexicon& lex);              // SPEC section 5
void CheckStateCoverage(const Flow& flow);                      // SPEC section 3
void CheckTextCoverage(const Flow& flow);                       // RequiredTexts(), no unknown text
void CheckTopicCoverage(const std::vector<Topic>& topics, const std::vector<Intent>& intents);  // one per intent

// The state roles by name (flow.jsonc "role").
const std::vector<std::pair<const char*, StateRole>>& StateRoles();

}  // namespace backcheck::knowledge::load
