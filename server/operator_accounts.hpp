// Named operators (--operators FILE): who may answer escalations, each with a token of their
// own. One `name sha256:HEX` a line, HEX the SHA-256 of the operator's token, so the file holds
// no secret an intruder could use; it is still refused when others may change it (that would
// add an operator). `chat-server --new-operator NAME` prints a new token and its line.
//
// CHAT_OPERATOR_TOKEN keeps working as one unnamed operator (AddUnnamed), the quick way to try
// the console on one machine.
#pragma once

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace backcheck::server {

class OperatorAccountsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class OperatorAccounts {
 public:
  // The name an unnamed operator (CHAT_OPERATOR_TOKEN) is shown with.
  static constexpr std::string_view kUnnamed = "operator";

  OperatorAccounts() = default;  // none: /v1/operator and the console are off
  // Reads and checks `path`; throws OperatorAccountsError naming the file (and line) otherwise.
  static OperatorAccounts Load(const std::filesystem::path& path);
  static OperatorAccounts Parse(std::string_view text, const std::string& where);  // for tests

  void AddUnnamed(std::string_view token);  // CHAT_OPERATOR_TOKEN
  bool empty() const { return entries_.empty(); }

  // The operator whose token this is. Every entry is compared, in time that does not depend on
  // where a hash differs.
  std::optional<std::string> Authenticate(std::string_view token) const;
  // The same for an Authorization header value (`Bearer <token>`).
  std::optional<std::string> AuthenticateBearer(std::string_view authorization) const;

  // "sha256:" and the hex SHA-256 of `token`: what a line of the file holds.
  static std::string HashToken(std::string_view token);
  // A new random token (64 hex characters) for `name`, and the line to add to the file.
  struct NewOperator {
    std::string token;
    std::string line;
  };
  static NewOperator Make(std::string_view name);

 private:
  struct Entry {
    std::string name;
    std::string hash;  // HashToken of the token
  };
  std::vector<Entry> entries_;
};

}  // namespace backcheck::server
