// An instance's copy of the unacknowledged escalations, by id: what an operator who connects is
// sent first. Thread-safe. Every store keeps one; the table stays the truth.
#pragma once

#include <map>
#include <mutex>
#include <optional>

#include "server/store/store.hpp"

namespace backcheck::server {

class EscalationBacklog {
 public:
  // False when the id is there already: each escalation is announced once.
  bool Add(const EscalationEvent& event);
  // The escalation with this id, taken out; nullopt when it was not there.
  std::optional<EscalationEvent> Take(std::int64_t id);
  bool Contains(std::int64_t id) const;
  std::vector<EscalationEvent> Page(std::int64_t after_id, std::size_t limit) const;
  std::vector<std::int64_t> Ids() const;  // every id held, ascending
  std::size_t Size() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::int64_t, EscalationEvent> events_;
};

}  // namespace backcheck::server
