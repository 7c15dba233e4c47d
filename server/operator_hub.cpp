#include "server/operator_hub.hpp"

namespace backcheck::server {

void OperatorHub::Add(std::weak_ptr<OperatorConnection> connection) {
  std::lock_guard lock(mutex_);
  std::erase_if(connections_, [](const auto& weak) { return weak.expired(); });
  connections_.push_back(std::move(connection));
}

void OperatorHub::Publish(const EscalationEvent& event) {
  DeliverAll(event.id, std::make_shared<const std::string>(EscalationJson(event)));
}

void OperatorHub::Broadcast(std::string frame) { DeliverAll(0, std::make_shared<const std::string>(std::move(frame))); }

bool OperatorHub::Has(const std::string& name) {
  std::lock_guard lock(mutex_);
  for (const auto& weak : connections_) {
    if (auto c = weak.lock(); c && c->OperatorName() == name) return true;
  }
  return false;
}

std::size_t OperatorHub::SendTo(const std::string& name, std::string frame) {
  return DeliverAll(0, std::make_shared<const std::string>(std::move(frame)), &name);
}

std::size_t OperatorHub::DeliverAll(std::int64_t id, const std::shared_ptr<const std::string>& frame,
                                    const std::string* only) {
  std::vector<std::shared_ptr<OperatorConnection>> live;
  {
    std::lock_guard lock(mutex_);
    for (const auto& weak : connections_) {
      auto c = weak.lock();
      if (c && (!only || c->OperatorName() == *only)) live.push_back(std::move(c));
    }
  }
  for (const auto& c : live) c->Deliver(id, frame);
  return live.size();
}

}  // namespace backcheck::server
