#include "server/named_lines.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "server/request_checks.hpp"

namespace backcheck::server {
namespace {

bool NameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

}  // namespace

std::string Join(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (auto p : parts) out += p;
  return out;
}

std::string ReadPrivateFile(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw NamedLinesError(path.string() + ": cannot be read");
  if ((st.st_mode & 077) != 0) {
    std::ostringstream mode;
    mode << std::oct << (st.st_mode & 0777);
    throw NamedLinesError(Join({path.string(), ": holds secrets but its mode is 0", mode.str(),
                                " (others may read or change it); chmod 600 it"}));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw NamedLinesError(path.string() + ": cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void ParseNamedLines(std::string_view text, const std::string& where, std::string_view what_value,
                     const NamedLine& line_found) {
  std::size_t line_no = 0;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    ++line_no;
    const std::function<void(const std::string&)> fail = [&](const std::string& what) {
      throw NamedLinesError(Join({where, ":", std::to_string(line_no), ": ", what}));
    };
    if (const auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = Trim(line);
    if (line.empty()) continue;
    const auto space = line.find_first_of(" \t");
    if (space == std::string_view::npos) fail(Join({"expected 'name ", what_value, "'"}));
    const std::string_view name = line.substr(0, space);
    const std::string_view value = Trim(line.substr(space));
    if (name.size() > kMaxNameBytes || !std::all_of(name.begin(), name.end(), NameChar)) {
      fail("a name is 1-64 letters, digits, '-', '_' or '.'");
    }
    if (value.find_first_of(" \t") != std::string_view::npos) {
      fail(Join({"expected 'name ", what_value, "' and nothing after the ", what_value}));
    }
    line_found(name, value, fail);
  }
}

}  // namespace backcheck::server
