// Shared fixtures for the unit tests: the built-in knowledge base and an engine over it, loaded
// once per test process.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "dialog/engine.hpp"
#include "knowledge/loader.hpp"

namespace backcheck::test {

// BACKCHECK_TEST_KB_DIR, when set, points the tests at another copy of the knowledge folder (to
// check that a test fails when a pattern it relies on is deleted: tests/red_flags/README.md).
inline std::shared_ptr<const knowledge::KnowledgeBase> BuiltInKb() {
  static auto kb = knowledge::LoadKnowledgeBase(std::getenv("BACKCHECK_TEST_KB_DIR") ? std::getenv("BACKCHECK_TEST_KB_DIR")
                                                                                      : BACKCHECK_DEFAULT_KB_DIR);
  return kb;
}

inline const dialog::Engine& TestEngine() {
  static dialog::Engine engine(BuiltInKb());
  return engine;
}

// A new conversation moved to the state of `role` (flow.jsonc declares the roles).
inline dialog::ConversationState InRole(knowledge::StateRole role) {
  dialog::ConversationState s = TestEngine().Start();
  s.state = TestEngine().kb().flow.StateWithRole(role).id;
  return s;
}

inline bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
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

// Mentions(), plus "flag:except" / "flag:requires" for a flag whose candidates were all dropped by
// an `except` pattern ("the pain never goes down my arm") or for want of a `requires` pattern
// ("i haven't lost any weight"): the detector saw the mention and then set it aside. Tables
// of negated, asked-about, past and other-person sentences check one of these, so that deleting
// the pattern or term they rely on makes them fail instead of pass.
inline std::vector<std::string> Seen(const std::string& text) {
  const auto& engine = TestEngine();
  dialog::DetectionTrace trace;
  auto detection = engine.detector().Detect(engine.normaliser().Normalise(text), &trace);
  std::vector<std::string> out;
  for (const auto& m : detection.mentions) {
    out.push_back(engine.kb().red_flags.flags[m.flag].id + ":" + dialog::AttributionName(m.attribution));
  }
  for (const auto& c : trace.candidates) {
    if (c.dropped != "except" && c.dropped != "requires") continue;
    const bool mentioned = std::any_of(out.begin(), out.end(), [&](const std::string& s) { return s.rfind(c.flag + ":", 0) == 0; });
    const std::string x = c.flag + ":" + c.dropped;
    if (!mentioned && std::find(out.begin(), out.end(), x) == out.end()) out.push_back(x);
  }
  return out;
}

}  // namespace backcheck::test
