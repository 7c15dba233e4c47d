// --escalation-webhook: every escalation POSTed to a URL (a pager, a chat service's incoming
// webhook), so that one is seen when no operator is connected. Retried from the store's durable
// outbox until the receiver answers 2xx; never blocks a reply, never drops an escalation.
//
// What is sent (docs/webhook.md): {"type":"escalation","id","conversation","level","flags","at"}
// with X-Backcheck-Delivery (the id: receivers deduplicate by it, since a delivery whose answer
// was lost is sent again), X-Backcheck-Timestamp (Unix seconds) and X-Backcheck-Signature
// (sha256=hex HMAC-SHA256(secret, timestamp + "." + body), the scheme of Slack and Stripe, so a
// receiver can refuse forgeries and, by the timestamp, replays). Never the person's text: the
// receiver is typically a third party's pager or chat service, and the text is what a person
// wrote about their health; an operator reads it on /v1/operator.
//
// One delivery is in flight at a time, oldest first: a receiver that keeps failing holds the
// later ones back (they go in order once it answers) and is retried with exponential back-off
// and jitter. Everything runs on a strand of the given io_context; Wake and Stop may be called
// from any thread.
//
// Several instances on one database each run a webhook over the same outbox: an escalation may
// then be POSTed by more than one of them (receivers deduplicate by X-Backcheck-Delivery) unless
// the outbox hands each pending one to one instance at a time.
#pragma once

#include <utility>  // before any Boost header (server/beast.hpp)

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "server/webhook/webhook_outbox.hpp"

namespace backcheck::server {

struct WebhookOptions {
  std::string url;     // http:// or https:// (certificate checked against the system CAs and the host)
  std::string secret;  // the HMAC key; required
  std::chrono::milliseconds initial_backoff{1000};      // after the first failure; doubles
  std::chrono::milliseconds max_backoff{5 * 60 * 1000};  // the longest wait between attempts
  std::chrono::milliseconds request_timeout{10000};      // resolve + connect + TLS + send + answer
  // A sweep of the outbox this often even without Wake: an escalation whose Wake was missed (the
  // store could not be read at that moment) still goes out.
  std::chrono::milliseconds poll_interval{60 * 1000};
  std::size_t batch = 16;  // escalations asked of the outbox at a time
  std::string ca_file;     // PEM file of trusted CAs instead of the system's (tests; a private CA)
};

// A webhook URL split up; nullopt with `error` set when it is not one we can POST to.
struct WebhookUrl {
  bool tls = false;
  std::string host;    // without brackets for an IPv6 literal
  std::string port;    // "80"/"443" when not given
  std::string target;  // path and query, "/" when empty
  std::string host_header;
};
std::optional<WebhookUrl> ParseWebhookUrl(const std::string& url, std::string* error = nullptr);

// The request body and signature, exposed for the tests and the docs' example.
std::string WebhookPayload(const EscalationEvent& event);
std::string WebhookSignature(const std::string& secret, std::int64_t unix_seconds, const std::string& body);

class EscalationWebhook {
 public:
  // Throws std::invalid_argument for a bad URL or an empty secret, boost::system::system_error
  // for a ca_file that cannot be read (start-up errors). `outbox` must outlive every handler of
  // `ioc` (declare it before the io_context); this object must be destroyed before `ioc` (a late
  // callback of the outbox is then dropped, not posted). Delivers nothing until Start.
  EscalationWebhook(boost::asio::io_context& ioc, WebhookOptions options, WebhookOutbox& outbox);
  ~EscalationWebhook();  // Stop()
  EscalationWebhook(const EscalationWebhook&) = delete;
  EscalationWebhook& operator=(const EscalationWebhook&) = delete;

  // Sweeps the outbox once (what a previous run left undelivered), then on every Wake.
  void Start();
  // A new escalation was committed: sweep the outbox when the current delivery (or its back-off)
  // is done. Any thread; cheap; a Wake before Start, or after Stop, does nothing.
  void Wake();
  // Cancels the back-off timer and the request in flight (its escalation stays pending and goes
  // out on the next start). Any thread; returns at once; idempotent.
  void Stop();

  // For /metrics: deliveries the receiver took (2xx and marked delivered), and attempts that
  // failed (connect, TLS, timeout, non-2xx, or the outbox could not mark it).
  std::uint64_t delivered() const;
  std::uint64_t failed_attempts() const;

  struct State;  // shared with the handlers in flight, so that they may outlive this object

 private:
  std::shared_ptr<State> state_;
};

}  // namespace backcheck::server
