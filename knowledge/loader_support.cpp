// Reading the data files and typed access to their fields (see loader_internal.hpp).
//
// Every read of a JSON value in the loader goes through these helpers, which check the value's
// type (and range) first, so a value of the wrong type is refused with a KnowledgeError naming
// the file, the item and the field, never an nlohmann exception.
#include <re2/re2.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "knowledge/load_text_stages.hpp"
#include "knowledge/loader_internal.hpp"

namespace backcheck::knowledge::load {

void Where::Fail(const std::string& problem) const {
  throw KnowledgeError(item.empty() ? file + ": " + problem : file + ": " + item + ": " + problem);
}

std::string ReadFile(const std::filesystem::path& path, const std::string& name) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw KnowledgeError(name + ": cannot be read (" + path.string() + ")");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json ParseJson(const std::filesystem::path& dir, const std::string& name) {
  std::string text = ReadFile(dir / "data" / name, name);
  try {
    return json::parse(text, /*cb=*/nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/true);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1e400
    throw KnowledgeError(name + ": invalid JSON: " + e.what());
  }
}

namespace {

const char* TypeName(const json& v) {
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "true or false";
  if (v.is_number()) return "a number";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "null";
}

std::string Quoted(const std::string& s) { return "'" + s + "'"; }

}  // namespace

void CheckKeys(const json& obj, const Where& where, std::initializer_list<std::string_view> known) {
  if (!obj.is_object()) where.Fail(std::string("must be an object, not ") + TypeName(obj));
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (std::find(known.begin(), known.end(), it.key()) != known.end()) continue;
    std::string list;
    for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
    where.Fail("unknown field '" + it.key() + "' (known: " + list + ")");
  }
}

const json& Field(const json& obj, const char* key, const Where& where) {
  if (!obj.is_object()) where.Fail(std::string("must be an object, not ") + TypeName(obj));
  auto it = obj.find(key);
  if (it == obj.end()) where.Fail(std::string("missing field '") + key + "'");
  return *it;
}

const json& Object(const json& obj, const char* key, const Where& where) {
  const json& v = Field(obj, key, where);
  if (!v.is_object()) where.Fail(std::string("field '") + key + "' must be an object, not " + TypeName(v));
  return v;
}

const json& Array(const json& obj, const char* key, const Where& where) {
  const json& v = Field(obj, key, where);
  if (!v.is_array()) where.Fail(std::string("field '") + key + "' must be an array, not " + TypeName(v));
  return v;
}

const std::string& StringValue(const json& v, const Where& where, const std::string& what, bool allow_empty) {
  if (!v.is_string() || (!allow_empty && v.get_ref<const std::string&>().empty())) {
    where.Fail(what + " must be a " + (allow_empty ? "" : "non-empty ") + "string" +
               (v.is_string() ? "" : std::string(", not ") + TypeName(v)));
  }
  return v.get_ref<const std::string&>();
}

std::string String(const json& obj, const char* key, const Where& where, bool allow_empty) {
  return StringValue(Field(obj, key, where), where, std::string("field '") + key + "'", allow_empty);
}

std::string OptString(const json& obj, const char* key, const Where& where) {
  if (!obj.is_object() || !obj.contains(key)) return {};
  return String(obj, key, where, /*allow_empty=*/true);
}

std::vector<std::string> Strings(const json& obj, const char* key, const Where& where, bool required) {
  if (!obj.is_object()) where.Fail(std::string("must be an object, not ") + TypeName(obj));
  if (!obj.contains(key)) {
    if (required) where.Fail(std::string("missing field '") + key + "'");
    return {};
  }
  const json& v = obj.at(key);
  if (!v.is_array()) where.Fail(std::string("field '") + key + "' must be an array of strings, not " + TypeName(v));
  std::vector<std::string> out;
  for (const auto& s : v) {
    if (!s.is_string() || s.get_ref<const std::string&>().empty()) {
      where.Fail(std::string("field '") + key + "' must hold only non-empty strings");
    }
    out.push_back(s.get<std::string>());
  }
  return out;
}

int IntValue(const json& v, const Where& where, const std::string& what, long long lo, long long hi) {
  bool ok = v.is_number_integer();
  if (ok && v.is_number_unsigned()) ok = v.get<unsigned long long>() <= static_cast<unsigned long long>(hi);
  if (ok) ok = v.get<long long>() >= lo && v.get<long long>() <= hi;
  if (!ok) {
    where.Fail(what + " must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi) +
               (v.is_number() ? "" : std::string(", not ") + TypeName(v)));
  }
  return static_cast<int>(v.get<long long>());
}

int Int(const json& obj, const char* key, const Where& where, long long lo, long long hi) {
  return IntValue(Field(obj, key, where), where, std::string("field '") + key + "'", lo, hi);
}

std::optional<int> OptInt(const json& obj, const char* key, const Where& where, long long lo, long long hi) {
  if (!obj.is_object() || !obj.contains(key)) return std::nullopt;
  return Int(obj, key, where, lo, hi);
}

std::optional<bool> OptBool(const json& obj, const char* key, const Where& where) {
  if (!obj.is_object() || !obj.contains(key)) return std::nullopt;
  const json& v = obj.at(key);
  if (!v.is_boolean()) where.Fail(std::string("field '") + key + "' must be true or false, not " + TypeName(v));
  return v.get<bool>();
}

double Number(const json& obj, const char* key, const Where& where) {
  const json& v = Field(obj, key, where);
  if (!v.is_number() || !std::isfinite(v.get<double>())) {
    where.Fail(std::string("field '") + key + "' must be a number" +
               (v.is_number() ? "" : std::string(", not ") + TypeName(v)));
  }
  return v.get<double>();
}

void CheckPattern(const std::string& pattern, std::size_t index, const Where& where) {
  RE2::Options options;
  options.set_log_errors(false);
  RE2 re(pattern, options);
  if (!re.ok()) {
    where.Fail("pattern " + std::to_string(index + 1) + " rejected by RE2 (" + re.error() +
               "): " + pattern);
  }
}

void CheckPatterns(const std::vector<std::string>& patterns, const Where& where) {
  for (std::size_t i = 0; i < patterns.size(); ++i) CheckPattern(patterns[i], i, where);
}

std::vector<Source> Sources(const json& obj, const Article& article, const Where& where) {
  std::vector<Source> out;
  if (!obj.is_object() || !obj.contains("sources")) return out;
  const json& arr = Array(obj, "sources", where);
  for (std::size_t i = 0; i < arr.size(); ++i) {
    Where w = where.With("source " + std::to_string(i + 1));
    CheckKeys(arr[i], w, {"section", "quote"});
    Source s{String(arr[i], "section", w), String(arr[i], "quote", w)};
    auto section = article.FindSection(s.section);
    if (!section) w.Fail("unknown section " + Quoted(s.section));
    if (!article.FindQuote(*section, s.quote)) {
      w.Fail("quote not found in section '" + s.section + "': \"" + s.quote + "\"");
    }
    out.push_back(std::move(s));
  }
  return out;
}

bool ValidUtf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    if (DecodeUtf8At(s, i) == kBadUtf8) return false;
  }
  return true;
}

std::vector<std::string> NormalisedWords(const std::string& text, const Where& where, const char* what) {
  auto fail = [&](const std::string& why) { where.Fail(std::string(what) + " '" + text + "': " + why); };
  if (text.empty()) fail("empty");
  if (!ValidUtf8(text)) fail("not valid UTF-8");
  if (text.front() == ' ' || text.back() == ' ' || text.find("  ") != std::string::npos) {
    fail("words are separated by single spaces");
  }
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string w; in >> w;) {
    for (char c : w) {
      const auto u = static_cast<unsigned char>(c);
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '\'' || u >= 0x80)) {
        fail(std::string("'") + c + "' is not in a word of normalised text (lower case, no punctuation)");
      }
    }
    out.push_back(w);
  }
  return out;
}

std::string OutputWords(const std::string& text, const Where& where, const char* what, bool allow_empty) {
  if (text.empty()) {
    if (!allow_empty) where.Fail(std::string(what) + " must not be empty");
    return text;
  }
  bool ok = text.front() != ' ' && text.back() != ' ' && text.find("  ") == std::string::npos;
  for (char c : text) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == ' ');
  if (!ok) where.Fail(std::string(what) + " '" + text + "': lower-case ASCII words and digits separated by single spaces");
  return text;
}

}  // namespace backcheck::knowledge::load
