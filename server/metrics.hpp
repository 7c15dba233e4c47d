// Counters for GET /metrics, rendered in the Prometheus text format. Lock-free to update.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "knowledge/knowledge_base.hpp"
#include "server/protocol.hpp"

namespace backcheck::server {

// What the escalation log holds at render time, for an alert that pages someone.
struct EscalationGauges {
  std::size_t unacknowledged = 0;
  double oldest_age_seconds = 0;  // of the oldest unacknowledged one; 0 when there is none
};

class Metrics {
 public:
  explicit Metrics(std::vector<std::string> intent_ids);

  std::atomic<std::int64_t> connections_open{0};  // WebSockets
  std::atomic<std::uint64_t> messages_received{0};
  // Messages whose client id had been answered before: given the stored reply, not run again.
  std::atomic<std::uint64_t> messages_duplicate{0};
  // `notice` frames sent to connections, and those dropped because a connection's queue was full.
  std::atomic<std::uint64_t> notices_sent{0};
  std::atomic<std::uint64_t> notices_dropped{0};
  std::atomic<std::uint64_t> operator_sign_ins_refused{0};  // a wrong token at POST /v1/operator/session
  std::atomic<std::int64_t> http_connections_open{0};
  // An exception that reached a connection's boundary: that connection was closed (1011 or 500),
  // the server kept serving. Any non-zero value is a bug to look into.
  std::atomic<std::uint64_t> handler_exceptions{0};
  std::atomic<std::uint64_t> refused_connections{0};  // over a connection limit (HTTP 429/503)
  std::atomic<std::uint64_t> refused_origins{0};      // a browser page from an origin not allowed (403)
  std::atomic<bool> store_healthy{true};              // mirrors the store, for the gauge
  // Knowledge-base reloads (SIGHUP, POST /v1/admin/reload): the new engine took over; the folder
  // was refused (the old engine stays); asked while another reload was running.
  std::atomic<std::uint64_t> reloads_done{0};
  std::atomic<std::uint64_t> reloads_refused{0};
  std::atomic<std::uint64_t> reloads_busy{0};

  // The index Reply takes for an intent id; an unknown id gets one that counts nowhere.
  std::size_t IntentIndex(std::string_view intent) const;
  void Reply(std::size_t intent_index, std::chrono::nanoseconds latency);
  void Escalation(knowledge::Urgency level);
  void ErrorSent(ErrorCode code);

  // `conversations`: how many the store holds now; `red_flag_set_fallbacks`: messages the red-flag
  // pattern set could not decide and that were matched pattern by pattern (the detector's count).
  using Escalations = EscalationGauges;
  // `knowledge_version`: the loaded knowledge base's (backcheck_knowledge_info; none when empty).
  std::string Render(std::size_t conversations, std::uint64_t red_flag_set_fallbacks = 0,
                     Escalations escalations = {}, std::string_view knowledge_version = {}) const;

 private:
  static constexpr std::array<double, 14> kBuckets = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                      0.01,    0.025,  0.05,    0.1,    0.25,   0.5,    1.0};
  std::vector<std::string> intents_;
  std::vector<std::atomic<std::uint64_t>> replies_by_intent_;
  std::array<std::atomic<std::uint64_t>, 4> escalations_by_level_{};
  std::array<std::atomic<std::uint64_t>, std::size(kAllErrorCodes)> errors_by_code_{};
  std::array<std::atomic<std::uint64_t>, kBuckets.size() + 1> latency_buckets_{};  // last: +Inf
  std::atomic<std::uint64_t> latency_count_{0};
  std::atomic<std::uint64_t> latency_sum_ns_{0};
};

}  // namespace backcheck::server
