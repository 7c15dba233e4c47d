// The server's webhook, if any, where the escalation listener (a store thread) can wake it: it is
// made after the io_context and destroyed before the store, while the listener lives as long
// as the store. Thread-safe; every call is a no-op while empty.
#pragma once

#include <memory>
#include <mutex>

#include "server/webhook/escalation_webhook.hpp"

namespace backcheck::server {

class WebhookSlot {
 public:
  void Set(std::shared_ptr<EscalationWebhook> webhook) {
    std::lock_guard lock(mutex_);
    webhook_ = std::move(webhook);
  }
  void Start() {
    std::lock_guard lock(mutex_);
    if (webhook_) webhook_->Start();
  }
  void Wake() {  // cheap: the webhook posts to its strand
    std::lock_guard lock(mutex_);
    if (webhook_) webhook_->Wake();
  }
  void Reset() {
    std::shared_ptr<EscalationWebhook> gone;
    {
      std::lock_guard lock(mutex_);
      gone = std::move(webhook_);
    }
    if (gone) gone->Stop();
  }

 private:
  std::mutex mutex_;
  std::shared_ptr<EscalationWebhook> webhook_;
};

}  // namespace backcheck::server
