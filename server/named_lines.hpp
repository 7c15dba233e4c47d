// Files of `name value` lines that configure who may connect (--bridge-tokens, --operators):
// `#` starts a comment, blank lines are skipped, a name is 1-64 letters, digits, '-', '_' or
// '.', and the value is one word. Every problem names the file and the line.
#pragma once

#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace backcheck::server {

class NamedLinesError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr std::size_t kMaxNameBytes = 64;

// Reads `path`, refusing it (NamedLinesError) when its group or others may read or write it:
// it holds secrets, or says who may hold them.
std::string ReadPrivateFile(const std::filesystem::path& path);

// Calls `line(name, value, fail)` for each `name value` line of `text`; `fail(what)` throws
// NamedLinesError as "where:line: what". `what_value` names the value in messages ("token").
using NamedLine = std::function<void(std::string_view name, std::string_view value,
                                     const std::function<void(const std::string&)>& fail)>;
void ParseNamedLines(std::string_view text, const std::string& where, std::string_view what_value,
                     const NamedLine& line);

// Concatenation without temporaries (g++ 12 warns falsely on "'" + std::string(...) chains).
std::string Join(std::initializer_list<std::string_view> parts);

}  // namespace backcheck::server
