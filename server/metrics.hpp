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

class Metrics {
 public:
  explicit Metrics(std::vector<std::string> intent_ids);

  std::atomic<std::int64_t> connections_open{0};  // WebSockets
  std::atomic<std::uint64_t> messages_received{0};

  // The index Reply takes for an intent id; an unknown id gets one that counts nowhere.
  std::size_t IntentIndex(std::string_view intent) const;
  void Reply(std::size_t intent_index, std::chrono::nanoseconds latency);
  void Escalation(knowledge::Urgency level);
  void ErrorSent(ErrorCode code);

  // `conversations`: how many the store holds now.
  std::string Render(std::size_t conversations) const;

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
