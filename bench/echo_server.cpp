// A plain Boost.Beast WebSocket echo server, built the way chat-server is (an io_context run by
// N threads, a strand per connection, one read and one write outstanding at a time), so a load
// test can put the chat server next to the floor its transport sets, in the same run.
//
//   build/bench/echo_server [--host 127.0.0.1] [--port 0] [--threads N]
//
// Prints "listening on http://HOST:PORT" once bound; SIGINT/SIGTERM stop it.
#include <CLI/CLI.hpp>
#include <iostream>
#include <thread>
#include <vector>

#include "server/beast.hpp"

namespace {

using namespace backcheck::server;

class EchoSession : public std::enable_shared_from_this<EchoSession> {
 public:
  explicit EchoSession(Socket&& socket) : ws_(std::move(socket)) {}

  void Run() {
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.read_message_max(16 * 1024);  // the chat server's default frame limit
    ws_.async_accept(beast::bind_front_handler(&EchoSession::OnAccept, shared_from_this()));
  }

 private:
  void OnAccept(beast::error_code ec) {
    if (!ec) DoRead();
  }
  void DoRead() { ws_.async_read(buffer_, beast::bind_front_handler(&EchoSession::OnRead, shared_from_this())); }
  void OnRead(beast::error_code ec, std::size_t) {
    if (ec) return;
    ws_.text(ws_.got_text());
    ws_.async_write(buffer_.data(), beast::bind_front_handler(&EchoSession::OnWrite, shared_from_this()));
  }
  void OnWrite(beast::error_code ec, std::size_t) {
    if (ec) return;
    buffer_.consume(buffer_.size());
    DoRead();
  }

  WebSocket ws_;  // the chat server's WebSocket type: same socket, executor and options
  beast::flat_buffer buffer_;
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(asio::io_context& ioc, tcp::acceptor& acceptor) : ioc_(ioc), acceptor_(acceptor) {}
  void Accept() {
    acceptor_.async_accept(asio::make_strand(ioc_), beast::bind_front_handler(&Listener::OnAccept, shared_from_this()));
  }

 private:
  void OnAccept(beast::error_code ec, Socket socket) {
    if (!acceptor_.is_open()) return;
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      std::make_shared<EchoSession>(std::move(socket))->Run();
    }
    Accept();
  }
  asio::io_context& ioc_;
  tcp::acceptor& acceptor_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  unsigned threads = 0;
  CLI::App app{"Beast WebSocket echo server: the transport floor for the benchmarks"};
  app.add_option("--host", host)->capture_default_str();
  app.add_option("--port", port, "0 picks a free port")->capture_default_str();
  app.add_option("--threads", threads, "I/O threads; 0 = one per core")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());

  asio::io_context ioc{static_cast<int>(threads)};
  tcp::acceptor acceptor(ioc, tcp::endpoint{asio::ip::make_address(host), port});
  std::cout << "listening on http://" << host << ":" << acceptor.local_endpoint().port() << std::endl;
  std::make_shared<Listener>(ioc, acceptor)->Accept();
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](beast::error_code, int) { ioc.stop(); });
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : pool) t.join();
  return 0;
}
