// Behaviours of Callback, the loop's move-only callable: where captures live (inline or
// on the heap), ownership of what they capture (moved, destroyed exactly once), empty
// state, exceptions.
#include "squall/callback.h"

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <stdexcept>
#include <utility>

using namespace squall;

namespace {

// Counts the live copies of a captured object: constructions minus destructions.
struct Tracked {
  int* live;
  explicit Tracked(int* l) : live(l) { ++*live; }
  Tracked(const Tracked& other) : live(other.live) { ++*live; }
  Tracked(Tracked&& other) noexcept : live(other.live) { ++*live; }
  ~Tracked() { --*live; }
};

// Where the functor sits: true if inside the Callback object itself.
bool address_is_inside(const void* where, const Callback& cb) {
  auto* p = static_cast<const std::byte*>(where);
  auto* begin = reinterpret_cast<const std::byte*>(&cb);
  return p >= begin && p < begin + sizeof cb;
}

// A lambda whose captures exceed the inline buffer.
auto big_lambda(const void** where, int* runs) {
  std::array<char, Callback::kInlineSize + 1> padding{};
  return [padding, where, runs]() mutable {
    *where = &padding;
    ++*runs;
  };
}

}  // namespace

TEST(Callback, DefaultConstructedIsEmptyAndThrowsBadFunctionCall) {
  Callback cb;
  EXPECT_FALSE(cb);
  EXPECT_THROW(cb(), std::bad_function_call);
  Callback null = nullptr;
  EXPECT_FALSE(null);
}

TEST(Callback, SmallCaptureIsStoredInsideTheCallback) {
  const void* where = nullptr;
  int runs = 0;
  int marker = 0;
  Callback cb = [&where, &runs, marker]() mutable {
    where = &marker;
    ++runs;
  };
  static_assert(Callback::stored_inline<decltype([marker = 0] {})>);
  cb();
  EXPECT_EQ(runs, 1);
  EXPECT_TRUE(address_is_inside(where, cb));
}

TEST(Callback, CaptureLargerThanTheBufferIsStoredOnTheHeapAndStaysPutWhenMoved) {
  const void* where = nullptr;
  int runs = 0;
  auto lambda = big_lambda(&where, &runs);
  static_assert(!Callback::stored_inline<decltype(lambda)>);
  Callback cb = std::move(lambda);
  cb();
  EXPECT_FALSE(address_is_inside(where, cb));
  const void* first = where;
  Callback moved = std::move(cb);
  EXPECT_FALSE(cb);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  moved();
  EXPECT_EQ(where, first);  // the pointer moved, not the functor
  EXPECT_EQ(runs, 2);
}

TEST(Callback, OverAlignedOrThrowingMoveCapturesGoToTheHeap) {
  struct alignas(2 * Callback::kInlineAlign) OverAligned {
    char c = 0;
  };
  struct ThrowingMove {
    ThrowingMove() = default;
    ThrowingMove(ThrowingMove&&) noexcept(false) {}
  };
  static_assert(!Callback::stored_inline<decltype([o = OverAligned{}] { (void)o; })>);
  static_assert(!Callback::stored_inline<decltype([t = ThrowingMove{}] { (void)t; })>);

  bool ran = false;
  Callback cb = [&ran, o = OverAligned{}] {
    ran = true;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(&o) % alignof(OverAligned), 0u);
  };
  cb();
  EXPECT_TRUE(ran);
}

TEST(Callback, MoveOnlyCaptureIsAccepted) {
  auto owned = std::make_unique<int>(41);
  int seen = 0;
  Callback cb = [p = std::move(owned), &seen] { seen = *p + 1; };
  Callback moved = std::move(cb);
  moved();
  EXPECT_EQ(seen, 42);
}

TEST(Callback, InlineCaptureIsDestroyedExactlyOnceAcrossMoves) {
  int live = 0;
  {
    Callback cb = [t = Tracked(&live)] { (void)t; };
    EXPECT_EQ(live, 1);
    Callback a = std::move(cb);
    Callback b;
    b = std::move(a);
    EXPECT_EQ(live, 1);  // each move hands the one capture over, destroying the source
    b();
    EXPECT_EQ(live, 1);
  }
  EXPECT_EQ(live, 0);
}

TEST(Callback, HeapCaptureIsDestroyedExactlyOnceAcrossMoves) {
  int live = 0;
  {
    std::array<char, Callback::kInlineSize> padding{};
    Callback cb = [t = Tracked(&live), padding] { (void)t, (void)padding; };
    EXPECT_EQ(live, 1);
    Callback a = std::move(cb);
    Callback b;
    b = std::move(a);
    EXPECT_EQ(live, 1);
  }
  EXPECT_EQ(live, 0);
}

TEST(Callback, ResetAssignmentAndNullDestroyTheCaptureAtOnce) {
  int live = 0;
  Callback cb = [t = Tracked(&live)] { (void)t; };
  cb.reset();
  EXPECT_EQ(live, 0);
  EXPECT_FALSE(cb);

  cb = [t = Tracked(&live)] { (void)t; };
  EXPECT_EQ(live, 1);
  int replaced = 0;
  cb = [&replaced] { ++replaced; };  // assigning a new functor destroys the old one
  EXPECT_EQ(live, 0);
  cb();
  EXPECT_EQ(replaced, 1);

  cb = [t = Tracked(&live)] { (void)t; };
  cb = nullptr;
  EXPECT_EQ(live, 0);
  EXPECT_FALSE(cb);
}

TEST(Callback, SelfMoveAssignmentKeepsTheFunctor) {
  int live = 0;
  int runs = 0;
  Callback cb = [t = Tracked(&live), &runs] { ++runs; };
  Callback& alias = cb;
  cb = std::move(alias);
  EXPECT_EQ(live, 1);
  cb();
  EXPECT_EQ(runs, 1);
}

TEST(Callback, ExceptionsPropagateToTheCaller) {
  Callback cb = [] { throw std::runtime_error("boom"); };
  EXPECT_THROW(cb(), std::runtime_error);
  EXPECT_TRUE(cb);  // still callable: calling does not consume it
}

TEST(Callback, MutableStatepersistsBetweenCalls) {
  int last = 0;
  Callback cb = [n = 0, &last]() mutable { last = ++n; };
  cb();
  cb();
  EXPECT_EQ(last, 2);
}

TEST(Callback, ResultOfTheCallableIsIgnored) {
  int calls = 0;
  Callback cb = [&calls] { return ++calls; };
  cb();
  EXPECT_EQ(calls, 1);
}
