#include "server/store/memory_store.hpp"

namespace backcheck::server {

void MemoryStore::Load(std::string id, std::function<void(Loaded)> done) {
  Loaded loaded;
  {
    std::lock_guard lock(mutex_);
    if (auto it = conversations_.find(id); it != conversations_.end()) {
      loaded.status = Loaded::Status::kFound;
      loaded.conversation = it->second.stored;
    }
  }
  done(std::move(loaded));
}

CommitResult MemoryStore::Apply(TurnRecord& r) {
  std::lock_guard lock(mutex_);
  auto it = conversations_.find(r.conversation);
  switch (r.kind) {
    case TurnRecord::Kind::kCreate:
      if (it != conversations_.end()) return CommitResult::kConflict;
      conversations_.emplace(r.conversation, Entry{StoredConversation{r.conversation, std::move(r.state), r.seq, r.at_ms}, {}});
      return CommitResult::kCommitted;
    case TurnRecord::Kind::kDelete:
      if (it != conversations_.end() && it->second.stored.seq == 0) conversations_.erase(it);
      return CommitResult::kCommitted;
    case TurnRecord::Kind::kUpdate:
      break;
  }
  if (it == conversations_.end() || it->second.stored.seq != r.expected_seq ||
      (r.expected_revision && it->second.stored.revision != *r.expected_revision)) {
    return CommitResult::kConflict;
  }
  Entry& e = it->second;
  e.stored.state = std::move(r.state);
  e.stored.seq = r.seq;
  e.stored.last_active_ms = r.at_ms;
  ++e.stored.revision;
  if (r.audit) Append(e, std::move(*r.audit));
  if (r.has_turn) {
    AddTurn(e.history, r.seq, std::move(r.user_text), std::move(r.reply_text), std::move(r.reply_author),
            /*reply_first=*/false, std::move(r.reply_extras));
    if (!r.client_id.empty()) {
      e.replies.emplace(std::move(r.client_id), StoredReply{StoredReply::Status::kFound, r.seq, std::move(r.reply_json)});
    }
  }
  if (r.escalation) r.escalation->id = ++next_escalation_;
  if (r.review) review_.push_back(std::move(*r.review));
  return CommitResult::kCommitted;
}

void MemoryStore::Commit(TurnRecord record, CommitDone done) {
  const CommitResult result = Apply(record);
  if (result == CommitResult::kCommitted && record.escalation) {
    backlog_.Add(*record.escalation);
    if (listener_.escalation) listener_.escalation(*record.escalation);
  }
  done(result, result == CommitResult::kCommitted ? record.escalation : std::nullopt);
}

void MemoryStore::FindReply(std::string id, std::string client_id, std::function<void(StoredReply)> done) {
  StoredReply found;
  {
    std::lock_guard lock(mutex_);
    if (auto it = conversations_.find(id); it != conversations_.end()) {
      if (auto r = it->second.replies.find(client_id); r != it->second.replies.end()) found = r->second;
    }
  }
  done(std::move(found));
}

void MemoryStore::History(std::string id, std::optional<std::uint64_t> before, std::size_t turns,
                          std::function<void(std::optional<HistoryPage>)> done) {
  HistoryPage page;
  {
    std::lock_guard lock(mutex_);
    if (auto it = conversations_.find(id); it != conversations_.end()) {
      const HistoryRange range = RangeOf(it->second.stored.seq, before, turns);
      for (const auto& entry : it->second.history) {
        if (entry.seq >= range.first && entry.seq < range.end) page.entries.push_back(entry);
      }
      page.more = range.more;
    }
  }
  done(std::move(page));
}

void MemoryStore::Append(Entry& e, AuditEntry entry) {
  if (e.audit.size() >= kMaxAuditEntries) e.audit.erase(e.audit.begin());
  e.audit.push_back(std::move(entry));
}

void MemoryStore::Audit(std::string id, std::function<void(std::optional<std::vector<AuditEntry>>)> done) {
  std::vector<AuditEntry> entries;
  {
    std::lock_guard lock(mutex_);
    if (auto it = conversations_.find(id); it != conversations_.end()) entries = it->second.audit;
  }
  done(std::move(entries));
}

void MemoryStore::Purge(std::int64_t cutoff_ms, std::int64_t empty_cutoff_ms, std::int64_t review_cutoff_ms) {
  std::lock_guard lock(mutex_);
  std::erase_if(review_, [&](const ReviewEntry& r) { return r.at_ms < review_cutoff_ms; });
  std::erase_if(conversations_, [&](const auto& entry) {
    const StoredConversation& c = entry.second.stored;
    return c.last_active_ms < cutoff_ms || (c.seq == 0 && c.last_active_ms < empty_cutoff_ms);
  });
}

std::vector<ReviewEntry> MemoryStore::Review() const {
  std::lock_guard lock(mutex_);
  return review_;
}

std::size_t MemoryStore::Count() const {
  std::lock_guard lock(mutex_);
  return conversations_.size();
}

void MemoryStore::Acknowledge(std::int64_t id, std::string by, std::string note, std::function<void(bool found)> done) {
  const auto event = backlog_.Take(id);
  if (event) {
    std::lock_guard lock(mutex_);
    if (auto it = conversations_.find(event->conversation); it != conversations_.end()) {
      Append(it->second, AuditEntry{event->conversation, "ack", by, it->second.stored.seq, UnixMillis(), id, note});
    }
  }
  if (event && listener_.acknowledged) listener_.acknowledged(*event, by);
  done(event.has_value());
}

}  // namespace backcheck::server
