// A first-in, first-out queue on a vector, for the per-connection queues. Unlike std::deque (which
// in libstdc++ allocates a 512-byte block and its map as soon as it is constructed), an empty Fifo
// owns no memory: with 10,000 idle connections, the two deques of each session cost ~1.1 KiB.
//
// References returned by front() and operator[] stay valid until the next push or pop.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace backcheck::server {

template <class T>
class Fifo {
 public:
  bool empty() const { return head_ == items_.size(); }
  std::size_t size() const { return items_.size() - head_; }
  std::size_t capacity() const { return items_.capacity(); }  // items it has room for, popped ones included
  T& front() { return items_[head_]; }
  T& operator[](std::size_t i) { return items_[head_ + i]; }

  template <class... Args>
  T& emplace_back(Args&&... args) {
    // Slide the live items to the front once the popped ones are at least half the vector, so
    // a queue that never drains completely does not grow without bound (amortised O(1)).
    if (head_ > 0 && head_ * 2 >= items_.size()) {
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
    return items_.emplace_back(std::forward<Args>(args)...);
  }
  void push_back(T item) { emplace_back(std::move(item)); }

  void pop_front() {
    items_[head_] = T{};  // release what the item owns now, not at the next compaction
    if (++head_ == items_.size()) clear();
  }

  // Empties the queue. A little capacity is kept for the next burst; a big one is returned.
  void clear() {
    items_.clear();
    head_ = 0;
    if (items_.capacity() > kKeptCapacity) items_.shrink_to_fit();
  }

 private:
  static constexpr std::size_t kKeptCapacity = 4;
  std::vector<T> items_;
  std::size_t head_ = 0;  // index of the front item
};

}  // namespace backcheck::server
