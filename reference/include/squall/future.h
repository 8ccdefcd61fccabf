// Future<T>: the result of an asynchronous operation, completed once, observed through
// done-callbacks that run on the loop.
//
// Like Tornado's (asyncio's) Future: set_result / set_exception complete it once;
// add_done_callback registers a callback that runs on the loop, in registration order,
// on a later iteration — never synchronously inside set_result, so completing a future
// can't re-enter the code that completed it. A Future is a cheap shared handle: copies
// observe the same state. Futures belong to the loop that was current when they were
// made and are used only on that loop's thread (see executor.h to cross threads).
//
// An exception that is set and never looked at (result(), exception(), co_await) is
// logged when the last handle goes away, as Python does.
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "squall/detail/hot_path.h"
#include "squall/detail/small_pool.h"
#include "squall/ioloop.h"

namespace squall {

// Raised by result() on a future that is not done, and by completing a future twice.
class InvalidStateError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

template <typename T>
class Future;

namespace detail {

template <typename T>
using Stored = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

void log_unretrieved_exception(const std::exception_ptr& error);
// The failure of a task given to spawn(), which nobody awaits.
void log_spawned_failure(const std::exception_ptr& error);

void log_callback_exception();

// The done-callbacks of one future, in order. Nearly every future has exactly one (the
// coroutine awaiting it), kept inline: a vector cost an allocation per await.
template <typename F>
class CallbackList {
 public:
  bool empty() const noexcept { return !first_; }
  std::size_t size() const noexcept { return first_ ? 1 + rest_.size() : 0; }
  void push_back(F callback) {
    if (!first_) {
      first_ = std::move(callback);
    } else {
      rest_.push_back(std::move(callback));
    }
  }
  F& operator[](std::size_t i) { return i == 0 ? first_ : rest_[i - 1]; }
  F take_first() { return std::move(first_); }
  void clear() noexcept {
    first_ = nullptr;
    rest_.clear();
  }

 private:
  F first_;  // empty when there is none
  std::vector<F> rest_;
};

// Shared by every handle of one future. Callbacks get the future as an argument instead
// of capturing it, so a future that never completes holds no reference to itself.
template <typename T>
struct FutureState {
  using DoneCallback = std::function<void(Future<T>&)>;

  IOLoop* loop;
  std::optional<Stored<T>> value;
  std::exception_ptr error;
  bool done = false;
  bool error_retrieved = false;
  bool after_handler = false;  // deliver_after_handler()
  bool spawned = false;        // spawn()'s task: a failure nobody retrieved is logged as its
  // References held only for delivering the result to the last done-callback; a
  // consumer that finds use_count() == 1 + delivery_refs may move the value out.
  long delivery_refs = 0;
  CallbackList<DoneCallback> callbacks;

  explicit FutureState(IOLoop* l) : loop(l) {}

  // The result for a consumer that will not look again: moved out when nobody else can
  // read it (or when it cannot be copied: a move-only result is taken once), else copied.
  Stored<T> take_value(long own_refs) {
    if constexpr (std::is_copy_constructible_v<Stored<T>>) {
      if (own_refs != 1 + delivery_refs) return *value;
    }
    return std::move(*value);
  }
  ~FutureState() {
    if (error && !error_retrieved) spawned ? log_spawned_failure(error) : log_unretrieved_exception(error);
  }
};

// Runs callbacks in order on the loop; one that throws is logged and the rest still run.
// The last callback may take the value by move if it holds the only other reference.
template <typename T>
void run_done_callbacks(std::shared_ptr<FutureState<T>> state, CallbackList<typename FutureState<T>::DoneCallback>& callbacks) {
  Future<T> future(std::move(state));
  for (size_t i = 0; i < callbacks.size(); ++i) {
    if (i + 1 == callbacks.size()) future.state()->delivery_refs = 1;
    try {
      callbacks[i](future);
    } catch (...) {
      log_callback_exception();
    }
  }
  future.state()->delivery_refs = 0;
}

}  // namespace detail

template <typename T>
class Future {
 public:
  using value_type = T;

  // A new pending future on the current loop.
  Future()
      : state_(std::allocate_shared<detail::FutureState<T>>(detail::PoolAllocator<detail::FutureState<T>>{},
                                                            &IOLoop::current())) {}

  bool done() const { return state_->done; }

  // The result; rethrows the exception the future failed with. Throws
  // InvalidStateError if the future is not done yet.
  decltype(auto) result() const {
    check_done();
    if (state_->error) {
      state_->error_retrieved = true;
      std::rethrow_exception(state_->error);
    }
    if constexpr (!std::is_void_v<T>) return static_cast<const T&>(*state_->value);
  }

  // The exception (null if it succeeded); marks it as retrieved.
  std::exception_ptr exception() const {
    check_done();
    state_->error_retrieved = true;
    return state_->error;
  }

  template <typename U = T>
    requires(!std::is_void_v<U>)
  void set_result(U value) {
    complete_check();
    state_->value.emplace(std::move(value));
    finish();
  }
  template <typename U = T>
    requires std::is_void_v<U>
  void set_result() {
    complete_check();
    state_->value.emplace();
    finish();
  }
  void set_exception(std::exception_ptr error) {
    complete_check();
    state_->error = std::move(error);
    finish();
  }
  template <typename E>
  void set_exception(E error) {
    set_exception(std::make_exception_ptr(std::move(error)));
  }

  // Runs callback on the loop once the future is done (on the next iteration if it
  // already is). The callback may take the future (Future<T>&) or nothing.
  template <typename F>
  void add_done_callback(F&& callback) const {
    if constexpr (std::is_invocable_v<F, Future<T>&>) {
      add_callback(typename detail::FutureState<T>::DoneCallback(std::forward<F>(callback)));
    } else {
      add_callback([cb = std::forward<F>(callback)](Future<T>&) mutable { cb(); });
    }
  }

  // For the library's own futures that no user code awaits: when completed inside an
  // I/O handler, the (single) done-callback runs as soon as that handler returns rather
  // than on the next iteration (IOLoop::add_callback_after_handler).
  void deliver_after_handler() const { state_->after_handler = true; }

  // Marks an exception as seen without rethrowing it (Tornado's `f.exception()` idiom
  // for futures nobody may wait on, such as a stream's write futures).
  void mark_retrieved() const { state_->error_retrieved = true; }

  // Moves the result out (copies it if other handles exist and it can be copied);
  // rethrows the failure. For a final consumer such as run_sync.
  detail::Stored<T> take_result() {
    check_done();
    if (state_->error) {
      state_->error_retrieved = true;
      std::rethrow_exception(state_->error);
    }
    return state_->take_value(state_.use_count());
  }

  // Uniform access for code that takes either a Future or a Task.
  const Future<T>& future() const { return *this; }

  // ---- for awaiters (task.h) ----------------------------------------------------------
  explicit Future(std::shared_ptr<detail::FutureState<T>> state) : state_(std::move(state)) {}
  const std::shared_ptr<detail::FutureState<T>>& state() const { return state_; }
  std::shared_ptr<detail::FutureState<T>> release_state() && { return std::move(state_); }

 private:
  void add_callback(typename detail::FutureState<T>::DoneCallback cb) const {
    if (!state_->done) {
      state_->callbacks.push_back(std::move(cb));
      return;
    }
    state_->loop->add_callback([state = state_, cb = std::move(cb)]() mutable {
      Future<T> self(state);
      try {
        cb(self);
      } catch (...) {
        detail::log_callback_exception();
      }
    });
  }
  void check_done() const {
    if (!state_->done) throw InvalidStateError("Future is not done");
  }
  SQUALL_HOT void complete_check() const {
    if (state_->done) throw InvalidStateError("Future is already done");
  }
  SQUALL_HOT void finish() {
    state_->done = true;
    if (!state_->callbacks.empty()) schedule_callbacks();
  }
  // Not among the hot functions: every Future<T> has this, and most results are taken
  // without a callback. Marked hot, each T's copy sat among the code every request runs.
  [[gnu::noinline]] void schedule_callbacks() {
    auto& callbacks = state_->callbacks;
    // One loop callback runs them all, in registration order. The usual single callback
    // travels alone, which keeps the loop callback within its inline storage.
    if (callbacks.size() == 1) {
      auto deliver = [state = state_, callback = callbacks.take_first()]() mutable {
        Future<T> future(std::move(state));
        future.state_->delivery_refs = 1;
        try {
          callback(future);
        } catch (...) {
          detail::log_callback_exception();
        }
        future.state_->delivery_refs = 0;
      };
      if (state_->after_handler) {
        state_->loop->add_callback_after_handler(std::move(deliver));
      } else {
        state_->loop->add_callback(std::move(deliver));
      }
    } else {
      state_->loop->add_callback([state = state_, all = std::move(callbacks)]() mutable {
        detail::run_done_callbacks(std::move(state), all);
      });
    }
    callbacks.clear();
  }

  std::shared_ptr<detail::FutureState<T>> state_;
};

// A future that is already done with value (Tornado's gen.maybe_future for values).
template <typename T>
Future<T> make_ready_future(T value) {
  Future<T> f;
  f.set_result(std::move(value));
  return f;
}
inline Future<void> make_ready_future() {
  Future<void> f;
  f.set_result();
  return f;
}

}  // namespace squall
