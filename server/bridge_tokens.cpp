#include "server/bridge_tokens.hpp"

#include "server/request_checks.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <initializer_list>
#include <sstream>

namespace backcheck::server {
namespace {

bool NameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}
// Tokens are printable ASCII without spaces: what `openssl rand -base64 32` or `-hex 32` prints.
bool TokenChar(char c) { return c > ' ' && c < 0x7f; }

// Concatenation without temporaries (g++ 12 warns falsely on "'" + std::string(...) chains).
std::string Join(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (auto p : parts) out += p;
  return out;
}

}  // namespace

BridgeTokens BridgeTokens::Load(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw BridgeTokensError(path.string() + ": cannot be read");
  if ((st.st_mode & 077) != 0) {
    std::ostringstream mode;
    mode << std::oct << (st.st_mode & 0777);
    throw BridgeTokensError(Join({path.string(), ": holds secrets but its mode is 0", mode.str(),
                                  " (others may read or change it); chmod 600 it"}));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw BridgeTokensError(path.string() + ": cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path.string());
}

BridgeTokens BridgeTokens::Parse(std::string_view text, const std::string& where) {
  BridgeTokens out;
  std::size_t line_no = 0;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    ++line_no;
    const auto fail = [&](const std::string& what) {
      throw BridgeTokensError(Join({where, ":", std::to_string(line_no), ": ", what}));
    };
    if (const auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = Trim(line);
    if (line.empty()) continue;
    const auto space = line.find_first_of(" \t");
    if (space == std::string_view::npos) fail("expected 'name token'");
    const std::string_view name = line.substr(0, space);
    const std::string_view token = Trim(line.substr(space));
    if (name.size() > kMaxNameBytes || !std::all_of(name.begin(), name.end(), NameChar)) {
      fail("a bridge name is 1-64 letters, digits, '-', '_' or '.'");
    }
    if (token.find_first_of(" \t") != std::string_view::npos) fail("expected 'name token' and nothing after the token");
    if (token.size() < kMinTokenBytes) {
      fail(Join({"the token of '", name, "' is shorter than 32 characters (make one with: openssl rand -hex 32)"}));
    }
    if (!std::all_of(token.begin(), token.end(), TokenChar)) fail("a token is printable ASCII");
    for (const auto& e : out.entries_) {
      if (e.name == name) fail(Join({"'", name, "' is named twice"}));
      if (e.token == token) fail(Join({"the token of '", name, "' is also the token of '", e.name, "'"}));
    }
    out.entries_.push_back(Entry{std::string(name), std::string(token)});
  }
  return out;
}

bool BridgeTokens::IsBearer(std::string_view authorization) {
  authorization = Trim(authorization);
  constexpr std::string_view kScheme = "bearer";
  if (authorization.size() < kScheme.size() || !EqualsNoCase(authorization.substr(0, kScheme.size()), kScheme)) {
    return false;
  }
  return authorization.size() == kScheme.size() || authorization[kScheme.size()] == ' ';
}

std::optional<std::string> BridgeTokens::Authenticate(std::string_view authorization) const {
  if (!IsBearer(authorization)) return std::nullopt;
  const std::string_view given = Trim(Trim(authorization).substr(6));
  const Entry* found = nullptr;
  for (const auto& e : entries_) {
    if (SameSecret(given, e.token)) found = &e;  // no early exit: every token is compared
  }
  if (!found) return std::nullopt;
  return found->name;
}

}  // namespace backcheck::server
