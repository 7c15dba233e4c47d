#include "server/request_checks.hpp"

#include <algorithm>
#include <cctype>

namespace backcheck::server {

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool OriginAllowed(std::string_view origin, std::string_view host, const std::vector<std::string>& allowed) {
  if (origin.empty()) return true;
  if (std::find(allowed.begin(), allowed.end(), "*") != allowed.end()) return true;
  for (const auto& a : allowed) {
    if (EqualsNoCase(a, origin)) return true;
  }
  if (origin == "null") return false;
  // The server's own origin: a page it served (the demo page, the widget on it) talking back.
  const auto scheme_end = origin.find("://");
  if (scheme_end == std::string_view::npos) return false;
  const std::string_view scheme = origin.substr(0, scheme_end);
  if (!EqualsNoCase(scheme, "http") && !EqualsNoCase(scheme, "https")) return false;
  const std::string_view authority = origin.substr(scheme_end + 3);
  return !host.empty() && EqualsNoCase(authority, host);
}

bool ValidWebSocketKey(std::string_view key) {
  if (key.size() != 24 || key.substr(22) != "==") return false;
  // The last character before the padding carries 2 bits of data and 4 of zero padding.
  static constexpr std::string_view kLast = "AQgw";
  if (kLast.find(key[21]) == std::string_view::npos) return false;
  return std::all_of(key.begin(), key.begin() + 21, [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/';
  });
}

std::string_view TargetPath(std::string_view target) { return target.substr(0, target.find_first_of("?#")); }

bool IsJsonContentType(std::string_view content_type) {
  const std::string_view media = Trim(content_type.substr(0, content_type.find(';')));
  return EqualsNoCase(media, "application/json");
}

std::vector<std::string> SplitList(std::string_view list) {
  std::vector<std::string> out;
  while (!list.empty()) {
    const auto comma = list.find(',');
    const std::string_view item = Trim(list.substr(0, comma));
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

bool SameSecret(std::string_view given, std::string_view secret) {
  unsigned diff = given.size() == secret.size() ? 0u : 1u;
  for (std::size_t i = 0; i < secret.size(); ++i) {
    const char g = i < given.size() ? given[i] : '\0';
    diff |= static_cast<unsigned>(static_cast<unsigned char>(g) ^ static_cast<unsigned char>(secret[i]));
  }
  return diff == 0;
}

}  // namespace backcheck::server
