// ConversationConnections: a pushed frame reaches each connection holding the conversation once,
// and none after it let go or is gone.
#include <catch2/catch.hpp>

#include "server/conversation_connections.hpp"

using namespace backcheck::server;

namespace {
struct Recorder : PushTarget {
  std::vector<std::pair<std::string, std::string>> pushed;  // conversation, notice kind
  void Push(const std::string& conversation, std::shared_ptr<const PushedNotice> notice) override {
    pushed.emplace_back(conversation, notice->notice);
  }
};
auto Notice() { return std::make_shared<const PushedNotice>(PushedNotice::Notice("escalation_acknowledged", "seen")); }
}  // namespace

TEST_CASE("a notice reaches every connection holding the conversation, each once", "[push]") {
  ConversationConnections connections;
  auto a = std::make_shared<Recorder>(), b = std::make_shared<Recorder>();
  connections.Attach("c1", a);
  connections.Attach("c1", a);  // held again (a resume on the same connection): still one
  connections.Attach("c1", b);
  connections.Attach("c2", b);
  CHECK(connections.Notify("c1", Notice()) == 2);
  CHECK(a->pushed == std::vector<std::pair<std::string, std::string>>{{"c1", "escalation_acknowledged"}});
  CHECK(b->pushed.size() == 1);
  CHECK(connections.Notify("nobody", Notice()) == 0);
  CHECK(connections.Notify("c1", Notice()) == 2);  // and the next one too: nobody was forgotten
  CHECK(a->pushed.size() == 2);
}

TEST_CASE("a connection that let go of the conversation, or closed, gets nothing", "[push]") {
  ConversationConnections connections;
  auto a = std::make_shared<Recorder>();
  auto b = std::make_shared<Recorder>();
  connections.Attach("c1", a);
  connections.Attach("c1", b);
  connections.Detach("c1", a.get());
  b.reset();  // closed without detaching
  CHECK(connections.Notify("c1", Notice()) == 0);
  CHECK(a->pushed.empty());
  CHECK(connections.Size() == 0);  // nothing left to hold "c1"
}
