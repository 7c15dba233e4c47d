// The one frame writer: whatever bytes it gets, it writes JSON that parses, in valid UTF-8.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "server/json_writer.hpp"
#include "server/protocol.hpp"

using namespace backcheck::server;
using nlohmann::json;

namespace {
std::string Quoted(std::string_view s) {
  std::string out;
  AppendJsonString(out, s);
  return out;
}
}  // namespace

TEST_CASE("strings are escaped as JSON at every offset of every fast path", "[writer]") {
  for (std::size_t pad = 0; pad < 40; ++pad) {
    for (std::string special : {"\"", "\\", "\n", "\x01", "\x1f", "é", "😀"}) {
      const std::string s = std::string(pad, 'a') + special + std::string(pad % 7, 'b');
      CHECK(json::parse(Quoted(s)).get<std::string>() == s);
    }
  }
}

TEST_CASE("bytes that are not UTF-8 become U+FFFD, never a frame nlohmann cannot read", "[writer]") {
  const std::string replacement = "\xEF\xBF\xBD";
  for (std::string bad : {std::string("\xC3"), std::string("\xC3(", 2), std::string("\xED\xA0\x80"),  // lone, cut, surrogate
                          std::string("\xC0\xAF"), std::string("\xF4\x90\x80\x80"), std::string("\xFF")}) {
    for (std::size_t pad : {0u, 5u, 17u}) {
      const std::string s = std::string(pad, 'x') + bad + "y";
      const std::string written = Quoted(s);
      REQUIRE_NOTHROW(json::parse(written));
      const auto back = json::parse(written).get<std::string>();
      CHECK(back.find(replacement) != std::string::npos);
      CHECK(back.back() == 'y');
    }
  }
}

TEST_CASE("truncation never splits a UTF-8 character", "[writer]") {
  std::string e;
  for (int i = 0; i < 40; ++i) e += "é";
  const std::string text = "a" + e;
  for (std::size_t n = 0; n <= text.size(); ++n) {
    const auto cut = TruncateUtf8(text, n);
    CHECK(cut.size() <= n);
    CHECK(cut.size() + 1 >= std::min(n, text.size()));  // at most one byte short of the limit
    CHECK_NOTHROW(json(std::string(cut)).dump());  // nlohmann's dump throws on a split character
  }
  CHECK(TruncateUtf8("😀", 3).empty());
  CHECK(TruncateUtf8("😀", 4) == "😀");
}

TEST_CASE("an unknown type of multi-byte characters is answered, not a crash", "[writer][protocol]") {
  // The frame that once took the server down: the type cut at 64 bytes split an 'é'.
  std::string type = "a";
  for (int i = 0; i < 40; ++i) type += "é";
  auto r = ParseClientFrame(json{{"type", type}}.dump());
  REQUIRE(r.error);
  CHECK(r.error->code == ErrorCode::kUnknownType);
  std::string frame;
  REQUIRE_NOTHROW(frame = ErrorJson(*r.error, r.ref));
  auto parsed = json::parse(frame);
  CHECK(parsed["code"] == "unknown_type");
  CHECK(parsed["message"].get<std::string>().find("aé") != std::string::npos);
}

TEST_CASE("error frames carry the safety guidance when there is one", "[writer][protocol]") {
  Error error{ErrorCode::kStoreUnavailable, "cannot store",
              Guidance{"Call your local emergency number now.", backcheck::knowledge::Urgency::kEmergency,
                       {"shortness_of_breath"}}};
  auto parsed = json::parse(ErrorJson(error, std::string("r1")));
  CHECK(parsed["code"] == "store_unavailable");
  CHECK(parsed["ref"] == "r1");
  CHECK(parsed["guidance"]["urgency"] == "emergency");
  CHECK(parsed["guidance"]["red_flags"] == json::array({"shortness_of_breath"}));
  CHECK(parsed["guidance"]["text"] == "Call your local emergency number now.");
  CHECK(parsed["guidance"]["possible_flags"] == json::array());
  Error asked{ErrorCode::kStoreUnavailable, "cannot store",
              Guidance{"Are you coughing up blood?", backcheck::knowledge::Urgency::kNone, {}, {"coughing_blood"}}};
  CHECK(json::parse(ErrorJson(asked, std::nullopt))["guidance"]["possible_flags"] == json::array({"coughing_blood"}));
  CHECK_FALSE(json::parse(ErrorJson(Error{ErrorCode::kBadJson, "x"}, std::nullopt)).contains("guidance"));
}
