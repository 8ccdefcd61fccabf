// Callback: the `void()` callable the loop queues and runs (add_callback, call_at).
//
// Why not std::function<void()>: every queued callback used to pay for std::function's
// generality — libstdc++ keeps only trivially copyable functors of up to 16 bytes inline
// (so a lambda capturing a Future or a shared_ptr is a heap allocation), and its
// destructor makes an indirect call even for a lambda that captures a pointer. A loop
// callback is called once and moved a couple of times, so a smaller contract fits:
//
//   - move-only: a callback may own what it captures (a unique_ptr, a promise);
//   - captures of up to kInlineSize bytes live inside the Callback, larger ones (or ones
//     whose move may throw) on the heap;
//   - a functor that is trivially copyable (pointers, references, integers) is moved
//     with a fixed-size memcpy and needs no destructor call: the common case costs no
//     indirect call beyond the invocation itself.
//
// Calling an empty Callback throws std::bad_function_call, as std::function does.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstring>
#include <functional>
#include <new>
#include <type_traits>
#include <utility>

namespace squall {

class Callback {
 public:
  // 48 bytes of captures plus two function pointers make a Callback one 64-byte cache
  // line: enough for a shared_ptr plus a vector, or six pointers.
  static constexpr std::size_t kInlineSize = 48;
  static constexpr std::size_t kInlineAlign = alignof(std::max_align_t);

  // Whether a functor of type F is stored inside the Callback (no allocation).
  template <typename F>
  static constexpr bool stored_inline = sizeof(F) <= kInlineSize && alignof(F) <= kInlineAlign &&
                                        std::is_nothrow_move_constructible_v<F>;

  Callback() noexcept = default;
  Callback(std::nullptr_t) noexcept {}

  // Any callable with no arguments (its result is ignored), as std::function converts.
  template <typename F>
  static constexpr bool accepts = !std::same_as<std::remove_cvref_t<F>, Callback> &&
                                  !std::same_as<std::remove_cvref_t<F>, std::nullptr_t> &&
                                  std::invocable<std::decay_t<F>&>;

  template <typename F>
    requires accepts<F>
  Callback(F&& f) {  // NOLINT(google-explicit-constructor): lambdas convert, as to std::function
    construct(std::forward<F>(f));
  }
  // Replaces the functor, building the new one in place. Assigning a lambda this way
  // rather than through a Callback temporary saves a move (see ioloop.h's call_at).
  template <typename F>
    requires accepts<F>
  Callback& operator=(F&& f) {
    reset();
    construct(std::forward<F>(f));
    return *this;
  }

  Callback(Callback&& other) noexcept { take(other); }
  Callback& operator=(Callback&& other) noexcept {
    if (this != &other) {
      reset();
      take(other);
    }
    return *this;
  }
  Callback& operator=(std::nullptr_t) noexcept {
    reset();
    return *this;
  }
  Callback(const Callback&) = delete;
  Callback& operator=(const Callback&) = delete;
  ~Callback() { reset(); }

  explicit operator bool() const noexcept { return invoke_ != &invoke_empty; }

  // Exceptions from the functor propagate to the caller.
  void operator()() { invoke_(storage_); }

  // Destroys the functor (and what it captured) now; the Callback becomes empty.
  void reset() noexcept {
    if (manage_ != nullptr) manage_(Operation::destroy, storage_, nullptr);
    invoke_ = &invoke_empty;
    manage_ = nullptr;
  }

 private:
  enum class Operation { relocate, destroy };
  // relocate: move-constructs the functor at `from` into `self`, then destroys the one at
  // `from`. destroy: destroys the functor at `self`.
  using Manager = void (*)(Operation, std::byte* self, std::byte* from) noexcept;
  using Invoker = void (*)(std::byte*);

  // Precondition: empty. If F's constructor (or the allocation) throws, stays empty.
  template <typename F>
  void construct(F&& f) {
    using Stored = std::decay_t<F>;
    if constexpr (stored_inline<Stored>) {
      ::new (static_cast<void*>(storage_)) Stored(std::forward<F>(f));
      invoke_ = &invoke_inline<Stored>;
      // Trivially copyable: the bytes are the functor, memcpy moves it, nothing to destroy.
      if constexpr (!std::is_trivially_copyable_v<Stored>) manage_ = &manage_inline<Stored>;
    } else {
      Stored* heap = new Stored(std::forward<F>(f));
      std::memcpy(storage_, &heap, sizeof heap);
      invoke_ = &invoke_heap<Stored>;
      manage_ = &manage_heap<Stored>;
    }
  }

  template <typename F>
  static F* inline_object(std::byte* storage) noexcept {
    return std::launder(reinterpret_cast<F*>(storage));
  }
  template <typename F>
  static F* heap_object(std::byte* storage) noexcept {
    F* p;
    std::memcpy(&p, storage, sizeof p);
    return p;
  }

  [[noreturn]] static void invoke_empty(std::byte*) { throw std::bad_function_call(); }
  template <typename F>
  static void invoke_inline(std::byte* storage) {
    (*inline_object<F>(storage))();
  }
  template <typename F>
  static void invoke_heap(std::byte* storage) {
    (*heap_object<F>(storage))();
  }

  template <typename F>
  static void manage_inline(Operation op, std::byte* self, std::byte* from) noexcept {
    if (op == Operation::relocate) {
      F* source = inline_object<F>(from);
      ::new (static_cast<void*>(self)) F(std::move(*source));
      source->~F();
    } else {
      inline_object<F>(self)->~F();
    }
  }
  template <typename F>
  static void manage_heap(Operation op, std::byte* self, std::byte* from) noexcept {
    if (op == Operation::relocate) {
      std::memcpy(self, from, sizeof(F*));  // the pointer moves, the functor stays put
    } else {
      delete heap_object<F>(self);
    }
  }

  // Leaves other empty.
  void take(Callback& other) noexcept {
    if (other.manage_ != nullptr) {
      other.manage_(Operation::relocate, storage_, other.storage_);
    } else {
      std::memcpy(storage_, other.storage_, kInlineSize);
    }
    invoke_ = other.invoke_;
    manage_ = other.manage_;
    other.invoke_ = &invoke_empty;
    other.manage_ = nullptr;
  }

  // Zeroed so that moving a functor smaller than the buffer (the whole buffer is copied)
  // never reads indeterminate bytes; the stores cost less than a branch on the size.
  alignas(kInlineAlign) std::byte storage_[kInlineSize]{};
  Invoker invoke_ = &invoke_empty;
  Manager manage_ = nullptr;  // null: trivially copyable inline functor (or empty)
};

static_assert(sizeof(Callback) == 64, "a Callback is meant to fill one cache line");

}  // namespace squall
