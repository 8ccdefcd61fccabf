// IOLoop: the single-threaded event loop every other part of Squall runs on.
//
// One loop per thread (IOLoop::current()). Each iteration does, in this order — the
// order of Tornado's PollIOLoop that the seeds walk through:
//   1. take the callbacks queued so far (callbacks queued while these run wait for the
//      next iteration, so a callback that re-queues itself never starves I/O);
//   2. collect the timers that are due (cancelled ones are dropped lazily; the heap is
//      compacted when cancellations pile up);
//   3. run those callbacks, then the due timers that were not cancelled meanwhile;
//   4. wait in epoll (level-triggered, unless a handler asks for EDGE) — not at all
//      while callbacks are pending, else until the next deadline — and dispatch the
//      ready file descriptors (each handler followed at once by what it queued with
//      add_callback_after_handler).
// add_callback() is the only thread-safe entry point: from another thread it queues
// under a lock and wakes a sleeping loop through an eventfd.
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <coroutine>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "squall/callback.h"

struct epoll_event;

namespace squall {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = Clock::duration;
// Callback (squall/callback.h): move-only, captures up to 48 bytes stored inline.
// An I/O handler gets the file descriptor and the ready events (READ/WRITE/ERROR bits).
using Handler = std::function<void(int fd, uint32_t events)>;

// Identifies a scheduled timer for remove_timeout(). A default-constructed handle names
// no timer; a handle whose timer already ran or was removed is harmless to remove again.
struct TimeoutHandle {
  uint32_t slot = 0;
  uint32_t generation = 0;  // 0 = no timer
  explicit operator bool() const { return generation != 0; }
};

// Raised by run_sync when its timeout expires first.
class TimeoutError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class IOLoop;

namespace detail {
// Each live thread has its own copy, so its address names the thread. Comparing it is
// what add_callback does to tell the loop's thread from others: cheaper than
// std::this_thread::get_id(), which is a call into libc.
inline thread_local char thread_tag;
}  // namespace detail

// A handle other threads keep to queue callbacks on a loop that may be closed before
// they finish: once the loop is closed, post() drops the callback and returns false.
class LoopPoster {
 public:
  explicit LoopPoster(IOLoop* loop) : loop_(loop) {}
  bool post(Callback callback);
  void detach();  // called by the loop when it closes

 private:
  std::mutex mutex_;
  IOLoop* loop_;
};

class IOLoop {
 public:
  static constexpr uint32_t READ = 0x001;   // EPOLLIN
  static constexpr uint32_t WRITE = 0x004;  // EPOLLOUT
  static constexpr uint32_t ERROR = 0x018;  // EPOLLERR | EPOLLHUP (always reported)
  // EPOLLRDHUP: the peer shut down its sending side; reported only to a handler that asks.
  // An edge-triggered reader needs it: a FIN that arrives with the last bytes raises no
  // event of its own, and the read that takes those bytes does not see it.
  static constexpr uint32_t PEER_CLOSED = 0x2000;
  // EPOLLET: report readiness when it arises, not for as long as it lasts. Tornado's
  // handlers are level-triggered; only a handler that tracks readiness itself may ask
  // for it (IOStream's accepted server sockets do).
  static constexpr uint32_t EDGE = 0x80000000u;

  // Compaction of the timer heap happens when more than this many entries are cancelled
  // and they make up more than half of the heap.
  static constexpr size_t kCompactionThreshold = 512;

  // Creates a loop; it becomes the current loop of this thread if there is none.
  IOLoop();
  // Closes the loop (see close()).
  ~IOLoop();
  IOLoop(const IOLoop&) = delete;
  IOLoop& operator=(const IOLoop&) = delete;

  // The current thread's loop; one is created (and owned by the thread) if none exists.
  static IOLoop& current();
  // The current thread's loop, or nullptr — never creates one.
  static IOLoop* current_or_null();
  // Makes this loop the current one of the calling thread.
  void make_current();

  // ---- file descriptors -------------------------------------------------------------
  // A handler that is an object of the caller's: registering one allocates nothing, and
  // replace_handler() can hand a registered fd from one such object to another. The
  // object must outlive its registration.
  class FdHandler {
   public:
    virtual void on_fd_events(int fd, uint32_t events) = 0;

   protected:
    ~FdHandler() = default;
  };

  // Bytes a handler held back (HTTP1Connection's corked responses), to be sent once it is
  // done: flush_after_handler(held) calls held.flush_held_writes() after the
  // file-descriptor handler running now and what it queued with add_callback_after_handler
  // have run, before the next handler of the poll batch. Only while one runs
  // (holding_writes()). A response sent then goes out after its request's clean-up (the
  // destructors, the next read's set-up) rather than before it, so that work runs among
  // the pages the request just touched: on hosts that empty the TLB on every system call,
  // each page touched after the call costs a page walk (load/performance.md). The object
  // must call cancel_flush() if it is destroyed before.
  class HeldWrites {
   public:
    virtual void flush_held_writes() = 0;

   protected:
    ~HeldWrites() = default;
  };
  bool holding_writes() const { return dispatching_ && on_loop_thread(); }
  void flush_after_handler(HeldWrites& held) { held_writes_.push_back(&held); }
  void cancel_flush(HeldWrites& held) noexcept;

  // The loop does not own fd; remove the handler before closing it.
  void add_handler(int fd, Handler handler, uint32_t events);
  void add_handler(int fd, FdHandler& handler, uint32_t events);
  // Gives a registered fd a new handler, keeping its interest and its epoll registration
  // (no system call: what a server swapping an idle connection's heavy objects for a
  // small record needs). Events of the current poll batch go to the new handler.
  void replace_handler(int fd, FdHandler& handler);
  void update_handler(int fd, uint32_t events);
  // The READ / WRITE / PEER_CLOSED interest fd is registered with (0 if it is not): what a
  // handler taking a registration over (replace_handler) needs to know.
  uint32_t registered_interest(int fd) const;
  // Removing an fd that is not registered is a no-op. Events already collected for it
  // in the current poll batch are not delivered.
  void remove_handler(int fd);
  // remove_handler for a caller that closes fd right after and knows no other descriptor
  // (dup, fork, SCM_RIGHTS) refers to its socket: close(2) then takes the socket out of
  // the epoll set (epoll(7), questions 6 and 7), so the EPOLL_CTL_DEL is not made — one
  // system call less per connection. Otherwise the kernel would keep reporting the
  // closed socket's events; they would be skipped (their generation is stale), but a
  // level-triggered registration would report them on every turn.
  void remove_handler_before_close(int fd);

  // ---- callbacks --------------------------------------------------------------------
  // Runs callback on the next iteration, after the callbacks queued before it. Safe to
  // call from any thread; from another thread it wakes the loop. On a closed loop the
  // callback is destroyed without running.
  //
  // A template so that a lambda is built straight into the queue: from the loop's own
  // thread (inline here) queuing a callback is one in-place construction, with no
  // Callback temporary to move.
  template <typename F>
    requires std::constructible_from<Callback, F>
  void add_callback(F&& callback) {
    if (on_loop_thread() && !closed_) {
      callbacks_.emplace_back(std::forward<F>(callback));
      return;
    }
    add_callback_slow(Callback(std::forward<F>(callback)));
  }

  // Runs callback as soon as the file-descriptor handler running now returns, before the
  // next handler of the poll batch; outside a handler (or from another thread), as
  // add_callback. Not for futures user code sees: Tornado's deliver on the next
  // iteration. For the HTTP server's own reads (Future::deliver_after_handler): each
  // connection's request is handled and answered right after its read, while its state
  // is in cache, and the first answer of a batch does not wait for all of its reads
  // (nginx's order; with 64 connections those reads are most of the latency).
  template <typename F>
    requires std::constructible_from<Callback, F>
  void add_callback_after_handler(F&& callback) {
    if (dispatching_ && on_loop_thread()) {
      after_handler_.emplace_back(std::forward<F>(callback));
      return;
    }
    add_callback(std::forward<F>(callback));
  }

  // The loop's poster, for threads that may outlive it (executor workers).
  const std::shared_ptr<LoopPoster>& poster() const { return poster_; }

  // ---- timers -----------------------------------------------------------------------
  TimePoint time() const { return Clock::now(); }
  // While the loop runs: the time its current iteration's events were collected (the
  // clock is read once after each epoll_wait returns, and where due timers are looked
  // for), with no clock read of its own; up to an iteration old. Otherwise time(). For
  // stamps taken on every request (a keep-alive server read the clock three times per
  // request, at ~20 ns a read in a VM: nginx and libuv cache the time per iteration too).
  TimePoint cached_time() const { return running_ ? iteration_time_ : Clock::now(); }
  // Runs callback at (or soon after) deadline; timers due at the same time run in the
  // order they were scheduled. On a closed loop the callback is dropped and the handle
  // names no timer. Templates for the same reason as add_callback: the callback is built
  // in its timer slot, not moved there.
  template <typename F>
    requires std::constructible_from<Callback, F>
  TimeoutHandle call_at(TimePoint deadline, F&& callback) {
    if (closed_) return {};
    uint32_t slot = acquire_timer_slot();
    try {
      timer_slots_[slot].callback = std::forward<F>(callback);
    } catch (...) {
      free_timer_slots_.push_back(slot);
      throw;
    }
    return schedule_timer(deadline, slot);
  }
  template <typename F>
    requires std::constructible_from<Callback, F>
  TimeoutHandle call_later(Duration delay, F&& callback) {
    return call_at(time() + delay, std::forward<F>(callback));
  }
  void remove_timeout(TimeoutHandle handle);
  // Live timers (not cancelled); for tests and diagnostics.
  size_t pending_timers() const;
  // Heap entries including cancelled ones not yet dropped; shows lazy cancellation.
  size_t timer_heap_size() const { return timer_heap_.size(); }

  // ---- running ----------------------------------------------------------------------
  // Runs iterations until stop() is called.
  void start();
  // Makes start() return after the current iteration. From another thread, use
  // add_callback([&]{ loop.stop(); }).
  void stop();
  bool running() const { return running_; }

  // Starts the loop, calls func() (which returns a Future<T> or a Task<T>), runs until
  // that completes and returns its result (rethrowing its exception). With a timeout,
  // throws TimeoutError if the result is not ready in time. Include squall/future.h.
  template <typename Func>
  auto run_sync(Func&& func, std::optional<Duration> timeout = std::nullopt);

  // Releases everything the loop owns: suspended coroutines started on it are destroyed
  // (their locals are destroyed, so streams they own close), queued callbacks and timers
  // are dropped without running, and the epoll and eventfd descriptors are closed.
  // Must not be called while the loop is running. Idempotent.
  void close();
  bool closed() const { return closed_; }

  // ---- coroutine frames (used by Task, see task.h) -------------------------------------
  // A coroutine frame suspended on a future is referenced only by that future's
  // callback list; closing the loop destroys every frame still linked here so that
  // neither a leak nor a dangling resume is left behind.
  struct FrameLink {
    FrameLink* prev = nullptr;
    FrameLink* next = nullptr;
    std::coroutine_handle<> frame;
  };
  void link_frame(FrameLink& link);
  static void unlink_frame(FrameLink& link);
  size_t live_frames() const;

 private:
  struct HandlerEntry {
    // Heap-allocated so that the handler stays put while it runs, whatever it does to
    // handlers_ (registering a new fd may grow the vector).
    std::unique_ptr<Handler> handler;
    FdHandler* target = nullptr;  // instead of handler
    uint32_t events = 0;
    uint32_t generation = 0;  // bumped on every add/remove; 0 = never registered
    bool registered = false;
  };
  struct TimerSlot {
    Callback callback;
    uint32_t generation = 1;
    bool active = false;
  };
  struct TimerEntry {
    TimePoint deadline;
    uint64_t sequence;  // insertion order breaks ties between equal deadlines
    uint32_t slot;
    uint32_t generation;
  };
  struct TimerLater {
    bool operator()(const TimerEntry& a, const TimerEntry& b) const {
      if (a.deadline != b.deadline) return a.deadline > b.deadline;
      return a.sequence > b.sequence;
    }
  };

  HandlerEntry& register_fd(int fd, uint32_t events);
  void retire_handler(HandlerEntry& entry);
  // Drops fd's handler and marks it unregistered; false if fd was not registered.
  bool forget_handler(int fd);
  void run_iteration();
  void run_callback(Callback& callback) noexcept;
  void poll(int timeout_ms);
  void run_after_handler() noexcept;
  void flush_held_writes() noexcept;
  void drain_remote_callbacks();
  uint32_t acquire_timer_slot();
  TimeoutHandle schedule_timer(TimePoint deadline, uint32_t slot);
  bool timer_live(const TimerEntry& entry) const;
  void release_timer_slot(uint32_t slot);
  void collect_due_timers(TimePoint now, std::vector<TimerEntry>& due);
  int poll_timeout_ms() const;
  void add_callback_slow(Callback callback);
  bool on_loop_thread() const noexcept { return loop_thread_.load(std::memory_order_relaxed) == &detail::thread_tag; }
  void set_loop_thread() noexcept { loop_thread_.store(&detail::thread_tag); }
  void wake();

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  bool running_ = false;
  bool stopping_ = false;
  TimePoint iteration_time_{};  // cached_time()
  bool closed_ = false;
  std::atomic<const char*> loop_thread_;  // &detail::thread_tag of the loop's thread

  std::vector<HandlerEntry> handlers_;  // indexed by fd
  // What epoll_wait reports, kept here rather than in poll()'s frame: 12 KiB on the stack
  // put the handlers' frames three pages from the loop's, and each page a request's code
  // touches after a system call costs a page walk on hosts that flush the TLB per call.
  std::unique_ptr<epoll_event[]> poll_events_;
  std::vector<std::unique_ptr<Handler>> retired_handlers_;  // removed during dispatch
  bool dispatching_ = false;

  std::vector<Callback> callbacks_;      // queued on the loop thread
  std::vector<Callback> running_batch_;  // the batch being run (kept for capacity)
  std::vector<Callback> after_handler_;  // add_callback_after_handler's, run by poll()
  std::vector<Callback> after_handler_running_;
  std::vector<HeldWrites*> held_writes_;          // flush_after_handler's
  std::vector<HeldWrites*> held_writes_running_;  // the batch being flushed (kept for capacity)
  std::mutex remote_mutex_;
  std::vector<Callback> remote_callbacks_;  // queued from other threads
  std::atomic<bool> remote_pending_{false};

  std::vector<TimerSlot> timer_slots_;
  std::vector<uint32_t> free_timer_slots_;
  std::vector<TimerEntry> timer_heap_;
  std::vector<TimerEntry> due_timers_;
  uint64_t timer_sequence_ = 0;
  size_t cancellations_ = 0;  // cancelled entries still in the heap

  std::shared_ptr<LoopPoster> poster_;
  FrameLink frames_;  // sentinel of the circular list of linked frames
};

// ---- run_sync (template; needs squall/future.h at the point of use) -------------------

template <typename Func>
auto IOLoop::run_sync(Func&& func, std::optional<Duration> timeout) {
  using Awaited = std::decay_t<decltype(func())>;
  using FutureT = std::decay_t<decltype(std::declval<Awaited&>().future())>;
  std::optional<FutureT> future;
  add_callback([&] {
    try {
      future.emplace(func().future());
    } catch (...) {
      future.emplace();
      future->set_exception(std::current_exception());
    }
    future->add_done_callback([this](auto&) { stop(); });
  });
  TimeoutHandle timer;
  if (timeout) timer = call_later(*timeout, [this] { stop(); });
  start();
  remove_timeout(timer);
  if (!future || !future->done()) {
    throw TimeoutError("Operation timed out after " +
                       std::to_string(std::chrono::duration<double>(timeout.value_or(Duration{})).count()) +
                       " seconds");
  }
  if constexpr (std::is_void_v<typename FutureT::value_type>) {
    future->take_result();  // rethrows a failure
  } else {
    return future->take_result();
  }
}

}  // namespace squall
