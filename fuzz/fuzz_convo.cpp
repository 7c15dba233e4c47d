// The conversation-script readers (cli/script.hpp) on any bytes, as .convo and as labelled
// JSONL: a bad script is a ScriptError naming the file and line; any other exception escaping is
// a bug (the runner would die instead of reporting the file). Whatever parses is then checked
// against a made-up reply, which runs every expectation kind (regexes included).
#include "cli/script.hpp"
#include "fuzz/fuzz_support.hpp"

namespace cli = backcheck::cli;
using backcheck::fuzz::Check;

namespace {

void Exercise(const cli::Script& script) {
  Check(!script.turns.empty(), "a script without turns was accepted");
  backcheck::dialog::Reply reply;
  reply.text = "Please get medical care today: numbness matters.";
  reply.intent = "describe_pain";
  reply.state = "screening";
  reply.urgency = backcheck::knowledge::Urgency::kUrgent;
  reply.red_flags = {"numbness"};
  reply.escalated = true;
  reply.quick_replies = {"Yes", "No"};
  reply.sources = {{"Why Does My Upper Back Hurt After Working Out?", "muscle soreness"}};
  for (const auto& turn : script.turns) {
    for (const auto& failure : cli::Check(turn, reply)) {
      Check(failure.expectation != nullptr, "a failure without its expectation");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = backcheck::fuzz::AsView(data, size);
  try {
    Exercise(cli::ParseScript(text, "fuzz.convo"));
  } catch (const cli::ScriptError& e) {
    Check(std::string_view(e.what()).substr(0, 10) == "fuzz.convo", "ScriptError without the file name", e.what());
  }
  try {
    for (const auto& script : cli::ParseLabelledJsonl(text, "fuzz.jsonl")) Exercise(script);
  } catch (const cli::ScriptError& e) {
    Check(std::string_view(e.what()).substr(0, 10) == "fuzz.jsonl", "ScriptError without the file name", e.what());
  }
  return 0;
}
