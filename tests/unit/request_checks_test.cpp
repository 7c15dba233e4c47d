// Checks on requests before they are served: Origin, WebSocket key, content type, client address.
#include <catch2/catch.hpp>

#include "server/address_limits.hpp"
#include "server/request_checks.hpp"

using namespace backcheck::server;

TEST_CASE("browser origins: the server's own and the allowed ones, and no Origin is not a browser", "[checks]") {
  const std::vector<std::string> none, some{"https://clinic.example"}, any{"*"};
  CHECK(OriginAllowed("", "chat.example:8080", none));
  CHECK(OriginAllowed("http://chat.example:8080", "chat.example:8080", none));
  CHECK(OriginAllowed("HTTPS://Chat.Example:8080", "chat.example:8080", none));
  CHECK_FALSE(OriginAllowed("https://evil.example", "chat.example:8080", none));
  CHECK_FALSE(OriginAllowed("http://chat.example:8081", "chat.example:8080", none));  // another port is another origin
  CHECK_FALSE(OriginAllowed("null", "chat.example:8080", none));
  CHECK_FALSE(OriginAllowed("http://chat.example:8080", "", none));
  CHECK(OriginAllowed("https://clinic.example", "chat.example:8080", some));
  CHECK_FALSE(OriginAllowed("https://clinic.example.evil", "chat.example:8080", some));
  CHECK(OriginAllowed("https://evil.example", "chat.example:8080", any));
  CHECK(OriginAllowed("null", "chat.example:8080", any));
}

TEST_CASE("a WebSocket key is the base64 of 16 bytes", "[checks]") {
  CHECK(ValidWebSocketKey("dGhlIHNhbXBsZSBub25jZQ=="));  // RFC 6455's example
  CHECK_FALSE(ValidWebSocketKey(""));
  CHECK_FALSE(ValidWebSocketKey("dGhlIHNhbXBsZSBub25jZQ="));
  CHECK_FALSE(ValidWebSocketKey("dGhlIHNhbXBsZSBub25jZQ==="));
  CHECK_FALSE(ValidWebSocketKey("dGhlIHNhbXBsZSBub25jZR=="));  // padding bits set: not 16 bytes' encoding
  CHECK_FALSE(ValidWebSocketKey("dGhlIHNhbXBsZSBub25j!Q=="));
}

TEST_CASE("routing uses the path; POST bodies must be JSON", "[checks]") {
  CHECK(TargetPath("/v1/chat?x=1") == "/v1/chat");
  CHECK(TargetPath("/healthz#top") == "/healthz");
  CHECK(IsJsonContentType("application/json"));
  CHECK(IsJsonContentType("Application/JSON; charset=utf-8"));
  CHECK_FALSE(IsJsonContentType("text/plain"));
  CHECK_FALSE(IsJsonContentType("application/jsonx"));
  CHECK_FALSE(IsJsonContentType(""));
  CHECK(SplitList(" a, ,b ,") == std::vector<std::string>{"a", "b"});
}

TEST_CASE("X-Forwarded-For counts only from a trusted proxy", "[checks]") {
  const std::vector<std::string> proxies{"10.0.0.1", "10.0.0.2"};
  CHECK(ClientAddress("203.0.113.9", "1.2.3.4", proxies) == "203.0.113.9");  // anyone else: ignored
  CHECK(ClientAddress("10.0.0.1", "", proxies) == "10.0.0.1");
  CHECK(ClientAddress("10.0.0.1", "1.2.3.4", proxies) == "1.2.3.4");
  // A client may put anything first; the rightmost address no trusted proxy added is the one.
  CHECK(ClientAddress("10.0.0.1", "6.6.6.6, 1.2.3.4, 10.0.0.2", proxies) == "1.2.3.4");
  CHECK(ClientAddress("10.0.0.1", "not-an-address", proxies) == "10.0.0.1");
}

TEST_CASE("limits per client address and for the server", "[checks]") {
  Limits limits;
  limits.max_connections_per_ip = 2;
  limits.ip_messages_per_second = 1;
  limits.ip_burst = 3;
  limits.global_messages_per_second = 5;
  limits.new_conversations_per_minute = 60;
  AddressLimits addresses(limits);
  CHECK(addresses.TryOpenConnection("a"));
  CHECK(addresses.TryOpenConnection("a"));
  CHECK_FALSE(addresses.TryOpenConnection("a"));
  CHECK(addresses.TryOpenConnection("b"));  // another address has its own share
  addresses.CloseConnection("a");
  CHECK(addresses.TryOpenConnection("a"));

  const auto t = AddressLimits::Clock::now();
  for (int i = 0; i < 3; ++i) CHECK(addresses.TryMessage("a", t));
  CHECK_FALSE(addresses.TryMessage("a", t));  // a's burst is spent
  CHECK(addresses.TryMessage("b", t));
  CHECK(addresses.TryMessage("c", t));
  CHECK_FALSE(addresses.TryMessage("d", t));  // the server's 5 are spent, whoever asks

  for (int i = 0; i < static_cast<int>(kNewConversationBurst); ++i) CHECK(addresses.TryNewConversation("e", t));
  CHECK_FALSE(addresses.TryNewConversation("e", t));
  CHECK(addresses.TryNewConversation("e", t + std::chrono::seconds(1)));  // 60 a minute: one a second

  addresses.Sweep(t + std::chrono::minutes(5));
  CHECK(addresses.Addresses() == 2);  // a and b have connections open; c, d and e are forgotten
}
