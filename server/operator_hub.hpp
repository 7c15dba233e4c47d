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
  virtual const std::string& OperatorName() const = 0;  // who signed in on it
};

class OperatorHub {
 public:
  void Add(std::weak_ptr<OperatorConnection> connection);
  void Publish(const EscalationEvent& event);
  void Broadcast(std::string frame);  // to every operator
  // To the connections of the operator `name` (a person's message in a conversation they have
  // joined, on this instance); how many there were.
  std::size_t SendTo(const std::string& name, std::string frame);
  bool Has(const std::string& name);  // whether `name` has a connection here

 private:
  std::size_t DeliverAll(std::int64_t id, const std::shared_ptr<const std::string>& frame,
                         const std::string* only = nullptr);

  std::mutex mutex_;
  std::vector<std::weak_ptr<OperatorConnection>> connections_;
};

}  // namespace backcheck::server
