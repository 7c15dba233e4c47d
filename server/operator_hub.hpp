// The connected operators (/v1/operator): every durable escalation is delivered to each of them.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "server/store/store.hpp"

namespace backcheck::server {

// What the hub needs of an operator connection; Deliver may be called from any thread.
class OperatorConnection {
 public:
  virtual ~OperatorConnection() = default;
  // `id` 0: not an escalation (e.g. an "acked" notice), never deduplicated.
  virtual void Deliver(std::int64_t id, std::shared_ptr<const std::string> frame) = 0;
};

class OperatorHub {
 public:
  void Add(std::weak_ptr<OperatorConnection> connection);
  void Publish(const EscalationEvent& event);
  void Broadcast(std::string frame);  // to every operator

 private:
  void DeliverAll(std::int64_t id, const std::shared_ptr<const std::string>& frame);

  std::mutex mutex_;
  std::vector<std::weak_ptr<OperatorConnection>> connections_;
};

}  // namespace backcheck::server
