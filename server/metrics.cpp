#include "server/metrics.hpp"

#include <algorithm>
#include <cstdio>

namespace backcheck::server {

Metrics::Metrics(std::vector<std::string> intent_ids)
    : intents_(std::move(intent_ids)), replies_by_intent_(intents_.size()) {}

std::size_t Metrics::IntentIndex(std::string_view intent) const {
  return static_cast<std::size_t>(std::find(intents_.begin(), intents_.end(), intent) - intents_.begin());
}

void Metrics::Reply(std::size_t intent_index, std::chrono::nanoseconds latency) {
  if (intent_index < replies_by_intent_.size()) replies_by_intent_[intent_index].fetch_add(1, std::memory_order_relaxed);
  const double seconds = std::chrono::duration<double>(latency).count();
  std::size_t b = 0;
  while (b < kBuckets.size() && seconds > kBuckets[b]) ++b;
  latency_buckets_[b].fetch_add(1, std::memory_order_relaxed);
  latency_count_.fetch_add(1, std::memory_order_relaxed);
  latency_sum_ns_.fetch_add(static_cast<std::uint64_t>(latency.count()), std::memory_order_relaxed);
}

void Metrics::Escalation(knowledge::Urgency level) {
  escalations_by_level_[static_cast<std::size_t>(level)].fetch_add(1, std::memory_order_relaxed);
}

void Metrics::ErrorSent(ErrorCode code) {
  for (std::size_t i = 0; i < std::size(kAllErrorCodes); ++i) {
    if (kAllErrorCodes[i] == code) errors_by_code_[i].fetch_add(1, std::memory_order_relaxed);
  }
}

std::string Metrics::Render(std::size_t conversations, std::uint64_t red_flag_set_fallbacks,
                            Escalations escalations, std::string_view knowledge_version) const {
  std::string out;
  char line[256];
  auto add = [&](const char* fmt, auto... args) {
    std::snprintf(line, sizeof line, fmt, args...);
    out += line;
  };
  auto u = [](const std::atomic<std::uint64_t>& a) { return static_cast<unsigned long long>(a.load(std::memory_order_relaxed)); };
  out += "# HELP backcheck_connections_open Open chat WebSocket connections.\n# TYPE backcheck_connections_open gauge\n";
  add("backcheck_connections_open %lld\n", static_cast<long long>(connections_open.load()));
  out += "# HELP backcheck_escalations_unacknowledged Escalations no operator has acknowledged yet.\n"
         "# TYPE backcheck_escalations_unacknowledged gauge\n";
  add("backcheck_escalations_unacknowledged %zu\n", escalations.unacknowledged);
  out += "# HELP backcheck_escalation_oldest_unacknowledged_age_seconds Age of the oldest unacknowledged escalation "
         "(0: none).\n# TYPE backcheck_escalation_oldest_unacknowledged_age_seconds gauge\n";
  add("backcheck_escalation_oldest_unacknowledged_age_seconds %.3f\n", escalations.oldest_age_seconds);
  out += "# HELP backcheck_conversations Conversations held.\n# TYPE backcheck_conversations gauge\n";
  add("backcheck_conversations %zu\n", conversations);
  out += "# HELP backcheck_messages_received_total User messages received.\n# TYPE backcheck_messages_received_total counter\n";
  add("backcheck_messages_received_total %llu\n", u(messages_received));
  out += "# HELP backcheck_messages_duplicate_total Messages whose id was answered before (the stored reply sent again).\n# TYPE backcheck_messages_duplicate_total counter\n";
  add("backcheck_messages_duplicate_total %llu\n", u(messages_duplicate));
  out += "# HELP backcheck_notices_total Notice frames pushed to connections, by outcome.\n# TYPE backcheck_notices_total counter\n";
  add("backcheck_notices_total{outcome=\"sent\"} %llu\n", u(notices_sent));
  add("backcheck_notices_total{outcome=\"dropped\"} %llu\n", u(notices_dropped));
  out += "# HELP backcheck_operator_sign_ins_refused_total Operator sign-ins refused for a wrong token.\n# TYPE backcheck_operator_sign_ins_refused_total counter\n";
  add("backcheck_operator_sign_ins_refused_total %llu\n", u(operator_sign_ins_refused));
  out += "# HELP backcheck_replies_total Replies sent, by intent.\n# TYPE backcheck_replies_total counter\n";
  for (std::size_t i = 0; i < intents_.size(); ++i) {
    add("backcheck_replies_total{intent=\"%s\"} %llu\n", intents_[i].c_str(), u(replies_by_intent_[i]));
  }
  out += "# HELP backcheck_escalations_total Replies that raised a conversation's urgency, by level.\n"
         "# TYPE backcheck_escalations_total counter\n";
  for (auto level : {knowledge::Urgency::kSeeDoctor, knowledge::Urgency::kUrgent, knowledge::Urgency::kEmergency}) {
    add("backcheck_escalations_total{level=\"%s\"} %llu\n", knowledge::UrgencyName(level),
        u(escalations_by_level_[static_cast<std::size_t>(level)]));
  }
  out += "# HELP backcheck_errors_total Error frames sent, by code.\n# TYPE backcheck_errors_total counter\n";
  for (std::size_t i = 0; i < std::size(kAllErrorCodes); ++i) {
    add("backcheck_errors_total{code=\"%s\"} %llu\n", ErrorCodeName(kAllErrorCodes[i]), u(errors_by_code_[i]));
  }
  out += "# HELP backcheck_handler_exceptions_total Exceptions caught at a connection's boundary (that "
         "connection closed, the server kept serving).\n# TYPE backcheck_handler_exceptions_total counter\n";
  add("backcheck_handler_exceptions_total %llu\n", u(handler_exceptions));
  out += "# HELP backcheck_http_connections_open Open plain HTTP connections.\n"
         "# TYPE backcheck_http_connections_open gauge\n";
  add("backcheck_http_connections_open %lld\n", static_cast<long long>(http_connections_open.load()));
  out += "# HELP backcheck_refused_connections_total Connections refused by a connection limit.\n"
         "# TYPE backcheck_refused_connections_total counter\n";
  add("backcheck_refused_connections_total %llu\n", u(refused_connections));
  out += "# HELP backcheck_refused_origins_total Browser requests refused for their Origin.\n"
         "# TYPE backcheck_refused_origins_total counter\n";
  add("backcheck_refused_origins_total %llu\n", u(refused_origins));
  out += "# HELP backcheck_red_flag_set_fallbacks_total Messages RE2::Set could not decide, matched pattern by "
         "pattern instead (the detector fails closed).\n# TYPE backcheck_red_flag_set_fallbacks_total counter\n";
  add("backcheck_red_flag_set_fallbacks_total %llu\n", static_cast<unsigned long long>(red_flag_set_fallbacks));
  out += "# HELP backcheck_store_healthy 1 while the store's writes succeed.\n# TYPE backcheck_store_healthy gauge\n";
  add("backcheck_store_healthy %d\n", store_healthy.load() ? 1 : 0);
  if (!knowledge_version.empty()) {  // hex digits: nothing to escape
    out += "# HELP backcheck_knowledge_info The loaded knowledge base, by version (a hash of its content).\n"
           "# TYPE backcheck_knowledge_info gauge\n";
    out.append("backcheck_knowledge_info{version=\"").append(knowledge_version).append("\"} 1\n");
  }
  out += "# HELP backcheck_knowledge_reloads_total Knowledge-base reloads (SIGHUP, POST /v1/admin/reload), by "
         "outcome.\n# TYPE backcheck_knowledge_reloads_total counter\n";
  add("backcheck_knowledge_reloads_total{outcome=\"reloaded\"} %llu\n", u(reloads_done));
  add("backcheck_knowledge_reloads_total{outcome=\"refused\"} %llu\n", u(reloads_refused));
  add("backcheck_knowledge_reloads_total{outcome=\"busy\"} %llu\n", u(reloads_busy));
  out += "# HELP backcheck_reply_latency_seconds Time from a message's arrival to its reply being queued.\n"
         "# TYPE backcheck_reply_latency_seconds histogram\n";
  unsigned long long cumulative = 0;
  for (std::size_t b = 0; b < kBuckets.size(); ++b) {
    cumulative += u(latency_buckets_[b]);
    add("backcheck_reply_latency_seconds_bucket{le=\"%g\"} %llu\n", kBuckets[b], cumulative);
  }
  cumulative += u(latency_buckets_[kBuckets.size()]);
  add("backcheck_reply_latency_seconds_bucket{le=\"+Inf\"} %llu\n", cumulative);
  add("backcheck_reply_latency_seconds_sum %.9f\n", static_cast<double>(latency_sum_ns_.load()) / 1e9);
  add("backcheck_reply_latency_seconds_count %llu\n", u(latency_count_));
  return out;
}

}  // namespace backcheck::server
