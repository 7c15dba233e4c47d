#include "server/log.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "server/json_writer.hpp"

namespace backcheck::log {
namespace {

std::atomic<int> output_fd{STDERR_FILENO};
std::mutex write_mutex;

void AppendTimestamp(std::string& out) {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char buf[40];
  const int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                              utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                              static_cast<int>(ms % 1000));
  out.append(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
}

}  // namespace

std::optional<Level> ParseLevel(std::string_view name) {
  for (std::size_t i = 0; i < std::size(kLevelNames); ++i) {
    if (kLevelNames[i] == name) return static_cast<Level>(i);
  }
  return std::nullopt;
}

std::string_view LevelName(Level level) {
  const auto i = static_cast<std::size_t>(level);
  return i < std::size(kLevelNames) ? kLevelNames[i] : "error";
}

void SetOutput(int fd) { output_fd.store(fd, std::memory_order_relaxed); }

Line::Line(Level level, std::string_view event) {
  out_.reserve(192);
  out_ += "{\"ts\":\"";
  AppendTimestamp(out_);
  out_ += "\",\"level\":\"";
  out_ += LevelName(level);
  out_ += "\",\"event\":";
  server::AppendJsonString(out_, event);
}

Line::~Line() {
  out_ += "}\n";
  const int fd = output_fd.load(std::memory_order_relaxed);
  std::lock_guard lock(write_mutex);  // one line at a time, whole, whatever the size
  const char* p = out_.data();
  std::size_t left = out_.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere to log to: the server goes on
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

void Line::Key(std::string_view key) {
  out_ += ',';
  server::AppendJsonString(out_, key);
  out_ += ':';
}

Line& Line::Str(std::string_view key, std::string_view value) {
  Key(key);
  server::AppendJsonString(out_, value);
  return *this;
}

Line& Line::Int(std::string_view key, std::int64_t value) {
  Key(key);
  out_ += std::to_string(value);
  return *this;
}

Line& Line::Uint(std::string_view key, std::uint64_t value) {
  Key(key);
  out_ += std::to_string(value);
  return *this;
}

Line& Line::Double(std::string_view key, double value) {
  Key(key);
  if (!std::isfinite(value)) {
    out_ += "null";
    return *this;
  }
  char buf[32];
  const int n = std::snprintf(buf, sizeof buf, "%.3f", value);
  out_.append(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
  return *this;
}

Line& Line::Bool(std::string_view key, bool value) {
  Key(key);
  out_ += value ? "true" : "false";
  return *this;
}

Line& Line::Strs(std::string_view key, const std::vector<std::string>& values) {
  Key(key);
  server::AppendJsonStrings(out_, values);
  return *this;
}

Line& Line::Suppressed(std::uint64_t count) {
  if (count > 0) Uint("suppressed", count);
  return *this;
}

bool Throttle::Allow(std::uint64_t& suppressed) {
  const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::steady_clock::now().time_since_epoch()).count();
  std::int64_t second = second_.load(std::memory_order_relaxed);
  if (second != now && second_.compare_exchange_strong(second, now, std::memory_order_relaxed)) {
    count_.store(0, std::memory_order_relaxed);
  }
  if (count_.fetch_add(1, std::memory_order_relaxed) < per_second_) {
    suppressed = suppressed_.exchange(0, std::memory_order_relaxed);
    return true;
  }
  suppressed_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

std::string ConversationRef(std::string_view conversation_id) {
  // FNV-1a, 64 bits, of which 48 are shown. Ids are random (128 bits, or an HMAC of a bridge's
  // key): 48 bits of a hash leave far too many candidates to find the id from its reference.
  std::uint64_t h = 14695981039346656037ull;
  for (const unsigned char c : conversation_id) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[16];
  std::snprintf(buf, sizeof buf, "%012llx", static_cast<unsigned long long>(h >> 16));
  return buf;
}

}  // namespace backcheck::log
