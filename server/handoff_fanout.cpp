#include "server/handoff_fanout.hpp"

#include "server/json_writer.hpp"
#include "server/log.hpp"

namespace backcheck::server {
namespace {

using Kind = ConversationEvent::Kind;

std::string UserMessageJson(const ConversationEvent& e, const std::string& text) {
  return JsonObject(text.size() + e.conversation.size() + 128)
      .String("type", "user_message")
      .String("conversation", e.conversation)
      .String("text", text)
      .Int("seq", static_cast<std::int64_t>(e.seq))
      .String("urgency", knowledge::UrgencyName(e.urgency))
      .Bool("escalated", e.escalated)
      .Done();
}

// claimed / joined / left, for every operator.
std::string OperatorEventJson(const ConversationEvent& e) {
  const std::string_view type = e.kind == Kind::kClaimed ? "claimed" : e.kind == Kind::kJoined ? "joined" : "left";
  return JsonObject(e.conversation.size() + e.operator_name.size() + 96)
      .String("type", type)
      .String("conversation", e.conversation)
      .String("operator", e.operator_name)
      .Int("seq", static_cast<std::int64_t>(e.seq))
      .Done();
}

std::shared_ptr<const PushedNotice> ForThePerson(const ConversationEvent& e, const std::string& text) {
  PushedNotice n;
  n.operator_name = e.operator_name;
  if (e.kind == Kind::kSaid) {
    n.frame = PushedNotice::Frame::kOperatorMessage;
    n.text = text;
    n.seq = e.seq;
  } else {
    n.frame = PushedNotice::Frame::kHandoff;
    n.notice = e.kind == Kind::kJoined ? "joined" : "left";
  }
  return std::make_shared<const PushedNotice>(std::move(n));
}

}  // namespace

HandoffFanout::HandoffFanout(ConversationStore& store, OperatorHub& operators, ConversationConnections& pushes,
                             std::string claimed_text)
    : store_(store),
      operators_(operators),
      pushes_(pushes),
      claimed_(std::make_shared<const PushedNotice>(PushedNotice::Notice("escalation_claimed", std::move(claimed_text)))) {}

void HandoffFanout::Announce(const ConversationEvent& e, const std::string& text) {
  // Logged where it happened (the other instances deliver it, and say nothing): who did what to
  // which conversation's reference, never the text.
  if (e.kind == Kind::kHandedOff) {
    BACKCHECK_LOG(kDebug, "message_to_operator").Str("operator", e.operator_name)
        .Str("conversation", log::ConversationRef(e.conversation)).Uint("seq", e.seq).Bool("escalated", e.escalated);
  } else {
    const char* action = e.kind == Kind::kClaimed ? "claim" : e.kind == Kind::kJoined ? "join"
                         : e.kind == Kind::kSaid  ? "say"   : "leave";
    BACKCHECK_LOG(kInfo, "operator_action").Str("action", action).Str("operator", e.operator_name)
        .Str("conversation", log::ConversationRef(e.conversation)).Uint("seq", e.seq);
  }
  Deliver(e, text);
}

void HandoffFanout::Deliver(const ConversationEvent& e, const std::string& text) {
  switch (e.kind) {
    case Kind::kHandedOff:
      operators_.SendTo(e.operator_name, UserMessageJson(e, text));
      return;
    case Kind::kClaimed:
      operators_.Broadcast(OperatorEventJson(e));
      pushes_.Notify(e.conversation, claimed_);
      return;
    case Kind::kJoined:
    case Kind::kLeft:
      operators_.Broadcast(OperatorEventJson(e));
      pushes_.Notify(e.conversation, ForThePerson(e, text));
      return;
    case Kind::kSaid:  // the operator who wrote it is told by their own session
      pushes_.Notify(e.conversation, ForThePerson(e, text));
      return;
  }
}

void HandoffFanout::FromOtherInstance(const ConversationEvent& e) {
  const bool needs_text = e.kind == Kind::kHandedOff || e.kind == Kind::kSaid;
  if (!needs_text) return Deliver(e, "");
  const bool wanted = e.kind == Kind::kHandedOff ? operators_.Has(e.operator_name) : pushes_.Holds(e.conversation);
  if (!wanted) return;
  // The turn is committed (the event was sent with it): its text is in the store.
  const std::string role = e.kind == Kind::kHandedOff ? "user" : "operator";
  store_.History(e.conversation, e.seq + 1, 1, [this, e, role](std::optional<HistoryPage> page) {
    if (!page) return;  // unreadable now: the transcript shows it when read again
    for (const auto& entry : page->entries) {
      if (entry.seq == e.seq && entry.role == role) return Deliver(e, entry.text);
    }
  });
}

}  // namespace backcheck::server
