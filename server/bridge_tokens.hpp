// Bridge tokens (--bridge-tokens FILE): the named clients, such as a Slack or Discord bridge,
// that carry many people's conversations over one WebSocket. One `name token` a line; `#`
// starts a comment. A bridge authenticates its upgrade with `Authorization: Bearer <token>` and
// then gets per-conversation limits instead of per-connection ones.
//
// The file holds secrets: it is refused if its group or others may read or write it, and
// tokens are compared in constant time.
#pragma once

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace backcheck::server {

class BridgeTokensError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class BridgeTokens {
 public:
  static constexpr std::size_t kMinTokenBytes = 32;

  BridgeTokens() = default;  // none: every client is anonymous
  // Reads and checks `path`; throws BridgeTokensError naming the file (and line) otherwise.
  static BridgeTokens Load(const std::filesystem::path& path);
  // From text, for tests: the same checks but the file's mode.
  static BridgeTokens Parse(std::string_view text, const std::string& where);

  bool empty() const { return entries_.empty(); }
  std::size_t size() const { return entries_.size(); }
  // The bridge an Authorization header value (`Bearer <token>`) names, if any. Every token is
  // compared, in time that does not depend on where one differs.
  std::optional<std::string> Authenticate(std::string_view authorization) const;
  // Whether an Authorization header value uses the Bearer scheme (any case, RFC 7235), so that a
  // wrong or empty token is refused rather than served as anonymous.
  static bool IsBearer(std::string_view authorization);
  // The token of a Bearer Authorization value (possibly empty), nullopt for another scheme.
  static std::optional<std::string_view> BearerToken(std::string_view authorization);

 private:
  struct Entry {
    std::string name;
    std::string token;
  };
  std::vector<Entry> entries_;
};

}  // namespace backcheck::server
