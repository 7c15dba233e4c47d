// Whole in-process turns on any valid UTF-8 of up to 4,000 bytes: the engine built once from the
// real knowledge base, the input as the first message of a conversation and again as the second,
// then each of its lines as one message of another conversation.
//
// Oracles: no exception, no sanitizer report; the reply's state and urgency are the new state's;
// urgency never goes down and `escalated` is exactly "this message raised it"; the state is one
// of the flow's; every string of the reply is UTF-8 and the reply is writable as JSON; the state survives
// its JSON round trip (the server stores it as JSON).
#include <nlohmann/json.hpp>

#include "dialog/engine.hpp"
#include "fuzz/fuzz_support.hpp"
#include "knowledge/loader.hpp"

namespace dialog = backcheck::dialog;
using backcheck::fuzz::Check;
using nlohmann::json;

namespace {

constexpr std::size_t kMaxBytes = 4000;
constexpr std::size_t kMaxLines = 8;

const dialog::Engine& TheEngine() {
  static const dialog::Engine engine(backcheck::knowledge::LoadKnowledgeBase(BACKCHECK_DEFAULT_KB_DIR));
  return engine;
}

bool KnownState(const dialog::Engine& engine, const std::string& id) {
  for (const auto& s : engine.kb().flow.states) {
    if (s.id == id) return true;
  }
  return false;
}

// Every string of a reply goes into a JSON frame, which must be UTF-8 (the crash of issue 11
// was a message cut inside a character).
void CheckUtf8(const dialog::Reply& reply) {
  using backcheck::fuzz::IsValidUtf8;
  Check(IsValidUtf8(reply.text), "the reply's text is not UTF-8", reply.text);
  Check(IsValidUtf8(reply.intent) && IsValidUtf8(reply.state), "the reply's intent or state is not UTF-8");
  for (const auto& f : reply.red_flags) Check(IsValidUtf8(f), "a red flag is not UTF-8", f);
  for (const auto& q : reply.quick_replies) Check(IsValidUtf8(q), "a quick reply is not UTF-8", q);
  for (const auto& s : reply.sources) {
    Check(IsValidUtf8(s.section) && IsValidUtf8(s.quote), "a source is not UTF-8", s.section + " / " + s.quote);
  }
}

dialog::ConversationState Turn(const dialog::Engine& engine, const dialog::ConversationState& before,
                               std::string_view text) {
  dialog::Turn turn = engine.Respond(before, text);
  const dialog::Reply& reply = turn.reply;
  Check(reply.state == turn.state.state, "the reply's state is not the new state", text);
  Check(KnownState(engine, turn.state.state), "a state the flow does not define", turn.state.state);
  Check(reply.urgency == turn.state.urgency, "the reply's urgency is not the conversation's", text);
  Check(turn.state.urgency >= before.urgency, "urgency went down", text);
  Check(reply.escalated == (turn.state.urgency > before.urgency), "'escalated' is not 'urgency raised'", text);
  Check(!reply.text.empty(), "an empty reply", text);
  Check(!reply.intent.empty(), "a reply without an intent", text);

  CheckUtf8(reply);
  const std::string out = json(reply).dump();
  Check(json::parse(out).value("text", "") == reply.text, "the reply's text does not survive JSON", out);

  const std::string stored = json(turn.state).dump();  // throws on invalid UTF-8 in the state
  Check(json::parse(stored).get<dialog::ConversationState>() == turn.state, "the state does not survive JSON",
        stored);
  return std::move(turn.state);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  TheEngine();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = backcheck::fuzz::AsView(data, size);
  if (size > kMaxBytes || !backcheck::fuzz::IsValidUtf8(text)) return 0;
  const dialog::Engine& engine = TheEngine();

  auto state = Turn(engine, engine.Start(), text);
  state = Turn(engine, state, text);
  const auto ended = engine.End(state);
  Check(ended.urgency >= state.urgency, "ending lowered the urgency");
  Check(KnownState(engine, ended.state), "End gave a state the flow does not define", ended.state);

  if (text.find('\n') == std::string_view::npos) return 0;
  state = engine.Start();
  std::size_t lines = 0;
  for (std::size_t begin = 0; begin <= text.size() && lines < kMaxLines;) {
    std::size_t end = text.find('\n', begin);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(begin, end - begin);
    if (!line.empty()) {
      state = Turn(engine, state, line);
      ++lines;
    }
    begin = end + 1;
  }
  return 0;
}
