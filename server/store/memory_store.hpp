// Conversations in memory only (--store memory): fast, one process, lost on restart. Every call
// completes inline, before it returns. Thread-safe.
#pragma once

#include <mutex>
#include <unordered_map>

#include "server/store/escalation_backlog.hpp"
#include "server/store/store.hpp"

namespace backcheck::server {

class MemoryStore final : public ConversationStore, public EscalationLog {
 public:
  void Load(std::string id, std::function<void(Loaded)> done) override;
  void Commit(TurnRecord record, CommitDone done) override;
  void History(std::string id, std::optional<std::uint64_t> before, std::size_t turns,
               std::function<void(std::optional<HistoryPage>)> done) override;
  void FindReply(std::string id, std::string client_id, std::function<void(StoredReply)> done) override;
  void Audit(std::string id, std::function<void(std::optional<std::vector<AuditEntry>>)> done) override;
  void Purge(std::int64_t cutoff_ms, std::int64_t empty_cutoff_ms, std::int64_t review_cutoff_ms) override;
  std::size_t Count() const override;
  EscalationLog& escalations() override { return *this; }
  const std::string& KeySecret() const override { return key_secret_; }  // this process's own

  std::vector<EscalationEvent> Unacknowledged(std::int64_t after_id, std::size_t limit) const override {
    return backlog_.Page(after_id, limit);
  }
  std::size_t UnacknowledgedCount() const override { return backlog_.Size(); }
  void Acknowledge(std::int64_t id, std::string by, std::string note, std::function<void(bool found)> done) override;
  void Subscribe(Listener listener) override { listener_ = std::move(listener); }

  // The review entries kept (TurnRecord::review), oldest first.
  std::vector<ReviewEntry> Review() const;

 private:
  struct Entry {
    StoredConversation stored;
    std::vector<HistoryEntry> history;
    std::unordered_map<std::string, StoredReply> replies;  // by the client's id of the message
    std::vector<AuditEntry> audit;  // the newest kMaxAuditEntries (gone with the conversation)
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  CommitResult Apply(TurnRecord& record);
  void Append(Entry& e, AuditEntry entry);  // with mutex_ held

  mutable std::mutex mutex_;  // guards conversations_ and next_escalation_
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> conversations_;
  std::int64_t next_escalation_ = 0;
  std::vector<ReviewEntry> review_;  // guarded by mutex_ too
  EscalationBacklog backlog_;
  Listener listener_;
  const std::string key_secret_ = RandomBytes(32);
};

}  // namespace backcheck::server
