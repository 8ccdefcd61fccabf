#include "squall/executor.h"

#include <algorithm>

namespace squall {

ThreadPoolExecutor::ThreadPoolExecutor(size_t max_workers) : max_workers_(std::max<size_t>(1, max_workers)) {}

ThreadPoolExecutor::~ThreadPoolExecutor() {
  {
    std::lock_guard lock(mutex_);
    shutting_down_ = true;
  }
  wakeup_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPoolExecutor::enqueue(std::function<void()> work) {
  std::lock_guard lock(mutex_);
  queue_.push_back(std::move(work));
  // Start another worker only when none is idle: threads are made as the load needs them.
  if (idle_ == 0 && workers_.size() < max_workers_) {
    workers_.emplace_back([this] { worker_main(); });
  } else {
    wakeup_.notify_one();
  }
}

void ThreadPoolExecutor::worker_main() {
  std::unique_lock lock(mutex_);
  for (;;) {
    ++idle_;
    wakeup_.wait(lock, [this] { return shutting_down_ || !queue_.empty(); });
    --idle_;
    if (queue_.empty()) return;  // shutting down with nothing left to run
    std::function<void()> work = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    work();
    work = nullptr;  // destroy captures outside the lock
    lock.lock();
  }
}

ThreadPoolExecutor& default_executor() {
  static ThreadPoolExecutor executor(std::max(4u, std::thread::hardware_concurrency()));
  return executor;
}

}  // namespace squall
