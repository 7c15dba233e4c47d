// ParseOperatorFrame on any bytes (documented: never throws), and the error frame the operator
// session sends back, which must be JSON. An accepted frame must be what nlohmann reads too.
#include <nlohmann/json.hpp>

#include "fuzz/fuzz_support.hpp"
#include "server/protocol.hpp"

using backcheck::fuzz::Check;
using nlohmann::json;
namespace server = backcheck::server;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = backcheck::fuzz::AsView(data, size);
  const server::OperatorParseResult r = server::ParseOperatorFrame(text);
  Check(r.frame.has_value() != r.error.has_value(), "exactly one of frame and error is set");
  if (r.error) {
    // As the operator session sends it: with the frame's ref and conversation when it had valid ones.
    const std::string out = server::ErrorJson(*r.error, r.ref, r.conversation ? &*r.conversation : nullptr);
    json j = json::parse(out, nullptr, /*allow_exceptions=*/false);
    Check(!j.is_discarded() && j.is_object(), "ErrorJson output is not a JSON object", out);
    Check(j.value("code", "") == server::ErrorCodeName(r.error->code), "ErrorJson code", out);
    Check(j.contains("ref") == r.ref.has_value() && (!r.ref || j["ref"] == *r.ref), "ErrorJson ref", out);
    return 0;
  }
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  Check(!j.is_discarded() && j.is_object(), "accepted an operator frame that is no JSON object", text);
  const std::string type = j.value("type", "");
  Check(type == "ack" || type == "claim" || type == "join" || type == "say" || type == "leave",
        "accepted an operator frame of an unknown type", text);
  if (type != "ack") {
    Check(j["conversation"].is_string() && j["conversation"].get<std::string>() == r.frame->conversation,
          "accepted an operator action whose conversation differs", text);
    if (type == "say") Check(j["text"].is_string() && j["text"].get<std::string>() == r.frame->text, "say text differs", text);
    return 0;
  }
  Check(j["id"].is_number_integer(), "accepted an operator frame whose id is not an integer", text);
  if (j["id"].is_number_unsigned()) {
    Check(j["id"].get<std::uint64_t>() == static_cast<std::uint64_t>(r.frame->ack), "ack id differs", text);
  } else {
    Check(j["id"].get<std::int64_t>() == r.frame->ack, "ack id differs", text);
  }
  return 0;
}
