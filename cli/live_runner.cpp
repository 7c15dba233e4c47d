// RunLive: conversation scripts against a running server, over one WebSocket (ws:// or wss://)
// speaking protocol v1. Scripts run concurrently as separate conversations multiplexed on the
// connection: each has one message in flight, and answers are routed back by `ref` (a `started`
// frame has none: the server answers a connection's frames in the order it received them, so
// starts are matched first in, first out).
//
// One thread, asynchronous: a read is always pending, writes are queued, and every wait has a
// bound: connecting, TLS, the upgrade and each answer get `timeout`; a `rate_limited` answer is
// resent after a back-off (a timer, so the other scripts go on meanwhile), at most `max_retries`
// times in a row, after which the script fails saying so. A server that cannot be reached at all
// is a LiveSetupError, not a failure of every script.
#include <utility>  // before Boost: Boost 1.74's Asio under C++20 with g++ 12

#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>

#include "cli/script_runner.hpp"

namespace backcheck::cli {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::milliseconds(2000);

struct Url {
  bool tls = false;
  std::string host, port, path;
};

Url ParseUrl(const std::string& url) {
  static const std::regex kWs(R"(^(wss?)://([^/:\[\]]+|\[[0-9a-fA-F:.]+\])(?::(\d+))?(/.*)?$)");
  std::smatch m;
  if (!std::regex_match(url, m, kWs)) {
    throw LiveSetupError("--url must look like ws://HOST:PORT/v1/chat or wss://HOST/v1/chat, not '" + url + "'");
  }
  const bool tls = m[1].str() == "wss";
  return Url{tls, m[2].str(), m[3].matched ? m[3].str() : (tls ? "443" : "80"), m[4].matched ? m[4].str() : "/v1/chat"};
}

// The host as the resolver, SNI and certificate check want it: an IPv6 literal without brackets.
std::string BareHost(const std::string& host) {
  return host.size() > 2 && host.front() == '[' ? host.substr(1, host.size() - 2) : host;
}

dialog::Reply ReplyFromJson(const json& j) {
  dialog::Reply r;
  r.text = j.value("text", "");
  r.intent = j.value("intent", "");
  r.state = j.value("state", "");
  r.urgency = knowledge::ParseUrgency(j.value("urgency", "none")).value_or(knowledge::Urgency::kNone);
  r.red_flags = j.value("red_flags", std::vector<std::string>{});
  r.possible_flags = j.value("possible_flags", std::vector<std::string>{});
  r.escalated = j.value("escalated", false);
  r.quick_replies = j.value("quick_replies", std::vector<std::string>{});
  for (const auto& s : j.value("sources", json::array())) {
    r.sources.push_back(knowledge::Source{s.value("section", ""), s.value("quote", "")});
  }
  return r;
}

std::string Seconds(std::chrono::milliseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

// What went wrong, for a person.
std::string Describe(const beast::error_code& ec) {
  if (ec == beast::error::timeout) return "timed out";
  if (ec.category() == asio::error::get_ssl_category()) return "TLS: " + ec.message();
  return ec.message();
}

// The frames of one run over one connection; `Ws` is a websocket::stream over a tcp_stream,
// plain or TLS.
template <class Ws>
class LiveRun {
 public:
  LiveRun(asio::io_context& ioc, Ws& ws, const std::string& url, const std::vector<Script>& scripts,
          const LiveOptions& options)
      : ioc_(ioc),
        ws_(ws),
        url_(url),
        scripts_(scripts),
        options_(options),
        concurrency_(std::max<std::size_t>(options.concurrency, 1)),
        results_(scripts.size()),
        started_at_(scripts.size()),
        retries_(scripts.size(), 0),
        watchdog_(ioc),
        retry_timer_(ioc) {
    for (std::size_t i = 0; i < scripts.size(); ++i) results_[i].script = &scripts[i];
  }

  std::vector<ScriptResult> Run() {
    StartMore();
    Read();
    MaybeClose();
    ioc_.run();
    return std::move(results_);
  }

 private:
  enum class Kind { kStart, kMessage, kEnd };
  struct Request {
    Kind kind;
    std::size_t script;        // kStart, kMessage
    std::string conversation;  // kMessage, kEnd
    json frame;                // as sent, for a resend
  };
  struct Active {
    std::string conversation;
    std::size_t next_turn = 0;
  };
  struct Retry {
    Clock::time_point due;
    Request request;
  };

  // -- sending -----------------------------------------------------------------------------

  void Send(Request request) {
    if (broken_) return;
    const std::string ref = "r" + std::to_string(++last_ref_);
    request.frame["ref"] = ref;
    if (request.kind == Kind::kStart) start_refs_.push_back(ref);
    if (in_flight_.empty()) last_progress_ = Clock::now();
    outbox_.push_back(request.frame.dump());
    in_flight_.emplace(ref, std::move(request));
    ArmWatchdog();
    Write();
  }

  void Write() {
    if (writing_ || outbox_.empty() || broken_) return;
    writing_ = true;
    ws_.async_write(asio::buffer(outbox_.front()), [this](beast::error_code ec, std::size_t) {
      writing_ = false;
      if (ec) return Break("sending to the server failed: " + Describe(ec));
      outbox_.pop_front();
      Write();
      MaybeClose();
    });
  }

  void StartMore() {
    while (running_ < concurrency_ && next_ < scripts_.size() && !broken_) {
      const std::size_t s = next_++;
      if (scripts_[s].FixesTime()) {  // the server's clock cannot be fixed: skipped, and counted
        results_[s].skipped = "it fixes the time with @now; a live server keeps its own clock";
        done_.insert(s);
        continue;
      }
      ++running_;
      started_at_[s] = Clock::now();
      Send(Request{Kind::kStart, s, "", json{{"type", "start"}}});
    }
  }

  void SendNext(std::size_t s) {
    Active& a = active_.at(s);
    if (a.next_turn < scripts_[s].turns.size()) {
      Send(Request{Kind::kMessage, s, a.conversation,
                   json{{"type", "message"}, {"conversation", a.conversation}, {"text", scripts_[s].turns[a.next_turn].text}}});
      return;
    }
    Send(Request{Kind::kEnd, s, a.conversation, json{{"type", "end"}, {"conversation", a.conversation}}});
    Finish(s);
  }

  void Finish(std::size_t s) {
    if (done_.count(s)) return;
    results_[s].seconds = std::chrono::duration<double>(Clock::now() - started_at_[s]).count();
    active_.erase(s);
    done_.insert(s);
    --running_;
    StartMore();
  }

  void Fail(std::size_t s, std::string why) {
    if (results_[s].error.empty()) results_[s].error = std::move(why);
    Finish(s);
  }

  // -- receiving ---------------------------------------------------------------------------

  void Read() {
    if (broken_) return;
    reading_ = true;
    ws_.async_read(buffer_, [this](beast::error_code ec, std::size_t) {
      reading_ = false;
      if (ec) {
        if (closing_) return;  // our own close
        if (ec == websocket::error::closed) {
          const auto& reason = ws_.reason();
          return Break("the server closed the connection (code " + std::to_string(reason.code) +
                       (reason.reason.empty() ? std::string() : ": " + std::string(reason.reason.data(), reason.reason.size())) +
                       ")");
        }
        return Break("the connection to the server failed: " + Describe(ec));
      }
      last_progress_ = Clock::now();
      json frame = json::parse(beast::buffers_to_string(buffer_.data()), nullptr, false);
      buffer_.consume(buffer_.size());
      if (frame.is_discarded() || !frame.is_object()) return Break("the server sent a frame that is not a JSON object");
      Handle(frame);
      MaybeClose();
      Read();
    });
  }

  std::optional<Request> Answered(const std::string& ref) {
    auto it = in_flight_.find(ref);
    if (it == in_flight_.end()) return std::nullopt;
    Request r = std::move(it->second);
    in_flight_.erase(it);
    std::erase(start_refs_, ref);
    return r;
  }

  void Handle(const json& frame) {
    const std::string type = frame.value("type", "");
    if (type == "started") {
      if (start_refs_.empty()) return Break("the server sent a 'started' frame nobody asked for: " + frame.dump());
      auto request = Answered(start_refs_.front());
      const std::size_t s = request->script;
      retries_[s] = 0;
      const std::string conversation = frame.value("conversation", "");
      active_[s] = Active{conversation, 0};
      SendNext(s);
    } else if (type == "reply") {
      auto request = Answered(frame.value("ref", ""));
      if (!request || request->kind != Kind::kMessage) return;  // not an answer of ours
      const std::size_t s = request->script;
      auto it = active_.find(s);
      if (it == active_.end()) return;
      retries_[s] = 0;
      Active& a = it->second;
      TurnResult tr;
      tr.reply = ReplyFromJson(frame);
      tr.reply_json = frame.dump();
      auto checked = CheckTurn(scripts_[s].turns[a.next_turn], tr.reply, nullptr);  // no `said` over the wire
      tr.failures = std::move(checked.failures);
      tr.skipped = checked.skipped.size();
      results_[s].turns.push_back(std::move(tr));
      ++a.next_turn;
      SendNext(s);
    } else if (type == "ended") {
      for (auto it = in_flight_.begin(); it != in_flight_.end(); ++it) {
        if (it->second.kind == Kind::kEnd && it->second.conversation == frame.value("conversation", "")) {
          in_flight_.erase(it);
          break;
        }
      }
    } else if (type == "error") {
      HandleError(frame);
    }
    // Any other frame (a notice the server pushes) answers nothing of ours.
  }

  void HandleError(const json& frame) {
    const std::string code = frame.value("code", "");
    const std::string message = frame.value("message", "");
    auto request = Answered(frame.value("ref", ""));
    if (!request) return Break("the server sent an error that answers nothing of ours: " + frame.dump());
    if (request->kind == Kind::kEnd) {  // ending a finished script's conversation
      if (code == "rate_limited" && end_retries_[request->conversation]++ < options_.max_retries) {
        Later(std::move(*request), end_retries_[request->conversation]);
      }
      return;  // otherwise the script's result stands; the conversation expires on its own
    }
    const std::size_t s = request->script;
    const bool starting = request->kind == Kind::kStart;
    const std::string what = starting ? "the start of its conversation"
                                      : "message " + std::to_string(active_.at(s).next_turn + 1);
    // The server asks us to slow down (or to end conversations first): wait, then send it again.
    const bool retryable = code == "rate_limited" || (starting && code == "too_many_conversations");
    if (retryable) {
      if (retries_[s] < options_.max_retries) {
        Later(std::move(*request), ++retries_[s]);
        return;
      }
      return Fail(s, "gave up on " + what + " after " + std::to_string(retries_[s] + 1) + " '" + code +
                         "' answers in a row (the last: \"" + message + "\")" +
                         (options_.token.empty() ? "; a bridge token (--token) gets per-conversation limits" : ""));
    }
    Fail(s, "the server answered " + what + " with an error: " + frame.dump());
  }

  // -- retries -----------------------------------------------------------------------------

  static std::chrono::milliseconds Backoff(std::size_t attempt) {
    auto d = kFirstBackoff;
    for (std::size_t i = 1; i < attempt && d < kMaxBackoff; ++i) d *= 2;
    return std::min(d, std::chrono::duration_cast<std::chrono::milliseconds>(kMaxBackoff));
  }

  void Later(Request request, std::size_t attempt) {
    request.frame.erase("ref");
    retries_waiting_.push_back(Retry{Clock::now() + Backoff(attempt), std::move(request)});
    ArmRetryTimer();
  }

  void ArmRetryTimer() {
    if (retries_waiting_.empty() || broken_) return;
    auto earliest = std::min_element(retries_waiting_.begin(), retries_waiting_.end(),
                                     [](const Retry& a, const Retry& b) { return a.due < b.due; });
    if (retry_armed_ && retry_due_ <= earliest->due) return;
    retry_armed_ = true;
    retry_due_ = earliest->due;
    retry_timer_.expires_at(retry_due_);
    retry_timer_.async_wait([this](beast::error_code ec) {
      retry_armed_ = false;
      if (ec || broken_) return;
      const auto now = Clock::now();
      std::vector<Request> due;
      for (auto it = retries_waiting_.begin(); it != retries_waiting_.end();) {
        if (it->due <= now) {
          due.push_back(std::move(it->request));
          it = retries_waiting_.erase(it);
        } else {
          ++it;
        }
      }
      for (auto& r : due) Send(std::move(r));
      ArmRetryTimer();
      MaybeClose();
    });
  }

  // -- bounds and the end ------------------------------------------------------------------

  // While anything is in flight, the server must say something within `timeout`.
  void ArmWatchdog() {
    if (watchdog_armed_ || in_flight_.empty() || broken_) return;
    watchdog_armed_ = true;
    watchdog_.expires_at(last_progress_ + options_.timeout);
    watchdog_.async_wait([this](beast::error_code ec) {
      watchdog_armed_ = false;
      if (ec || broken_ || in_flight_.empty()) return;
      if (Clock::now() - last_progress_ >= options_.timeout) {
        return Break("no answer from the server within " + Seconds(options_.timeout) + " (" +
                     std::to_string(in_flight_.size()) + " frames waiting for one)");
      }
      ArmWatchdog();
    });
  }

  // The connection is unusable: every script not done fails with `why`, and the run ends.
  void Break(const std::string& why) {
    if (broken_) return;
    broken_ = true;
    for (std::size_t s = 0; s < results_.size(); ++s) {
      if (!done_.count(s) && results_[s].error.empty()) {
        results_[s].error = "connection to " + url_ + ": " + why;
        if (started_at_[s] != Clock::time_point{}) {
          results_[s].seconds = std::chrono::duration<double>(Clock::now() - started_at_[s]).count();
        }
      }
    }
    watchdog_.cancel();
    retry_timer_.cancel();
    beast::get_lowest_layer(ws_).close();
  }

  void MaybeClose() {
    if (broken_ || closing_) return;
    if (done_.size() < scripts_.size() || !in_flight_.empty() || !retries_waiting_.empty() || !outbox_.empty() ||
        writing_) {
      return;
    }
    closing_ = true;
    watchdog_.cancel();
    retry_timer_.cancel();
    ws_.async_close(websocket::close_code::normal, [this](beast::error_code) {
      beast::error_code ignored;
      beast::get_lowest_layer(ws_).socket().close(ignored);
    });
  }

  asio::io_context& ioc_;
  Ws& ws_;
  const std::string& url_;
  const std::vector<Script>& scripts_;
  const LiveOptions& options_;
  std::size_t concurrency_;
  std::vector<ScriptResult> results_;
  std::vector<Clock::time_point> started_at_;
  std::vector<std::size_t> retries_;  // rate_limited answers in a row, per script
  std::map<std::string, std::size_t> end_retries_;
  asio::steady_timer watchdog_, retry_timer_;
  beast::flat_buffer buffer_;
  std::deque<std::string> outbox_;
  std::map<std::string, Request> in_flight_;  // by ref
  std::deque<std::string> start_refs_;        // starts in flight, in the order sent
  std::map<std::size_t, Active> active_;
  std::vector<Retry> retries_waiting_;
  std::set<std::size_t> done_;
  std::size_t next_ = 0, running_ = 0;
  std::uint64_t last_ref_ = 0;
  Clock::time_point last_progress_{};
  Clock::time_point retry_due_{};
  bool writing_ = false, reading_ = false, broken_ = false, closing_ = false;
  bool watchdog_armed_ = false, retry_armed_ = false;
};

// Runs `op(handler)` on `ioc` until it completes or `timeout` passes; returns its error code, or
// beast::error::timeout when it did not complete in time (then `cancel` is called and the op's
// handler run before returning).
template <class Op>
beast::error_code Await(asio::io_context& ioc, std::chrono::milliseconds timeout, const std::function<void()>& cancel,
                        Op op) {
  std::optional<beast::error_code> result;
  op([&result](beast::error_code ec) { result = ec; });
  ioc.restart();
  const auto deadline = Clock::now() + timeout;
  while (!result && ioc.run_one_until(deadline) > 0) {
  }
  if (!result) {
    cancel();
    while (!result && ioc.run_one() > 0) {
    }
    return beast::error::timeout;
  }
  return *result;
}

// Connects `ws` to `url` (TCP, TLS when `wss`, the WebSocket upgrade), or throws a
// LiveSetupError naming the URL and the cause.
template <class Ws>
void Connect(asio::io_context& ioc, Ws& ws, const Url& url, const std::string& text, const LiveOptions& options) {
  auto fail = [&](const std::string& why) { throw LiveSetupError("cannot reach " + text + ": " + why); };
  const std::string host = BareHost(url.host);
  auto& lowest = beast::get_lowest_layer(ws);

  tcp::resolver resolver(ioc);
  tcp::resolver::results_type endpoints;
  auto ec = Await(ioc, options.timeout, [&] { resolver.cancel(); }, [&](auto done) {
    resolver.async_resolve(host, url.port, [&, done](beast::error_code e, tcp::resolver::results_type r) {
      endpoints = std::move(r);
      done(e);
    });
  });
  if (ec == beast::error::timeout) fail("looking up " + host + " timed out after " + Seconds(options.timeout));
  if (ec) fail("cannot resolve host name '" + host + "': " + ec.message());

  lowest.expires_after(options.timeout);
  ec = Await(ioc, options.timeout + std::chrono::seconds(1), [&] { lowest.cancel(); }, [&](auto done) {
    lowest.async_connect(endpoints, [done](beast::error_code e, const tcp::endpoint&) { done(e); });
  });
  if (ec == beast::error::timeout) fail("connecting timed out after " + Seconds(options.timeout));
  if (ec) fail(ec.message());

  if constexpr (!std::is_same_v<typename Ws::next_layer_type, beast::tcp_stream>) {
    auto& tls = ws.next_layer();
    if (!SSL_set_tlsext_host_name(tls.native_handle(), host.c_str())) fail("TLS: cannot set the server name (SNI)");
    tls.set_verify_callback(ssl::host_name_verification(host));
    lowest.expires_after(options.timeout);
    ec = Await(ioc, options.timeout + std::chrono::seconds(1), [&] { lowest.cancel(); }, [&](auto done) {
      tls.async_handshake(ssl::stream_base::client, [done](beast::error_code e) { done(e); });
    });
    if (ec == beast::error::timeout) fail("the TLS handshake timed out after " + Seconds(options.timeout));
    if (ec) {
      std::string why = "TLS handshake failed: " + Describe(ec);
      const long verify = SSL_get_verify_result(tls.native_handle());
      if (verify != X509_V_OK) {
        why += " (" + std::string(X509_verify_cert_error_string(verify)) + ")";
        if (options.ca_file.empty()) why += "; for a private CA, give its certificate with --ca-file";
      }
      fail(why);
    }
  }

  lowest.expires_never();
  websocket::stream_base::timeout t{};
  t.handshake_timeout = options.timeout;
  t.idle_timeout = websocket::stream_base::none();  // the run's own watchdog bounds each wait
  t.keep_alive_pings = false;
  ws.set_option(t);
  ws.set_option(websocket::stream_base::decorator([token = options.token](websocket::request_type& req) {
    req.set(http::field::user_agent, "backcheck-test");
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  }));
  ws.read_message_max(1 << 20);
  websocket::response_type res;
  const bool default_port = url.port == (url.tls ? "443" : "80");
  ec = Await(ioc, options.timeout + std::chrono::seconds(1), [&] { lowest.cancel(); }, [&](auto done) {
    ws.async_handshake(res, default_port ? url.host : url.host + ":" + url.port, url.path,
                       [done](beast::error_code e) { done(e); });
  });
  if (ec == beast::error::timeout) fail("the WebSocket upgrade timed out after " + Seconds(options.timeout));
  if (ec == websocket::error::upgrade_declined || (ec && res.result_int() != 0 && res.result() != http::status::switching_protocols)) {
    std::string why = "the server answered HTTP " + std::to_string(res.result_int()) + " " +
                      std::string(res.reason()) + " instead of upgrading to a WebSocket";
    std::string body = res.body();
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
    if (!body.empty() && body.size() < 200) why += " (" + body + ")";
    if (res.result() == http::status::unauthorized) {
      why += options.token.empty() ? "; it wants a bridge token (--token)" : "; the bridge token (--token) was refused";
    }
    fail(why);
  }
  if (ec) fail("the WebSocket upgrade failed: " + Describe(ec));
  ws.text(true);
}

template <class Ws>
std::vector<ScriptResult> ConnectAndRun(asio::io_context& ioc, Ws& ws, const Url& url, const std::string& text,
                                        const std::vector<Script>& scripts, const LiveOptions& options) {
  Connect(ioc, ws, url, text, options);
  ioc.restart();
  return LiveRun<Ws>(ioc, ws, text, scripts, options).Run();
}

}  // namespace

std::vector<ScriptResult> RunLive(const std::string& url_text, const std::vector<Script>& scripts,
                                  const LiveOptions& options) {
  const Url url = ParseUrl(url_text);
  asio::io_context ioc;
  if (!url.tls) {
    websocket::stream<beast::tcp_stream> ws(ioc);
    return ConnectAndRun(ioc, ws, url, url_text, scripts, options);
  }
  ssl::context ctx(ssl::context::tls_client);
  ctx.set_verify_mode(ssl::verify_peer);
  beast::error_code ec;
  if (options.ca_file.empty()) {
    ctx.set_default_verify_paths(ec);
    if (ec) throw LiveSetupError("cannot load the system's trusted certificates: " + ec.message());
  } else {
    ctx.load_verify_file(options.ca_file, ec);
    if (ec) throw LiveSetupError("cannot load --ca-file " + options.ca_file + ": " + Describe(ec));
  }
  websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws(ioc, ctx);
  return ConnectAndRun(ioc, ws, url, url_text, scripts, options);
}

}  // namespace backcheck::cli
