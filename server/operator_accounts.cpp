#include "server/operator_accounts.hpp"

#include <openssl/evp.h>

#include <algorithm>

#include "server/bridge_tokens.hpp"
#include "server/named_lines.hpp"
#include "server/request_checks.hpp"
#include "server/store/store.hpp"

namespace backcheck::server {
namespace {

constexpr std::string_view kHashPrefix = "sha256:";

bool LowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

std::string OperatorAccounts::HashToken(std::string_view token) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(token.data(), token.size(), digest, &size, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
  return std::string(kHashPrefix) + HexOf(std::string_view(reinterpret_cast<const char*>(digest), size));
}

OperatorAccounts::NewOperator OperatorAccounts::Make(std::string_view name) {
  const std::string bytes = RandomBytes(32);
  NewOperator made;
  made.token = HexOf(bytes);
  made.line = Join({name, " ", HashToken(made.token)});
  Parse(made.line, "--new-operator");  // the name must be one the file accepts
  return made;
}

OperatorAccounts OperatorAccounts::Load(const std::filesystem::path& path) {
  try {
    return Parse(ReadPrivateFile(path), path.string());
  } catch (const NamedLinesError& e) {
    throw OperatorAccountsError(e.what());
  }
}

OperatorAccounts OperatorAccounts::Parse(std::string_view text, const std::string& where) {
  OperatorAccounts out;
  try {
    ParseNamedLines(text, where, "sha256:HASH", [&](std::string_view name, std::string_view hash, const auto& fail) {
      const std::string_view hex = hash.substr(std::min(hash.size(), kHashPrefix.size()));
      if (hash.substr(0, kHashPrefix.size()) != kHashPrefix || hex.size() != 64 || !LowerHex(hex)) {
        fail(Join({"the hash of '", name,
                   "' is not sha256: and 64 lowercase hex digits (make a line with: chat-server --new-operator ", name,
                   ")"}));
      }
      for (const auto& e : out.entries_) {
        if (e.name == name) fail(Join({"'", name, "' is named twice"}));
        if (e.hash == hash) fail(Join({"'", name, "' has the same token as '", e.name, "'"}));
      }
      out.entries_.push_back(Entry{std::string(name), std::string(hash)});
    });
  } catch (const NamedLinesError& e) {
    throw OperatorAccountsError(e.what());
  }
  return out;
}

void OperatorAccounts::AddUnnamed(std::string_view token) {
  if (!token.empty()) entries_.push_back(Entry{std::string(kUnnamed), HashToken(token)});
}

std::optional<std::string> OperatorAccounts::Authenticate(std::string_view token) const {
  if (token.empty() || entries_.empty()) return std::nullopt;
  // Hashing first makes every comparison the same length whatever was sent.
  const std::string hash = HashToken(token);
  const Entry* found = nullptr;
  for (const auto& e : entries_) {
    if (SameSecret(hash, e.hash)) found = &e;  // no early exit: every entry is compared
  }
  if (!found) return std::nullopt;
  return found->name;
}

std::optional<std::string> OperatorAccounts::AuthenticateBearer(std::string_view authorization) const {
  const auto token = BridgeTokens::BearerToken(authorization);
  return token ? Authenticate(*token) : std::nullopt;
}

}  // namespace backcheck::server
