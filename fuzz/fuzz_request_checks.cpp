// The checks on HTTP request headers (server/request_checks.hpp, server/address_limits.hpp):
// Origin, Sec-WebSocket-Key, the request target's path, Content-Type, flag lists, and the client
// address from X-Forwarded-For. The input is split at newlines into: origin, host, key,
// content type, X-Forwarded-For, trusted proxies (a flag value), peer address, allowed origins.
#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <tuple>
#include <vector>

#include "fuzz/fuzz_support.hpp"
#include "server/address_limits.hpp"
#include "server/request_checks.hpp"

namespace server = backcheck::server;
using backcheck::fuzz::Check;

namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

bool IsBase64(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input = backcheck::fuzz::AsView(data, size);
  std::vector<std::string_view> field;
  for (std::size_t begin = 0; field.size() < 8;) {
    const std::size_t end = input.find('\n', begin);
    field.push_back(input.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin));
    if (end == std::string_view::npos) break;
    begin = end + 1;
  }
  field.resize(8);
  const auto [origin, host, key, content_type, forwarded_for, trusted_flag, peer_field, allowed_flag] =
      std::tuple(field[0], field[1], field[2], field[3], field[4], field[5], field[6], field[7]);

  for (std::string_view list : {trusted_flag, allowed_flag, input}) {
    for (const auto& item : server::SplitList(list)) {
      Check(!item.empty(), "SplitList gave an empty item", list);
      Check(item.find(',') == std::string::npos, "SplitList gave an item with a comma", item);
      Check(!IsSpace(item.front()) && !IsSpace(item.back()), "SplitList gave an untrimmed item", item);
    }
  }

  const auto allowed = server::SplitList(allowed_flag);
  const bool ok = server::OriginAllowed(origin, host, allowed);
  if (origin.empty()) Check(ok, "no Origin refused");
  Check(server::OriginAllowed(origin, host, {"*"}), "'*' refused an origin", origin);
  if (!origin.empty() && origin != "null" && !host.empty()) {
    const std::string own = "http://" + std::string(host);
    Check(server::OriginAllowed(own, host, {}), "the server's own origin refused", own);
  }

  if (server::ValidWebSocketKey(key)) {
    Check(key.size() == 24 && key.substr(22) == "==", "a key that is not 22 characters and '=='", key);
    for (char c : key.substr(0, 22)) Check(IsBase64(c), "a key with a character outside base64", key);
  }
  for (std::string_view target : {key, origin, input}) {
    const std::string_view path = server::TargetPath(target);
    Check(target.substr(0, path.size()) == path, "TargetPath is not a prefix of the target", target);
    Check(path.find_first_of("?#") == std::string_view::npos, "TargetPath kept a query or fragment", target);
  }
  if (server::IsJsonContentType(content_type)) {
    Check(Lower(content_type).find("application/json") != std::string::npos, "JSON content type without JSON",
          content_type);
  }

  const auto trusted = server::SplitList(trusted_flag);
  for (const std::string& peer : {std::string(peer_field), std::string("127.0.0.1")}) {
    const std::string address = server::ClientAddress(peer, forwarded_for, trusted);
    if (address != peer) {
      boost::system::error_code ec;
      boost::asio::ip::make_address(address, ec);
      Check(!ec, "ClientAddress gave something that is not an address", address);
      Check(std::find(trusted.begin(), trusted.end(), peer) != trusted.end(),
            "X-Forwarded-For believed from a peer that is not a trusted proxy", peer);
    }
  }
  return 0;
}
