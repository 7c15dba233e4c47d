#include "server/conversation_service.hpp"

#include <sys/random.h>

#include <algorithm>
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
    : engine_(engine), store_(store), limits_(limits), metrics_(metrics), on_escalation_(std::move(on_escalation)) {
  dialog::Engine::Welcome welcome = engine_.WelcomeReply();
  started_texts_.welcome_text = std::move(welcome.text);
  started_texts_.welcome_quick_replies = std::move(welcome.quick_replies);
  for (const auto& g : engine_.kb().red_flags.guidance) {
    if (g.level != knowledge::Urgency::kNone && !g.banner.empty()) started_texts_.banners.push_back({g.level, g.banner});
  }
  // An escalation whose turn failed to commit reaches the operators when the store's retry makes
  // it durable.
  store_.SetRetriedEscalationListener([this](const EscalationEvent& event) {
    metrics_.Escalation(event.level);
    if (on_escalation_) on_escalation_(event);
  });
}

namespace {
// The record of a conversation's current state; `full`: with the state serialised, for a store
// that keeps it.
TurnRecord StateRecord(const Conversation& c, bool full) {
  TurnRecord r;
  r.conversation = c.id;
  r.seq = c.seq;
  r.expected_seq = c.seq;
  if (full) r.state_json = nlohmann::json(c.state).dump();
  r.at_ms = UnixMillis();
  return r;
}

// The last `turns` turns of `history` with a seq below `before` (all, when absent). Entries are
// in seq order; the user's message and its reply share a seq.
HistoryPage Page(const std::vector<HistoryEntry>& history, std::optional<std::uint64_t> before, std::size_t turns) {
  auto end = history.end();
  if (before) {
    end = std::lower_bound(history.begin(), history.end(), *before,
                           [](const HistoryEntry& e, std::uint64_t seq) { return e.seq < seq; });
  }
  auto begin = end;
  std::size_t seen = 0;
  while (begin != history.begin()) {
    const std::uint64_t seq = std::prev(begin)->seq;
    if (begin == end || seq != begin->seq) {
      if (seen == turns) break;
      ++seen;
    }
    --begin;
  }
  return HistoryPage{std::vector<HistoryEntry>(begin, end), begin != history.begin()};
}

std::string_view TruncateCodePoints(std::string_view text, std::size_t max) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80 && n++ == max) return text.substr(0, i);
  }
  return text;
}

// A reply that reports a red flag or asks about one carries safety guidance; others none.
std::optional<Guidance> GuidanceOf(const dialog::Reply& reply) {
  if (reply.red_flags.empty() && reply.possible_flags.empty()) return std::nullopt;
  return Guidance{reply.text, reply.urgency, reply.red_flags, reply.possible_flags};
}

}  // namespace

std::optional<Guidance> ConversationService::Guide(std::string_view text) const {
  // The detector runs on a fresh conversation: no state is needed to know "I can't breathe" needs
  // the emergency guidance. Past the length limit, the allowed part is read.
  const dialog::Turn turn = engine_.Respond(engine_.Start(), TruncateCodePoints(text, limits_.max_text_chars));
  return GuidanceOf(turn.reply);
}

Error ConversationService::WithGuidance(Error error, std::string_view text) const {
  if (!error.guidance) error.guidance = Guide(text);
  return error;
}

Error ConversationService::StoreFailure(std::optional<Guidance> guidance) const {
  return Error{ErrorCode::kStoreUnavailable,
               "the server cannot store this conversation right now; nothing was kept, please try again shortly",
               std::move(guidance)};
}

std::variant<ConversationService::Started, Error> ConversationService::Start(const std::optional<std::string>& resume,
                                                                              Durable durable,
                                                                              std::optional<std::uint64_t> before) {
  if (resume) {
    auto conversation = store_.Find(*resume);
    if (!conversation) return UnknownConversation();
    std::lock_guard lock(conversation->mutex);
    conversation->last_active = Clock::now();
    Started started{conversation->id, true, conversation->state,
                    Page(conversation->history, before, limits_.max_history_turns)};
    durable(std::nullopt);  // nothing changed that the store does not hold
    return started;
  }
  for (int attempt = 0; attempt < 4; ++attempt) {
    auto conversation = store_.Insert(NewConversationId(), engine_.Start(), Clock::now(), limits_.max_conversations);
    if (conversation) {
      std::lock_guard lock(conversation->mutex);
      conversation->durable_state = conversation->state;
      Started started{conversation->id, false, conversation->state, {}};
      TurnRecord record = StateRecord(*conversation, store_.KeepsRecords());
      record.kind = TurnRecord::Kind::kCreate;
      store_.Persist(std::move(record), [this, durable = std::move(durable), id = conversation->id](bool ok, const auto&) {
        if (ok) return durable(std::nullopt);
        store_.Erase(id);  // never created, as far as the store knows
        durable(StoreFailure(std::nullopt));
      });
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
  if (auto error = CheckText(text)) return WithGuidance(std::move(*error), text);
  auto conversation = store_.Find(id);
  if (!conversation) {
    return WithGuidance(UnknownConversation(), text);
  }
  metrics_.messages_received.fetch_add(1, std::memory_order_relaxed);

  Replied out;
  out.conversation = id;
  std::lock_guard lock(conversation->mutex);
  dialog::Turn turn = engine_.Respond(conversation->state, text, dialog::LocalNow());
  conversation->state = std::move(turn.state);
  const std::uint64_t expected_seq = conversation->seq;
  out.seq = ++conversation->seq;
  conversation->history.push_back(HistoryEntry{"user", std::string(text), out.seq});
  conversation->history.push_back(HistoryEntry{"assistant", turn.reply.text, out.seq});
  conversation->last_active = Clock::now();
  out.reply = std::move(turn.reply);

  const bool keeps = store_.KeepsRecords();
  TurnRecord record = StateRecord(*conversation, keeps);
  record.expected_seq = expected_seq;
  record.has_turn = true;
  if (keeps) {
    record.user_text = std::string(text);
    record.reply_text = out.reply.text;
  }
  if (out.reply.escalated) {
    record.escalation = EscalationEvent{0, id, out.reply.urgency, out.reply.red_flags, std::string(text), record.at_ms};
  }
  // What a failure needs: the guidance to send instead of the reply, and (for a store that can
  // fail) the state to remember as durable when it succeeds.
  std::optional<Guidance> guidance = GuidanceOf(out.reply);
  std::optional<dialog::ConversationState> state_after;
  if (keeps) state_after = conversation->state;
  // Under the conversation's lock, so its turns reach the store in seq order.
  store_.Persist(std::move(record),
                 [this, durable = std::move(durable), intent = metrics_.IntentIndex(out.reply.intent), received,
                  conversation, epoch = conversation->epoch, seq = out.seq, escalated = out.reply.escalated,
                  guidance = std::move(guidance),
                  state_after = std::move(state_after)](bool ok, const std::optional<EscalationEvent>& escalation) mutable {
                   if (!ok) {
                     RollBack(*conversation, epoch, escalated ? guidance : std::nullopt);
                     return durable(StoreFailure(std::move(guidance)));
                   }
                   if (state_after) {  // a store that calls back later, on its own thread: lock
                     std::lock_guard later(conversation->mutex);
                     if (conversation->epoch == epoch) {
                       conversation->durable_state = std::move(*state_after);
                       conversation->durable_seq = seq;
                     }
                   }
                   metrics_.Reply(intent, Clock::now() - received);
                   if (escalation) {
                     metrics_.Escalation(escalation->level);
                     if (on_escalation_) on_escalation_(*escalation);
                   }
                   durable(std::nullopt);
                 });
  return out;
}

void ConversationService::RollBack(Conversation& c, std::uint64_t epoch, const std::optional<Guidance>& lost) {
  std::lock_guard lock(c.mutex);
  if (c.epoch == epoch) {  // the first failure of this run of turns: back to what is on disk
    c.state = c.durable_state;
    c.seq = c.durable_seq;
    std::erase_if(c.history, [&](const HistoryEntry& e) { return e.seq > c.durable_seq; });
    ++c.epoch;
  }
  if (lost) {  // the store keeps this escalation and retries it: its urgency stays
    c.state = engine_.Escalate(c.state, lost->urgency, lost->red_flags);
    c.durable_state = engine_.Escalate(c.durable_state, lost->urgency, lost->red_flags);
  }
}

std::optional<Error> ConversationService::End(const std::string& id, Durable durable) {
  auto conversation = store_.Find(id);
  if (!conversation) return UnknownConversation();
  std::lock_guard lock(conversation->mutex);
  const bool keeps = store_.KeepsRecords();
  if (conversation->seq == 0) {  // nothing to resume: free its place at once
    store_.Erase(id);
    TurnRecord record = StateRecord(*conversation, false);
    record.kind = TurnRecord::Kind::kDelete;
    store_.Persist(std::move(record), [durable = std::move(durable)](bool, const auto&) { durable(std::nullopt); });
    return std::nullopt;
  }
  conversation->state = engine_.End(conversation->state);
  conversation->last_active = Clock::now();
  TurnRecord record = StateRecord(*conversation, keeps);
  std::optional<dialog::ConversationState> state_after;
  if (keeps) state_after = conversation->state;
  store_.Persist(std::move(record), [this, durable = std::move(durable), conversation, epoch = conversation->epoch,
                                     state_after = std::move(state_after)](bool ok, const auto&) mutable {
    if (!ok) {
      RollBack(*conversation, epoch, std::nullopt);
      return durable(StoreFailure(std::nullopt));
    }
    if (state_after) {
      std::lock_guard later(conversation->mutex);
      if (conversation->epoch == epoch) conversation->durable_state = std::move(*state_after);
    }
    durable(std::nullopt);
  });
  return std::nullopt;
}

std::size_t ConversationService::PurgeExpired(Clock::time_point now) {
  return store_.PurgeIdle(now - limits_.conversation_expiry, now - limits_.empty_conversation_expiry);
}

}  // namespace backcheck::server
