// ThreadPoolExecutor: runs blocking work (getaddrinfo, file I/O, CPU-heavy code) on
// worker threads and delivers the outcome as a Future on the submitting loop —
// Tornado's run_on_executor / IOLoop.run_in_executor.
//
// The future is completed on the loop thread through the loop's thread-safe
// add_callback; if the loop is closed first, the outcome is dropped. The destructor
// runs the work already queued and joins the workers.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include "squall/future.h"
#include "squall/ioloop.h"

namespace squall {

class ThreadPoolExecutor {
 public:
  explicit ThreadPoolExecutor(size_t max_workers);
  ~ThreadPoolExecutor();
  ThreadPoolExecutor(const ThreadPoolExecutor&) = delete;
  ThreadPoolExecutor& operator=(const ThreadPoolExecutor&) = delete;

  // Runs fn() on a worker; the returned future (of the current loop) gets its result
  // or exception.
  template <typename F>
  auto submit(F fn) -> Future<std::invoke_result_t<F&>> {
    using R = std::invoke_result_t<F&>;
    Future<R> future;
    std::shared_ptr<LoopPoster> poster = IOLoop::current().poster();
    enqueue([fn = std::move(fn), future, poster]() mutable {
      std::exception_ptr error;
      std::optional<detail::Stored<R>> value;
      try {
        if constexpr (std::is_void_v<R>) {
          fn();
          value.emplace();
        } else {
          value.emplace(fn());
        }
      } catch (...) {
        error = std::current_exception();
      }
      poster->post([future, error, value = std::move(value)]() mutable {
        if (error) {
          future.set_exception(error);
        } else if constexpr (std::is_void_v<R>) {
          future.set_result();
        } else {
          future.set_result(std::move(*value));
        }
      });
    });
    return future;
  }

  size_t max_workers() const { return max_workers_; }

 private:
  void enqueue(std::function<void()> work);
  void worker_main();

  size_t max_workers_;
  std::mutex mutex_;
  std::condition_variable wakeup_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> workers_;  // started lazily, up to max_workers_
  size_t idle_ = 0;
  bool shutting_down_ = false;
};

// A process-wide executor for blocking helpers such as the resolver; created on first
// use (so that pre-forking happens before any thread exists).
ThreadPoolExecutor& default_executor();

}  // namespace squall
