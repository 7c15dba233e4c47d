// Structured logs: one JSON object a line on stderr (README "Logs"), e.g.
//   {"ts":"2025-01-02T03:04:05.678Z","level":"info","event":"connection_closed","cause":"idle_timeout"}
//
// Fields are typed key/values; keys are our own ASCII literals. There is no free-form message:
// a line never carries what a person or an operator wrote, a conversation's history, a client's
// key or a conversation id (ConversationRef gives a stable, non-reversible reference instead).
// The one exception is Level::kTrace, which logs frames as they are and is unsafe in production.
//
//   BACKCHECK_LOG(kInfo, "escalation").Int("id", id).Str("level", "urgent");
//   BACKCHECK_LOG_EVERY(kWarn, "limit_hit", 10).Str("limit", "rate");  // at most 10 lines a second
//
// The level is checked before anything is built: a line whose level is off evaluates none of
// its arguments. Thread-safe: each line is written with one write(2), under a lock, so lines
// from different threads never interleave.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace backcheck::log {

enum class Level : int { kTrace = 0, kDebug = 1, kInfo = 2, kWarn = 3, kError = 4 };

inline constexpr std::string_view kLevelNames[] = {"trace", "debug", "info", "warn", "error"};
std::optional<Level> ParseLevel(std::string_view name);
std::string_view LevelName(Level level);

namespace detail {
inline std::atomic<int> threshold{static_cast<int>(Level::kInfo)};
}  // namespace detail

inline void SetLevel(Level level) { detail::threshold.store(static_cast<int>(level), std::memory_order_relaxed); }
inline Level CurrentLevel() { return static_cast<Level>(detail::threshold.load(std::memory_order_relaxed)); }
inline bool Enabled(Level level) {
  return static_cast<int>(level) >= detail::threshold.load(std::memory_order_relaxed);
}

// Where lines go: stderr unless a test says otherwise.
void SetOutput(int fd);

// One line, written when it is destroyed. Build it through BACKCHECK_LOG, which checks the level.
class Line {
 public:
  Line(Level level, std::string_view event);
  ~Line();
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;

  Line& Str(std::string_view key, std::string_view value);
  Line& Int(std::string_view key, std::int64_t value);
  Line& Uint(std::string_view key, std::uint64_t value);
  Line& Double(std::string_view key, double value);
  Line& Bool(std::string_view key, bool value);
  Line& Strs(std::string_view key, const std::vector<std::string>& values);
  // Adds the field only when `value` is not null.
  Line& OptStr(std::string_view key, const char* value) { return value ? Str(key, value) : *this; }
  // How many lines a BACKCHECK_LOG_EVERY held back since the last one it let through (0: none).
  Line& Suppressed(std::uint64_t count);

 private:
  void Key(std::string_view key);
  std::string out_;
};

// At most `per_second` lines a second from one call site; the next line that goes out says how
// many were held back. Approximate under contention, never blocking.
class Throttle {
 public:
  explicit Throttle(unsigned per_second) : per_second_(per_second) {}
  bool Allow(std::uint64_t& suppressed);

 private:
  const unsigned per_second_;
  std::atomic<std::int64_t> second_{-1};
  std::atomic<unsigned> count_{0};
  std::atomic<std::uint64_t> suppressed_{0};
};

// A conversation's reference in the logs: 12 hex digits of its id's SHA-256. Stable, so lines
// about one conversation can be followed; an id cannot be recovered from it (an id resumes a
// conversation and reads its history, so ids themselves are never logged).
std::string ConversationRef(std::string_view conversation_id);

// Frames logged at trace are cut to this many bytes.
inline constexpr std::size_t kTraceFrameBytes = 4096;

}  // namespace backcheck::log

// `if (!on) {} else Line(...)`: nothing after the macro is evaluated when the level is off, and
// an `else` that follows a use binds as expected.
#define BACKCHECK_LOG(level, event)                                  \
  if (!::backcheck::log::Enabled(::backcheck::log::Level::level)) { \
  } else                                                             \
    ::backcheck::log::Line(::backcheck::log::Level::level, event)

#define BACKCHECK_LOG_EVERY(level, event, per_second)                                                     \
  if (std::uint64_t backcheck_log_suppressed_ = 0;                                                        \
      !::backcheck::log::Enabled(::backcheck::log::Level::level) ||                                       \
      ![]() -> ::backcheck::log::Throttle& {                                                              \
        static ::backcheck::log::Throttle throttle(per_second);                                           \
        return throttle;                                                                                  \
      }().Allow(backcheck_log_suppressed_)) {                                                             \
  } else                                                                                                  \
    ::backcheck::log::Line(::backcheck::log::Level::level, event).Suppressed(backcheck_log_suppressed_)
