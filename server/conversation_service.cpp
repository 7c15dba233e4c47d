#include "server/conversation_service.hpp"

#include <sys/random.h>

#include <array>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace backcheck::server {

std::string NewConversationId() {
  std::array<unsigned char, 16> bytes{};
  std::size_t got = 0;
  while (got < bytes.size()) {
    ssize_t n = getrandom(bytes.data() + got, bytes.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("getrandom failed");
    }
    got += static_cast<std::size_t>(n);
  }
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string id;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char b : bytes) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      id.push_back(kAlphabet[(buffer >> bits) & 0x3F]);
    }
  }
  if (bits > 0) id.push_back(kAlphabet[(buffer << (6 - bits)) & 0x3F]);
  return id;
}

ConversationService::ConversationService(const dialog::Engine& engine, ConversationStore& store,
                                         const Limits& limits, Metrics& metrics, EscalationListener on_escalation)
    : engine_(engine), store_(store), limits_(limits), metrics_(metrics), on_escalation_(std::move(on_escalation)) {}

namespace {
// The record of a conversation's current state; `full`: with the state serialised, for a store
// that keeps it.
TurnRecord StateRecord(const Conversation& c, bool full) {
  TurnRecord r;
  r.conversation = c.id;
  r.seq = c.seq;
  if (full) r.state_json = nlohmann::json(c.state).dump();
  r.at_ms = UnixMillis();
  return r;
}
}  // namespace

std::variant<ConversationService::Started, Error> ConversationService::Start(const std::optional<std::string>& resume,
                                                                              Durable durable) {
  if (resume) {
    auto conversation = store_.Find(*resume);
    if (!conversation) return Error{ErrorCode::kUnknownConversation, "no conversation with this id (it may have expired)"};
    std::lock_guard lock(conversation->mutex);
    conversation->last_active = Clock::now();
    Started started{conversation->id, true, conversation->state, conversation->history};
    durable(true);  // nothing changed that the store does not hold
    return started;
  }
  for (int attempt = 0; attempt < 4; ++attempt) {
    auto conversation = store_.Insert(NewConversationId(), engine_.Start(), Clock::now(), limits_.max_conversations);
    if (conversation) {
      std::lock_guard lock(conversation->mutex);
      Started started{conversation->id, false, conversation->state, {}};
      store_.Persist(StateRecord(*conversation, store_.KeepsRecords()),
                     [durable = std::move(durable)](bool ok, const auto&) { durable(ok); });
      return started;
    }
    if (store_.Size() >= limits_.max_conversations) break;  // full, not an id collision
  }
  return Error{ErrorCode::kTooManyConversations, "the server holds as many conversations as it may; try again later"};
}

std::optional<Error> ConversationService::CheckText(std::string_view text) const {
  if (CountCodePoints(text) <= limits_.max_text_chars) return std::nullopt;
  return Error{ErrorCode::kTextTooLong,
               "a message may have at most " + std::to_string(limits_.max_text_chars) + " characters"};
}

std::variant<ConversationService::Replied, Error> ConversationService::Message(const std::string& id,
                                                                                std::string_view text,
                                                                                Clock::time_point received,
                                                                                Durable durable) {
  if (auto error = CheckText(text)) return *error;
  auto conversation = store_.Find(id);
  if (!conversation) return Error{ErrorCode::kUnknownConversation, "no conversation with this id (it may have expired)"};
  metrics_.messages_received.fetch_add(1, std::memory_order_relaxed);

  Replied out;
  out.conversation = id;
  std::lock_guard lock(conversation->mutex);
  dialog::Turn turn = engine_.Respond(conversation->state, text);
  conversation->state = std::move(turn.state);
  out.seq = ++conversation->seq;
  conversation->history.push_back(HistoryEntry{"user", std::string(text), out.seq});
  conversation->history.push_back(HistoryEntry{"assistant", turn.reply.text, out.seq});
  conversation->last_active = Clock::now();
  out.reply = std::move(turn.reply);

  const bool keeps = store_.KeepsRecords();
  TurnRecord record = StateRecord(*conversation, keeps);
  record.has_turn = true;
  if (keeps) {
    record.user_text = std::string(text);
    record.reply_text = out.reply.text;
  }
  if (out.reply.escalated) {
    record.escalation = EscalationEvent{0, id, out.reply.urgency, out.reply.red_flags, std::string(text), record.at_ms};
  }
  // Under the conversation's lock, so its turns reach the store in seq order.
  store_.Persist(std::move(record), [this, durable = std::move(durable), intent = metrics_.IntentIndex(out.reply.intent),
                                     received](bool ok, const std::optional<EscalationEvent>& escalation) {
    if (ok) {
      metrics_.Reply(intent, Clock::now() - received);
      if (escalation) {
        metrics_.Escalation(escalation->level);
        if (on_escalation_) on_escalation_(*escalation);
      }
    }
    durable(ok);
  });
  return out;
}

std::optional<Error> ConversationService::End(const std::string& id, Durable durable) {
  auto conversation = store_.Find(id);
  if (!conversation) return Error{ErrorCode::kUnknownConversation, "no conversation with this id (it may have expired)"};
  std::lock_guard lock(conversation->mutex);
  conversation->state = engine_.End(conversation->state);
  conversation->last_active = Clock::now();
  TurnRecord record = StateRecord(*conversation, store_.KeepsRecords());
  store_.Persist(std::move(record), [durable = std::move(durable)](bool ok, const auto&) { durable(ok); });
  return std::nullopt;
}

std::size_t ConversationService::PurgeExpired(Clock::time_point now) {
  return store_.PurgeIdle(now - limits_.conversation_expiry);
}

}  // namespace backcheck::server
