#include "server/server.hpp"

#include <filesystem>
#include <iostream>
#include <thread>

#include "server/beast.hpp"
#include "server/conversation_service.hpp"
#include "server/http_session.hpp"
#include "server/server_context.hpp"
#include "server/sqlite_store.hpp"

namespace backcheck::server {
namespace {

constexpr auto kShutdownGrace = std::chrono::milliseconds(4500);  // SPEC: exit within 5 s
constexpr auto kShutdownPoll = std::chrono::milliseconds(10);

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(asio::io_context& ioc, tcp::acceptor& acceptor, ServerContext& context)
      : ioc_(ioc), acceptor_(acceptor), context_(context) {}

  void Accept() {
    acceptor_.async_accept(asio::make_strand(ioc_), beast::bind_front_handler(&Listener::OnAccept, shared_from_this()));
  }

 private:
  void OnAccept(beast::error_code ec, Socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;  // shutting down
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      std::make_shared<HttpSession>(std::move(socket), context_)->Run();
    }
    Accept();  // a failed accept (e.g. out of file descriptors) does not stop the listener
  }

  asio::io_context& ioc_;
  tcp::acceptor& acceptor_;
  ServerContext& context_;
};

}  // namespace

int RunServer(const ServerConfig& config, const dialog::Engine& engine) {
  const unsigned threads = config.threads ? config.threads : std::max(1u, std::thread::hardware_concurrency());

  // Declared before the io_context so they outlive it: destroying the io_context destroys the
  // handlers still queued, and with them sessions whose destructors use the context.
  std::vector<std::string> intents;
  for (const auto& intent : engine.kb().intents) intents.push_back(intent.id);
  Metrics metrics(std::move(intents));
  std::unique_ptr<ConversationStore> store;
  if (config.store == "memory") {
    store = std::make_unique<MemoryStore>();
  } else {
    store = std::make_unique<SqliteStore>(std::filesystem::path(config.data_dir) / "backcheck.db");
  }
  OperatorHub operators;
  ConversationService service(engine, *store, config.limits, metrics,
                              [&operators](const EscalationEvent& event) { operators.Publish(event); });
  StaticFiles files(config.web_dir);
  SessionRegistry sessions;
  ServerContext context{config, *store, service, operators, metrics, files, sessions};

  asio::io_context ioc{static_cast<int>(threads)};

  tcp::endpoint endpoint{asio::ip::make_address(config.host), config.port};
  tcp::acceptor acceptor(ioc);
  acceptor.open(endpoint.protocol());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen(asio::socket_base::max_listen_connections);
  const auto bound = acceptor.local_endpoint();
  std::cout << "listening on http://" << (bound.address().is_v6() ? "[" + bound.address().to_string() + "]" : bound.address().to_string())
            << ":" << bound.port() << std::endl;  // std::endl: flushed, the line callers wait for

  std::make_shared<Listener>(ioc, acceptor, context)->Accept();

  // Expired conversations are purged every tenth of the expiry (at most once a minute).
  asio::steady_timer purge(ioc);
  const auto purge_every = std::clamp<std::chrono::seconds>(config.limits.conversation_expiry / 10, std::chrono::seconds(1),
                                                           std::chrono::seconds(60));
  std::function<void()> schedule_purge = [&] {
    purge.expires_after(purge_every);
    purge.async_wait([&](beast::error_code ec) {
      if (ec) return;
      service.PurgeExpired();
      schedule_purge();
    });
  };
  schedule_purge();

  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  asio::steady_timer drain(ioc);
  const auto deadline_at = std::make_shared<Clock::time_point>();
  std::function<void()> wait_drained = [&] {
    drain.expires_after(kShutdownPoll);
    drain.async_wait([&](beast::error_code ec) {
      if (ec) return;
      if (sessions.Size() == 0 || Clock::now() >= *deadline_at) return ioc.stop();
      wait_drained();
    });
  };
  signals.async_wait([&](beast::error_code ec, int) {
    if (ec) return;
    context.stopping = true;
    beast::error_code ignored;
    acceptor.close(ignored);
    purge.cancel();
    sessions.ShutdownAll();  // WebSockets close with 1001 after their queued replies
    *deadline_at = Clock::now() + kShutdownGrace;
    wait_drained();
  });

  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : pool) t.join();
  // Commit what is queued while the service, metrics and operators its completions use are alive.
  store.reset();
  return 0;
}

}  // namespace backcheck::server
