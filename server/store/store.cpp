#include "server/store/store.hpp"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <stdexcept>

#include <nlohmann/json.hpp>

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
             std::string author, bool reply_first, std::string extras) {
  auto add_user = [&] {
    if (!user_text.empty()) entries.push_back(HistoryEntry{"user", std::move(user_text), seq, {}});
  };
  auto add_reply = [&] {
    if (reply_text.empty()) return;
    const bool by_operator = !author.empty();
    entries.push_back(HistoryEntry{by_operator ? "operator" : "assistant", std::move(reply_text), seq, std::move(author),
                                   by_operator ? std::string() : std::move(extras)});
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

std::vector<std::string> FlagsFromJson(const std::string& json) {
  std::vector<std::string> out;
  const auto flags = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!flags.is_array()) return out;
  for (const auto& f : flags) {
    if (f.is_string()) out.push_back(f.get<std::string>());
  }
  return out;
}

namespace {
constexpr std::pair<ConversationEvent::Kind, std::string_view> kEventKinds[] = {
    {ConversationEvent::Kind::kHandedOff, "handed_off"}, {ConversationEvent::Kind::kClaimed, "claimed"},
    {ConversationEvent::Kind::kJoined, "joined"},        {ConversationEvent::Kind::kSaid, "said"},
    {ConversationEvent::Kind::kLeft, "left"}};
}  // namespace

std::string ConversationEventJson(const ConversationEvent& e, std::string_view instance) {
  std::string_view kind;
  for (const auto& [k, name] : kEventKinds) {
    if (k == e.kind) kind = name;
  }
  return JsonObject(e.conversation.size() + e.operator_name.size() + 128)
      .String("instance", instance)
      .String("kind", kind)
      .String("conversation", e.conversation)
      .String("operator", e.operator_name)
      .Int("seq", static_cast<std::int64_t>(e.seq))
      .String("urgency", knowledge::UrgencyName(e.urgency))
      .Bool("escalated", e.escalated)
      .Done();
}

std::optional<ReceivedEvent> ParseConversationEvent(std::string_view json) {
  const auto j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  const auto text = [&](const char* key) -> std::optional<std::string> {
    const auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  const auto instance = text("instance"), kind = text("kind"), conversation = text("conversation"),
             name = text("operator"), urgency = text("urgency");
  const auto seq = j.find("seq");
  const auto escalated = j.find("escalated");
  if (!instance || !kind || !conversation || !name || !urgency || seq == j.end() || !seq->is_number_unsigned() ||
      escalated == j.end() || !escalated->is_boolean()) {
    return std::nullopt;
  }
  ReceivedEvent out{*instance, {}};
  bool known = false;
  for (const auto& [k, n] : kEventKinds) {
    if (n == *kind) {
      out.event.kind = k;
      known = true;
    }
  }
  const auto level = knowledge::ParseUrgency(*urgency);
  if (!known || !level) return std::nullopt;
  out.event.conversation = *conversation;
  out.event.operator_name = *name;
  out.event.seq = seq->get<std::uint64_t>();
  out.event.urgency = *level;
  out.event.escalated = escalated->get<bool>();
  return out;
}

}  // namespace backcheck::server
