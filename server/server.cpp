#include "server/server.hpp"

#include <filesystem>
#include <iostream>
#include <thread>
#include <typeinfo>

#include "server/beast.hpp"
#include "server/conversation_service.hpp"
#include "server/http_session.hpp"
#include "server/server_context.hpp"
#include "server/webhook/webhook_slot.hpp"
#include "server/json_writer.hpp"
#include "server/knowledge_reload.hpp"
#include "server/log.hpp"
#include "server/store/memory_store.hpp"
#include "server/store/postgres_outbox.hpp"
#include "server/store/postgres_store.hpp"
#include "server/store/sqlite_store.hpp"

namespace backcheck::server {
namespace {

constexpr auto kShutdownGrace = std::chrono::milliseconds(4500);  // SPEC: exit within 5 s
constexpr auto kShutdownPoll = std::chrono::milliseconds(10);

constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(asio::io_context& ioc, tcp::acceptor& acceptor, ServerContext& context)
      : ioc_(ioc), acceptor_(acceptor), context_(context), backoff_(ioc) {}

  void Accept() {
    acceptor_.async_accept(asio::make_strand(ioc_), beast::bind_front_handler(&Listener::OnAccept, shared_from_this()));
  }

 private:
  void OnAccept(beast::error_code ec, Socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;  // shutting down
    if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space || ec == asio::error::no_memory ||
        ec.value() == ENFILE) {
      // Out of descriptors: accepting again at once would spin (the pending connection stays
      // in the backlog). Wait for connections to close, then go on.
      backoff_.expires_after(kAcceptBackoff);
      backoff_.async_wait([self = shared_from_this()](beast::error_code wait_ec) {
        if (!wait_ec) self->Accept();
      });
      return;
    }
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      AtBoundary(context_.metrics.handler_exceptions,
                 [&] { std::make_shared<HttpSession>(std::move(socket), context_)->Run(); }, [] {});
    }
    Accept();  // any other failed accept does not stop the listener
  }

  asio::io_context& ioc_;
  tcp::acceptor& acceptor_;
  ServerContext& context_;
  asio::steady_timer backoff_;
};

// Runs the io_context on this thread until it is stopped. A handler that lets an exception out
// (every session catches its own; this is the last line) costs that handler, not the server.
void RunLoop(asio::io_context& ioc, Metrics& metrics) {
  for (;;) {
    try {
      ioc.run();
      return;
    } catch (const std::exception& e) {
      metrics.handler_exceptions.fetch_add(1, std::memory_order_relaxed);
      BACKCHECK_LOG(kError, "handler_exception").Str("where", "io_loop").Str("type", typeid(e).name())
          .Str("metric", "backcheck_handler_exceptions_total");  // the type only: a what() may quote input
    } catch (...) {
      metrics.handler_exceptions.fetch_add(1, std::memory_order_relaxed);
      BACKCHECK_LOG(kError, "handler_exception").Str("where", "io_loop").Str("metric", "backcheck_handler_exceptions_total");
    }
  }
}

std::string Describe(const tcp::endpoint& endpoint) {
  const auto address = endpoint.address();
  return (address.is_v6() ? "[" + address.to_string() + "]" : address.to_string()) + ":" +
         std::to_string(endpoint.port());
}

// `service`: set once the service exists (the store is made first); its engine is the one a
// reload put in place. Before then, `engine`.
std::unique_ptr<ConversationStore> OpenStore(const ServerConfig& config, const dialog::Engine& engine,
                                             const std::atomic<ConversationService*>& service) {
  if (config.store == "memory") return std::make_unique<MemoryStore>();
  RaiseUrgency raise = [&engine, &service](dialog::ConversationState& state, const EscalationEvent& escalation) {
    if (ConversationService* s = service.load()) {
      state = s->engine()->Escalate(state, escalation.level, escalation.flags);
    } else {
      state = engine.Escalate(state, escalation.level, escalation.flags);
    }
  };
  if (config.store == "postgres") return std::make_unique<PostgresStore>(config.database_url, std::move(raise));
  return std::make_unique<SqliteStore>(config.data_dir, std::move(raise),
                                       std::chrono::microseconds(config.commit_delay_us));
}

}  // namespace

int RunServer(const ServerConfig& config, const dialog::Engine& engine) {
  const unsigned threads = config.threads ? config.threads : std::max(1u, std::thread::hardware_concurrency());

  // Declared before the io_context so they outlive it: destroying the io_context destroys the
  // handlers still queued, and with them sessions whose destructors use the context.
  std::vector<std::string> intents;
  for (const auto& intent : engine.kb().intents) intents.push_back(intent.id);
  Metrics metrics(std::move(intents));
  ConversationConnections pushes;  // before the store: its threads push until it is destroyed
  std::atomic<ConversationService*> service_for_store{nullptr};
  std::unique_ptr<ConversationStore> store = OpenStore(config, engine, service_for_store);
  OperatorHub operators;
  std::unique_ptr<WebhookOutbox> own_outbox;  // --store postgres: the webhook's, beside the store
  WebhookSlot webhook;  // set once the io_context exists; woken by every durable escalation
  // An acknowledgement made on any instance tells the operators, and the person on whichever
  // connection of this instance holds their conversation.
  auto seen = std::make_shared<const PushedNotice>(
      PushedNotice::Notice("escalation_acknowledged", engine.kb().flow.Text("care_team_seen")));
  store->escalations().Subscribe(EscalationLog::Listener{
      [&operators, &webhook](const EscalationEvent& event) {
        // Never the text that raised it: the id an operator acts on, the level and the flags.
        BACKCHECK_LOG(kInfo, "escalation").Int("id", event.id).Str("urgency", knowledge::UrgencyName(event.level))
            .Strs("flags", event.flags).Str("conversation", log::ConversationRef(event.conversation));
        operators.Publish(event);
        webhook.Wake();
      },
      [&operators, &pushes, seen](const EscalationEvent& event, const std::string& by) {
        BACKCHECK_LOG(kInfo, "escalation_acknowledged").Int("id", event.id).Str("operator", by)
            .Str("urgency", knowledge::UrgencyName(event.level));  // never the operator's note
        operators.Broadcast(JsonObject(64 + by.size()).String("type", "acked").Int("id", event.id)
                                .String("conversation", event.conversation).String("by", by).Done());
        pushes.Notify(event.conversation, seen);
      }});
  // The service runs the engine for a message that waited behind another on an I/O thread,
  // never on the store's thread that completed the one before. (The io_context is declared
  // below: it must be destroyed first, see above.)
  asio::io_context* io = nullptr;
  ConversationService service(engine, *store, config.limits, metrics,
                              [&io](std::function<void()> work) { asio::post(*io, std::move(work)); });
  service.SetEmergencyNumber(config.emergency_number);
  service_for_store.store(&service);
  service.SetReview(config.review, std::chrono::hours(24) * config.review_days);
  // A person's message in a conversation an operator has joined goes to that operator's console;
  // claims, joins and operators' messages go to whoever they concern, whichever instance of
  // those on the store made them.
  HandoffFanout handoff(*store, operators, pushes, engine.kb().flow.Text("care_team_seen"));
  service.OnHandedOffMessage(
      [&handoff](const ConversationService::HandedOffMessage& m) { handoff.Announce(m.event, m.text); });
  store->OnOtherInstances([&handoff](const ConversationEvent& event) { handoff.FromOtherInstance(event); });
  StaticFiles files(config.web_dir);
  SessionRegistry sessions;
  AddressLimits addresses(config.limits);
  OperatorSignIns sign_ins(config.operator_session_ttl, config.max_operator_sessions);
  ServerContext context{config, *store, service, operators, metrics, files, sessions, addresses, pushes, sign_ins,
                        handoff};

  asio::io_context ioc{static_cast<int>(threads)};
  io = &ioc;
  // SIGHUP and POST /v1/admin/reload load the knowledge folder again, on a thread of its own.
  // After the io_context: destroyed (its running reload awaited) before it.
  KnowledgeReloader reloader(config.kb_dir, dialog::EngineOptions{}, service, metrics);
  context.reloader = &reloader;
  // A batch's replies go to the I/O threads in one hand-off; once they have stopped (the final
  // commits at shutdown), on the store's thread.
  store->CompleteOn([&ioc](std::function<void()> work) {
    if (ioc.stopped()) return work();
    asio::post(ioc, std::move(work));
  });

  if (!config.escalation_webhook.empty()) {
    // SQLite keeps the outbox in its own database; PostgreSQL in a connection of its own, shared
    // by every instance on the database through leases (server/store/postgres_outbox.hpp).
    if (config.store == "postgres") own_outbox = std::make_unique<PostgresWebhookOutbox>(config.database_url);
    auto* outbox = own_outbox ? own_outbox.get() : dynamic_cast<WebhookOutbox*>(store.get());
    if (!outbox) {
      throw std::runtime_error("--escalation-webhook needs --store sqlite or --store postgres (the outbox is kept "
                               "in the database; the memory store has none)");
    }
    WebhookOptions options;
    options.url = config.escalation_webhook;
    options.secret = config.webhook_secret;
    try {
      webhook.Set(std::make_shared<EscalationWebhook>(ioc, std::move(options), *outbox));
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(std::string("--escalation-webhook: ") + e.what());
    }
  }

  beast::error_code ec;
  const auto address = asio::ip::make_address(config.host, ec);
  if (ec) throw std::runtime_error("--host " + config.host + " is not an IP address");
  const tcp::endpoint endpoint{address, config.port};
  tcp::acceptor acceptor(ioc);
  const auto fail = [&](const char* what, beast::error_code e) {
    throw std::runtime_error(std::string("cannot ") + what + " " + Describe(endpoint) + ": " + e.message());
  };
  if (acceptor.open(endpoint.protocol(), ec)) fail("open a socket for", ec);
  acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (acceptor.bind(endpoint, ec)) fail("listen on", ec);
  if (acceptor.listen(asio::socket_base::max_listen_connections, ec)) fail("listen on", ec);
  // Catch SIGINT/SIGTERM before saying we listen: a caller may signal as soon as it reads the
  // line, and Asio keeps a signal that arrives before the wait below is started.
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  asio::signal_set hangups(ioc, SIGHUP);
  std::function<void()> wait_hangup = [&] {
    hangups.async_wait([&](beast::error_code hup_ec, int) {
      if (hup_ec) return;
      reloader.Start("sighup", [](const ReloadResult&) {});  // the reloader logs the outcome
      wait_hangup();
    });
  };
  wait_hangup();
  BACKCHECK_LOG(kInfo, "listening").Str("address", "http://" + Describe(acceptor.local_endpoint()))
      .Str("store", config.store).Uint("threads", threads).Bool("operators", !config.operators.empty())
      .Bool("webhook", !config.escalation_webhook.empty());
  std::cout << "listening on http://" << Describe(acceptor.local_endpoint())
            << std::endl;  // std::endl: flushed, the line callers wait for

  std::make_shared<Listener>(ioc, acceptor, context)->Accept();
  webhook.Start();  // what a previous run left undelivered, then each new escalation

  // Expired conversations are purged every tenth of the shorter expiry (at least every second,
  // at most once a minute); idle client addresses are forgotten at the same time.
  asio::steady_timer purge(ioc);
  const auto shortest = std::min(config.limits.conversation_expiry, config.limits.empty_conversation_expiry);
  const auto purge_every = std::clamp<std::chrono::seconds>(shortest / 10, std::chrono::seconds(1), std::chrono::seconds(60));
  std::function<void()> schedule_purge = [&] {
    purge.expires_after(purge_every);
    purge.async_wait([&](beast::error_code wait_ec) {
      if (wait_ec) return;
      AtBoundary(metrics.handler_exceptions, [&] {
        service.PurgeExpired();
        addresses.Sweep(Clock::now());
      }, [] {});
      schedule_purge();
    });
  };
  schedule_purge();

  asio::steady_timer drain(ioc);
  const auto deadline_at = std::make_shared<Clock::time_point>();
  std::function<void()> wait_drained = [&] {
    drain.expires_after(kShutdownPoll);
    drain.async_wait([&](beast::error_code wait_ec) {
      if (wait_ec) return;
      if (sessions.Size() == 0 || Clock::now() >= *deadline_at) return ioc.stop();
      wait_drained();
    });
  };
  signals.async_wait([&](beast::error_code signal_ec, int signal_number) {
    if (signal_ec) return;
    BACKCHECK_LOG(kInfo, "shutting_down").Str("signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT")
        .Uint("connections", sessions.Size());
    context.stopping = true;
    beast::error_code ignored;
    acceptor.close(ignored);
    purge.cancel();
    hangups.cancel();
    sessions.ShutdownAll();  // WebSockets close with 1001 after their queued replies
    *deadline_at = Clock::now() + kShutdownGrace;
    wait_drained();
  });

  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back([&ioc, &metrics] { RunLoop(ioc, metrics); });
  RunLoop(ioc, metrics);
  for (auto& t : pool) t.join();
  webhook.Reset();  // before the store it reads and the io_context it runs on
  own_outbox.reset();  // its queued callbacks hold the webhook's strand: gone before the io_context
  // Commit what is queued while the service, metrics and operators its completions use are alive.
  store.reset();
  BACKCHECK_LOG(kInfo, "stopped");
  return 0;
}

}  // namespace backcheck::server
