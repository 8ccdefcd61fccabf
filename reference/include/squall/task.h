// Task<T>: C++20 coroutines on the loop — Tornado's coroutine Runner.
//
// A function returning Task<T> is a coroutine (or, for Task<void>, may be a plain function
// returning the completed Task<void>{}: no frame). It starts running at once, like a
// Tornado coroutine, up to its first co_await of a future that is not done; the
// awaited future's done-callback resumes it on a later loop iteration. An exception
// thrown inside propagates to whoever awaits the task; a returned value completes
// the task's future. `co_await` works on Future<T> and Task<T>.
//
// Ownership: a suspended coroutine frame is referenced only from the callback list of
// the future it waits on, and is linked into the loop it was started on. When the
// frame finishes it frees itself. When the loop is closed (IOLoop::close / ~IOLoop)
// every frame still suspended is destroyed — its locals' destructors run, so streams
// it owns are closed — so neither a leak nor a later resume of a dead frame can occur.
//
// Also here: moment(), sleep(), with_timeout(), when_all() and spawn() (gen's helpers).
#pragma once

#include <coroutine>
#include <exception>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "squall/detail/hot_path.h"
#include "squall/detail/small_pool.h"
#include "squall/future.h"
#include "squall/ioloop.h"
#include "squall/log.h"

namespace squall {

template <typename T = void>
class Task;

namespace detail {

// One completed Future<void> per thread (remade when the thread's loop changes): what a
// completed Task<void> that holds no future hands out when one is asked for (future(),
// release_future()). A done future is never changed again, so sharing it is safe.
SQUALL_HOT inline Future<void> completed_future() {
  thread_local std::optional<Future<void>> completed;
  IOLoop* loop = &IOLoop::current();
  if (!completed || completed->state()->loop != loop) completed = make_ready_future();
  return *completed;
}

// Suspends the awaiting coroutine until the future is done. A done future does not
// suspend at all (as asyncio's Future.__await__), which keeps buffered stream reads
// free of loop round-trips.
template <typename T>
struct FutureAwaiter {
  std::shared_ptr<FutureState<T>> state;  // null: a completed Task<void> without a future

  bool await_ready() const noexcept { return !state || state->done; }
  void await_suspend(std::coroutine_handle<> frame) {  // only called while not done
    // Non-owning: if the frame is destroyed first (loop closing), this callback is
    // dropped with the future without ever running.
    state->callbacks.push_back([frame](Future<T>&) { frame.resume(); });
  }
  Stored<T> take() {
    if constexpr (std::is_void_v<T>) {
      if (!state) return {};
    }
    if (state->error) {
      state->error_retrieved = true;
      std::rethrow_exception(state->error);
    }
    // When this awaiter is the only reader left (the common case: a stream resolved the
    // read and let go), the value is moved out instead of copying a possibly large body.
    return state->take_value(state.use_count());
  }
  T await_resume() {
    if constexpr (std::is_void_v<T>) {
      take();
    } else {
      return take();
    }
  }
};

template <typename T>
struct TaskPromiseBase {
  Future<T> future;
  IOLoop::FrameLink link;

  // Frames come from the per-thread pool (small_pool.h): one per call of a coroutine.
  static void* operator new(std::size_t size) { return pool_allocate(size); }
  static void operator delete(void* frame, std::size_t size) noexcept { pool_deallocate(frame, size); }

  std::suspend_never initial_suspend() noexcept { return {}; }
  std::suspend_never final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { future.set_exception(std::current_exception()); }
  ~TaskPromiseBase() { IOLoop::unlink_frame(link); }
};

template <typename T>
struct TaskPromise : TaskPromiseBase<T> {
  Task<T> get_return_object();
  template <typename U>
  void return_value(U&& value) {
    this->future.set_result(T(std::forward<U>(value)));
  }
};

template <>
struct TaskPromise<void> : TaskPromiseBase<void> {
  Task<void> get_return_object();
  void return_void() { this->future.set_result(); }
};

}  // namespace detail

template <typename T>
class Task {
 public:
  using promise_type = detail::TaskPromise<T>;
  using value_type = T;

  explicit Task(Future<T> future) : future_(std::move(future)) {}
  // A Task<void> that has already completed, for a function that returns Task<void> but
  // has nothing to wait for: `Task<void> get() override { write("hi"); return {}; }`
  // runs as a plain call, without a coroutine frame (Tornado's non-coroutine get()).
  // It holds no future (no shared state to count references on, which a plain get()
  // paid twice per request): done() and result() answer at once, and future() hands
  // out the thread's shared completed future only when someone asks for one.
  Task()
    requires std::is_void_v<T>
      : future_(std::shared_ptr<detail::FutureState<T>>()) {}

  const Future<T>& future() const {
    if constexpr (std::is_void_v<T>) {
      if (!future_.state()) future_ = detail::completed_future();
    }
    return future_;
  }
  Future<T> release_future() && {
    future();
    return std::move(future_);
  }
  bool done() const { return !future_.state() || future_.done(); }
  decltype(auto) result() const {
    if constexpr (std::is_void_v<T>) {
      if (!future_.state()) return;
    }
    return future_.result();
  }
  // Whether the task has completed with an exception (false while it runs). Looking
  // does not count as retrieving the exception.
  bool failed() const { return future_.state() && future_.done() && future_.state()->error != nullptr; }

 private:
  template <typename U>
  friend detail::FutureAwaiter<U> operator co_await(const Task<U>& task);
  template <typename U>
  friend detail::FutureAwaiter<U> operator co_await(Task<U>&& task);

  // Null only in a completed Task<void> made by Task() until future() is asked for.
  mutable Future<T> future_;
};

namespace detail {

template <typename T>
Task<T> TaskPromise<T>::get_return_object() {
  this->link.frame = std::coroutine_handle<TaskPromise<T>>::from_promise(*this);
  this->future.state()->loop->link_frame(this->link);
  return Task<T>(this->future);
}

inline Task<void> TaskPromise<void>::get_return_object() {
  this->link.frame = std::coroutine_handle<TaskPromise<void>>::from_promise(*this);
  this->future.state()->loop->link_frame(this->link);
  return Task<void>(this->future);
}

}  // namespace detail

// `co_await future` and `co_await task` (found by argument-dependent lookup).
template <typename T>
detail::FutureAwaiter<T> operator co_await(const Future<T>& future) {
  return detail::FutureAwaiter<T>{future.state()};
}
// A temporary future (`co_await stream.read_bytes(n)`) hands its reference over, so the
// awaiter can be the sole owner and move the result out.
template <typename T>
detail::FutureAwaiter<T> operator co_await(Future<T>&& future) {
  return detail::FutureAwaiter<T>{std::move(future).release_state()};
}
// A completed Task<void> without a future gives an awaiter without state: it does not
// suspend and resumes with nothing.
template <typename T>
detail::FutureAwaiter<T> operator co_await(const Task<T>& task) {
  return detail::FutureAwaiter<T>{task.future_.state()};
}
template <typename T>
detail::FutureAwaiter<T> operator co_await(Task<T>&& task) {
  return detail::FutureAwaiter<T>{std::move(task.future_).release_state()};
}

// ---- gen helpers ------------------------------------------------------------------------

// `co_await moment();` gives the loop one iteration (Tornado's gen.moment).
struct Moment {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> frame) const {
    IOLoop::current().add_callback([frame] { frame.resume(); });
  }
  void await_resume() const noexcept {}
};
inline Moment moment() { return {}; }

// A future completed after `delay` (gen.sleep).
Future<void> sleep(Duration delay);

// Logs the task's exception if it fails; nothing waits for it (IOLoop.spawn_callback).
// A task still running is not given a done-callback, which cost every spawned task (a
// connection's, for one) a loop turn at its end for nothing: its failure is logged when
// its state goes — at its end, as nobody else holds a spawned task (one that does and
// awaits it gets the exception instead).
template <typename T>
SQUALL_HOT
void spawn(const Task<T>& task) {
  if (!task.done()) {
    task.future().state()->spawned = true;
    return;
  }
  if (task.failed()) detail::log_spawned_failure(task.future().exception());
}

namespace detail {
void log_exception_after_timeout(const std::exception_ptr& error);
void log_extra_exception_in_when_all(const std::exception_ptr& error);

// True if error is of one of the types Quiet...
template <typename... Quiet>
bool is_one_of(const std::exception_ptr& error) {
  if constexpr (sizeof...(Quiet) == 0) {
    return false;
  } else {
    return ([&error]<typename Q>() {
      try {
        std::rethrow_exception(error);
      } catch (const Q&) {
        return true;
      } catch (...) {
        return false;
      }
    }.template operator()<Quiet>() || ...);
  }
}
}  // namespace detail

// Completes like `inner`, or fails with TimeoutError at `deadline`, whichever is first
// (gen.with_timeout). The inner operation is left to finish on its own; if it fails
// after the timeout, its exception is logged rather than lost — unless it is one of the
// Quiet... types (Tornado's quiet_exceptions), e.g. the StreamClosedError of a stream
// the caller closes because of the timeout: with_timeout<StreamClosedError>(d, read).
template <typename... Quiet, typename Awaitable>
auto with_timeout(TimePoint deadline, const Awaitable& inner) {
  using T = typename std::decay_t<decltype(inner.future())>::value_type;
  Future<T> inner_future = inner.future();
  Future<T> result;
  IOLoop& loop = IOLoop::current();
  TimeoutHandle timer = loop.call_at(deadline, [result]() mutable {
    if (!result.done()) result.set_exception(TimeoutError("Timeout"));
  });
  inner_future.add_done_callback([result, timer, &loop](Future<T>& f) mutable {
    loop.remove_timeout(timer);
    if (result.done()) {
      auto error = f.exception();
      if (error && !detail::is_one_of<Quiet...>(error)) detail::log_exception_after_timeout(error);
      return;
    }
    if (auto error = f.exception()) {
      result.set_exception(error);
    } else if constexpr (std::is_void_v<T>) {
      result.set_result();
    } else {
      result.set_result(f.take_result());
    }
  });
  return result;
}
template <typename... Quiet, typename Awaitable>
auto with_timeout(Duration timeout, const Awaitable& inner) {
  return with_timeout<Quiet...>(IOLoop::current().time() + timeout, inner);
}

// Waits for all futures (gen.multi): the results in input order. The first exception
// fails the result at once; later ones are logged.
template <typename T>
Future<std::conditional_t<std::is_void_v<T>, void, std::vector<T>>> when_all(std::vector<Future<T>> futures) {
  using R = std::conditional_t<std::is_void_v<T>, void, std::vector<T>>;
  Future<R> result;
  if (futures.empty()) {
    if constexpr (std::is_void_v<T>) {
      result.set_result();
    } else {
      result.set_result({});
    }
    return result;
  }
  // Callbacks share only the results gathered so far, never the input futures, so a
  // future that never completes leaves no reference cycle behind.
  struct Gather {
    size_t remaining;
    std::vector<std::optional<detail::Stored<T>>> values;
  };
  auto gather = std::make_shared<Gather>(Gather{futures.size(), {}});
  gather->values.resize(futures.size());
  for (size_t i = 0; i < futures.size(); ++i) {
    futures[i].add_done_callback([result, gather, i](Future<T>& done) mutable {
      --gather->remaining;
      if (auto error = done.exception()) {
        if (result.done()) {
          detail::log_extra_exception_in_when_all(error);
        } else {
          result.set_exception(error);
        }
        return;
      }
      if constexpr (std::is_void_v<T>) {
        (void)i;  // only the results of non-void futures are stored by index
      } else {
        gather->values[i].emplace(done.result());
      }
      if (gather->remaining != 0 || result.done()) return;
      if constexpr (std::is_void_v<T>) {
        result.set_result();
      } else {
        std::vector<T> values;
        values.reserve(gather->values.size());
        for (auto& each : gather->values) values.push_back(std::move(*each));
        result.set_result(std::move(values));
      }
    });
  }
  return result;
}
template <typename T>
auto when_all(const std::vector<Task<T>>& tasks) {
  std::vector<Future<T>> futures;
  futures.reserve(tasks.size());
  for (const Task<T>& t : tasks) futures.push_back(t.future());
  return when_all(std::move(futures));
}

}  // namespace squall
