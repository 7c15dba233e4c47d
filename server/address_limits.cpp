#include "server/address_limits.hpp"

#include <algorithm>

#include "server/beast.hpp"
#include "server/request_checks.hpp"

namespace backcheck::server {

AddressLimits::Entry::Entry(const Limits& limits, Clock::time_point now)
    : messages(limits.ip_messages_per_second, limits.ip_burst, now),
      // The burst is at least one second's worth: a raised rate is not undone by a fixed burst.
      conversations(limits.new_conversations_per_minute / 60.0,
                    std::max(kNewConversationBurst, limits.new_conversations_per_minute / 60.0), now),
      last_used(now) {}

AddressLimits::AddressLimits(const Limits& limits)
    : limits_(limits), global_(limits.global_messages_per_second, limits.global_messages_per_second) {}

AddressLimits::Entry& AddressLimits::At(const std::string& address, Clock::time_point now) {
  auto it = entries_.find(address);
  if (it == entries_.end()) it = entries_.try_emplace(address, limits_, now).first;
  it->second.last_used = now;
  return it->second;
}

bool AddressLimits::TryOpenConnection(const std::string& address) {
  std::lock_guard lock(mutex_);
  Entry& e = At(address, Clock::now());
  if (e.connections >= limits_.max_connections_per_ip) return false;
  ++e.connections;
  return true;
}

void AddressLimits::CloseConnection(const std::string& address) {
  std::lock_guard lock(mutex_);
  if (auto it = entries_.find(address); it != entries_.end() && it->second.connections > 0) --it->second.connections;
}

bool AddressLimits::TryMessage(const std::string& address, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  // The address's own bucket first: one noisy client must not spend the server's whole allowance.
  if (!At(address, now).messages.TryTake(now)) return false;
  return global_.TryTake(now);
}

bool AddressLimits::TryGlobalMessage(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  return global_.TryTake(now);
}

bool AddressLimits::TryNewConversation(const std::string& address, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  return At(address, now).conversations.TryTake(now);
}

void AddressLimits::Sweep(Clock::time_point now, Clock::duration idle) {
  std::lock_guard lock(mutex_);
  std::erase_if(entries_, [&](const auto& item) {
    return item.second.connections == 0 && now - item.second.last_used > idle;
  });
}

std::size_t AddressLimits::Addresses() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

namespace {
bool Trusted(std::string_view address, const std::vector<std::string>& trusted) {
  return std::find(trusted.begin(), trusted.end(), address) != trusted.end();
}
}  // namespace

std::string ClientAddress(const std::string& peer, std::string_view forwarded_for,
                          const std::vector<std::string>& trusted_proxies) {
  if (forwarded_for.empty() || !Trusted(peer, trusted_proxies)) return peer;
  // From the right: each trusted proxy appended the address it got the request from.
  while (!forwarded_for.empty()) {
    const auto comma = forwarded_for.rfind(',');
    const std::string_view hop = Trim(comma == std::string_view::npos ? forwarded_for : forwarded_for.substr(comma + 1));
    forwarded_for = comma == std::string_view::npos ? std::string_view() : forwarded_for.substr(0, comma);
    if (hop.empty() || Trusted(hop, trusted_proxies)) continue;
    beast::error_code ec;
    const auto address = asio::ip::make_address(std::string(hop), ec);
    return ec ? peer : address.to_string();  // not an address: the proxy is all we know
  }
  return peer;
}

}  // namespace backcheck::server
