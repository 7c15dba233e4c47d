// chat-server --config FILE and --print-config (server/config_file.hpp).
//
// Why the file is not simply handed to CLI11's own config support (app.set_config with
// CLI::ConfigTOML): CLI11 2.1.2 (Debian bookworm) reads it in ConfigBase::from_config into
// ConfigItems that carry no line number; it skips any line shorter than three characters, takes a
// line without `=` as a flag set to true, keeps whatever follows an unclosed quote, and reports
// unknown keys in one list ("INIError: Configuration file contains extra fields: [...]") and a bad
// value as "Could not convert: --port = x", naming neither the file nor the line. An operator
// editing /etc/backcheck/backcheck.toml needs "backcheck.toml:12: unknown key 'prot'". So the file
// is read here, line by line, as the small subset of TOML below, and each value is then given to
// the CLI11 option itself exactly as App::_parse_single_config does for a config file (add_result,
// then run_callback): the option's own conversion and checks (ranges, --store's choices...) apply,
// and CLI11's precedence is kept: the file only sets options the command line did not.
#include "server/config_file.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <sstream>

namespace backcheck::server {
namespace {

// Flags that are a comma-separated list on the command line: in the file, an array of strings
// (a string "a,b" is accepted too).
bool IsListOption(const std::string& key) { return key == "trusted-proxies" || key == "allowed-origins"; }

// Options that do something rather than configure the server: command line only.
bool IsAction(const std::string& key) {
  return key == "config" || key == "print-config" || key == "new-operator" || key == "help" || key == "help-all" ||
         key == "version";
}

// Secrets are read from the environment only (never from a file or a flag, which other users may
// read or see in the process list): a key that looks like one is refused with where it goes.
const char* SecretVariable(const std::string& key) {
  static const std::map<std::string, const char*> secrets = {
      {"webhook-secret", "BACKCHECK_WEBHOOK_SECRET"},      {"backcheck-webhook-secret", "BACKCHECK_WEBHOOK_SECRET"},
      {"escalation-webhook-secret", "BACKCHECK_WEBHOOK_SECRET"}, {"operator-token", "CHAT_OPERATOR_TOKEN"},
      {"chat-operator-token", "CHAT_OPERATOR_TOKEN"},
  };
  const auto found = secrets.find(key);
  return found == secrets.end() ? nullptr : found->second;
}

// Unset, --kb and --web are looked for at run time (common/paths.hpp): their "default" is what
// that finds, or how it looks, so it is shown, not written as a setting that would pin it.
bool FoundAtRunTime(const std::string& key) { return key == "kb" || key == "web"; }

enum class Kind { Boolean, Integer, Unsigned, Number, String, List };

Kind KindOf(const CLI::Option& opt, const std::string& key) {
  if (opt.get_expected_max() == 0) return Kind::Boolean;  // a flag
  if (IsListOption(key)) return Kind::List;
  const std::string type = opt.get_type_name();
  const std::string base = type.substr(0, type.find(':'));  // "UINT:POSITIVE" -> "UINT"
  if (base == "UINT") return Kind::Unsigned;
  if (base == "INT") return Kind::Integer;
  if (base == "FLOAT") return Kind::Number;
  return Kind::String;
}

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::Boolean: return "true or false";
    case Kind::Integer: return "an integer";
    case Kind::Unsigned: return "an integer of 0 or more";
    case Kind::Number: return "a number";
    case Kind::String: return "a string (in quotes)";
    case Kind::List: return "an array of strings ([\"a\", \"b\"]) or a string";
  }
  return "?";
}

const char* TypeName(ConfigEntry::Type type) {
  switch (type) {
    case ConfigEntry::Type::String: return "a string";
    case ConfigEntry::Type::Integer: return "an integer";
    case ConfigEntry::Type::Float: return "a float";
    case ConfigEntry::Type::Boolean: return "a boolean";
    case ConfigEntry::Type::Array: return "an array";
  }
  return "?";
}

bool Fits(Kind kind, const ConfigEntry& e) {
  using T = ConfigEntry::Type;
  switch (kind) {
    case Kind::Boolean: return e.type == T::Boolean;
    case Kind::Integer: return e.type == T::Integer;
    case Kind::Unsigned: return e.type == T::Integer && e.values.at(0).front() != '-';
    case Kind::Number: return e.type == T::Integer || e.type == T::Float;
    case Kind::String: return e.type == T::String;
    case Kind::List: return e.type == T::Array || e.type == T::String;
  }
  return false;
}

void AppendUtf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// One line of the file, read from `i`; errors are thrown as plain messages, located by the caller.
class LineReader {
 public:
  explicit LineReader(const std::string& line) : s_(line) {}

  void SkipSpace() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
  }
  bool AtEnd() const { return i_ >= s_.size(); }
  bool AtEndOrComment() const { return AtEnd() || s_[i_] == '#'; }
  char Peek() const { return AtEnd() ? '\0' : s_[i_]; }

  std::string Key() {
    const std::size_t start = i_;
    while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '-' || s_[i_] == '_')) ++i_;
    return s_.substr(start, i_ - start);
  }

  void Expect(char c, const std::string& what) {
    if (Peek() != c) throw std::runtime_error(what);
    ++i_;
  }

  // A "basic" string (escapes) or a 'literal' one, on this line.
  std::string String() {
    const char quote = s_[i_++];
    std::string out;
    while (true) {
      if (AtEnd()) throw std::runtime_error(std::string("a string must end on its line with ") + quote);
      const char c = s_[i_++];
      if (c == quote) return out;
      if (static_cast<unsigned char>(c) < 0x20 && c != '\t') throw std::runtime_error("a control character in a string");
      if (c != '\\' || quote == '\'') {
        out += c;
        continue;
      }
      if (AtEnd()) throw std::runtime_error("a string must end on its line with \"");
      const char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case 'b': out += '\b'; break;
        case 't': out += '\t'; break;
        case 'n': out += '\n'; break;
        case 'f': out += '\f'; break;
        case 'r': out += '\r'; break;
        case 'u':
        case 'U': {
          const std::size_t n = e == 'u' ? 4 : 8;
          if (i_ + n > s_.size()) throw std::runtime_error("\\u needs 4 hex digits, \\U 8");
          std::uint32_t cp = 0;
          const auto [end, ec] = std::from_chars(s_.data() + i_, s_.data() + i_ + n, cp, 16);
          if (ec != std::errc() || end != s_.data() + i_ + n || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            throw std::runtime_error("a bad \\u escape in a string");
          }
          i_ += n;
          AppendUtf8(out, cp);
          break;
        }
        default: throw std::runtime_error(std::string("an unknown escape \\") + e + " in a string");
      }
    }
  }

  // A bare value: true, false, an integer or a float.
  std::string Bare() {
    const std::size_t start = i_;
    while (i_ < s_.size() && s_[i_] != ' ' && s_[i_] != '\t' && s_[i_] != '#' && s_[i_] != ',' && s_[i_] != ']') ++i_;
    return s_.substr(start, i_ - start);
  }

  std::string Rest() const { return s_.substr(i_); }

 private:
  const std::string& s_;
  std::size_t i_ = 0;
};

std::string WithoutUnderscores(std::string s) {
  s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
  return s;
}

void ReadValue(LineReader& r, ConfigEntry& entry) {
  static const std::regex integer(R"([+-]?(0|[1-9](_?[0-9])*))");
  static const std::regex number(
      R"([+-]?(0|[1-9](_?[0-9])*)((\.[0-9](_?[0-9])*)([eE][+-]?[0-9](_?[0-9])*)?|[eE][+-]?[0-9](_?[0-9])*)|[+-]?(inf|nan))");
  const char c = r.Peek();
  if (c == '"' || c == '\'') {
    entry.type = ConfigEntry::Type::String;
    entry.values = {r.String()};
    return;
  }
  if (c == '[') {
    r.Expect('[', "");
    entry.type = ConfigEntry::Type::Array;
    std::vector<std::string> items;
    while (true) {
      r.SkipSpace();
      if (r.Peek() == ']') break;
      if (r.AtEndOrComment()) throw std::runtime_error("an array must end on its line with ]");
      if (r.Peek() != '"' && r.Peek() != '\'') throw std::runtime_error("only arrays of strings are accepted");
      items.push_back(r.String());
      r.SkipSpace();
      if (r.Peek() == ',') {
        r.Expect(',', "");
        continue;
      }
      if (r.Peek() != ']') throw std::runtime_error("expected , or ] in the array");
    }
    r.Expect(']', "");
    std::string joined;  // the list flags are comma-separated on the command line
    for (const auto& item : items) {
      if (item.find(',') != std::string::npos) throw std::runtime_error("an item of the array contains a comma");
      joined += (joined.empty() ? "" : ",") + item;
    }
    entry.values = {joined};
    return;
  }
  const std::string bare = r.Bare();
  if (bare.empty()) throw std::runtime_error("no value after =");
  if (bare == "true" || bare == "false") {
    entry.type = ConfigEntry::Type::Boolean;
  } else if (std::regex_match(bare, integer)) {
    entry.type = ConfigEntry::Type::Integer;
    const std::string digits = WithoutUnderscores(bare[0] == '+' ? bare.substr(1) : bare);
    long long n = 0;
    const auto parsed = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (parsed.ec != std::errc() || parsed.ptr != digits.data() + digits.size()) {
      throw std::runtime_error(bare + " is out of range (TOML integers are 64-bit)");
    }
    entry.values = {std::to_string(n)};
    return;
  } else if (std::regex_match(bare, number)) {
    entry.type = ConfigEntry::Type::Float;
  } else {
    throw std::runtime_error("'" + bare + "' is not a value: a string needs quotes (\"" + bare + "\")");
  }
  entry.values = {WithoutUnderscores(bare)};
}

std::string TomlString(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

// A postgresql://user:password@host/db URI, or password=... in its query or a key=value string.
bool HoldsPassword(const std::string& url) {
  std::string lower = url;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower.find("password=") != std::string::npos) return true;
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) return false;
  const auto at = url.find('@', scheme + 3);
  const auto slash = url.find('/', scheme + 3);
  if (at == std::string::npos || (slash != std::string::npos && slash < at)) return false;
  return url.substr(scheme + 3, at - scheme - 3).find(':') != std::string::npos;
}

std::vector<std::string> SplitCommas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    const auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

// `value` as TOML for an option of this kind; nothing when it cannot be (then it is quoted).
std::optional<std::string> TomlValue(Kind kind, const std::string& value) {
  const char* const begin = value.data();
  const char* const end = value.data() + value.size();
  switch (kind) {
    case Kind::Unsigned: {
      unsigned long long n = 0;
      const auto r = std::from_chars(begin, end, n);
      if (r.ec != std::errc() || r.ptr != end) return std::nullopt;
      return std::to_string(n);
    }
    case Kind::Integer: {
      long long n = 0;
      const auto r = std::from_chars(begin, end, n);
      if (r.ec != std::errc() || r.ptr != end) return std::nullopt;
      return std::to_string(n);
    }
    case Kind::Number: {
      double d = 0;
      const auto r = std::from_chars(begin, end, d);
      if (r.ec != std::errc() || r.ptr != end) return std::nullopt;
      char buf[64];
      const auto w = std::to_chars(buf, buf + sizeof buf, d);  // shortest form that reads back the same
      return std::string(buf, w.ptr);
    }
    case Kind::List: {
      std::string out = "[";
      for (const auto& item : SplitCommas(value)) out += (out.size() > 1 ? ", " : "") + TomlString(item);
      return out + "]";
    }
    case Kind::Boolean:
    case Kind::String: break;
  }
  return TomlString(value);
}

}  // namespace

std::vector<ConfigEntry> ReadConfigEntries(std::istream& in, const std::string& name) {
  std::vector<ConfigEntry> entries;
  std::map<std::string, int> seen;
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (number == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // a UTF-8 byte order mark
    const std::string where = name + ":" + std::to_string(number) + ": ";
    try {
      LineReader r(line);
      r.SkipSpace();
      if (r.AtEndOrComment()) continue;
      if (r.Peek() == '[') {
        throw std::runtime_error("tables ([section]) are not accepted: every key is at the top level");
      }
      ConfigEntry entry;
      entry.line = number;
      entry.key = r.Key();
      if (entry.key.empty()) throw std::runtime_error("expected key = value (a key is a flag's name without --)");
      r.SkipSpace();
      r.Expect('=', "expected = after '" + entry.key + "'");
      r.SkipSpace();
      ReadValue(r, entry);
      r.SkipSpace();
      if (!r.AtEndOrComment()) throw std::runtime_error("unexpected text after the value: " + r.Rest());
      if (const auto [at, fresh] = seen.emplace(entry.key, number); !fresh) {
        throw std::runtime_error("'" + entry.key + "' is set twice (first at line " + std::to_string(at->second) + ")");
      }
      entries.push_back(std::move(entry));
    } catch (const std::runtime_error& e) {
      throw ConfigFileError(where + e.what());
    }
  }
  return entries;
}

ConfigFile::ConfigFile(CLI::App& app) : app_(app) {
  app_.add_option("--config", path_,
                  "read options from this TOML file (key = value, the keys are the flags' long names: port = 9000); "
                  "a flag on the command line wins over the file (example: deploy/backcheck.toml)")
      ->configurable(false);
  app_.add_flag("--print-config", print_,
                "print the effective configuration (the file, the flags, the defaults) as TOML --config reads, "
                "then exit; secrets are never shown")
      ->configurable(false);
}

void ConfigFile::Load(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw ConfigFileError(path + ": is a directory, not a file");
  std::ifstream in(path);
  if (!in) throw ConfigFileError(path + ": cannot read it: " + std::strerror(errno));
  const auto entries = ReadConfigEntries(in, path);
  for (const auto& entry : entries) {
    const std::string where = path + ":" + std::to_string(entry.line) + ": ";
    if (const char* variable = SecretVariable(entry.key)) {
      throw ConfigFileError(where + "'" + entry.key + "' cannot be set in a file: a secret is read from the " +
                            "environment only (" + variable + ")");
    }
    if (IsAction(entry.key)) {
      throw ConfigFileError(where + "'" + entry.key + "' is not a setting: give --" + entry.key +
                            " on the command line");
    }
    CLI::Option* opt = app_.get_option_no_throw("--" + entry.key);
    const bool named = opt && std::find(opt->get_lnames().begin(), opt->get_lnames().end(), entry.key) !=
                                  opt->get_lnames().end();
    if (!named || !opt->get_configurable()) {
      throw ConfigFileError(where + "unknown key '" + entry.key +
                            "' (a key is a flag's long name without --; chat-server --help lists them)");
    }
    const Kind kind = KindOf(*opt, entry.key);
    if (!Fits(kind, entry)) {
      const bool negative = entry.type == ConfigEntry::Type::Integer && entry.values.at(0).front() == '-';
      throw ConfigFileError(where + "'" + entry.key + "' must be " + KindName(kind) + ", not " +
                            (negative ? "a negative integer" : TypeName(entry.type)));
    }
    if (opt->count() > 0) continue;  // given on the command line, which wins
    try {
      if (kind == Kind::Boolean) {
        opt->add_result(opt->get_flag_value("--" + entry.key, entry.values.at(0)));
      } else {
        opt->add_result(entry.values);
      }
      opt->run_callback();
    } catch (const CLI::Error& e) {
      throw ConfigFileError(where + e.what());  // CLI11's message names the option: "--port: ..."
    }
  }
}

std::optional<int> ConfigFile::Apply() {
  if (!path_.empty()) {
    try {
      Load(path_);
    } catch (const ConfigFileError& e) {
      std::cerr << "chat-server: --config " << e.what() << "\n";
      return 2;
    }
  }
  if (print_) {
    std::cout << PrintConfig(app_) << std::flush;
    return 0;
  }
  return std::nullopt;
}

std::string PrintConfig(const CLI::App& app) {
  std::ostringstream out;
  out << "# chat-server --print-config: the effective configuration (--config file, then the flags over it, else\n"
         "# the defaults), as chat-server --config reads it. Secrets are environment-only and never shown:\n"
         "# CHAT_OPERATOR_TOKEN, BACKCHECK_WEBHOOK_SECRET, BACKCHECK_DATABASE_URL.\n";
  for (const CLI::Option* opt : app.get_options()) {
    if (!opt->get_configurable() || opt->get_lnames().empty()) continue;
    const std::string& key = opt->get_lnames().front();
    if (IsAction(key)) continue;
    const Kind kind = KindOf(*opt, key);
    if (kind == Kind::Boolean) {
      bool on = false;
      if (opt->count() > 0) {
        try {
          on = opt->as<bool>();
        } catch (const CLI::Error&) {
        }
      }
      out << key << " = " << (on ? "true" : "false") << "\n";
      continue;
    }
    std::string value;
    if (opt->count() > 0) {
      const auto results = opt->reduced_results();
      if (!results.empty()) value = results.front();
    } else {
      value = opt->get_default_str();
    }
    if (opt->count() == 0 && FoundAtRunTime(key)) {
      out << "# " << key << ": not set, found at run time: " << value << "\n";
    } else if (value.empty()) {
      out << "# " << key << ": not set\n";
    } else if (key == "database-url" && HoldsPassword(value)) {
      out << "# " << key << ": set, not shown: it holds a password (give it in BACKCHECK_DATABASE_URL)\n";
    } else {
      out << key << " = " << TomlValue(kind, value).value_or(TomlString(value)) << "\n";
    }
  }
  return out.str();
}

}  // namespace backcheck::server
