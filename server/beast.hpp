// The one place Boost is included from. Boost 1.74's Asio under C++20 with g++ 12 needs
// <utility> before any Boost header.
#pragma once

#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "server/config.hpp"

namespace backcheck::server {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

// Sets up an accepted WebSocket the same way for every endpoint: its own handshake and idle
// timeouts replace the TCP stream's (pings keep an idle but live peer), the frame size limit
// (Beast closes a bigger frame with 1009), and the Server header.
inline void ApplyWebSocketLimits(websocket::stream<beast::tcp_stream>& ws, const Limits& limits) {
  beast::get_lowest_layer(ws).expires_never();
  websocket::stream_base::timeout timeout{};
  timeout.handshake_timeout = limits.handshake_timeout;
  timeout.idle_timeout = limits.idle_timeout;
  timeout.keep_alive_pings = true;
  ws.set_option(timeout);
  ws.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(http::field::server, "backcheck"); }));
  ws.read_message_max(limits.max_frame_bytes);
}
}  // namespace backcheck::server
