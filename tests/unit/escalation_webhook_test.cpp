// EscalationWebhook against a real HTTP receiver on 127.0.0.1 (a small Beast server on its own
// thread in this file): retries until a 2xx, the signature a receiver checks, order, no repeat
// after a restart, nothing of what the person wrote, and a prompt Stop.
#include <utility>  // before any Boost header (server/beast.hpp)

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include "server/beast.hpp"

#include <boost/asio/ssl.hpp>
#include "server/webhook/escalation_webhook.hpp"
#include "server/webhook/memory_outbox.hpp"

using namespace backcheck::server;
using namespace std::chrono_literals;

namespace {

constexpr auto kPatience = 10s;  // the bound on every wait: a failure shows as a timeout, not a hang
const std::string kSecret = "test-secret-0123456789abcdef0123456789";

// Wakes the test whenever the receiver or the outbox sees something; the webhook's counters are
// read at each wake-up and at least every few milliseconds.
struct Signal {
  std::mutex mutex;
  std::condition_variable cv;
  void Notify() {
    std::lock_guard lock(mutex);
    cv.notify_all();
  }
  template <class Pred>
  bool WaitFor(Pred pred, std::chrono::milliseconds bound = kPatience) {
    const auto until = std::chrono::steady_clock::now() + bound;
    std::unique_lock lock(mutex);
    while (!pred()) {
      if (std::chrono::steady_clock::now() >= until) return false;
      cv.wait_for(lock, 5ms);
    }
    return true;
  }
};

// The outbox of the tests: MemoryOutbox, which can be told to fail its next marks (a full disk).
class TestOutbox : public MemoryOutbox {
 public:
  explicit TestOutbox(Signal& signal) : signal_(signal) {}
  void MarkDelivered(std::int64_t id, std::function<void(bool ok)> done) override {
    if (failing_marks > 0) {
      --failing_marks;
      marks_failed.fetch_add(1);
      done(false);
    } else {
      MemoryOutbox::MarkDelivered(id, std::move(done));
    }
    signal_.Notify();
  }
  std::atomic<int> failing_marks{0};
  std::atomic<int> marks_failed{0};

 private:
  Signal& signal_;
};

struct Received {
  std::string method, target, body, content_type, delivery, timestamp, signature;
};

// The receiver: answers request n as script[n] says (200 past the script's end).
class Receiver {
 public:
  enum class Answer { kOk, kServerError, kClose, kHang };

  Receiver(Signal& signal, std::vector<Answer> script = {})
      : signal_(signal), acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}), script_(std::move(script)) {
    Accept();
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~Receiver() {
    ioc_.stop();
    thread_.join();
  }

  std::string Url() const { return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + "/hooks/backcheck?x=1"; }

  std::vector<Received> Requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  std::size_t Count() {
    std::lock_guard lock(mutex_);
    return requests_.size();
  }
  int peer_closed_hung() const { return peer_closed_hung_.load(); }
  std::vector<std::chrono::steady_clock::time_point> ArrivalTimes() {
    std::lock_guard lock(mutex_);
    return arrivals_;
  }

 private:
  struct Conn {
    explicit Conn(tcp::socket s) : socket(std::move(s)) {}
    tcp::socket socket;
    beast::flat_buffer buffer;
    http::request<http::string_body> request;
    http::response<http::string_body> response;
    char byte = 0;
  };

  void Accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) return;
      auto conn = std::make_shared<Conn>(std::move(socket));
      http::async_read(conn->socket, conn->buffer, conn->request,
                       [this, conn](beast::error_code read_ec, std::size_t) { OnRequest(conn, read_ec); });
      Accept();
    });
  }

  void OnRequest(std::shared_ptr<Conn> conn, beast::error_code ec) {
    if (ec) return;
    Answer answer = Answer::kOk;
    {
      std::lock_guard lock(mutex_);
      const auto& r = conn->request;
      requests_.push_back(Received{std::string(r.method_string()), std::string(r.target()), r.body(),
                                   std::string(r[http::field::content_type]), std::string(r["X-Backcheck-Delivery"]),
                                   std::string(r["X-Backcheck-Timestamp"]), std::string(r["X-Backcheck-Signature"])});
      arrivals_.push_back(std::chrono::steady_clock::now());
      if (requests_.size() <= script_.size()) answer = script_[requests_.size() - 1];
    }
    signal_.Notify();
    beast::error_code ignored;
    switch (answer) {
      case Answer::kClose:
        conn->socket.close(ignored);
        return;
      case Answer::kHang:  // never answers; notices when the client gives up and closes
        conn->socket.async_read_some(asio::buffer(&conn->byte, 1), [this, conn](beast::error_code read_ec, std::size_t) {
          if (read_ec) {
            peer_closed_hung_.fetch_add(1);
            signal_.Notify();
          }
        });
        return;
      case Answer::kOk:
      case Answer::kServerError:
        conn->response.result(answer == Answer::kOk ? http::status::ok : http::status::internal_server_error);
        conn->response.version(11);
        conn->response.body() = answer == Answer::kOk ? "ok" : "down";
        conn->response.prepare_payload();
        http::async_write(conn->socket, conn->response, [conn](beast::error_code, std::size_t) {
          beast::error_code e;
          conn->socket.shutdown(tcp::socket::shutdown_both, e);
        });
        return;
    }
  }

  Signal& signal_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::vector<Answer> script_;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<Received> requests_;
  std::vector<std::chrono::steady_clock::time_point> arrivals_;
  std::atomic<int> peer_closed_hung_{0};
};

// The webhook's io_context, run on a thread of its own (declared before the webhook: outlives it).
struct Io {
  asio::io_context ioc;
  asio::executor_work_guard<asio::io_context::executor_type> guard = asio::make_work_guard(ioc);
  std::thread thread{[this] { ioc.run(); }};
  ~Io() {
    guard.reset();
    ioc.stop();
    thread.join();
  }
};

EscalationEvent Event(std::int64_t id, std::string text = "I can't feel my legs and I'm short of breath") {
  EscalationEvent e;
  e.id = id;
  e.conversation = "conv-" + std::to_string(id);
  e.level = backcheck::knowledge::Urgency::kEmergency;
  e.flags = {"shortness_of_breath", "leg_numbness"};
  e.text = std::move(text);
  e.at_ms = 1795811227058 + id;  // 2026-11-27T...Z
  return e;
}

WebhookOptions Options(const std::string& url) {
  WebhookOptions o;
  o.url = url;
  o.secret = kSecret;
  o.initial_backoff = 5ms;  // small, so that retries happen within the test's patience
  o.max_backoff = 20ms;
  o.request_timeout = 5s;
  return o;
}

// What a receiver computes, written here independently of WebhookSignature.
std::string ExpectedSignature(const std::string& timestamp, const std::string& body) {
  const std::string message = timestamp + "." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &length);
  char hex[2 * EVP_MAX_MD_SIZE + 1];
  for (unsigned i = 0; i < length; ++i) std::snprintf(hex + 2 * i, 3, "%02x", mac[i]);
  return "sha256=" + std::string(hex, 2 * length);
}

std::int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A port on 127.0.0.1 where nothing listens (bound, then released).
std::uint16_t ClosedPort() {
  asio::io_context ioc;
  tcp::acceptor a(ioc, {asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

// A self-signed certificate for "localhost" (DNS name only, no IP address), made at test time.
struct TestCertificate {
  std::string cert_pem, key_pem, ca_file;
  TestCertificate() {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
    X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, "DNS:localhost");
    X509_add_ext(x, san, -1);
    X509_EXTENSION_free(san);
    X509_sign(x, key, EVP_sha256());
    cert_pem = Pem([&](BIO* b) { PEM_write_bio_X509(b, x); });
    key_pem = Pem([&](BIO* b) { PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr); });
    X509_free(x);
    EVP_PKEY_free(key);
    ca_file = (std::filesystem::temp_directory_path() / ("webhook-test-ca-" + std::to_string(::getpid()) + ".pem")).string();
    std::ofstream(ca_file) << cert_pem;
  }
  ~TestCertificate() { std::remove(ca_file.c_str()); }
  template <class Write>
  static std::string Pem(Write write) {
    BIO* b = BIO_new(BIO_s_mem());
    write(b);
    char* data = nullptr;
    const long n = BIO_get_mem_data(b, &data);
    std::string out(data, static_cast<std::size_t>(n));
    BIO_free(b);
    return out;
  }
};

// An HTTPS receiver with that certificate: answers every request 200.
class TlsReceiver {
 public:
  TlsReceiver(Signal& signal, const TestCertificate& cert)
      : signal_(signal), tls_(asio::ssl::context::tls_server), acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
    tls_.use_certificate_chain(asio::buffer(cert.cert_pem));
    tls_.use_private_key(asio::buffer(cert.key_pem), asio::ssl::context::pem);
    Accept();
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~TlsReceiver() {
    ioc_.stop();
    thread_.join();
  }
  std::string Url(const std::string& host) const {
    return "https://" + host + ":" + std::to_string(acceptor_.local_endpoint().port()) + "/hook";
  }
  std::vector<Received> Requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  int handshakes_failed() const { return handshakes_failed_.load(); }

 private:
  struct Conn {
    Conn(tcp::socket s, asio::ssl::context& c) : stream(std::move(s), c) {}
    asio::ssl::stream<tcp::socket> stream;
    beast::flat_buffer buffer;
    http::request<http::string_body> request;
    http::response<http::string_body> response;
  };
  void Accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) return;
      auto conn = std::make_shared<Conn>(std::move(socket), tls_);
      conn->stream.async_handshake(asio::ssl::stream_base::server, [this, conn](beast::error_code hs_ec) {
        if (hs_ec) {
          handshakes_failed_.fetch_add(1);
          signal_.Notify();
          return;
        }
        http::async_read(conn->stream, conn->buffer, conn->request, [this, conn](beast::error_code read_ec, std::size_t) {
          if (read_ec) return;
          {
            std::lock_guard lock(mutex_);
            const auto& r = conn->request;
            requests_.push_back(Received{std::string(r.method_string()), std::string(r.target()), r.body(),
                                         std::string(r[http::field::content_type]),
                                         std::string(r["X-Backcheck-Delivery"]), std::string(r["X-Backcheck-Timestamp"]),
                                         std::string(r["X-Backcheck-Signature"])});
          }
          signal_.Notify();
          conn->response.result(http::status::no_content);
          conn->response.version(11);
          conn->response.prepare_payload();
          http::async_write(conn->stream, conn->response, [conn](beast::error_code, std::size_t) {
            beast::error_code e;
            conn->stream.lowest_layer().close(e);
          });
        });
      });
      Accept();
    });
  }
  Signal& signal_;
  asio::io_context ioc_;
  asio::ssl::context tls_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<Received> requests_;
  std::atomic<int> handshakes_failed_{0};
};

}  // namespace

TEST_CASE("a receiver that fails twice (500, then a closed connection) gets the escalation on the third POST, signed, "
          "and only then is it marked delivered", "[webhook]") {
  Signal signal;
  Receiver receiver(signal, {Receiver::Answer::kServerError, Receiver::Answer::kClose});
  TestOutbox outbox(signal);
  outbox.Add(Event(1));
  Io io;
  EscalationWebhook webhook(io.ioc, Options(receiver.Url()), outbox);
  webhook.Start();

  // (Counted once the outbox's mark has come back to the webhook.)
  REQUIRE(signal.WaitFor([&] { return outbox.IsDelivered(1) && webhook.delivered() == 1; }));
  const auto got = receiver.Requests();
  REQUIRE(got.size() == 3);  // two failures, then the one that took it
  CHECK(webhook.failed_attempts() == 2);
  CHECK(webhook.delivered() == 1);
  for (const auto& r : got) {
    CHECK(r.method == "POST");
    CHECK(r.target == "/hooks/backcheck?x=1");
    CHECK(r.content_type == "application/json");
    CHECK(r.delivery == "1");
    CHECK(r.body == got[0].body);  // the same event each time
  }
  // The receiver's check: the signature of timestamp + "." + body under the shared secret, and a
  // timestamp close to its own clock (a replay window).
  const Received& taken = got[2];
  CHECK(taken.signature == ExpectedSignature(taken.timestamp, taken.body));
  CHECK(std::llabs(std::stoll(taken.timestamp) - NowSeconds()) < 300);
  CHECK(taken.signature != ExpectedSignature(taken.timestamp, taken.body + " "));  // a changed body does not verify

  // Once delivered it is not sent again: a later escalation goes out, the first does not.
  outbox.Add(Event(2));
  webhook.Wake();
  REQUIRE(signal.WaitFor([&] { return outbox.IsDelivered(2); }));
  const auto after = receiver.Requests();
  REQUIRE(after.size() == 4);
  CHECK(after[3].delivery == "2");
}

TEST_CASE("several escalations arrive once each in id order, a batch at a time, also when woken from another thread",
          "[webhook]") {
  Signal signal;
  Receiver receiver(signal);
  TestOutbox outbox(signal);
  for (std::int64_t id : {3, 1, 5, 2, 4}) outbox.Add(Event(id));  // added out of order
  Io io;
  auto options = Options(receiver.Url());
  options.batch = 2;  // five escalations take three pages
  EscalationWebhook webhook(io.ioc, options, outbox);
  webhook.Start();
  REQUIRE(signal.WaitFor([&] { return outbox.PendingCount() == 0; }));

  // Committed while the webhook is idle: the server's listener wakes it from a store thread.
  outbox.Add(Event(6));
  outbox.Add(Event(7));
  std::thread([&] { webhook.Wake(); }).join();
  REQUIRE(signal.WaitFor([&] { return outbox.IsDelivered(6) && outbox.IsDelivered(7) && webhook.delivered() == 7; }));

  std::vector<std::string> order;
  for (const auto& r : receiver.Requests()) order.push_back(r.delivery);
  CHECK(order == std::vector<std::string>{"1", "2", "3", "4", "5", "6", "7"});
  CHECK(webhook.delivered() == 7);
  CHECK(webhook.failed_attempts() == 0);
}

TEST_CASE("a delivered escalation is not sent again by a new webhook on the same outbox (a restart)", "[webhook]") {
  Signal signal;
  Receiver receiver(signal);
  TestOutbox outbox(signal);
  outbox.Add(Event(1));
  outbox.Add(Event(2));
  {
    Io io;
    EscalationWebhook first(io.ioc, Options(receiver.Url()), outbox);
    first.Start();
    REQUIRE(signal.WaitFor([&] { return outbox.PendingCount() == 0; }));
  }  // the server stops
  outbox.Add(Event(3));  // committed while it was down
  Io io;
  EscalationWebhook second(io.ioc, Options(receiver.Url()), outbox);
  second.Start();
  REQUIRE(signal.WaitFor([&] { return outbox.IsDelivered(3) && second.delivered() == 1; }));

  std::vector<std::string> order;
  for (const auto& r : receiver.Requests()) order.push_back(r.delivery);
  CHECK(order == std::vector<std::string>{"1", "2", "3"});
  CHECK(second.delivered() == 1);
}

TEST_CASE("an unreachable receiver keeps the escalation pending and is retried with back-off", "[webhook]") {
  Signal signal;
  TestOutbox outbox(signal);
  outbox.Add(Event(1));
  Io io;
  EscalationWebhook webhook(io.ioc, Options("http://127.0.0.1:" + std::to_string(ClosedPort()) + "/hook"), outbox);
  webhook.Start();
  REQUIRE(signal.WaitFor([&] { return webhook.failed_attempts() >= 4; }));
  CHECK(webhook.delivered() == 0);
  CHECK_FALSE(outbox.IsDelivered(1));
  CHECK(outbox.PendingCount() == 1);
}

TEST_CASE("the payload is the escalation without what the person wrote", "[webhook]") {
  Signal signal;
  Receiver receiver(signal);
  TestOutbox outbox(signal);
  const std::string text = "my chest hurts and my left arm is numb";
  outbox.Add(Event(9, text));
  Io io;
  EscalationWebhook webhook(io.ioc, Options(receiver.Url()), outbox);
  webhook.Start();
  REQUIRE(signal.WaitFor([&] { return outbox.IsDelivered(9); }));
  const auto got = receiver.Requests();
  REQUIRE(got.size() == 1);
  const auto body = nlohmann::json::parse(got[0].body);
  CHECK(body == nlohmann::json{{"type", "escalation"},
                               {"id", 9},
                               {"conversation", "conv-9"},
                               {"level", "emergency"},
                               {"flags", {"shortness_of_breath", "leg_numbness"}},
                               {"at", "2026-11-27T20:27:07.067Z"}});
  CHECK_FALSE(body.contains("text"));
  CHECK(got[0].body.find("chest") == std::string::npos);
}

TEST_CASE("Stop while the receiver hangs cancels the request at once; nothing of the webhook is left running",
          "[webhook]") {
  Signal signal;
  Receiver receiver(signal, {Receiver::Answer::kHang});
  TestOutbox outbox(signal);
  outbox.Add(Event(1));
  asio::io_context ioc;  // no work guard: run() returns once the webhook has nothing pending
  auto options = Options(receiver.Url());
  options.request_timeout = 60s;  // longer than the test's patience: only Stop can end it
  auto webhook = std::make_unique<EscalationWebhook>(ioc, options, outbox);
  webhook->Start();
  auto running = std::async(std::launch::async, [&] { ioc.run(); });
  REQUIRE(signal.WaitFor([&] { return receiver.Count() == 1; }));

  const auto before = std::chrono::steady_clock::now();
  std::thread([&] { webhook->Stop(); }).join();  // from another thread
  CHECK(std::chrono::steady_clock::now() - before < 1s);
  CHECK(running.wait_for(kPatience) == std::future_status::ready);  // timers and request cancelled
  CHECK(signal.WaitFor([&] { return receiver.peer_closed_hung() == 1; }));
  CHECK_FALSE(outbox.IsDelivered(1));  // still pending: the next start sends it
  CHECK(webhook->delivered() == 0);
  webhook->Wake();  // after Stop: nothing
  webhook.reset();  // destroyed before the io_context, as in the server
  CHECK(receiver.Count() == 1);
}

TEST_CASE("a delivery the outbox could not mark is marked again later, not POSTed again", "[webhook]") {
  Signal signal;
  Receiver receiver(signal);
  TestOutbox outbox(signal);
  outbox.failing_marks = 2;
  outbox.Add(Event(1));
  Io io;
  EscalationWebhook webhook(io.ioc, Options(receiver.Url()), outbox);
  webhook.Start();
  REQUIRE(signal.WaitFor([&] { return outbox.IsDelivered(1) && webhook.delivered() == 1; }));
  CHECK(outbox.marks_failed == 2);
  CHECK(receiver.Count() == 1);
  CHECK(webhook.delivered() == 1);
  CHECK(webhook.failed_attempts() == 2);
}

TEST_CASE("a receiver that does not answer in time is given up on and tried again", "[webhook]") {
  Signal signal;
  Receiver receiver(signal, {Receiver::Answer::kHang});
  TestOutbox outbox(signal);
  outbox.Add(Event(1));
  Io io;
  auto options = Options(receiver.Url());
  options.request_timeout = 200ms;
  EscalationWebhook webhook(io.ioc, options, outbox);
  webhook.Start();
  REQUIRE(signal.WaitFor([&] { return outbox.IsDelivered(1) && webhook.delivered() == 1; }));
  CHECK(receiver.Count() == 2);
  CHECK(webhook.failed_attempts() == 1);
  CHECK(signal.WaitFor([&] { return receiver.peer_closed_hung() == 1; }));  // the timed-out connection was closed
}

TEST_CASE("retries wait at least half the back-off, which doubles up to its cap", "[webhook]") {
  Signal signal;
  using A = Receiver::Answer;
  Receiver receiver(signal, {A::kServerError, A::kServerError, A::kServerError, A::kServerError});
  TestOutbox outbox(signal);
  outbox.Add(Event(1));
  Io io;
  auto options = Options(receiver.Url());
  options.initial_backoff = 60ms;
  options.max_backoff = 120ms;
  EscalationWebhook webhook(io.ioc, options, outbox);
  webhook.Start();
  REQUIRE(signal.WaitFor([&] { return outbox.IsDelivered(1) && webhook.delivered() == 1; }));
  const auto at = receiver.ArrivalTimes();
  REQUIRE(at.size() == 5);
  // Back-offs 60, 120, 120, 120 ms (capped); each wait is jittered within [half, all] of it. Only
  // lower bounds are checked: a slow machine cannot make them fail.
  const std::vector<std::chrono::milliseconds> at_least = {30ms, 60ms, 60ms, 60ms};
  for (std::size_t i = 0; i < at_least.size(); ++i) {
    CHECK(at[i + 1] - at[i] >= at_least[i]);
  }
  CHECK(webhook.failed_attempts() == 4);
}

TEST_CASE("webhook URLs and secrets", "[webhook]") {
  auto u = ParseWebhookUrl("https://hooks.example.com/services/T1?x=1#frag");
  REQUIRE(u);
  CHECK(u->tls);
  CHECK(u->host == "hooks.example.com");
  CHECK(u->port == "443");
  CHECK(u->target == "/services/T1?x=1");
  CHECK(u->host_header == "hooks.example.com");
  u = ParseWebhookUrl("HTTP://[::1]:8081");
  REQUIRE(u);
  CHECK_FALSE(u->tls);
  CHECK(u->host == "::1");
  CHECK(u->port == "8081");
  CHECK(u->target == "/");
  CHECK(u->host_header == "[::1]:8081");
  std::string why;
  CHECK_FALSE(ParseWebhookUrl("ftp://example.com/", &why));
  CHECK_FALSE(ParseWebhookUrl("https://user:pw@example.com/", &why));
  CHECK_FALSE(ParseWebhookUrl("https://example.com:99999/", &why));
  CHECK_FALSE(ParseWebhookUrl("https:///path", &why));
  CHECK_FALSE(ParseWebhookUrl("https://exa mple.com/", &why));
  CHECK_FALSE(why.empty());

  asio::io_context ioc;
  Signal signal;
  TestOutbox outbox(signal);
  WebhookOptions no_secret;
  no_secret.url = "https://hooks.example.com/";
  CHECK_THROWS_AS(EscalationWebhook(ioc, no_secret, outbox), std::invalid_argument);
  CHECK_THROWS_AS(EscalationWebhook(ioc, Options("hooks.example.com"), outbox), std::invalid_argument);
}

TEST_CASE("https: delivered to a receiver whose certificate a trusted CA signed for the URL's host", "[webhook]") {
  Signal signal;
  TestCertificate cert;
  TlsReceiver receiver(signal, cert);
  TestOutbox outbox(signal);
  outbox.Add(Event(1));
  Io io;
  auto options = Options(receiver.Url("localhost"));
  options.ca_file = cert.ca_file;
  EscalationWebhook webhook(io.ioc, options, outbox);
  webhook.Start();
  REQUIRE(signal.WaitFor([&] { return outbox.IsDelivered(1) && webhook.delivered() == 1; }));
  const auto got = receiver.Requests();
  REQUIRE(got.size() == 1);  // 204 is a 2xx
  CHECK(got[0].signature == ExpectedSignature(got[0].timestamp, got[0].body));
  CHECK(webhook.failed_attempts() == 0);
}

TEST_CASE("https: an untrusted certificate, or one for another host, gets nothing and stays pending", "[webhook]") {
  Signal signal;
  TestCertificate cert;
  TlsReceiver receiver(signal, cert);
  TestOutbox outbox(signal);
  outbox.Add(Event(1));
  Io io;
  auto options = Options(receiver.Url("localhost"));
  SECTION("self-signed, not among the system's CAs") {}
  SECTION("trusted, but the URL names 127.0.0.1, which the certificate does not") {
    options = Options(receiver.Url("127.0.0.1"));
    options.ca_file = cert.ca_file;
  }
  EscalationWebhook webhook(io.ioc, options, outbox);
  webhook.Start();
  REQUIRE(signal.WaitFor([&] { return webhook.failed_attempts() >= 3 && receiver.handshakes_failed() >= 3; }));
  CHECK(receiver.Requests().empty());  // the request (and its signature) never left the client
  CHECK_FALSE(outbox.IsDelivered(1));
  CHECK(webhook.delivered() == 0);
}
