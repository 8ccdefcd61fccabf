// Fifo: a first-in first-out queue that allocates nothing until it is used.
//
// What it is for: the queues every stream keeps (bytes waiting for the socket, futures
// waiting for those bytes). std::deque allocates a map and a 512-byte node as soon as it
// is constructed, which every idle connection paid twice; this is a vector with a moving
// head, so an unused queue costs three words and a used one keeps only the capacity it
// needed. A popped item is moved out and destroyed at once (its memory is released);
// its slot is reclaimed when the queue empties or when dead slots outnumber live items.
// Internal (squall/detail/): installed only because public headers include it; not API,
// it may change without notice.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace squall {

template <class T>
class Fifo {
 public:
  using iterator = typename std::vector<T>::iterator;

  bool empty() const noexcept { return head_ == items_.size(); }
  std::size_t size() const noexcept { return items_.size() - head_; }
  T& front() { return items_[head_]; }
  const T& front() const { return items_[head_]; }

  template <class... Args>
  T& emplace_back(Args&&... args) {
    return items_.emplace_back(std::forward<Args>(args)...);
  }
  void push_back(T item) { items_.push_back(std::move(item)); }

  void pop_front() {
    { [[maybe_unused]] T released(std::move(items_[head_])); }  // the slot keeps a moved-from shell
    ++head_;
    if (head_ == items_.size()) {
      clear();
    } else if (head_ >= 16 && head_ > items_.size() / 2) {
      // More dead slots than live items: move the live ones down (amortised O(1)).
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }
  void clear() noexcept {
    items_.clear();
    head_ = 0;
  }

  iterator begin() { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
  iterator end() { return items_.end(); }

 private:
  std::vector<T> items_;
  std::size_t head_ = 0;
};

}  // namespace squall
