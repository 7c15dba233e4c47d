// The open connections, so a graceful shutdown can close each of them.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace backcheck::server {

// A connection that can be asked to close. Shutdown() may be called from any thread; the
// connection does the work on its own strand.
class Closeable {
 public:
  virtual ~Closeable() = default;
  virtual void Shutdown() = 0;
};

class SessionRegistry {
 public:
  std::uint64_t Add(std::weak_ptr<Closeable> session) {
    std::lock_guard lock(mutex_);
    sessions_.emplace(++next_, std::move(session));
    return next_;
  }
  void Remove(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    sessions_.erase(id);
  }
  std::size_t Size() const {
    std::lock_guard lock(mutex_);
    return sessions_.size();
  }
  void ShutdownAll() {
    std::unordered_map<std::uint64_t, std::weak_ptr<Closeable>> copy;
    {
      std::lock_guard lock(mutex_);
      copy = sessions_;
    }
    for (auto& [id, weak] : copy) {
      if (auto session = weak.lock()) session->Shutdown();
    }
  }

 private:
  mutable std::mutex mutex_;
  std::uint64_t next_ = 0;
  std::unordered_map<std::uint64_t, std::weak_ptr<Closeable>> sessions_;
};

}  // namespace backcheck::server
