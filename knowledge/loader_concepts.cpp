// concepts.jsonc: the red-flag concepts (lay words per idea), context concepts and idioms.
#include <sstream>

#include "knowledge/loader_internal.hpp"

namespace backcheck::knowledge::load {
namespace {

// A term or idiom of concepts.jsonc: words of normalised text (lower-case a-z, digits, ' and
// "*" for any one word), not starting or ending with "*".
void CheckTerm(const std::string& term, const Where& where) {
  std::istringstream words(term);
  std::vector<std::string> list;
  for (std::string w; words >> w;) list.push_back(w);
  if (list.empty()) where.Fail("empty term");
  for (const auto& w : list) {
    const std::string bare = w.size() > 1 && w[0] == '=' ? w.substr(1) : w;
    const bool ok = w == "*" || std::all_of(bare.begin(), bare.end(), [](char c) {
                      return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '\'' ||
                             static_cast<unsigned char>(c) >= 0x80;
                    });
    if (!ok) where.Fail("term '" + term + "': '" + w + "' is not a word of normalised text (lower case, no punctuation)");
  }
  if (list.front() == "*" || list.back() == "*") where.Fail("term '" + term + "' starts or ends with '*'");
}

}  // namespace

void LoadConcepts(const json& doc, RedFlagLexicon& lex) {
  const Where file{"concepts.jsonc", {}};
  CheckKeys(doc, file, {"concepts", "context_concepts", "idioms"});
  const json& concepts = Field(doc, "concepts", file);
  if (!concepts.is_object()) file.Fail("field 'concepts' must be an object (concept id -> terms)");
  for (auto it = concepts.begin(); it != concepts.end(); ++it) {
    Where w = file.With("concept '" + it.key() + "'");
    const bool id_ok = !it.key().empty() && std::all_of(it.key().begin(), it.key().end(), [](char c) {
      return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    });
    if (!id_ok) w.Fail("a concept id is upper case letters, digits and '_'");
    Concept c{it.key(), Strings(concepts, it.key().c_str(), w, true)};
    if (c.terms.empty()) w.Fail("no terms");
    for (const auto& t : c.terms) CheckTerm(t, w);
    lex.concepts.push_back(std::move(c));
  }
  if (lex.concepts.size() > 128) file.Fail("at most 128 concepts are supported");
  lex.context_concepts = Strings(doc, "context_concepts", file);
  for (const auto& id : lex.context_concepts) {
    if (!HasId(lex.concepts, id)) file.Fail("context_concepts: unknown concept '" + id + "'");
  }
  lex.idioms = Strings(doc, "idioms", file);
  for (const auto& t : lex.idioms) CheckTerm(t, file.With("idioms"));
}

}  // namespace backcheck::knowledge::load
