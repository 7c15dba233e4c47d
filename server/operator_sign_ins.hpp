// Browser sign-ins of operators: POST /v1/operator/session with a valid token makes a session
// whose random id the browser keeps in an HttpOnly, SameSite=Strict cookie; the cookie then
// authorises the operator WebSocket and the console's HTTP calls. Sessions live in memory: they
// expire after --operator-session-hours and all end when the server restarts (a way to revoke
// them all). Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace backcheck::server {

class OperatorSignIns {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::string_view kCookie = "backcheck_operator";

  OperatorSignIns(std::chrono::seconds ttl, std::size_t max_sessions) : ttl_(ttl), max_(max_sessions) {}

  // A new session for `name`; its id goes in the cookie. When `max_sessions` are open, expired
  // ones are dropped first, then the one that expires soonest.
  std::string Create(const std::string& name, Clock::time_point now = Clock::now());
  // The operator a Cookie header's session names, while it has not expired.
  std::optional<std::string> Find(std::string_view cookie_header, Clock::time_point now = Clock::now()) const;
  void Revoke(std::string_view cookie_header);  // sign-out

  // The Set-Cookie value that stores `id` (Secure when the browser came over TLS), and the one
  // that clears it.
  std::string SetCookie(const std::string& id, bool secure) const;
  static std::string ClearCookie(bool secure);
  std::chrono::seconds ttl() const { return ttl_; }

  // The value of cookie `name` in a Cookie header (RFC 6265: "a=1; b=2"), empty if absent.
  static std::string_view CookieValue(std::string_view header, std::string_view name);

 private:
  struct Session {
    std::string name;
    Clock::time_point expires;
  };
  const std::chrono::seconds ttl_;
  const std::size_t max_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Session> sessions_;
};

}  // namespace backcheck::server
