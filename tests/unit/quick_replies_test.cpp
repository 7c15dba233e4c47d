// Every quick reply the assistant offers gets a real answer where it is offered (issue 13 item 2).
//
// The walk starts from a new conversation (and from one reopened after a goodbye), clicks every
// quick reply each reply offers, and goes on from the state that click leads to, until every
// (state, urgency, screening step, quick reply) has been clicked once. A click answered with the
// fallback, or with nothing from the knowledge base, is a quick reply the assistant cannot
// answer. Nothing here names a quick reply: they come from the replies themselves.
#include <catch2/catch.hpp>

#include <deque>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "test_support.hpp"

using backcheck::dialog::ConversationState;
using backcheck::dialog::Turn;
using backcheck::test::TestEngine;

namespace {

struct Offer {
  ConversationState state;        // the conversation when the reply offering them was given
  std::vector<std::string> quick_replies;
  std::string path;               // the clicks that led here, for the failure message
};

using Visit = std::tuple<std::string, int, std::uint32_t, bool, std::string>;

Visit KeyOf(const ConversationState& s, const std::string& click) {
  return {s.state, static_cast<int>(s.urgency), s.screening_step, s.screened, click};
}

bool SaysFallback(const Turn& t) {
  for (const auto& id : t.said) {
    if (id.rfind("fallback:", 0) == 0 || id == "text:screening_unsure") return true;
  }
  return false;
}

struct Walk {
  std::set<std::string> states_seen;
  std::vector<std::string> unanswered;  // "path -> click (state)"
  std::size_t clicks = 0;
};

Walk WalkQuickReplies(const std::vector<Offer>& roots) {
  const auto& engine = TestEngine();
  Walk walk;
  std::set<Visit> visited;
  std::deque<Offer> queue(roots.begin(), roots.end());
  while (!queue.empty()) {
    Offer offer = std::move(queue.front());
    queue.pop_front();
    walk.states_seen.insert(offer.state.state);
    for (const auto& click : offer.quick_replies) {
      if (!visited.insert(KeyOf(offer.state, click)).second) continue;
      ++walk.clicks;
      const Turn t = engine.Respond(offer.state, click, std::nullopt, /*trace=*/true);
      const std::string where = offer.path + " -> \"" + click + "\" (in " + offer.state.state + ")";
      if (t.reply.intent == engine.kb().intents[engine.core_intents().fallback].id || SaysFallback(t) ||
          t.said.empty()) {
        walk.unanswered.push_back(where);
      }
      queue.push_back(Offer{t.state, t.reply.quick_replies, where});
    }
  }
  return walk;
}

}  // namespace

TEST_CASE("every quick reply offered, in every state it is offered in, gets a real answer", "[quick_replies]") {
  const auto& engine = TestEngine();
  std::vector<Offer> roots;
  roots.push_back(Offer{engine.Start(), engine.WelcomeReply().quick_replies, "welcome"});
  // Reopened after a goodbye ("ended"): what a goodbye offers is clicked from there.
  const Turn bye = engine.Respond(engine.Start(), "bye");
  REQUIRE(bye.state.state == "ended");
  roots.push_back(Offer{bye.state, bye.reply.quick_replies, "bye"});

  const Walk walk = WalkQuickReplies(roots);
  INFO("clicks: " << walk.clicks);
  for (const auto& u : walk.unanswered) UNSCOPED_INFO("not answered: " << u);
  CHECK(walk.unanswered.empty());
  // The walk reached every state of the flow, so no state's quick replies went unclicked.
  for (const auto& state : engine.kb().flow.states) {
    INFO("state never reached by clicking: " << state.id);
    CHECK(walk.states_seen.count(state.id) == 1);
  }
}
