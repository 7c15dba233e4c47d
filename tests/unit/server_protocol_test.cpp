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

TEST_CASE("an error keeps the frame's ref so the client can match it", "[protocol]") {
  auto r = ParseClientFrame(R"({"type":"shout","ref":"q1"})");
  CHECK(r.ref == "q1");
  CHECK(json::parse(ErrorJson(*r.error, r.ref))["ref"] == "q1");
  CHECK_FALSE(json::parse(ErrorJson(*r.error, std::nullopt)).contains("ref"));
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
                            "escalated", "quick_replies", "sources"}) {
    CAPTURE(field);
    CHECK(j.contains(field));
  }
  CHECK(j["type"] == "reply");
  CHECK(j["seq"] == 3);
  CHECK(j["sources"][0]["section"] == "S");
  CHECK_FALSE(json::parse(ReplyJson("c1", 3, std::nullopt, reply, false)).contains("type"));

  backcheck::dialog::ConversationState state;
  state.state = "screening";
  auto started = json::parse(StartedJson("c1", true, state, {{"user", "hi", 1}, {"assistant", "hello", 1}}));
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
