// chat-server --config FILE (TOML) and --print-config: every flag of the command line can be set in
// the file under its long name (`port = 9000`); a flag on the command line wins over the file. See
// README "Configuration" and deploy/backcheck.toml.
#pragma once

#include <CLI/CLI.hpp>
#include <iosfwd>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace backcheck::server {

// A refused file: the message starts with "FILE:LINE: " when a line is at fault.
class ConfigFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One `key = value` line of the file, its value already turned into what the flag would be given
// on the command line (an array of strings becomes "a,b": the list flags are comma-separated).
struct ConfigEntry {
  std::string key;
  std::vector<std::string> values;  // one, except for a flag's `true`/`false` (still one)
  enum class Type { String, Integer, Float, Boolean, Array } type = Type::String;
  int line = 0;
};

// Reads the TOML subset the server accepts (README "Configuration"): comments, blank lines and
// `key = value` lines whose value is a string ("..." or '...'), an integer, a float, true/false or
// a one-line array of strings. Anything else is refused with `name:LINE`.
std::vector<ConfigEntry> ReadConfigEntries(std::istream& in, const std::string& name);

// Adds --config FILE and --print-config to `app`. After app.parse(), Apply() reads the file into
// the options the command line did not set (the option's own checks and conversion apply, errors
// name the file and line), then prints the configuration if --print-config was given.
class ConfigFile {
 public:
  explicit ConfigFile(CLI::App& app);
  // The status main should exit with now (2: the file is refused; 0: --print-config printed),
  // or nothing: carry on and start the server.
  std::optional<int> Apply();

 private:
  void Load(const std::string& path);
  CLI::App& app_;
  std::string path_;
  bool print_ = false;
};

// The effective configuration (options set by the file or the command line, else their defaults)
// as TOML that --config reads back. Never a secret: those are environment-only and not options,
// and a --database-url holding a password is left out.
std::string PrintConfig(const CLI::App& app);

}  // namespace backcheck::server
