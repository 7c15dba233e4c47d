#include "server/protocol.hpp"

#if defined(__SSE2__)
#define RAPIDJSON_SSE2  // the reader scans strings 16 bytes at a time
#endif
#include <rapidjson/reader.h>

#include <algorithm>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <nlohmann/json.hpp>

#include "server/json_writer.hpp"

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
    case ErrorCode::kStoreUnavailable: return "store_unavailable";
  }
  return "bad_request";
}

namespace {

constexpr std::size_t kScanPadding = 16;
constexpr std::size_t kMaxEchoedTypeBytes = 64;

ParseResult Fail(ErrorCode code, std::string message, std::optional<std::string> ref = std::nullopt) {
  ParseResult r;
  r.error = Error{code, std::move(message)};
  r.ref = std::move(ref);
  return r;
}

// A top-level field of a client frame as the parser saw it.
struct Field {
  enum Kind { kAbsent, kNull, kString, kNumber, kOther } kind = kAbsent;
  std::string value;  // when kString, or the digits when kNumber

  bool present() const { return kind != kAbsent && kind != kNull; }  // null counts as left out
};

// Collects the top-level fields a client frame may have from RapidJSON's SAX events. Frames are
// parsed on every message: nlohmann's lexer spent ~10,000 instructions on a 110-byte frame; with
// RapidJSON's reader the whole parse is about a third of that (bench/results/profile.md).
// Unknown keys and anything nested are skipped; a repeated key keeps its last value, as
// nlohmann's parser does.
class FrameFields : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, FrameFields> {
 public:
  Field type, text, conversation, ref, resume, history_before, key, id;
  bool object = false;  // the frame is a JSON object

  // Null, Bool and numbers (read as strings, so no value is "too big") land here.
  bool Default() { return Value(Field::kOther); }
  bool Null() { return Value(Field::kNull); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    if (depth_ == 1 && current_) {
      current_->kind = Field::kNumber;
      current_->value.assign(s, n);
      current_ = nullptr;
    }
    return true;
  }
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
    if (name == "history_before") return &history_before;
    if (name == "key") return &key;
    if (name == "id") return &id;
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

// An optional string of at most `max` bytes.
bool OptionalString(Field& field, const char* key, std::size_t max, std::optional<std::string>& out,
                    std::string& problem) {
  if (!OptionalString(field, key, out, problem)) return false;
  if (out && out->size() > max) {
    problem = std::string("'") + key + "' is longer than " + std::to_string(max) + " bytes";
    return false;
  }
  return true;
}

// A JSON number that is a positive integer below 2^53 (what every JSON client can represent).
std::optional<std::uint64_t> PositiveInteger(const Field& field) {
  if (field.kind != Field::kNumber || field.value.empty() || field.value.size() > 16) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : field.value) {
    if (c < '0' || c > '9') return std::nullopt;  // a sign, a fraction or an exponent
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (v == 0 || v >= (std::uint64_t{1} << 53)) return std::nullopt;
  return v;
}

// A frame's `ref`, in both protocols (the person's and the operator's), when present (not null):
// a string, the empty one included, of at most kMaxRefBytes. `value` is null when the field is
// no string. Returns what is wrong with it, or nothing.
std::optional<std::string> RefProblem(const std::string* value) {
  if (!value) return "'ref' must be a string";
  if (value->size() > kMaxRefBytes) return "'ref' is longer than " + std::to_string(kMaxRefBytes) + " bytes";
  return std::nullopt;
}

}  // namespace

ParseResult ParseClientFrame(std::string_view text) {
  // JSON has no raw control character but the whitespace ones (RFC 8259: inside a string they
  // must be escaped), and the reader's input ends at a NUL: refuse them first, as nlohmann does.
  // (RapidJSON's reader let a raw 0x1D inside a string through; the fuzzer found it.)
  for (const char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') {
      return Fail(ErrorCode::kBadJson, "the frame is not valid JSON");
    }
  }
  // One reader and one NUL-terminated copy per thread, kept between frames: a terminated string
  // lets the reader scan strings 16 bytes at a time (SSE2). Its scans load aligned 16-byte
  // blocks, so the block holding the NUL may reach up to 15 bytes past it: the copy is padded
  // with 16 NULs so that every byte it reads is ours (AddressSanitizer checks this).
  thread_local rapidjson::Reader reader;
  thread_local std::string terminated;
  terminated.assign(text);
  terminated.append(kScanPadding, '\0');
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
    if (auto problem = RefProblem(f.ref.kind == Field::kString ? &f.ref.value : nullptr)) {
      return Fail(ErrorCode::kBadRequest, std::move(*problem));
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
    if (!OptionalString(f.resume, "resume", start.resume, problem) ||
        !OptionalString(f.key, "key", kMaxKeyBytes, start.key, problem)) {
      return Fail(ErrorCode::kBadRequest, problem, ref);
    }
    if (start.resume && start.key) return Fail(ErrorCode::kBadRequest, "'resume' and 'key' exclude each other", ref);
    if (f.history_before.present()) {
      start.history_before = PositiveInteger(f.history_before);
      if (!start.history_before) {
        return Fail(ErrorCode::kBadRequest, "'history_before' must be a positive integer (a seq)", ref);
      }
      if (!start.resume && !start.key) return Fail(ErrorCode::kBadRequest, "'history_before' needs 'resume' or 'key'", ref);
    }
    frame.body = std::move(start);
  } else if (t == "message") {
    MessageFrame message;
    if (f.text.kind != Field::kString) return Fail(ErrorCode::kBadRequest, "'text' must be a string", ref);
    message.text = std::move(f.text.value);
    if (message.text.find_first_not_of(" \t\r\n") == std::string::npos) {
      return Fail(ErrorCode::kBadRequest, "'text' is empty", ref);
    }
    if (!OptionalString(f.conversation, "conversation", message.conversation, problem) ||
        !OptionalString(f.key, "key", kMaxKeyBytes, message.key, problem) ||
        !OptionalString(f.id, "id", kMaxMessageIdBytes, message.id, problem)) {
      return Fail(ErrorCode::kBadRequest, problem, ref);
    }
    if (message.conversation && message.key) {
      return Fail(ErrorCode::kBadRequest, "'conversation' and 'key' exclude each other", ref);
    }
    frame.body = std::move(message);
  } else if (t == "end") {
    std::optional<std::string> conversation, key;
    if (!OptionalString(f.conversation, "conversation", conversation, problem) ||
        !OptionalString(f.key, "key", kMaxKeyBytes, key, problem)) {
      return Fail(ErrorCode::kBadRequest, problem, ref);
    }
    if (conversation.has_value() == key.has_value()) {
      return Fail(ErrorCode::kBadRequest, "'conversation' or 'key' is required (one of them)", ref);
    }
    frame.body = EndFrame{conversation.value_or(std::string()), std::move(key)};
  } else {
    return Fail(ErrorCode::kUnknownType,
                "unknown type '" + std::string(TruncateUtf8(t, kMaxEchoedTypeBytes)) + "' (start, message, end)", ref);
  }
  ParseResult r;
  r.frame = std::move(frame);
  r.ref = std::move(ref);
  return r;
}

OperatorParseResult ParseOperatorFrame(std::string_view text) {
  OperatorParseResult r;  // an error echoes the ref and the conversation once they are read
  auto fail = [&r](ErrorCode code, std::string message) {
    r.error = Error{code, std::move(message)};
    return r;
  };
  // Not the hot path (operators ack by hand): nlohmann's DOM, without exceptions.
  auto j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return fail(ErrorCode::kBadJson, "the frame must be a JSON object");
  if (auto ref = j.find("ref"); ref != j.end() && !ref->is_null()) {
    if (auto problem = RefProblem(ref->get_ptr<const std::string*>())) return fail(ErrorCode::kBadRequest, std::move(*problem));
    r.ref = ref->get<std::string>();
  }
  auto type = j.find("type");
  if (type == j.end() || !type->is_string()) return fail(ErrorCode::kBadRequest, "'type' must be a string");
  using Kind = OperatorFrame::Kind;
  static const std::pair<std::string_view, Kind> kKinds[] = {
      {"ack", Kind::kAck}, {"claim", Kind::kClaim}, {"join", Kind::kJoin}, {"say", Kind::kSay}, {"leave", Kind::kLeave}};
  OperatorFrame frame;
  const auto* kind = std::find_if(std::begin(kKinds), std::end(kKinds), [&](const auto& k) { return *type == k.first; });
  if (kind == std::end(kKinds)) return fail(ErrorCode::kUnknownType, "operators send ack, claim, join, say or leave");
  frame.kind = kind->second;
  auto string_field = [&](const char* name, std::size_t max_bytes, std::string& out, bool required) -> std::optional<OperatorParseResult> {
    auto f = j.find(name);
    if (f == j.end() || f->is_null()) {
      if (required) return fail(ErrorCode::kBadRequest, std::string("'") + name + "' is required");
      return std::nullopt;
    }
    if (!f->is_string() || f->get_ref<const std::string&>().empty() || f->get_ref<const std::string&>().size() > max_bytes) {
      return fail(ErrorCode::kBadRequest, std::string("'") + name + "' must be a string of 1 to " +
                                              std::to_string(max_bytes) + " bytes");
    }
    out = f->get<std::string>();
    return std::nullopt;
  };
  if (frame.kind == Kind::kAck) {
    auto id = j.find("id");
    if (id == j.end() || !id->is_number_integer()) return fail(ErrorCode::kBadRequest, "'id' must be an integer");
    frame.ack = id->get<std::int64_t>();
    if (auto bad = string_field("note", kMaxOperatorTextBytes, frame.note, false)) return *bad;
  } else {
    if (auto bad = string_field("conversation", 64, frame.conversation, true)) return *bad;
    r.conversation = frame.conversation;
    if (frame.kind == Kind::kSay) {
      if (auto bad = string_field("text", kMaxOperatorTextBytes, frame.text, true)) return *bad;
      if (frame.text.find_first_not_of(" \t\r\n") == std::string::npos) {
        return fail(ErrorCode::kBadRequest, "'text' is empty");
      }
    }
  }
  frame.ref = r.ref;
  r.frame = std::move(frame);
  return r;
}

std::size_t CountCodePoints(std::string_view utf8) {
  std::size_t n = 0;
  for (char c : utf8) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;  // count every byte that starts a code point
  }
  return n;
}

// Written directly rather than through a json tree: replies are the server's hottest output, and
// building and dumping an nlohmann::json object per reply was the largest cost after the kernel
// in the load profile (bench/results/profile.md).
namespace {
// `sources` as a JSON array of {section, quote}.
void AppendSources(std::string& out, const std::vector<knowledge::Source>& sources) {
  out += '[';
  for (std::size_t i = 0; i < sources.size(); ++i) {
    if (i) out += ',';
    out += "{\"section\":";
    AppendJsonString(out, sources[i].section);
    out += ",\"quote\":";
    AppendJsonString(out, sources[i].quote);
    out += '}';
  }
  out += ']';
}
}  // namespace

std::string ReplyJson(const std::string& conversation, std::uint64_t seq, const std::optional<std::string>& ref,
                      const dialog::Reply& reply, bool with_type, const ReplyEcho& echo) {
  std::size_t size = 256 + conversation.size() + reply.text.size() + reply.intent.size();
  if (echo.key) size += echo.key->size() + 16;
  if (echo.id) size += echo.id->size() + 32;
  for (const auto& s : reply.sources) size += s.section.size() + s.quote.size() + 32;
  for (const auto& q : reply.quick_replies) size += q.size() + 4;
  for (const auto& f : reply.red_flags) size += f.size() + 4;
  for (const auto& f : reply.possible_flags) size += f.size() + 4;
  std::string out;
  out.reserve(size);
  out += '{';
  if (with_type) out += "\"type\":\"reply\",";
  out += "\"conversation\":";
  AppendJsonString(out, conversation);
  if (echo.key) {
    out += ",\"key\":";
    AppendJsonString(out, *echo.key);
  }
  out += ",\"seq\":";
  out += std::to_string(seq);
  if (ref) {
    out += ",\"ref\":";
    AppendJsonString(out, *ref);
  }
  if (echo.id) {
    out += ",\"id\":";
    AppendJsonString(out, *echo.id);
  }
  if (echo.duplicate) out += ",\"duplicate\":true";
  out += ",\"text\":";
  AppendJsonString(out, reply.text);
  out += ",\"intent\":";
  AppendJsonString(out, reply.intent);
  out += ",\"state\":";
  AppendJsonString(out, reply.state);
  out += ",\"urgency\":";
  AppendJsonString(out, knowledge::UrgencyName(reply.urgency));
  out += ",\"red_flags\":";
  AppendJsonStrings(out, reply.red_flags);
  out += ",\"possible_flags\":";
  AppendJsonStrings(out, reply.possible_flags);
  out += ",\"escalated\":";
  out += reply.escalated ? "true" : "false";
  out += ",\"quick_replies\":";
  AppendJsonStrings(out, reply.quick_replies);
  out += ",\"sources\":";
  AppendSources(out, reply.sources);
  if (reply.to_operator) out += ",\"to_operator\":true";
  out += '}';
  return out;
}

namespace {
// A stored reply's quick_replies and sources (TurnRecord::reply_extras), checked: what the store
// gives back is not trusted to be JSON, and only these two fields, of the right types, go out.
void AddExtras(JsonObject& entry, const std::string& extras) {
  if (extras.empty()) return;
  const auto j = nlohmann::json::parse(extras, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return;
  if (const auto q = j.find("quick_replies"); q != j.end() && q->is_array() &&
                                              std::all_of(q->begin(), q->end(), [](const auto& x) { return x.is_string(); })) {
    entry.Raw("quick_replies", q->dump());
  }
  if (const auto s = j.find("sources"); s != j.end() && s->is_array() &&
                                        std::all_of(s->begin(), s->end(), [](const auto& x) {
                                          return x.is_object() && x.size() == 2 && x.contains("section") &&
                                                 x["section"].is_string() && x.contains("quote") && x["quote"].is_string();
                                        })) {
    entry.Raw("sources", s->dump());
  }
}
}  // namespace

std::string ReplyExtrasJson(const dialog::Reply& reply) {
  if (reply.quick_replies.empty() && reply.sources.empty()) return {};
  std::string out = "{\"quick_replies\":";
  AppendJsonStrings(out, reply.quick_replies);
  out += ",\"sources\":";
  AppendSources(out, reply.sources);
  return out + '}';
}

std::string HistoryJson(const HistoryPage& history) {
  std::size_t size = 2;
  for (const auto& e : history.entries) size += e.text.size() + 48;
  std::string entries;
  entries.reserve(size);
  entries += '[';
  for (std::size_t i = 0; i < history.entries.size(); ++i) {
    const auto& e = history.entries[i];
    if (i) entries += ',';
    JsonObject entry(e.text.size() + e.operator_name.size() + 64);
    entry.String("role", e.role).String("text", e.text).Int("seq", static_cast<std::int64_t>(e.seq));
    if (!e.operator_name.empty()) entry.String("operator", e.operator_name);
    AddExtras(entry, e.extras);
    entries += std::move(entry).Done();
  }
  entries += ']';
  return entries;
}

std::string StartedJson(const std::string& conversation, bool resumed, const dialog::ConversationState& state,
                        const HistoryPage& history, const StartedTexts& texts,
                        const std::optional<std::string>& key) {
  const bool welcome = !resumed && !texts.welcome_text.empty();
  std::size_t size = 192 + conversation.size() + (key ? key->size() + 16 : 0);
  for (const auto& e : history.entries) size += e.text.size() + 48;
  std::size_t banners_size = 2;
  for (const auto& b : texts.banners) banners_size += b.text.size() + 24;
  size += banners_size;
  if (welcome) {
    size += texts.welcome_text.size() + 48;
    for (const auto& q : texts.welcome_quick_replies) size += q.size() + 4;
  }
  const std::string entries = HistoryJson(history);
  JsonObject banners(banners_size);
  for (const auto& b : texts.banners) banners.String(knowledge::UrgencyName(b.level), b.text);
  JsonObject o(size);
  o.String("type", "started").String("conversation", conversation);
  if (key) o.String("key", *key);
  o.Bool("resumed", resumed)
      .String("state", state.state)
      .String("urgency", knowledge::UrgencyName(state.urgency))
      .Raw("history", entries)
      .Bool("history_more", history.more);
  if (welcome) {
    o.Raw("welcome", JsonObject(texts.welcome_text.size() + 48)
                         .String("text", texts.welcome_text)
                         .Strings("quick_replies", texts.welcome_quick_replies)
                         .Done());
  }
  o.Raw("banners", banners.Done());
  if (!texts.emergency_number.empty()) o.String("emergency_number", texts.emergency_number);
  if (!state.operator_name.empty()) o.String("operator", state.operator_name);  // who has joined
  return std::move(o).Done();
}

std::string EndedJson(const std::string& conversation, const std::optional<std::string>& key) {
  JsonObject o;
  o.String("type", "ended").String("conversation", conversation);
  if (key) o.String("key", *key);
  return std::move(o).Done();
}

std::string GuidanceJson(const Guidance& guidance) {
  return JsonObject(guidance.text.size() + 96)
      .String("text", guidance.text)
      .String("urgency", knowledge::UrgencyName(guidance.urgency))
      .Strings("red_flags", guidance.red_flags)
      .Strings("possible_flags", guidance.possible_flags)
      .Done();
}

std::string NoticeJson(const std::string& conversation, const std::string* key, const std::string& notice,
                       const std::string& text) {
  JsonObject o(text.size() + conversation.size() + (key ? key->size() : 0) + 96);
  o.String("type", "notice").String("conversation", conversation);
  if (key) o.String("key", *key);
  o.String("notice", notice).String("text", text);
  return std::move(o).Done();
}

std::string HandoffJson(const std::string& conversation, const std::string* key, const std::string& event,
                        const std::string& operator_name) {
  JsonObject o(conversation.size() + (key ? key->size() : 0) + operator_name.size() + 96);
  o.String("type", "handoff").String("conversation", conversation);
  if (key) o.String("key", *key);
  o.String("event", event).String("operator", operator_name);
  return std::move(o).Done();
}

std::string OperatorMessageJson(const std::string& conversation, const std::string* key, const std::string& text,
                                const std::string& operator_name, std::uint64_t seq) {
  JsonObject o(text.size() + conversation.size() + (key ? key->size() : 0) + operator_name.size() + 112);
  o.String("type", "operator_message").String("conversation", conversation);
  if (key) o.String("key", *key);
  o.String("text", text).String("operator", operator_name).Int("seq", static_cast<std::int64_t>(seq));
  return std::move(o).Done();
}

std::string ReceivedJson(const std::string& conversation, std::uint64_t seq, const std::optional<std::string>& ref,
                         const ReplyEcho& echo) {
  JsonObject o(conversation.size() + 160);
  o.String("type", "received").String("conversation", conversation).Int("seq", static_cast<std::int64_t>(seq));
  if (ref) o.String("ref", *ref);
  if (echo.key) o.String("key", *echo.key);
  if (echo.id) o.String("id", *echo.id);
  if (echo.duplicate) o.Bool("duplicate", true);
  return std::move(o).Done();
}

std::string ErrorJson(const Error& error, const std::optional<std::string>& ref, const std::string* conversation) {
  JsonObject o(error.message.size() + 96 + (error.guidance ? error.guidance->text.size() + 96 : 0) +
               (ref ? ref->size() : 0) + (conversation ? conversation->size() + 20 : 0));
  o.String("type", "error").String("code", ErrorCodeName(error.code)).String("message", error.message);
  if (ref) o.String("ref", *ref);
  if (conversation) o.String("conversation", *conversation);
  if (error.guidance) o.Raw("guidance", GuidanceJson(*error.guidance));
  return std::move(o).Done();
}

}  // namespace backcheck::server
