// ParseClientFrame on any valid UTF-8 (what the WebSocket transport lets through), and the
// server's JSON writers on what it returns: every frame the server would send must be JSON.
//
// Oracles:
//  - nothing throws, no sanitizer report;
//  - ErrorJson / ReplyJson / StartedJson / EndedJson produce text nlohmann parses (the crash of
//    issue 11: a message truncated inside a UTF-8 character made dump() throw);
//  - strings written by ReplyJson come back byte for byte;
//  - the RapidJSON SAX parse agrees with nlohmann's DOM parse: bad_json exactly when the frame is
//    not a JSON object, and the same type/text/conversation/ref/resume fields.
#include <nlohmann/json.hpp>

#include "fuzz/fuzz_support.hpp"
#include "server/protocol.hpp"

namespace {

using backcheck::fuzz::Check;
using backcheck::fuzz::Fail;
using nlohmann::json;
namespace server = backcheck::server;

json MustParse(const std::string& out, const char* writer) {
  json j = json::parse(out, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) Fail(writer, out);
  return j;
}

// The value nlohmann sees for a top-level key the way the frame parser reads it: null and absent
// are alike; a string is its value; anything else is "other".
struct Seen {
  enum { kAbsent, kString, kOther } kind = kAbsent;
  std::string value;
};
Seen Look(const json& j, const char* key) {
  Seen s;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return s;
  if (it->is_string()) {
    s.kind = Seen::kString;
    s.value = it->get<std::string>();
  } else {
    s.kind = Seen::kOther;
  }
  return s;
}

void CheckOptional(const std::optional<std::string>& parsed, const Seen& seen, const char* what) {
  if (parsed) {
    Check(seen.kind == Seen::kString && seen.value == *parsed, what, *parsed);
  } else {
    Check(seen.kind == Seen::kAbsent, what, seen.value);  // absent or null
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = backcheck::fuzz::AsView(data, size);
  if (!backcheck::fuzz::IsValidUtf8(text)) return 0;  // the transport closes such a frame with 1007

  const server::ParseResult r = server::ParseClientFrame(text);
  Check(r.frame.has_value() != r.error.has_value(), "exactly one of frame and error is set");
  if (r.ref) Check(r.ref->size() <= server::kMaxRefBytes, "ref longer than kMaxRefBytes");

  // What nlohmann makes of the same bytes. A number too big for a double (406) is an error there
  // and a valid number for the frame parser (it reads numbers as strings): no verdict then.
  // nlohmann's lexer also takes a NUL byte for the end of the input, so it is no reference for a
  // frame holding one, which is never JSON: the frame parser must call it bad_json.
  json doc;
  bool doc_ok = false, no_verdict = false;
  // RapidJSON refuses an exponent past a double's range even where the value is representable
  // ("0e400"): bad_json for a number nobody sends is accepted, so no verdict for such exponents.
  const auto huge_exponent = [&] {
    for (std::size_t i = 0; i + 3 < text.size(); ++i) {
      if (text[i] != 'e' && text[i] != 'E') continue;
      std::size_t k = i + 1;
      if (text[k] == '+' || text[k] == '-') ++k;
      std::size_t digits = 0;
      while (k < text.size() && text[k] >= '0' && text[k] <= '9') ++k, ++digits;
      if (digits >= 3) return true;
    }
    return false;
  };
  if (r.error && r.error->code == server::ErrorCode::kBadJson && huge_exponent()) no_verdict = true;
  if (no_verdict) {
  } else if (text.find('\0') != std::string_view::npos) {
    no_verdict = true;
    Check(r.error && r.error->code == server::ErrorCode::kBadJson, "a frame with a NUL byte is not bad_json", text);
  } else {
    try {
      doc = json::parse(text);
      doc_ok = true;
    } catch (const json::out_of_range&) {
      no_verdict = true;
    } catch (const json::parse_error&) {
    }
  }
  const bool is_object = doc_ok && doc.is_object();

  if (r.error) {
    const std::string out = server::ErrorJson(*r.error, r.ref);
    json j = MustParse(out, "ErrorJson output is not a JSON object");
    Check(j.value("code", "") == server::ErrorCodeName(r.error->code), "ErrorJson code");
    if (r.ref) Check(j.value("ref", "") == *r.ref, "ErrorJson ref", out);
    if (!no_verdict) {
      const bool bad_json = r.error->code == server::ErrorCode::kBadJson;
      Check(bad_json == !is_object, bad_json ? "bad_json for a JSON object" : "a frame that is no JSON object accepted",
            text);
    }
    return 0;
  }

  const server::ClientFrame& frame = *r.frame;
  if (!no_verdict) {
    Check(is_object, "a frame nlohmann refuses was accepted", text);
    const Seen type = Look(doc, "type");
    Check(type.kind == Seen::kString, "accepted frame without a string type", text);
    CheckOptional(frame.ref, Look(doc, "ref"), "ref differs from nlohmann's");
    if (const auto* start = std::get_if<server::StartFrame>(&frame.body)) {
      Check(type.value == "start", "start frame of another type", text);
      CheckOptional(start->resume, Look(doc, "resume"), "resume differs from nlohmann's");
      if (start->history_before) {
        const auto it = doc.find("history_before");
        Check(it != doc.end() && it->is_number_unsigned() && it->get<std::uint64_t>() == *start->history_before,
              "history_before differs from nlohmann's", text);
        Check(start->resume.has_value(), "history_before without resume accepted", text);
      }
    } else if (const auto* message = std::get_if<server::MessageFrame>(&frame.body)) {
      Check(type.value == "message", "message frame of another type", text);
      const Seen t = Look(doc, "text");
      Check(t.kind == Seen::kString && t.value == message->text, "text differs from nlohmann's", text);
      CheckOptional(message->conversation, Look(doc, "conversation"), "conversation differs from nlohmann's");
    } else {
      const auto& end = std::get<server::EndFrame>(frame.body);
      Check(type.value == "end", "end frame of another type", text);
      const Seen c = Look(doc, "conversation");
      Check(c.kind == Seen::kString && c.value == end.conversation, "conversation differs from nlohmann's", text);
    }
  }

  // The writers, on the strings the client sent.
  {
    server::Error error{};
    error.code = server::ErrorCode::kRateLimited;
    error.message = "slow down";
    const std::string out = server::ErrorJson(error, frame.ref);
    json j = MustParse(out, "ErrorJson output is not a JSON object");
    if (frame.ref) Check(j.value("ref", "") == *frame.ref, "ErrorJson ref", out);
  }
  if (const auto* message = std::get_if<server::MessageFrame>(&frame.body)) {
    backcheck::dialog::Reply reply;
    reply.text = message->text;
    reply.intent = "describe_pain";
    reply.state = "screening";
    reply.red_flags = {message->text};
    reply.quick_replies = {"Yes", message->text};
    reply.sources = {{message->text, message->text}};
    const std::string conversation = message->conversation.value_or("c");
    for (bool with_type : {true, false}) {
      const std::string out = server::ReplyJson(conversation, 7, frame.ref, reply, with_type);
      json j = MustParse(out, "ReplyJson output is not a JSON object");
      Check(j.value("text", "") == message->text, "ReplyJson text does not round-trip", out);
      Check(j.value("conversation", "") == conversation, "ReplyJson conversation does not round-trip", out);
      Check(j["quick_replies"][1] == message->text, "ReplyJson quick reply does not round-trip", out);
      Check(j["sources"][0]["quote"] == message->text, "ReplyJson source does not round-trip", out);
      if (frame.ref) Check(j.value("ref", "") == *frame.ref, "ReplyJson ref does not round-trip", out);
      Check(j.contains("type") == with_type, "ReplyJson type");
    }
    const std::string ended = server::EndedJson(conversation);
    MustParse(ended, "EndedJson output is not a JSON object");
    server::HistoryPage history;
    history.entries = {{"user", message->text, 1}, {"assistant", "ok", 2}};
    history.more = true;
    backcheck::dialog::ConversationState state;
    state.state = "welcome";
    const std::string started = server::StartedJson(conversation, true, state, history);
    json j = MustParse(started, "StartedJson output is not a JSON object");
    Check(j["history"][0]["text"] == message->text, "StartedJson history text does not round-trip", started);

    // An error answering a message that raised a red flag carries the guidance.
    server::Error error{};
    error.code = server::ErrorCode::kStoreUnavailable;
    error.message = message->text;
    error.guidance = server::Guidance{message->text, backcheck::knowledge::Urgency::kEmergency, {message->text}};
    const std::string out = server::ErrorJson(error, frame.ref);
    json e = MustParse(out, "ErrorJson output (with guidance) is not a JSON object");
    Check(e["guidance"]["text"] == message->text, "the guidance text does not round-trip", out);
    MustParse(server::GuidanceJson(*error.guidance), "GuidanceJson output is not a JSON object");
  } else if (const auto* start = std::get_if<server::StartFrame>(&frame.body)) {
    backcheck::dialog::ConversationState state;
    state.state = "welcome";
    MustParse(server::StartedJson(start->resume.value_or("c"), start->resume.has_value(), state, server::HistoryPage{}),
              "StartedJson output is not a JSON object");
  } else {
    MustParse(server::EndedJson(std::get<server::EndFrame>(frame.body).conversation),
              "EndedJson output is not a JSON object");
  }
  return 0;
}
