#include "server/webhook/escalation_webhook.hpp"

#include "server/beast.hpp"  // first: <utility> before Boost

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <deque>
#include <mutex>
#include <random>
#include <stdexcept>

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>

#include "server/json_writer.hpp"

namespace backcheck::server {
namespace ssl = asio::ssl;

namespace {

constexpr std::size_t kMaxResponseHeaderBytes = 16 * 1024;  // a receiver's answer: only its status is read

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "2026-11-23T20:31:07.123Z", as in the operator frames (server/store/store.cpp).
std::string IsoUtc(std::int64_t at_ms) {
  std::time_t seconds = static_cast<std::time_t>(at_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char at[40];
  std::size_t n = std::strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(at + n, sizeof at - n, ".%03dZ", static_cast<int>(((at_ms % 1000) + 1000) % 1000));
  return at;
}

std::int64_t UnixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::optional<WebhookUrl> ParseWebhookUrl(const std::string& url, std::string* error) {
  const auto fail = [&](const char* why) -> std::optional<WebhookUrl> {
    if (error) *error = why;
    return std::nullopt;
  };
  for (unsigned char c : url) {
    if (c <= 0x20 || c >= 0x7f) return fail("has a space, a control character or a non-ASCII byte");
  }
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return fail("is not an http:// or https:// URL");
  WebhookUrl out;
  const std::string scheme = Lower(url.substr(0, scheme_end));
  if (scheme == "https") {
    out.tls = true;
  } else if (scheme != "http") {
    return fail("is not an http:// or https:// URL");
  }
  std::string rest = url.substr(scheme_end + 3);
  if (const auto hash = rest.find('#'); hash != std::string::npos) rest.resize(hash);  // never sent
  const auto path_at = rest.find_first_of("/?");
  std::string authority = rest.substr(0, path_at);
  out.target = path_at == std::string::npos ? "/" : rest.substr(path_at);
  if (out.target[0] == '?') out.target.insert(0, "/");
  // Credentials in the URL would end up in process lists and logs: the secret signs instead.
  if (authority.find('@') != std::string::npos) return fail("has a user name or password (sign with the secret instead)");
  std::string port;
  if (!authority.empty() && authority[0] == '[') {
    const auto close = authority.find(']');
    if (close == std::string::npos) return fail("has an unclosed [IPv6] host");
    out.host = authority.substr(1, close - 1);
    const std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return fail("has something after its [IPv6] host");
      port = after.substr(1);
    }
  } else {
    const auto colon = authority.find(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string::npos) port = authority.substr(colon + 1);
  }
  if (out.host.empty()) return fail("has no host");
  if (!port.empty()) {
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); }) ||
        std::stoi(port) < 1 || std::stoi(port) > 65535) {
      return fail("has a port that is not 1-65535");
    }
  }
  const char* default_port = out.tls ? "443" : "80";
  out.port = port.empty() ? default_port : port;
  out.host_header = out.host.find(':') != std::string::npos ? "[" + out.host + "]" : out.host;
  if (out.port != default_port) out.host_header += ":" + out.port;
  if (error) error->clear();
  return out;
}

std::string WebhookPayload(const EscalationEvent& event) {
  // Deliberately without event.text (escalation_webhook.hpp): what a person wrote does not
  // leave the server for a third party's pager.
  return JsonObject(192)
      .String("type", "escalation")
      .Int("id", event.id)
      .String("conversation", event.conversation)
      .String("level", knowledge::UrgencyName(event.level))
      .Strings("flags", event.flags)
      .String("at", IsoUtc(event.at_ms))
      .Done();
}

std::string WebhookSignature(const std::string& secret, std::int64_t unix_seconds, const std::string& body) {
  const std::string message = std::to_string(unix_seconds) + "." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &length)) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  return "sha256=" + HexOf(std::string_view(reinterpret_cast<const char*>(mac), length));
}

// One POST of one escalation: resolve, connect, (TLS), write, read the status line and headers,
// close. A new connection each time: deliveries are rare, and a kept-alive connection that the
// receiver closed meanwhile would turn the next delivery into a spurious failure.
class AttemptBase {
 public:
  virtual ~AttemptBase() = default;
  virtual void Run() = 0;
  virtual void Cancel() = 0;  // on the strand; completes the attempt as failed
};

struct EscalationWebhook::State : std::enable_shared_from_this<EscalationWebhook::State> {
  State(asio::io_context& ioc, WebhookOptions o, WebhookUrl u, WebhookOutbox& box)
      : strand(asio::make_strand(ioc)),
        options(std::move(o)),
        url(std::move(u)),
        outbox(box),
        tls(ssl::context::tls_client),
        timer(strand),
        backoff(options.initial_backoff),
        rng(std::random_device{}()) {}

  Strand strand;
  const WebhookOptions options;
  const WebhookUrl url;
  WebhookOutbox& outbox;
  ssl::context tls;

  std::atomic<bool> started{false};
  std::atomic<bool> stopped{false};
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> failed{0};

  // Work from outside the strand (Wake, Stop, the outbox's callbacks) goes through here: once
  // the EscalationWebhook is destroyed (before its io_context), a late callback of the store is
  // dropped instead of being posted to an io_context that may be gone.
  std::mutex gate_mutex;
  bool gate_open = true;
  template <class F>
  void PostFromOutside(F&& work) {
    std::lock_guard lock(gate_mutex);
    if (gate_open) asio::post(strand, std::forward<F>(work));
  }

  // The rest is touched on the strand only.
  Timer timer;                 // back-off, or the idle poll
  std::uint64_t timer_gen = 0;  // a timer handler whose generation is not this one is stale
  bool busy = false;           // a sweep, a delivery, a mark or a back-off is under way
  bool wake_pending = false;   // a Wake came while busy: sweep again when done
  std::int64_t cursor = 0;     // the last id of the sweep's pages so far
  bool page_was_full = false;  // the outbox may hold more after the cursor
  std::deque<EscalationEvent> queue;  // of the current page, oldest first
  bool front_posted = false;          // the receiver took queue.front(); only marking it is left
  std::chrono::milliseconds backoff;
  std::shared_ptr<AttemptBase> attempt;
  std::mt19937_64 rng;

  // Every handler body runs in here: an exception (an allocation, OpenSSL) costs one attempt,
  // retried after the back-off like any failure, and never reaches the io_context.
  template <class F>
  void Guarded(F&& body) noexcept {
    try {
      body();
    } catch (...) {
      try {
        Recover();
      } catch (...) {  // nothing more to do: the next Wake or Start sweeps again
        busy = false;
      }
    }
  }

  void Sweep(bool from_start) {
    if (stopped) return;
    busy = true;
    if (from_start) {
      // Each sweep starts from the oldest undelivered one: an escalation committed with a lower
      // id after a higher one (several instances on one database) is not skipped.
      cursor = 0;
      wake_pending = false;
    }
    outbox.Pending(cursor, std::max<std::size_t>(options.batch, 1),
                   [self = shared_from_this()](std::vector<EscalationEvent> page) {
                     self->PostFromOutside([self, page = std::move(page)]() mutable {
                       self->Guarded([&] { self->OnPage(std::move(page)); });
                     });
                   });
  }

  void OnPage(std::vector<EscalationEvent> page) {
    if (stopped) return;
    page_was_full = page.size() >= std::max<std::size_t>(options.batch, 1);
    for (auto& event : page) {
      cursor = std::max(cursor, event.id);
      queue.push_back(std::move(event));
    }
    Next();
  }

  void Next() {
    if (stopped) return;
    if (!queue.empty()) return Deliver();
    if (page_was_full) {
      page_was_full = false;
      return Sweep(false);
    }
    Idle();
  }

  void Idle() {
    busy = false;
    if (wake_pending) return Sweep(true);
    ArmTimer(std::max(options.poll_interval, std::chrono::milliseconds(10)), [this] {
      if (!busy) Sweep(true);
    });
  }

  void OnWake() {
    if (stopped || !started) return;
    if (busy) {
      wake_pending = true;
      return;
    }
    ++timer_gen;  // the idle poll is not needed now
    timer.cancel();
    Sweep(true);
  }

  void OnStop() {
    ++timer_gen;
    timer.cancel();
    if (auto current = std::move(attempt)) current->Cancel();
    queue.clear();
  }

  template <class F>
  void ArmTimer(std::chrono::milliseconds after, F then) {
    const auto gen = ++timer_gen;
    timer.expires_after(after);
    timer.async_wait([self = shared_from_this(), gen, then](beast::error_code ec) {
      if (ec || gen != self->timer_gen || self->stopped) return;
      self->Guarded(then);
    });
  }

  void Deliver();  // below, after the attempt classes

  // `who` reports its end; one that is no longer the current attempt (cancelled by Stop or after
  // an exception) is ignored.
  void OnAttemptDone(const AttemptBase* who, bool ok) {
    if (who != attempt.get()) return;
    attempt.reset();
    if (stopped) return;
    if (!ok) {
      failed.fetch_add(1, std::memory_order_relaxed);
      return Retry();
    }
    front_posted = true;
    Mark();
  }

  void Mark() {
    outbox.MarkDelivered(queue.front().id, [self = shared_from_this()](bool ok) {
      self->PostFromOutside([self, ok] { self->Guarded([&] { self->OnMarked(ok); }); });
    });
  }

  void OnMarked(bool ok) {
    if (!ok) {
      // The receiver has it; only the mark is retried, not the POST.
      failed.fetch_add(1, std::memory_order_relaxed);
      if (!stopped) Retry();
      return;
    }
    delivered.fetch_add(1, std::memory_order_relaxed);
    if (!queue.empty()) queue.pop_front();
    front_posted = false;
    backoff = options.initial_backoff;
    Next();
  }

  // The front is tried again after the back-off: a random wait in [backoff/2, backoff], so that
  // many servers failing at once do not retry in step; then the back-off doubles up to its cap.
  void Retry() {
    const auto ms = std::max<std::int64_t>(backoff.count(), 1);
    std::uniform_int_distribution<std::int64_t> pick(ms / 2, ms);
    const std::chrono::milliseconds wait{pick(rng)};
    backoff = std::min(options.max_backoff, std::max(backoff * 2, std::chrono::milliseconds(1)));
    ArmTimer(wait, [this] { Next(); });
  }

  // After an exception: counted as a failed attempt; the front (if any) is tried again after the
  // back-off, and the outbox is swept again after it.
  void Recover() {
    if (auto current = std::move(attempt)) current->Cancel();
    failed.fetch_add(1, std::memory_order_relaxed);
    if (stopped) return;
    busy = true;
    wake_pending = true;
    Retry();
  }
};

namespace {

using TlsStream = beast::ssl_stream<HttpStream>;

template <class Stream>
class Attempt : public AttemptBase, public std::enable_shared_from_this<Attempt<Stream>> {
 public:
  using State = EscalationWebhook::State;

  Attempt(std::shared_ptr<State> state, const EscalationEvent& event)
      : state_(std::move(state)), resolver_(state_->strand), deadline_(state_->strand), stream_(MakeStream()) {
    const std::string body = WebhookPayload(event);
    const std::int64_t now = UnixSeconds();
    request_.method(http::verb::post);
    request_.target(state_->url.target);
    request_.version(11);
    request_.set(http::field::host, state_->url.host_header);
    request_.set(http::field::user_agent, "backcheck-webhook");
    request_.set(http::field::content_type, "application/json");
    request_.set(http::field::connection, "close");
    request_.set("X-Backcheck-Delivery", std::to_string(event.id));
    request_.set("X-Backcheck-Timestamp", std::to_string(now));
    request_.set("X-Backcheck-Signature", WebhookSignature(state_->options.secret, now, body));
    request_.body() = body;
    request_.prepare_payload();
    parser_.header_limit(kMaxResponseHeaderBytes);
  }

  void Run() override {
    // One deadline for the whole attempt (a resolve is not covered by the stream's timeouts).
    deadline_.expires_after(state_->options.request_timeout);
    deadline_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (!ec) self->Finish(false);
    });
    resolver_.async_resolve(state_->url.host, state_->url.port,
                            [self = this->shared_from_this()](beast::error_code ec, tcp::resolver::results_type results) {
                              self->Step([&] { self->OnResolved(ec, std::move(results)); });
                            });
  }

  void Cancel() override { Finish(false); }

 private:
  Stream MakeStream() {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      return Stream(state_->strand, state_->tls);
    } else {
      return Stream(state_->strand);
    }
  }

  template <class F>
  void Step(F&& body) noexcept {
    if (done_) return;
    try {
      body();
    } catch (...) {
      Finish(false);
    }
  }

  void OnResolved(beast::error_code ec, tcp::resolver::results_type results) {
    if (ec) return Finish(false);
    beast::get_lowest_layer(stream_).async_connect(
        results, [self = this->shared_from_this()](beast::error_code connect_ec, const tcp::endpoint&) {
          self->Step([&] { self->OnConnected(connect_ec); });
        });
  }

  void OnConnected(beast::error_code ec) {
    if (ec) return Finish(false);
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      // SNI, and the certificate must name the host (a CA's chain alone is not enough).
      if (!SSL_set_tlsext_host_name(stream_.native_handle(), state_->url.host.c_str())) return Finish(false);
      stream_.set_verify_mode(ssl::verify_peer);
      stream_.set_verify_callback(ssl::host_name_verification(state_->url.host));
      stream_.async_handshake(ssl::stream_base::client, [self = this->shared_from_this()](beast::error_code hs_ec) {
        self->Step([&] { self->OnReady(hs_ec); });
      });
    } else {
      OnReady(ec);
    }
  }

  void OnReady(beast::error_code ec) {
    if (ec) return Finish(false);
    http::async_write(stream_, request_, [self = this->shared_from_this()](beast::error_code write_ec, std::size_t) {
      self->Step([&] { self->OnWritten(write_ec); });
    });
  }

  void OnWritten(beast::error_code ec) {
    if (ec) return Finish(false);
    http::async_read_header(stream_, buffer_, parser_,
                            [self = this->shared_from_this()](beast::error_code read_ec, std::size_t) {
                              self->Step([&] { self->OnAnswer(read_ec); });
                            });
  }

  void OnAnswer(beast::error_code ec) {
    if (ec) return Finish(false);
    const unsigned status = parser_.get().result_int();
    Finish(status >= 200 && status < 300);  // a redirect is not followed: it is a failure
  }

  // Once per attempt: closes everything (which makes any handler still pending complete with an
  // error, and Step then ignores it) and reports to the webhook.
  void Finish(bool ok) noexcept {
    if (done_) return;
    done_ = true;
    beast::error_code ignored;
    try {
      deadline_.cancel();
      resolver_.cancel();
    } catch (...) {
    }
    beast::get_lowest_layer(stream_).socket().close(ignored);
    state_->Guarded([&] { state_->OnAttemptDone(this, ok); });
  }

  std::shared_ptr<State> state_;
  tcp::resolver resolver_;
  Timer deadline_;
  Stream stream_;
  http::request<http::string_body> request_;
  beast::flat_buffer buffer_;
  http::response_parser<http::empty_body> parser_;
  bool done_ = false;
};

}  // namespace

void EscalationWebhook::State::Deliver() {
  if (front_posted) return Mark();
  const EscalationEvent& event = queue.front();
  if (url.tls) {
    attempt = std::make_shared<Attempt<TlsStream>>(shared_from_this(), event);
  } else {
    attempt = std::make_shared<Attempt<HttpStream>>(shared_from_this(), event);
  }
  attempt->Run();
}

EscalationWebhook::EscalationWebhook(asio::io_context& ioc, WebhookOptions options, WebhookOutbox& outbox) {
  std::string why;
  auto url = ParseWebhookUrl(options.url, &why);
  if (!url) throw std::invalid_argument("--escalation-webhook " + options.url + " " + why);
  if (options.secret.empty()) {
    throw std::invalid_argument("--escalation-webhook needs a secret (BACKCHECK_WEBHOOK_SECRET) to sign with");
  }
  state_ = std::make_shared<State>(ioc, std::move(options), std::move(*url), outbox);
  if (state_->url.tls) {
    state_->tls.set_verify_mode(ssl::verify_peer);
    state_->tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                            ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    if (state_->options.ca_file.empty()) {
      state_->tls.set_default_verify_paths();
    } else {
      state_->tls.load_verify_file(state_->options.ca_file);
    }
  }
}

EscalationWebhook::~EscalationWebhook() {
  Stop();
  std::lock_guard lock(state_->gate_mutex);
  state_->gate_open = false;
}

void EscalationWebhook::Start() {
  if (state_->started.exchange(true)) return;
  state_->PostFromOutside([self = state_] {
    self->Guarded([&] {
      if (!self->busy) self->Sweep(true);
    });
  });
}

void EscalationWebhook::Wake() {
  state_->PostFromOutside([self = state_] { self->Guarded([&] { self->OnWake(); }); });
}

void EscalationWebhook::Stop() {
  if (state_->stopped.exchange(true)) return;
  state_->PostFromOutside([self = state_] { self->Guarded([&] { self->OnStop(); }); });
}

std::uint64_t EscalationWebhook::delivered() const { return state_->delivered.load(std::memory_order_relaxed); }
std::uint64_t EscalationWebhook::failed_attempts() const { return state_->failed.load(std::memory_order_relaxed); }

}  // namespace backcheck::server
