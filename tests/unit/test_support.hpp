// Shared fixtures for the unit tests: the built-in knowledge base and an engine over it, loaded
// once per test process.
#pragma once

#include <memory>
#include <string>

#include "dialog/engine.hpp"
#include "knowledge/loader.hpp"

namespace backcheck::test {

inline std::shared_ptr<const knowledge::KnowledgeBase> BuiltInKb() {
  static auto kb = knowledge::LoadKnowledgeBase(BACKCHECK_DEFAULT_KB_DIR);
  return kb;
}

inline const dialog::Engine& TestEngine() {
  static dialog::Engine engine(BuiltInKb());
  return engine;
}

// The reply to `text` as the first message of a new conversation.
inline dialog::Reply FirstReply(const std::string& text) {
  return TestEngine().Respond(TestEngine().Start(), text).reply;
}

// The flag ids the detector attributes to the person themselves in `text` (after normalising).
inline std::vector<std::string> SelfFlags(const std::string& text) {
  const auto& engine = TestEngine();
  auto detection = engine.detector().Detect(engine.normaliser().Normalise(text));
  std::vector<std::string> out;
  for (const auto& m : detection.mentions) {
    if (m.attribution == dialog::Attribution::kSelf) out.push_back(engine.kb().red_flags.flags[m.flag].id);
  }
  return out;
}

// Each flag mentioned in `text` with its attribution, "numbness:negated".
inline std::vector<std::string> Mentions(const std::string& text) {
  const auto& engine = TestEngine();
  auto detection = engine.detector().Detect(engine.normaliser().Normalise(text));
  std::vector<std::string> out;
  for (const auto& m : detection.mentions) {
    out.push_back(engine.kb().red_flags.flags[m.flag].id + ":" + dialog::AttributionName(m.attribution));
  }
  return out;
}

}  // namespace backcheck::test
