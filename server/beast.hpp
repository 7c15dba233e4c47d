// The one place Boost is included from. Boost 1.74's Asio under C++20 with g++ 12 needs
// <utility> before any Boost header.
#pragma once

#include <utility>

#include <atomic>

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

// Every connection runs on its own strand. Naming the executor type, instead of Asio's type-erased
// any_io_executor, spares allocations on every handler hop: copies of any_io_executor were among
// the top allocation sites of the load profile (bench/results/profile.md).
using Strand = asio::strand<asio::io_context::executor_type>;
using Socket = asio::basic_stream_socket<tcp, Strand>;
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>, Strand>;
// HTTP requests: Beast's TCP stream, for its per-operation timeouts.
using HttpStream = beast::basic_stream<tcp, Strand>;
// WebSockets sit on the bare socket: the WebSocket stream has its own handshake and idle timeouts,
// so a TCP stream's two timers would be dead weight on every idle connection. No
// permessage-deflate (it is never offered), so none of its state either.
using WebSocket = websocket::stream<Socket, /*deflateSupported=*/false>;

// Sets up an accepted WebSocket the same way for every endpoint: handshake and idle timeouts
// (pings keep an idle but live peer), the frame size limit (Beast closes a bigger frame with
// 1009), and the Server header.
inline void ApplyWebSocketLimits(WebSocket& ws, const Limits& limits) {
  websocket::stream_base::timeout timeout{};
  timeout.handshake_timeout = limits.handshake_timeout;
  timeout.idle_timeout = limits.idle_timeout;
  timeout.keep_alive_pings = true;
  ws.set_option(timeout);
  ws.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(http::field::server, "backcheck"); }));
  ws.read_message_max(limits.max_frame_bytes);
  // RFC 6455 7.4: close codes above 4999 are not defined, and a peer that sends one is failed,
  // not answered. Beast validates the reserved ranges but echoes such a code; dropping the TCP
  // connection here (Beast's close reply then finds it closed) fails the connection instead.
  ws.control_callback([&ws](websocket::frame_type kind, beast::string_view) {
    if (kind == websocket::frame_type::close && ws.reason().code > 4999) {
      beast::error_code ignored;
      ws.next_layer().close(ignored);
    }
  });
}

// Runs `handler` at a connection's boundary: an exception it throws is counted and reported to
// `on_exception`, which closes that one connection; it never reaches the io_context, whose
// threads every other connection shares.
template <class Handler, class OnException>
void AtBoundary(std::atomic<std::uint64_t>& exceptions, Handler&& handler, OnException&& on_exception) noexcept {
  try {
    handler();
  } catch (...) {
    exceptions.fetch_add(1, std::memory_order_relaxed);
    try {
      on_exception();
    } catch (...) {  // closing failed too: the connection is dropped when its handlers run out
    }
  }
}
}  // namespace backcheck::server
