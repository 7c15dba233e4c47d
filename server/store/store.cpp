#include "server/store/store.hpp"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <stdexcept>

#include "server/json_writer.hpp"

namespace backcheck::server {

std::int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string HexOf(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 0xf];
  }
  return out;
}

std::string RandomBytes(std::size_t n) {
  std::string bytes(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = getrandom(bytes.data() + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("getrandom failed");
    }
    got += static_cast<std::size_t>(r);
  }
  return bytes;
}

std::string EscalationJson(const EscalationEvent& e) {
  // Written by the one frame writer (server/json_writer.hpp), like every frame we send.
  // ISO 8601 in UTC with milliseconds: "2026-11-23T20:31:07.123Z".
  std::time_t seconds = static_cast<std::time_t>(e.at_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char at[32];
  std::size_t n = std::strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(at + n, sizeof at - n, ".%03dZ", static_cast<int>(e.at_ms % 1000));
  return JsonObject(e.text.size() + 192)
      .String("type", "escalation")
      .Int("id", e.id)
      .String("conversation", e.conversation)
      .String("level", knowledge::UrgencyName(e.level))
      .Strings("flags", e.flags)
      .String("text", e.text)
      .String("at", at)
      .Done();
}

void AddTurn(std::vector<HistoryEntry>& entries, std::uint64_t seq, std::string user_text, std::string reply_text,
             std::string author, bool reply_first) {
  auto add_user = [&] {
    if (!user_text.empty()) entries.push_back(HistoryEntry{"user", std::move(user_text), seq, {}});
  };
  auto add_reply = [&] {
    if (reply_text.empty()) return;
    const bool by_operator = !author.empty();
    entries.push_back(HistoryEntry{by_operator ? "operator" : "assistant", std::move(reply_text), seq, std::move(author)});
  };
  if (reply_first) {
    add_reply();
    add_user();
  } else {
    add_user();
    add_reply();
  }
}

HistoryRange RangeOf(std::uint64_t last_seq, std::optional<std::uint64_t> before, std::size_t turns) {
  const std::uint64_t end = std::min<std::uint64_t>(before.value_or(last_seq + 1), last_seq + 1);
  const std::uint64_t span = std::min<std::uint64_t>(turns, end > 0 ? end - 1 : 0);
  return HistoryRange{end - span, end, end - span > 1};
}

}  // namespace backcheck::server
