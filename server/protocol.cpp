#include "server/protocol.hpp"

#if defined(__SSE2__)
#define RAPIDJSON_SSE2  // the reader scans strings 16 bytes at a time
#endif
#include <rapidjson/reader.h>

#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
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

// A top-level field of a client frame as the parser saw it.
struct Field {
  enum Kind { kAbsent, kNull, kString, kOther } kind = kAbsent;
  std::string value;  // when kString

  bool present() const { return kind != kAbsent && kind != kNull; }  // null counts as left out
};

// Collects the top-level fields a client frame may have from RapidJSON's SAX events. Frames are
// parsed on every message: nlohmann's lexer spent ~10,000 instructions on a 110-byte frame; with
// RapidJSON's reader the whole parse is about a third of that (bench/results/profile.md).
// Unknown keys and anything nested are skipped; a repeated key keeps its last value, as
// nlohmann's parser does.
class FrameFields : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, FrameFields> {
 public:
  Field type, text, conversation, ref, resume;
  bool object = false;  // the frame is a JSON object

  // Null, Bool and numbers (read as strings, so no value is "too big") land here.
  bool Default() { return Value(Field::kOther); }
  bool Null() { return Value(Field::kNull); }
  bool RawNumber(const char*, rapidjson::SizeType, bool) { return Value(Field::kOther); }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    if (!ValidUnicode(s, n)) return false;
    if (depth_ == 1 && current_) {
      current_->kind = Field::kString;
      current_->value.assign(s, n);
      current_ = nullptr;
    }
    return true;
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    if (!ValidUnicode(s, n)) return false;
    if (depth_ == 1) current_ = Lookup(std::string_view(s, n));
    return true;
  }
  bool StartObject() { return Open(true); }
  bool StartArray() { return Open(false); }
  bool EndObject(rapidjson::SizeType) { return Close(); }
  bool EndArray(rapidjson::SizeType) { return Close(); }

 private:
  // The frame is valid UTF-8 (see ParseClientFrame), but a lone low surrogate escape ("\\uDC00")
  // decodes to bytes ED B0..BF, which are not UTF-8; JSON parsers (nlohmann's among them) refuse it.
  static bool ValidUnicode(const char* s, rapidjson::SizeType n) {
    for (const char* p = s; (p = static_cast<const char*>(std::memchr(p, 0xED, static_cast<std::size_t>(s + n - p))));) {
      if (++p < s + n && static_cast<unsigned char>(*p) >= 0xA0) return false;
    }
    return true;
  }
  Field* Lookup(std::string_view name) {
    if (name == "type") return &type;
    if (name == "text") return &text;
    if (name == "conversation") return &conversation;
    if (name == "ref") return &ref;
    if (name == "resume") return &resume;
    return nullptr;
  }
  bool Value(Field::Kind kind) {
    if (depth_ == 1 && current_) {
      current_->kind = kind;
      current_->value.clear();
      current_ = nullptr;
    }
    return true;
  }
  bool Open(bool is_object) {
    if (depth_ == 0) object = is_object;
    Value(Field::kOther);  // an object or array is no string
    ++depth_;
    return true;
  }
  bool Close() {
    --depth_;
    return true;
  }

  int depth_ = 0;
  Field* current_ = nullptr;  // the field whose value comes next, at the top level
};

// An optional string field: absent (or null) is fine, present must be a non-empty string.
bool OptionalString(Field& field, const char* key, std::optional<std::string>& out, std::string& problem) {
  if (!field.present()) return true;
  if (field.kind != Field::kString || field.value.empty()) {
    problem = std::string("'") + key + "' must be a non-empty string";
    return false;
  }
  out = std::move(field.value);
  return true;
}

}  // namespace

ParseResult ParseClientFrame(std::string_view text) {
  // JSON never has a raw NUL byte, and the reader's input ends at one: refuse it first.
  if (std::memchr(text.data(), '\0', text.size()) != nullptr) {
    return Fail(ErrorCode::kBadJson, "the frame is not valid JSON");
  }
  // One reader and one NUL-terminated copy per thread, kept between frames: a terminated string
  // lets the reader scan strings 16 bytes at a time (SSE2).
  thread_local rapidjson::Reader reader;
  thread_local std::string terminated;
  terminated.assign(text);
  rapidjson::StringStream stream(terminated.c_str());
  FrameFields f;
  // Iterative: a recursive parse of a deeply nested frame would overflow the thread's stack.
  constexpr unsigned kFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseNumbersAsStringsFlag;
  if (reader.Parse<kFlags>(stream, f).IsError()) {
    return Fail(ErrorCode::kBadJson, "the frame is not valid JSON");
  }
  if (!f.object) return Fail(ErrorCode::kBadJson, "the frame must be a JSON object");

  std::optional<std::string> ref;
  if (f.ref.present()) {
    if (f.ref.kind != Field::kString) return Fail(ErrorCode::kBadRequest, "'ref' must be a string");
    if (f.ref.value.size() > kMaxRefBytes) {
      return Fail(ErrorCode::kBadRequest, "'ref' is longer than " + std::to_string(kMaxRefBytes) + " bytes");
    }
    ref = std::move(f.ref.value);
  }
  if (f.type.kind != Field::kString) return Fail(ErrorCode::kBadRequest, "'type' must be a string", ref);
  const std::string& t = f.type.value;

  std::string problem;
  ClientFrame frame;
  frame.ref = ref;
  if (t == "start") {
    StartFrame start;
    if (!OptionalString(f.resume, "resume", start.resume, problem)) return Fail(ErrorCode::kBadRequest, problem, ref);
    frame.body = std::move(start);
  } else if (t == "message") {
    MessageFrame message;
    if (f.text.kind != Field::kString) return Fail(ErrorCode::kBadRequest, "'text' must be a string", ref);
    message.text = std::move(f.text.value);
    if (message.text.find_first_not_of(" \t\r\n") == std::string::npos) {
      return Fail(ErrorCode::kBadRequest, "'text' is empty", ref);
    }
    if (!OptionalString(f.conversation, "conversation", message.conversation, problem)) {
      return Fail(ErrorCode::kBadRequest, problem, ref);
    }
    frame.body = std::move(message);
  } else if (t == "end") {
    std::optional<std::string> conversation;
    if (!OptionalString(f.conversation, "conversation", conversation, problem)) {
      return Fail(ErrorCode::kBadRequest, problem, ref);
    }
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
// Whether any of the 8 bytes in `v` needs escaping: a control character (< 0x20), '"' or '\\'.
// Checking a word at a time (the "has a byte less than n" trick) makes the common case, a long
// run of ordinary text, cost a few instructions per 8 characters.
constexpr bool NeedsEscape(std::uint64_t v) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
  const auto has_zero = [](std::uint64_t x) { return ((x - kOnes) & ~x & kHigh) != 0; };
  const bool control = ((v - kOnes * 0x20) & ~v & kHigh) != 0;
  return control || has_zero(v ^ (kOnes * '"')) || has_zero(v ^ (kOnes * '\\'));
}

void AppendString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run = 0;  // start of the characters not yet appended
  std::size_t i = 0;
  while (i < s.size()) {
#if defined(__SSE2__)
    if (i + 16 <= s.size()) {  // 16 at a time: control characters, '"' and '\\' in one mask
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
      const __m128i control = _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x1F)), _mm_set1_epi8(0x1F));
      const __m128i quote = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
      const __m128i backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
      if (_mm_movemask_epi8(_mm_or_si128(control, _mm_or_si128(quote, backslash))) == 0) {
        i += 16;
        continue;
      }
    }
#endif
    if (i + 8 <= s.size()) {
      std::uint64_t word;
      std::memcpy(&word, s.data() + i, 8);
      if (!NeedsEscape(word)) {
        i += 8;
        continue;
      }
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    out.append(s.data() + run, i - run);
    run = ++i;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += "\\u00";
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xF]);
    }
  }
  out.append(s.data() + run, s.size() - run);
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
