// A conversation state's JSON form (dialog/conversation.hpp), as the SQLite store reads it back:
// any bytes that parse as JSON are read with get<ConversationState>(), which is documented to
// throw nlohmann::json::exception or std::invalid_argument on a malformed value. A state that
// was read must serialise, and read back equal; and the engine must take it as the state of a
// conversation (a resumed one), whatever its values: unknown state or flag ids, a screening step
// past the questions...: no crash, urgency never down.
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "dialog/conversation.hpp"
#include "dialog/engine.hpp"
#include "fuzz/fuzz_support.hpp"
#include "knowledge/loader.hpp"

namespace {

const backcheck::dialog::Engine& TheEngine() {
  static const backcheck::dialog::Engine engine(backcheck::knowledge::LoadKnowledgeBase(BACKCHECK_DEFAULT_KB_DIR));
  return engine;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  TheEngine();
  return 0;
}

using backcheck::dialog::ConversationState;
using backcheck::fuzz::Check;
using nlohmann::json;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = backcheck::fuzz::AsView(data, size);
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return 0;
  ConversationState state;
  try {
    state = doc.get<ConversationState>();
  } catch (const json::exception&) {
    return 0;
  } catch (const std::invalid_argument&) {
    return 0;
  }
  const json again = state;
  const std::string dumped = again.dump();
  const json reparsed = json::parse(dumped, nullptr, /*allow_exceptions=*/false);
  Check(!reparsed.is_discarded(), "a state's JSON form does not parse", dumped);
  ConversationState back;
  try {
    back = reparsed.get<ConversationState>();
  } catch (const std::exception& e) {
    backcheck::fuzz::Fail("a state's own JSON form is refused", std::string(e.what()) + " in " + dumped);
  }
  Check(back == state, "a state does not survive a JSON round trip", dumped);

  const auto& engine = TheEngine();
  for (const char* message : {"no", "yes", "my left arm is numb", "what is doms?", "bye"}) {
    const auto turn = engine.Respond(state, message);
    Check(turn.state.urgency >= state.urgency, "urgency went down on a stored state", dumped);
    Check(turn.reply.state == turn.state.state, "the reply's state is not the new state", dumped);
  }
  Check(engine.End(state).urgency >= state.urgency, "ending lowered a stored state's urgency", dumped);
  return 0;
}
