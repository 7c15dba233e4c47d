#include "server/bridge_tokens.hpp"

#include "server/named_lines.hpp"
#include "server/request_checks.hpp"

#include <algorithm>

namespace backcheck::server {
namespace {

// Tokens are printable ASCII without spaces: what `openssl rand -base64 32` or `-hex 32` prints.
bool TokenChar(char c) { return c > ' ' && c < 0x7f; }

}  // namespace

BridgeTokens BridgeTokens::Load(const std::filesystem::path& path) {
  try {
    return Parse(ReadPrivateFile(path), path.string());
  } catch (const NamedLinesError& e) {
    throw BridgeTokensError(e.what());
  }
}

BridgeTokens BridgeTokens::Parse(std::string_view text, const std::string& where) {
  BridgeTokens out;
  try {
    ParseNamedLines(text, where, "token", [&](std::string_view name, std::string_view token, const auto& fail) {
      if (token.size() < kMinTokenBytes) {
        fail(Join({"the token of '", name, "' is shorter than 32 characters (make one with: openssl rand -hex 32)"}));
      }
      if (!std::all_of(token.begin(), token.end(), TokenChar)) fail("a token is printable ASCII");
      for (const auto& e : out.entries_) {
        if (e.name == name) fail(Join({"'", name, "' is named twice"}));
        if (e.token == token) fail(Join({"the token of '", name, "' is also the token of '", e.name, "'"}));
      }
      out.entries_.push_back(Entry{std::string(name), std::string(token)});
    });
  } catch (const NamedLinesError& e) {
    throw BridgeTokensError(e.what());
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

std::optional<std::string_view> BridgeTokens::BearerToken(std::string_view authorization) {
  if (!IsBearer(authorization)) return std::nullopt;
  return Trim(Trim(authorization).substr(6));
}

std::optional<std::string> BridgeTokens::Authenticate(std::string_view authorization) const {
  const auto given = BearerToken(authorization);
  if (!given) return std::nullopt;
  const Entry* found = nullptr;
  for (const auto& e : entries_) {
    if (SameSecret(*given, e.token)) found = &e;  // no early exit: every token is compared
  }
  if (!found) return std::nullopt;
  return found->name;
}

}  // namespace backcheck::server
