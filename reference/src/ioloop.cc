#include "squall/ioloop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <system_error>

#include "squall/detail/hot_path.h"
#include "squall/log.h"

namespace squall {

static_assert(IOLoop::READ == EPOLLIN && IOLoop::WRITE == EPOLLOUT && IOLoop::ERROR == (EPOLLERR | EPOLLHUP) &&
              IOLoop::PEER_CLOSED == EPOLLRDHUP);

namespace {

thread_local IOLoop* current_loop = nullptr;
// The loop IOLoop::current() created for this thread, destroyed when the thread exits.
thread_local std::unique_ptr<IOLoop> owned_loop;

constexpr int kMaxPollEvents = 1024;
constexpr int kMaxPollTimeoutMs = 3600 * 1000;

[[noreturn]] void throw_errno(const char* what) { throw std::system_error(errno, std::generic_category(), what); }

uint64_t pack_event(int fd, uint32_t generation) { return (uint64_t{generation} << 32) | static_cast<uint32_t>(fd); }

}  // namespace

bool LoopPoster::post(Callback callback) {
  std::lock_guard lock(mutex_);
  if (loop_ == nullptr) return false;
  loop_->add_callback(std::move(callback));
  return true;
}

void LoopPoster::detach() {
  std::lock_guard lock(mutex_);
  loop_ = nullptr;
}

IOLoop::IOLoop()
    : loop_thread_(&detail::thread_tag),
      poll_events_(std::make_unique<epoll_event[]>(kMaxPollEvents)),
      poster_(std::make_shared<LoopPoster>(this)) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw_errno("epoll_create1");
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    ::close(epoll_fd_);
    throw_errno("eventfd");
  }
  frames_.prev = frames_.next = &frames_;
  add_handler(wake_fd_, [this](int fd, uint32_t) {
    uint64_t count;
    while (::read(fd, &count, sizeof count) > 0) {
    }
  }, READ);
  if (current_loop == nullptr) current_loop = this;
}

IOLoop::~IOLoop() {
  close();
  if (current_loop == this) current_loop = nullptr;
}

SQUALL_HOT
IOLoop& IOLoop::current() {
  if (current_loop == nullptr) {
    owned_loop = std::make_unique<IOLoop>();
    current_loop = owned_loop.get();
  }
  return *current_loop;
}

SQUALL_HOT
IOLoop* IOLoop::current_or_null() { return current_loop; }

void IOLoop::make_current() {
  current_loop = this;
  set_loop_thread();
}

// ---- file descriptors -----------------------------------------------------------------

SQUALL_HOT
IOLoop::HandlerEntry& IOLoop::register_fd(int fd, uint32_t events) {
  if (fd < 0) throw std::invalid_argument("add_handler: negative fd");
  if (closed_) throw std::logic_error("add_handler on a closed IOLoop");
  if (static_cast<size_t>(fd) >= handlers_.size()) handlers_.resize(static_cast<size_t>(fd) + 1);
  HandlerEntry& entry = handlers_[fd];
  if (entry.registered) throw std::logic_error("add_handler: fd " + std::to_string(fd) + " already registered");
  ++entry.generation;
  epoll_event ev{};
  ev.events = events | ERROR;
  ev.data.u64 = pack_event(fd, entry.generation);
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) < 0) throw_errno("epoll_ctl(ADD)");
  entry.events = events | ERROR;
  entry.registered = true;
  return entry;
}

void IOLoop::add_handler(int fd, Handler handler, uint32_t events) {
  auto stored = std::make_unique<Handler>(std::move(handler));
  register_fd(fd, events).handler = std::move(stored);
}

SQUALL_HOT
void IOLoop::add_handler(int fd, FdHandler& handler, uint32_t events) { register_fd(fd, events).target = &handler; }

void IOLoop::replace_handler(int fd, FdHandler& handler) {
  if (fd < 0 || static_cast<size_t>(fd) >= handlers_.size() || !handlers_[fd].registered) {
    throw std::logic_error("replace_handler: fd " + std::to_string(fd) + " not registered");
  }
  HandlerEntry& entry = handlers_[fd];
  retire_handler(entry);
  entry.target = &handler;
}

// The handler may be the one running right now: keep it alive until the batch ends.
void IOLoop::retire_handler(HandlerEntry& entry) {
  entry.target = nullptr;
  if (!entry.handler) return;
  if (dispatching_) {
    retired_handlers_.push_back(std::move(entry.handler));
  } else {
    entry.handler.reset();
  }
}

void IOLoop::update_handler(int fd, uint32_t events) {
  if (fd < 0 || static_cast<size_t>(fd) >= handlers_.size() || !handlers_[fd].registered) {
    throw std::logic_error("update_handler: fd " + std::to_string(fd) + " not registered");
  }
  HandlerEntry& entry = handlers_[fd];
  events |= ERROR;
  if (events == entry.events) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = pack_event(fd, entry.generation);
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) < 0) throw_errno("epoll_ctl(MOD)");
  entry.events = events;
}

uint32_t IOLoop::registered_interest(int fd) const {
  if (fd < 0 || static_cast<size_t>(fd) >= handlers_.size() || !handlers_[fd].registered) return 0;
  return handlers_[fd].events & (READ | WRITE | PEER_CLOSED);
}

bool IOLoop::forget_handler(int fd) {
  if (fd < 0 || static_cast<size_t>(fd) >= handlers_.size() || !handlers_[fd].registered) return false;
  HandlerEntry& entry = handlers_[fd];
  entry.registered = false;
  ++entry.generation;  // any event of this batch still tagged with the old generation is skipped
  retire_handler(entry);
  return true;
}

void IOLoop::remove_handler(int fd) {
  // EPOLL_CTL_DEL fails harmlessly if fd was closed.
  if (forget_handler(fd) && epoll_fd_ >= 0) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
}

SQUALL_HOT
void IOLoop::remove_handler_before_close(int fd) { forget_handler(fd); }

// ---- callbacks ------------------------------------------------------------------------

// The inline add_callback() handles the loop's own thread; this is the rest: a closed
// loop, or another thread.
void IOLoop::add_callback_slow(Callback callback) {
  if (closed_) return;  // destroyed without running
  bool first;
  {
    std::lock_guard lock(remote_mutex_);
    first = remote_callbacks_.empty();
    remote_callbacks_.push_back(std::move(callback));
    remote_pending_.store(true, std::memory_order_release);
  }
  if (first) wake();
}

void IOLoop::wake() {
  uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the loop will wake anyway.
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

SQUALL_HOT
void IOLoop::drain_remote_callbacks() {
  if (!remote_pending_.load(std::memory_order_acquire)) return;
  std::lock_guard lock(remote_mutex_);
  for (Callback& cb : remote_callbacks_) callbacks_.push_back(std::move(cb));
  remote_callbacks_.clear();
  remote_pending_.store(false, std::memory_order_relaxed);
}

void IOLoop::run_callback(Callback& callback) noexcept {
  try {
    callback();
  } catch (...) {
    log(LogLevel::error, LogCategory::application, "Exception in callback: {}", describe_current_exception());
  }
}

// ---- timers ---------------------------------------------------------------------------

// call_at (ioloop.h) takes a slot, builds the callback in it, then schedules it.
SQUALL_HOT
uint32_t IOLoop::acquire_timer_slot() {
  if (!free_timer_slots_.empty()) {
    uint32_t slot = free_timer_slots_.back();
    free_timer_slots_.pop_back();
    return slot;
  }
  timer_slots_.emplace_back();
  return static_cast<uint32_t>(timer_slots_.size() - 1);
}

SQUALL_HOT
TimeoutHandle IOLoop::schedule_timer(TimePoint deadline, uint32_t slot) {
  TimerSlot& s = timer_slots_[slot];
  s.active = true;
  timer_heap_.push_back(TimerEntry{deadline, timer_sequence_++, slot, s.generation});
  std::push_heap(timer_heap_.begin(), timer_heap_.end(), TimerLater{});
  return TimeoutHandle{slot, s.generation};
}

bool IOLoop::timer_live(const TimerEntry& entry) const {
  const TimerSlot& s = timer_slots_[entry.slot];
  return s.active && s.generation == entry.generation;
}

SQUALL_HOT
void IOLoop::release_timer_slot(uint32_t slot) {
  TimerSlot& s = timer_slots_[slot];
  s.active = false;
  if (++s.generation == 0) s.generation = 1;  // 0 is reserved for "no timer"
  free_timer_slots_.push_back(slot);
}

SQUALL_HOT
void IOLoop::remove_timeout(TimeoutHandle handle) {
  if (!handle || handle.slot >= timer_slots_.size()) return;
  TimerSlot& s = timer_slots_[handle.slot];
  if (!s.active || s.generation != handle.generation) return;  // already ran or removed
  Callback dead = std::move(s.callback);
  release_timer_slot(handle.slot);
  ++cancellations_;  // its heap entry stays until popped or compacted
}

size_t IOLoop::pending_timers() const { return timer_heap_.size() - cancellations_; }

SQUALL_HOT
void IOLoop::collect_due_timers(TimePoint now, std::vector<TimerEntry>& due) {
  while (!timer_heap_.empty()) {
    const TimerEntry& top = timer_heap_.front();
    if (!timer_live(top)) {
      --cancellations_;
    } else if (top.deadline <= now) {
      due.push_back(top);
    } else {
      break;
    }
    std::pop_heap(timer_heap_.begin(), timer_heap_.end(), TimerLater{});
    timer_heap_.pop_back();
  }
  if (cancellations_ > kCompactionThreshold && cancellations_ > timer_heap_.size() / 2) {
    std::erase_if(timer_heap_, [this](const TimerEntry& e) { return !timer_live(e); });
    std::make_heap(timer_heap_.begin(), timer_heap_.end(), TimerLater{});
    cancellations_ = 0;
  }
}

// Reads the clock only when a timer decides the timeout: a busy loop (callbacks pending)
// polls without waiting and skips the clock_gettime.
int IOLoop::poll_timeout_ms() const {
  if (!callbacks_.empty() || remote_pending_.load(std::memory_order_acquire)) return 0;
  if (timer_heap_.empty()) return kMaxPollTimeoutMs;
  auto wait = timer_heap_.front().deadline - time();
  if (wait <= Duration::zero()) return 0;
  // Round up: waking a little late is fine, waking early would spin until the deadline.
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
  return static_cast<int>(std::min<int64_t>(ms, kMaxPollTimeoutMs));
}

// ---- running --------------------------------------------------------------------------

SQUALL_HOT
void IOLoop::start() {
  if (closed_) throw std::logic_error("start on a closed IOLoop");
  if (running_) throw std::logic_error("IOLoop is already running");
  IOLoop* previous = current_loop;
  current_loop = this;
  set_loop_thread();
  running_ = true;
  stopping_ = false;
  iteration_time_ = Clock::now();
  while (!stopping_) run_iteration();
  running_ = false;
  stopping_ = false;
  current_loop = previous ? previous : this;
}

void IOLoop::stop() { stopping_ = true; }

SQUALL_HOT
void IOLoop::run_iteration() {
  drain_remote_callbacks();
  running_batch_.swap(callbacks_);  // callbacks queued from here on wait for the next iteration

  due_timers_.clear();
  if (!timer_heap_.empty()) {
    iteration_time_ = time();
    collect_due_timers(iteration_time_, due_timers_);
  }

  for (Callback& cb : running_batch_) run_callback(cb);
  running_batch_.clear();

  for (const TimerEntry& entry : due_timers_) {
    if (!timer_live(entry)) continue;  // removed by a callback that ran before it
    Callback cb = std::move(timer_slots_[entry.slot].callback);
    release_timer_slot(entry.slot);
    run_callback(cb);
  }
  due_timers_.clear();

  if (stopping_) return;
  poll(poll_timeout_ms());
}

SQUALL_HOT
void IOLoop::poll(int timeout_ms) {
  epoll_event* const events = poll_events_.get();
  int n = epoll_wait(epoll_fd_, events, kMaxPollEvents, timeout_ms);
  iteration_time_ = Clock::now();  // it may have waited long
  if (n < 0) {
    if (errno == EINTR) return;
    throw_errno("epoll_wait");
  }
  dispatching_ = true;
  for (int i = 0; i < n; ++i) {
    int fd = static_cast<int>(events[i].data.u64 & 0xffffffffu);
    uint32_t generation = static_cast<uint32_t>(events[i].data.u64 >> 32);
    if (static_cast<size_t>(fd) >= handlers_.size()) continue;
    HandlerEntry& entry = handlers_[fd];
    if (!entry.registered || entry.generation != generation) continue;  // removed earlier in this batch
    uint32_t ready = events[i].events & (READ | WRITE | ERROR | PEER_CLOSED);
    try {
      if (FdHandler* target = entry.target) {
        target->on_fd_events(fd, ready);
      } else {
        Handler* handler = entry.handler.get();  // stays valid even if it removes itself
        (*handler)(fd, ready);
      }
    } catch (...) {
      log(LogLevel::error, LogCategory::application, "Exception in I/O handler for fd {}: {}", fd,
          describe_current_exception());
    }
    if (!after_handler_.empty()) run_after_handler();
    if (!held_writes_.empty()) flush_held_writes();
  }
  dispatching_ = false;
  retired_handlers_.clear();
}

// The writes held back while the handler ran (flush_after_handler), then what flushing
// them queued in turn (a failed send closes its stream, whose callbacks run here).
SQUALL_HOT
void IOLoop::flush_held_writes() noexcept {
  while (!held_writes_.empty()) {
    held_writes_running_.swap(held_writes_);
    for (HeldWrites* held : held_writes_running_) {
      if (held == nullptr) continue;  // cancelled by one flushed before it
      try {
        held->flush_held_writes();
      } catch (...) {
        log(LogLevel::error, LogCategory::application, "Exception flushing held writes: {}",
            describe_current_exception());
      }
    }
    held_writes_running_.clear();
    if (!after_handler_.empty()) run_after_handler();
  }
}

void IOLoop::cancel_flush(HeldWrites& held) noexcept {
  // Either list: an object destroyed by another's flush in the same batch is still in it.
  std::erase(held_writes_, &held);
  for (HeldWrites*& queued : held_writes_running_) {
    if (queued == &held) queued = nullptr;
  }
}

// What the handler just run queued with add_callback_after_handler, in order; what
// those queue in turn runs next (each future completes once, so it ends). Run in place
// from a swapped-out batch, as run_iteration does: no callback is moved.
SQUALL_HOT
void IOLoop::run_after_handler() noexcept {
  while (!after_handler_.empty()) {
    after_handler_running_.swap(after_handler_);
    for (Callback& cb : after_handler_running_) run_callback(cb);
    after_handler_running_.clear();
  }
}

// ---- coroutine frames -----------------------------------------------------------------

SQUALL_HOT
void IOLoop::link_frame(FrameLink& link) {
  link.next = frames_.next;
  link.prev = &frames_;
  frames_.next->prev = &link;
  frames_.next = &link;
}

SQUALL_HOT
void IOLoop::unlink_frame(FrameLink& link) {
  if (link.next == nullptr) return;
  link.prev->next = link.next;
  link.next->prev = link.prev;
  link.prev = link.next = nullptr;
}

size_t IOLoop::live_frames() const {
  size_t n = 0;
  for (const FrameLink* l = frames_.next; l != &frames_; l = l->next) ++n;
  return n;
}

// ---- closing --------------------------------------------------------------------------

void IOLoop::close() {
  if (closed_) return;
  if (running_) throw std::logic_error("close() while the IOLoop is running");
  IOLoop* previous = current_loop;
  current_loop = this;  // destructors below (streams, futures) may ask for the current loop
  // Destroy suspended coroutines first: their locals (streams, timers) still unregister
  // from a working loop. Then drop whatever they queued.
  while (frames_.next != &frames_) {
    FrameLink* link = frames_.next;
    unlink_frame(*link);
    link->frame.destroy();
  }
  poster_->detach();  // waits for a post() in progress on another thread
  closed_ = true;  // from here on add_callback and call_at drop what they are given
  {
    std::vector<Callback> remote;
    {
      std::lock_guard lock(remote_mutex_);
      remote.swap(remote_callbacks_);
    }
  }
  std::vector<Callback>().swap(callbacks_);
  std::vector<Callback>().swap(running_batch_);
  std::vector<TimerSlot>().swap(timer_slots_);
  timer_heap_.clear();
  free_timer_slots_.clear();
  cancellations_ = 0;
  std::vector<HandlerEntry>().swap(handlers_);
  retired_handlers_.clear();
  ::close(wake_fd_);
  ::close(epoll_fd_);
  wake_fd_ = epoll_fd_ = -1;
  current_loop = previous == this ? nullptr : previous;
}

}  // namespace squall
