#include "server/protocol.hpp"

#include <nlohmann/json.hpp>

namespace backcheck::server {

using nlohmann::json;

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kBadJson: return "bad_json";
    case ErrorCode::kBadRequest: return "bad_request";
    case ErrorCode::kUnknownType: return "unknown_type";
    case ErrorCode::kUnknownConversation: return "unknown_conversation";
    case ErrorCode::kTextTooLong: return "text_too_long";
    case ErrorCode::kRateLimited: return "rate_limited";
    case ErrorCode::kTooManyConversations: return "too_many_conversations";
  }
  return "bad_request";
}

namespace {

ParseResult Fail(ErrorCode code, std::string message, std::optional<std::string> ref = std::nullopt) {
  ParseResult r;
  r.error = Error{code, std::move(message)};
  r.ref = std::move(ref);
  return r;
}

// An optional string field: absent is fine, present must be a non-empty string.
bool OptionalString(const json& j, const char* key, std::optional<std::string>& out, std::string& problem) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return true;
  if (!it->is_string() || it->get_ref<const std::string&>().empty()) {
    problem = std::string("'") + key + "' must be a non-empty string";
    return false;
  }
  out = it->get<std::string>();
  return true;
}

}  // namespace

ParseResult ParseClientFrame(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Fail(ErrorCode::kBadJson, "the frame is not valid JSON");
  if (!j.is_object()) return Fail(ErrorCode::kBadJson, "the frame must be a JSON object");

  std::optional<std::string> ref;
  if (auto it = j.find("ref"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) return Fail(ErrorCode::kBadRequest, "'ref' must be a string");
    if (it->get_ref<const std::string&>().size() > kMaxRefBytes) {
      return Fail(ErrorCode::kBadRequest, "'ref' is longer than " + std::to_string(kMaxRefBytes) + " bytes");
    }
    ref = it->get<std::string>();
  }
  auto type = j.find("type");
  if (type == j.end() || !type->is_string()) return Fail(ErrorCode::kBadRequest, "'type' must be a string", ref);
  const std::string& t = type->get_ref<const std::string&>();

  std::string problem;
  ClientFrame frame;
  frame.ref = ref;
  if (t == "start") {
    StartFrame start;
    if (!OptionalString(j, "resume", start.resume, problem)) return Fail(ErrorCode::kBadRequest, problem, ref);
    frame.body = std::move(start);
  } else if (t == "message") {
    MessageFrame message;
    auto it = j.find("text");
    if (it == j.end() || !it->is_string()) return Fail(ErrorCode::kBadRequest, "'text' must be a string", ref);
    message.text = it->get<std::string>();
    if (message.text.find_first_not_of(" \t\r\n") == std::string::npos) {
      return Fail(ErrorCode::kBadRequest, "'text' is empty", ref);
    }
    if (!OptionalString(j, "conversation", message.conversation, problem)) {
      return Fail(ErrorCode::kBadRequest, problem, ref);
    }
    frame.body = std::move(message);
  } else if (t == "end") {
    std::optional<std::string> conversation;
    if (!OptionalString(j, "conversation", conversation, problem)) return Fail(ErrorCode::kBadRequest, problem, ref);
    if (!conversation) return Fail(ErrorCode::kBadRequest, "'conversation' is required", ref);
    frame.body = EndFrame{std::move(*conversation)};
  } else {
    return Fail(ErrorCode::kUnknownType, "unknown type '" + t.substr(0, 64) + "' (start, message, end)", ref);
  }
  ParseResult r;
  r.frame = std::move(frame);
  r.ref = std::move(ref);
  return r;
}

std::size_t CountCodePoints(std::string_view utf8) {
  std::size_t n = 0;
  for (char c : utf8) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;  // count every byte that starts a code point
  }
  return n;
}

std::string StartedJson(const std::string& conversation, bool resumed, const dialog::ConversationState& state,
                        const std::vector<HistoryEntry>& history) {
  json h = json::array();
  for (const auto& e : history) h.push_back({{"role", e.role}, {"text", e.text}, {"seq", e.seq}});
  return json{{"type", "started"},
              {"conversation", conversation},
              {"resumed", resumed},
              {"state", state.state},
              {"urgency", knowledge::UrgencyName(state.urgency)},
              {"history", std::move(h)}}
      .dump();
}

namespace {

// Appends `s` as a JSON string. Text here is valid UTF-8 (the transport and the JSON parser have
// checked what clients sent; the knowledge base is ours), so only quotes, backslashes and control
// characters need escaping.
void AppendString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += "\\u00";
          out.push_back(kHex[(c >> 4) & 0xF]);
          out.push_back(kHex[c & 0xF]);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

void AppendStrings(std::string& out, const std::vector<std::string>& items) {
  out.push_back('[');
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out.push_back(',');
    AppendString(out, items[i]);
  }
  out.push_back(']');
}

}  // namespace

// Written directly rather than through a json tree: replies are the server's hottest output, and
// building and dumping an nlohmann::json object per reply was the largest cost after the kernel
// in the load profile (bench/results/profile.md).
std::string ReplyJson(const std::string& conversation, std::uint64_t seq, const std::optional<std::string>& ref,
                      const dialog::Reply& reply, bool with_type) {
  std::size_t size = 256 + conversation.size() + reply.text.size() + reply.intent.size();
  for (const auto& s : reply.sources) size += s.section.size() + s.quote.size() + 32;
  for (const auto& q : reply.quick_replies) size += q.size() + 4;
  std::string out;
  out.reserve(size);
  out += '{';
  if (with_type) out += "\"type\":\"reply\",";
  out += "\"conversation\":";
  AppendString(out, conversation);
  out += ",\"seq\":";
  out += std::to_string(seq);
  if (ref) {
    out += ",\"ref\":";
    AppendString(out, *ref);
  }
  out += ",\"text\":";
  AppendString(out, reply.text);
  out += ",\"intent\":";
  AppendString(out, reply.intent);
  out += ",\"state\":";
  AppendString(out, reply.state);
  out += ",\"urgency\":";
  AppendString(out, knowledge::UrgencyName(reply.urgency));
  out += ",\"red_flags\":";
  AppendStrings(out, reply.red_flags);
  out += ",\"escalated\":";
  out += reply.escalated ? "true" : "false";
  out += ",\"quick_replies\":";
  AppendStrings(out, reply.quick_replies);
  out += ",\"sources\":[";
  for (std::size_t i = 0; i < reply.sources.size(); ++i) {
    if (i) out += ',';
    out += "{\"section\":";
    AppendString(out, reply.sources[i].section);
    out += ",\"quote\":";
    AppendString(out, reply.sources[i].quote);
    out += '}';
  }
  out += "]}";
  return out;
}

std::string EndedJson(const std::string& conversation) {
  return json{{"type", "ended"}, {"conversation", conversation}}.dump();
}

std::string ErrorJson(const Error& error, const std::optional<std::string>& ref) {
  json j{{"type", "error"}, {"code", ErrorCodeName(error.code)}, {"message", error.message}};
  if (ref) j["ref"] = *ref;
  return j.dump();
}

}  // namespace backcheck::server
