#include "server/operator_sign_ins.hpp"

#include <algorithm>

#include "server/named_lines.hpp"
#include "server/request_checks.hpp"
#include "server/store/store.hpp"

namespace backcheck::server {
std::string OperatorSignIns::Create(const std::string& name, Clock::time_point now) {
  std::string id = HexOf(RandomBytes(32));
  std::lock_guard lock(mutex_);
  if (sessions_.size() >= max_) {
    std::erase_if(sessions_, [&](const auto& s) { return s.second.expires <= now; });
  }
  if (sessions_.size() >= max_ && !sessions_.empty()) {
    auto soonest = std::min_element(sessions_.begin(), sessions_.end(),
                                    [](const auto& a, const auto& b) { return a.second.expires < b.second.expires; });
    sessions_.erase(soonest);
  }
  if (max_ > 0) sessions_[id] = Session{name, now + ttl_};
  return id;
}

std::optional<std::string> OperatorSignIns::Find(std::string_view cookie_header, Clock::time_point now) const {
  const std::string_view id = CookieValue(cookie_header, kCookie);
  if (id.empty()) return std::nullopt;
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(std::string(id));
  if (it == sessions_.end() || it->second.expires <= now) return std::nullopt;
  return it->second.name;
}

void OperatorSignIns::Revoke(std::string_view cookie_header) {
  const std::string_view id = CookieValue(cookie_header, kCookie);
  if (id.empty()) return;
  std::lock_guard lock(mutex_);
  sessions_.erase(std::string(id));
}

std::string OperatorSignIns::SetCookie(const std::string& id, bool secure) const {
  return Join({kCookie, "=", id, "; Path=/; Max-Age=", std::to_string(ttl_.count()), "; HttpOnly; SameSite=Strict",
               secure ? "; Secure" : ""});
}

std::string OperatorSignIns::ClearCookie(bool secure) {
  return Join({kCookie, "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict", secure ? "; Secure" : ""});
}

std::string_view OperatorSignIns::CookieValue(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const auto end = header.find(';');
    const std::string_view pair = Trim(header.substr(0, end));
    header = end == std::string_view::npos ? std::string_view() : header.substr(end + 1);
    const auto eq = pair.find('=');
    if (eq != std::string_view::npos && Trim(pair.substr(0, eq)) == name) return Trim(pair.substr(eq + 1));
  }
  return {};
}

}  // namespace backcheck::server
