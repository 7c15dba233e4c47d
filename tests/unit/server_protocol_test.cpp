// Protocol v1 frames: what the server accepts, what it refuses and with which error code.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "server/protocol.hpp"

using namespace backcheck::server;
using nlohmann::json;

namespace {
ErrorCode CodeOf(std::string_view frame) {
  auto r = ParseClientFrame(frame);
  REQUIRE(r.error);
  return r.error->code;
}
}  // namespace

TEST_CASE("valid frames parse into their types", "[protocol]") {
  auto start = ParseClientFrame(R"({"type":"start"})");
  REQUIRE(start.frame);
  CHECK_FALSE(std::get<StartFrame>(start.frame->body).resume);

  auto resume = ParseClientFrame(R"({"type":"start","resume":"abc"})");
  CHECK(std::get<StartFrame>(resume.frame->body).resume == "abc");

  auto message = ParseClientFrame(R"({"type":"message","text":"hi","conversation":"c1","ref":"r7"})");
  REQUIRE(message.frame);
  CHECK(std::get<MessageFrame>(message.frame->body).text == "hi");
  CHECK(std::get<MessageFrame>(message.frame->body).conversation == "c1");
  CHECK(message.frame->ref == "r7");

  auto end = ParseClientFrame(R"({"type":"end","conversation":"c1"})");
  CHECK(std::get<EndFrame>(end.frame->body).conversation == "c1");
}

TEST_CASE("malformed frames get the error code the spec names", "[protocol]") {
  CHECK(CodeOf("not json") == ErrorCode::kBadJson);
  CHECK(CodeOf("[1,2]") == ErrorCode::kBadJson);
  CHECK(CodeOf("\"text\"") == ErrorCode::kBadJson);
  CHECK(CodeOf(R"({"text":"hi"})") == ErrorCode::kBadRequest);             // no type
  CHECK(CodeOf(R"({"type":7})") == ErrorCode::kBadRequest);                 // type not a string
  CHECK(CodeOf(R"({"type":"shout"})") == ErrorCode::kUnknownType);
  CHECK(CodeOf(R"({"type":"message"})") == ErrorCode::kBadRequest);         // no text
  CHECK(CodeOf(R"({"type":"message","text":42})") == ErrorCode::kBadRequest);
  CHECK(CodeOf(R"({"type":"message","text":"   "})") == ErrorCode::kBadRequest);
  CHECK(CodeOf(R"({"type":"message","text":"hi","conversation":5})") == ErrorCode::kBadRequest);
  CHECK(CodeOf(R"({"type":"end"})") == ErrorCode::kBadRequest);
  CHECK(CodeOf(R"({"type":"start","resume":""})") == ErrorCode::kBadRequest);
  CHECK(CodeOf(R"({"type":"message","text":"hi","ref":{}})") == ErrorCode::kBadRequest);
  CHECK(CodeOf(json{{"type", "message"}, {"text", "hi"}, {"ref", std::string(257, 'r')}}.dump()) ==
        ErrorCode::kBadRequest);
}

TEST_CASE("only top-level fields count; nested ones, unknown keys and nulls are handled as the spec reads", "[protocol]") {
  // A nested "type"/"text" is not the frame's own.
  auto nested = ParseClientFrame(R"({"meta":{"type":"end","text":5},"type":"message","text":"hi"})");
  REQUIRE(nested.frame);
  CHECK(std::get<MessageFrame>(nested.frame->body).text == "hi");
  CHECK(CodeOf(R"({"meta":{"type":"message","text":"hi"}})") == ErrorCode::kBadRequest);
  // Unknown keys are ignored, whatever their values.
  CHECK(ParseClientFrame(R"({"type":"start","extra":[1,{"a":null}],"n":1.5,"b":true})").frame);
  // null means "left out" for optional fields, but text must be a string.
  auto null_ref = ParseClientFrame(R"({"type":"message","text":"hi","ref":null,"conversation":null})");
  REQUIRE(null_ref.frame);
  CHECK_FALSE(null_ref.frame->ref);
  CHECK_FALSE(std::get<MessageFrame>(null_ref.frame->body).conversation);
  CHECK(CodeOf(R"({"type":"message","text":null})") == ErrorCode::kBadRequest);
  CHECK(CodeOf(R"({"type":"message","text":["hi"]})") == ErrorCode::kBadRequest);
  CHECK(CodeOf(R"({"type":{"x":"message"},"text":"hi"})") == ErrorCode::kBadRequest);
  // A repeated key keeps its last value.
  auto twice = ParseClientFrame(R"({"type":"message","text":"first","text":"second"})");
  REQUIRE(twice.frame);
  CHECK(std::get<MessageFrame>(twice.frame->body).text == "second");
  // Escapes are decoded.
  auto escaped = ParseClientFrame(R"({"type":"message","text":"caf\u00e9 \"ok\"\n"})");
  REQUIRE(escaped.frame);
  CHECK(std::get<MessageFrame>(escaped.frame->body).text == "caf\xc3\xa9 \"ok\"\n");
  // Anything that is not one whole JSON value is bad_json, even when it starts well.
  CHECK(CodeOf(R"({"type":"start")") == ErrorCode::kBadJson);
  CHECK(CodeOf(R"({"type":"start"} trailing)") == ErrorCode::kBadJson);
  CHECK(CodeOf(R"([{"type":"start"},)") == ErrorCode::kBadJson);
  CHECK(CodeOf("") == ErrorCode::kBadJson);
}

TEST_CASE("a frame is bad_json exactly when a conforming JSON parser refuses it", "[protocol]") {
  // nlohmann::json is the reference: what it accepts as an object, the frame parser accepts too.
  // (Frames are valid UTF-8 here: the transport refuses any that are not, with 1007.)
  const std::vector<std::string> frames = {
      R"({"type":"start","x":"\uD83D\uDE00"})",  // a surrogate pair
      R"({"type":"start","x":"\uDC00"})",        // a lone low surrogate
      R"({"type":"start","x":"\uD800"})",        // a lone high surrogate
      R"({"type":"start","x":"\uD800\u0041"})",
      R"({"type":"start","x":123456789012345678901234567890})",
      R"({"type":"start","x":-0.0e-999})",
      R"({"type":"start","x":1e400})",
      R"({"type":"start","x":01})",
      R"({"type":"start","x":1.})",
      R"({"type":"start","x":.5})",
      R"({"type":"start","x":tru})",
      R"({"type":"start","x":[1,2,]})",
      R"({"type":"start",})",
      R"({"type":"start" "x":1})",
      R"({'type':'start'})",
      R"({"type":"start","x":"\x"})",
      R"({"type":"start","x":"\u12"})",
      " \t\r\n{\"type\":\"start\"}\n ",
      "{\"type\":\"start\",\"x\":\"a\x01b\"}",  // a raw control character in a string
      "{\"type\":\"message\",\"text\":\"caf\xc3\xa9\"}",
      R"({"type":"start","x":{"y":{"z":[[],{}]}}})",
      R"({"type":"start"}{"type":"start"})",
  };
  for (const auto& frame : frames) {
    INFO(frame);
    const auto reference = json::parse(frame, nullptr, false);
    const bool refused = reference.is_discarded() || !reference.is_object();
    const auto parsed = ParseClientFrame(frame);
    CHECK(refused == (parsed.error && parsed.error->code == ErrorCode::kBadJson));
  }
  // A raw NUL byte is never JSON (nlohmann stops reading at one, so it is no reference here).
  CHECK(CodeOf(std::string("{\"type\":\"start\"}\0garbage", 24)) == ErrorCode::kBadJson);
  CHECK(CodeOf(std::string("{\"type\":\"st\0art\"}", 17)) == ErrorCode::kBadJson);
}

TEST_CASE("nesting depth cannot exhaust the stack, whatever the frame size limit allows", "[protocol]") {
  // --max-frame-bytes may be raised far above 16 KiB; a recursive parser would overflow its
  // stack on a frame like this long before that.
  const std::size_t depth = 1000000;
  CHECK(CodeOf(std::string(depth, '[') + std::string(depth, ']')) == ErrorCode::kBadJson);
  std::string nested;
  for (std::size_t i = 0; i < depth; ++i) nested += "{\"a\":";
  nested += "1" + std::string(depth, '}');
  CHECK(CodeOf(nested) == ErrorCode::kBadRequest);  // valid JSON, no type
}

TEST_CASE("an error keeps the frame's ref so the client can match it", "[protocol]") {
  auto r = ParseClientFrame(R"({"type":"shout","ref":"q1"})");
  CHECK(r.ref == "q1");
  CHECK(json::parse(ErrorJson(*r.error, r.ref))["ref"] == "q1");
  CHECK_FALSE(json::parse(ErrorJson(*r.error, std::nullopt)).contains("ref"));
}

TEST_CASE("operator frames take a ref as the person's do; an error echoes it and the action's conversation", "[protocol]") {
  for (const char* frame : {R"({"type":"claim","conversation":"c1","ref":"7"})", R"({"type":"join","conversation":"c1","ref":"7"})",
                            R"({"type":"say","conversation":"c1","text":"hi","ref":"7"})",
                            R"({"type":"leave","conversation":"c1","ref":"7"})", R"({"type":"ack","id":3,"ref":"7"})"}) {
    CAPTURE(frame);
    auto r = ParseOperatorFrame(frame);
    REQUIRE(r.frame);
    CHECK(r.frame->ref == "7");
  }
  auto none = ParseOperatorFrame(R"({"type":"claim","conversation":"c1"})");
  REQUIRE(none.frame);
  CHECK_FALSE(none.frame->ref);
  auto null = ParseOperatorFrame(R"({"type":"claim","conversation":"c1","ref":null})");
  REQUIRE(null.frame);
  CHECK_FALSE(null.frame->ref);
  // The person's limits: any string (empty included) of at most kMaxRefBytes bytes.
  auto empty = ParseOperatorFrame(R"({"type":"ack","id":3,"ref":""})");
  REQUIRE(empty.frame);
  CHECK(empty.frame->ref == "");
  auto longest = ParseOperatorFrame(json{{"type", "ack"}, {"id", 3}, {"ref", std::string(kMaxRefBytes, 'r')}}.dump());
  REQUIRE(longest.frame);
  CHECK(longest.frame->ref->size() == kMaxRefBytes);

  for (const json& bad : {json{{"type", "ack"}, {"id", 3}, {"ref", std::string(kMaxRefBytes + 1, 'r')}},
                          json{{"type", "claim"}, {"conversation", "c1"}, {"ref", 7}},
                          json{{"type", "claim"}, {"conversation", "c1"}, {"ref", json::object()}},
                          json{{"type", "claim"}, {"conversation", "c1"}, {"ref", json::array({"7"})}}}) {
    CAPTURE(bad.dump());
    auto r = ParseOperatorFrame(bad.dump());
    REQUIRE(r.error);
    CHECK(r.error->code == ErrorCode::kBadRequest);
    CHECK_FALSE(r.ref);  // an invalid ref is not echoed
    // The same words as for the person's frames.
    auto person = ParseClientFrame(json{{"type", "message"}, {"text", "hi"}, {"ref", bad["ref"]}}.dump());
    REQUIRE(person.error);
    CHECK(r.error->message == person.error->message);
  }

  // A frame refused for another field keeps its ref and, for an action, its conversation.
  auto empty_text = ParseOperatorFrame(R"({"type":"say","conversation":"c1","text":" ","ref":"q9"})");
  REQUIRE(empty_text.error);
  CHECK(empty_text.ref == "q9");
  CHECK(empty_text.conversation == "c1");
  auto error = json::parse(ErrorJson(*empty_text.error, empty_text.ref, &*empty_text.conversation));
  CHECK(error["ref"] == "q9");
  CHECK(error["conversation"] == "c1");
  auto unknown = ParseOperatorFrame(R"({"type":"wave","ref":"q10"})");
  REQUIRE(unknown.error);
  CHECK(unknown.error->code == ErrorCode::kUnknownType);
  CHECK(unknown.ref == "q10");
  CHECK_FALSE(unknown.conversation);
  auto bad_id = ParseOperatorFrame(R"({"type":"ack","id":"x","ref":"q11"})");
  REQUIRE(bad_id.error);
  CHECK(bad_id.ref == "q11");
  CHECK_FALSE(json::parse(ErrorJson(*bad_id.error, bad_id.ref)).contains("conversation"));
}

TEST_CASE("text length counts characters, not bytes", "[protocol]") {
  CHECK(CountCodePoints("abc") == 3);
  CHECK(CountCodePoints("épaule") == 6);
  CHECK(CountCodePoints("肩") == 1);
  CHECK(CountCodePoints("👍🏽") == 2);
}

TEST_CASE("server frames carry every field of the spec", "[protocol]") {
  backcheck::dialog::Reply reply;
  reply.text = "t";
  reply.intent = "doms";
  reply.state = "advising";
  reply.red_flags = {"fever"};
  reply.sources = {{"S", "Q"}};
  auto j = json::parse(ReplyJson("c1", 3, std::string("r"), reply));
  for (const char* field : {"type", "conversation", "seq", "ref", "text", "intent", "state", "urgency", "red_flags",
                            "possible_flags", "escalated", "quick_replies", "sources"}) {
    CAPTURE(field);
    CHECK(j.contains(field));
  }
  CHECK(j["type"] == "reply");
  CHECK(j["seq"] == 3);
  CHECK(j["sources"][0]["section"] == "S");
  CHECK_FALSE(json::parse(ReplyJson("c1", 3, std::nullopt, reply, false)).contains("type"));

  backcheck::dialog::ConversationState state;
  state.state = "screening";
  auto started = json::parse(StartedJson("c1", true, state, HistoryPage{{{"user", "hi", 1}, {"assistant", "hello", 1}}, false}));
  CHECK(started["type"] == "started");
  CHECK(started["resumed"] == true);
  CHECK(started["state"] == "screening");
  CHECK(started["urgency"] == "none");
  CHECK(started["history"].size() == 2);
  CHECK(started["history"][1] == json{{"role", "assistant"}, {"text", "hello"}, {"seq", 1}});
  CHECK(json::parse(EndedJson("c1")) == json{{"type", "ended"}, {"conversation", "c1"}});
}

TEST_CASE("the hand-written reply JSON equals the json-tree form, escapes included", "[protocol]") {
  backcheck::dialog::Reply reply;
  reply.text = "Quote \" backslash \\ newline\n tab\t bell\x07 unicode: épaule 肩 👍";
  reply.intent = "doms";
  reply.state = "escalated";
  reply.urgency = backcheck::knowledge::Urgency::kEmergency;
  reply.red_flags = {"chest_pain", "shortness_of_breath"};
  reply.possible_flags = {"coughing_blood", "odd \"flag\"\\\n"};
  reply.escalated = true;
  reply.quick_replies = {"Yes", "No \"really\""};
  reply.sources = {{"Section \"A\"", "quote\\1"}, {"B", "q2"}};
  json expected = reply;  // the dialog layer's to_json
  expected["type"] = "reply";
  expected["conversation"] = "c\"1";
  expected["seq"] = 42;
  expected["ref"] = "r\n1";
  CHECK(json::parse(ReplyJson("c\"1", 42, std::string("r\n1"), reply)) == expected);
  expected.erase("type");
  expected.erase("ref");
  CHECK(json::parse(ReplyJson("c\"1", 42, std::nullopt, reply, false)) == expected);
}

TEST_CASE("possible_flags is always in the reply, [] when empty, escaped, for both the frame and HTTP", "[protocol]") {
  backcheck::dialog::Reply reply;
  reply.text = "t";
  reply.intent = "greeting";
  reply.state = "welcome";
  for (bool with_type : {true, false}) {
    CAPTURE(with_type);
    const std::string empty = ReplyJson("c1", 1, std::nullopt, reply, with_type);
    CHECK(empty.find("\"possible_flags\":[]") != std::string::npos);
    CHECK(json::parse(empty)["possible_flags"] == json::array());
  }
  reply.possible_flags = {"coughing_blood"};
  CHECK(json::parse(ReplyJson("c1", 1, std::nullopt, reply))["possible_flags"] == json::array({"coughing_blood"}));
  CHECK(json::parse(ReplyJson("c1", 1, std::nullopt, reply))["red_flags"] == json::array());
  reply.possible_flags = {"chest_pain", "q\"uote", "back\\slash", "new\nline", std::string("nul\0byte", 8), "肩 👍"};
  for (bool with_type : {true, false}) {
    CAPTURE(with_type);
    auto j = json::parse(ReplyJson("c1", 1, std::nullopt, reply, with_type));
    CHECK(j["possible_flags"] == json(reply.possible_flags));
  }
}

TEST_CASE("every character that needs escaping is escaped wherever it falls in the text", "[protocol]") {
  // The writer checks 16 and 8 bytes at a time; put each special character at every offset of a text
  // longer than two words, next to multi-byte UTF-8, and read the frame back.
  for (char special : {'"', '\\', '\n', '\r', '\t', '\x01', '\x1f', '\x00'}) {
    const std::string text = "abcdefgh\xc3\xa9ijklmnop\xe8\x82\xa9qrstuvwxyz0123456789ABCDEFGHIJ";
    for (std::size_t at = 0; at <= text.size(); ++at) {
      if (at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) continue;  // inside a character
      backcheck::dialog::Reply reply;
      reply.text = text;
      reply.text.insert(at, 1, special);
      INFO("character " << static_cast<int>(special) << " at " << at);
      CHECK(json::parse(ReplyJson("c", 1, std::nullopt, reply))["text"] == reply.text);
    }
  }
}

TEST_CASE("a raw control character inside a string is not JSON (found by fuzz_client_frame)", "[protocol]") {
  CHECK(CodeOf(std::string("{\"type\":\"message\",\"text\":\"a\x1d b\"}")) == ErrorCode::kBadJson);
  CHECK(CodeOf(std::string("{\"type\":\"message\",\"text\":\"a\x01\"}")) == ErrorCode::kBadJson);
  auto escaped = ParseClientFrame(R"({"type":"message","text":"a\u001d b"})");
  CHECK(escaped.frame);  // escaped, it is fine
  CHECK(ParseClientFrame("{\"type\":\n\t\"start\"}\r\n").frame);  // whitespace is fine
}

TEST_CASE("key and id: bounded strings; key excludes resume and conversation; end needs one of them", "[protocol]") {
  auto keyed = ParseClientFrame(R"({"type":"message","key":"slack:T01:D02","text":"hi","id":"Ev1"})");
  REQUIRE(keyed.frame);
  const auto& message = std::get<MessageFrame>(keyed.frame->body);
  CHECK(message.key == "slack:T01:D02");
  CHECK(message.id == "Ev1");
  CHECK_FALSE(message.conversation);
  CHECK(std::get<StartFrame>(ParseClientFrame(R"({"type":"start","key":"k"})").frame->body).key == "k");
  const auto end = ParseClientFrame(R"({"type":"end","key":"k"})");
  REQUIRE(end.frame);
  CHECK(std::get<EndFrame>(end.frame->body).key == "k");

  const std::string key_at_limit(kMaxKeyBytes, 'k'), id_at_limit(kMaxMessageIdBytes, 'i');
  CHECK(ParseClientFrame(json{{"type", "message"}, {"key", key_at_limit}, {"text", "hi"}, {"id", id_at_limit}}.dump()).frame);
  CHECK(CodeOf(json{{"type", "message"}, {"key", key_at_limit + "k"}, {"text", "hi"}}.dump()) == ErrorCode::kBadRequest);
  CHECK(CodeOf(json{{"type", "message"}, {"key", "k"}, {"text", "hi"}, {"id", id_at_limit + "i"}}.dump()) ==
        ErrorCode::kBadRequest);
  CHECK(CodeOf(R"({"type":"message","key":"","text":"hi"})") == ErrorCode::kBadRequest);
  CHECK(CodeOf(R"({"type":"message","key":7,"text":"hi"})") == ErrorCode::kBadRequest);
  CHECK(CodeOf(R"({"type":"message","conversation":"c1","id":["x"],"text":"hi"})") == ErrorCode::kBadRequest);
  CHECK(CodeOf(R"({"type":"message","conversation":"c1","key":"k","text":"hi"})") == ErrorCode::kBadRequest);
  CHECK(CodeOf(R"({"type":"start","resume":"c1","key":"k"})") == ErrorCode::kBadRequest);
  CHECK(CodeOf(R"({"type":"end"})") == ErrorCode::kBadRequest);
  CHECK(CodeOf(R"({"type":"end","conversation":"c1","key":"k"})") == ErrorCode::kBadRequest);
}

TEST_CASE("a reply echoes key and id and marks a repeated one; notice and started carry the key", "[protocol]") {
  backcheck::dialog::Reply reply;
  reply.text = "t";
  const std::string key = "slack:T01:D02", id = "Ev1";
  ReplyEcho echo{&key, &id, true};
  auto j = json::parse(ReplyJson("c1", 3, std::nullopt, reply, true, echo));
  CHECK(j["key"] == key);
  CHECK(j["id"] == id);
  CHECK(j["duplicate"] == true);
  auto plain = json::parse(ReplyJson("c1", 3, std::nullopt, reply));
  CHECK_FALSE(plain.contains("key"));
  CHECK_FALSE(plain.contains("id"));
  CHECK_FALSE(plain.contains("duplicate"));

  auto notice = json::parse(NoticeJson("c1", &key, "escalation_acknowledged", "seen \"you\""));
  CHECK(notice == json{{"type", "notice"}, {"conversation", "c1"}, {"key", key},
                       {"notice", "escalation_acknowledged"}, {"text", "seen \"you\""}});
  CHECK_FALSE(json::parse(NoticeJson("c1", nullptr, "n", "t")).contains("key"));
  backcheck::dialog::ConversationState state;
  CHECK(json::parse(StartedJson("c1", false, state, HistoryPage{}, {}, key))["key"] == key);
  CHECK(json::parse(EndedJson("c1", key))["key"] == key);
}
