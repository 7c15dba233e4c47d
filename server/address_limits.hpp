// What one client address may do, and the server in all (README "Security"): open WebSockets per
// address, messages per second per address (all its connections and POSTs together) and in all,
// new conversations per minute per address. Per-connection limits (TokenBucket in each session)
// stop one noisy socket; these stop many sockets from one place, which per-connection limits
// alone cannot.
//
// Thread-safe. Addresses are strings as ClientAddress gives them; an address with no open
// connection and no recent use is forgotten by Sweep, so the table stays as small as the set of
// active clients.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "server/config.hpp"
#include "server/rate_limiter.hpp"

namespace backcheck::server {

class AddressLimits {
 public:
  using Clock = std::chrono::steady_clock;
  explicit AddressLimits(const Limits& limits);

  // Reserves a WebSocket for `address` under --max-connections-per-ip; false when it has its share.
  bool TryOpenConnection(const std::string& address);
  void CloseConnection(const std::string& address);
  // One message from `address`: false when the address or the whole server is over its rate.
  bool TryMessage(const std::string& address, Clock::time_point now = Clock::now());
  // One message within the whole server's rate only (a bridge's: its limits are per conversation).
  bool TryGlobalMessage(Clock::time_point now = Clock::now());
  // One new conversation for `address`: false past --new-conversations-per-minute.
  bool TryNewConversation(const std::string& address, Clock::time_point now = Clock::now());
  // Forgets addresses with no open connection, unused for `idle`.
  void Sweep(Clock::time_point now, Clock::duration idle = std::chrono::minutes(2));
  std::size_t Addresses() const;

 private:
  struct Entry {
    Entry(const Limits& limits, Clock::time_point now);
    std::size_t connections = 0;
    TokenBucket messages;
    TokenBucket conversations;
    Clock::time_point last_used;
  };
  Entry& At(const std::string& address, Clock::time_point now);  // with mutex_ held

  const Limits& limits_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
  TokenBucket global_;
};

// The address a request comes from: the peer's, or, when the peer is one of `trusted_proxies`,
// the rightmost address of X-Forwarded-For that is not a trusted proxy (what the first proxy
// saw). An X-Forwarded-For from anyone else is ignored: a client cannot choose its own bucket.
std::string ClientAddress(const std::string& peer, std::string_view forwarded_for,
                          const std::vector<std::string>& trusted_proxies);

}  // namespace backcheck::server
