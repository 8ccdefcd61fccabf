// Behaviours of Task<T> coroutines and the gen helpers: eager start, resumption on the
// loop, exception propagation, moment/sleep/with_timeout/when_all/spawn, the executor,
// and teardown of suspended coroutines when the loop closes.
#include "squall/task.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "squall/executor.h"

using namespace squall;
using namespace std::chrono_literals;

namespace {

Task<int> add_later(int a, int b) {
  co_await sleep(1ms);
  co_return a + b;
}

Task<int> fail_later(std::string message) {
  co_await sleep(1ms);
  throw std::runtime_error(message);
}

Task<int> nested_failure() {
  int value = co_await fail_later("deep failure");
  co_return value + 1;
}

}  // namespace

TEST(Task, RunsEagerlyUntilItsFirstSuspension) {
  IOLoop loop;
  std::vector<std::string> steps;
  Future<void> gate;
  auto body = [&]() -> Task<void> {
    steps.push_back("started");
    co_await gate;
    steps.push_back("resumed");
  };
  Task<void> task = body();
  EXPECT_EQ(steps, (std::vector<std::string>{"started"}));
  EXPECT_FALSE(task.done());
  gate.set_result();
  EXPECT_EQ(steps.size(), 1u) << "resumption goes through the loop";
  loop.run_sync([&] { return task; }, 5s);
  EXPECT_EQ(steps, (std::vector<std::string>{"started", "resumed"}));
}

TEST(Task, ReturnedValueCompletesItsFuture) {
  IOLoop loop;
  EXPECT_EQ(loop.run_sync([] { return add_later(2, 3); }, 5s), 5);
}

TEST(Task, ExceptionsPropagateThroughCoAwait) {
  IOLoop loop;
  try {
    loop.run_sync([] { return nested_failure(); }, 5s);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "deep failure");
  }
}

TEST(Task, AwaitingADoneFutureDoesNotSuspend) {
  IOLoop loop;
  std::vector<std::string> order;
  auto body = [&]() -> Task<void> {
    loop.add_callback([&] { order.push_back("other callback"); });
    int v = co_await make_ready_future(5);
    order.push_back("continued with " + std::to_string(v));
  };
  loop.run_sync(body, 5s);
  ASSERT_EQ(order.size(), 2u);
  EXPECT_EQ(order[0], "continued with 5");
}

TEST(Task, MomentLetsQueuedCallbacksRunFirst) {
  IOLoop loop;
  std::vector<std::string> order;
  auto body = [&]() -> Task<void> {
    loop.add_callback([&] { order.push_back("queued callback"); });
    co_await moment();
    order.push_back("after moment");
  };
  loop.run_sync(body, 5s);
  EXPECT_EQ(order, (std::vector<std::string>{"queued callback", "after moment"}));
}

TEST(Task, SleepWaitsAtLeastTheDelay) {
  IOLoop loop;
  auto start = Clock::now();
  loop.run_sync([] { return sleep(25ms); }, 5s);
  EXPECT_GE(Clock::now() - start, 25ms);
}

TEST(Task, AwaitingATaskFromManyCoroutines) {
  IOLoop loop;
  auto shared = add_later(20, 1);
  auto waiter = [&]() -> Task<int> { co_return co_await shared; };
  auto both = [&]() -> Task<int> {
    auto a = waiter();
    auto b = waiter();
    co_return co_await a + co_await b;
  };
  EXPECT_EQ(loop.run_sync(both, 5s), 42);
}

// A plain function's Task<void>{} (no coroutine frame) holds no future: making, copying
// and checking it touch no shared state. Yet it behaves as a completed task everywhere:
// done, result(), co_await without suspending, and future() for when_all, with_timeout,
// run_sync and done-callbacks.
TEST(Task, CompletedTaskOfAPlainFunctionHoldsNoFutureButActsDone) {
  IOLoop loop;
  const Future<void> shared = detail::completed_future();
  const long references = shared.state().use_count();
  Task<void> plain{};
  Task<void> copy = plain;
  EXPECT_TRUE(plain.done());
  EXPECT_FALSE(plain.failed());
  EXPECT_NO_THROW(copy.result());
  spawn(plain);
  EXPECT_EQ(shared.state().use_count(), references) << "no reference taken so far";

  std::vector<std::string> order;
  auto body = [&]() -> Task<void> {
    loop.add_callback([&] { order.push_back("other callback"); });
    co_await copy;
    co_await Task<void>{};
    order.push_back("continued");
  };
  loop.run_sync(body, 5s);
  ASSERT_EQ(order.size(), 2u);
  EXPECT_EQ(order[0], "continued") << "awaiting it did not suspend";

  ASSERT_TRUE(plain.future().done());
  bool called = false;
  plain.future().add_done_callback([&] { called = true; });
  loop.run_sync([&] { return when_all(std::vector<Task<void>>{Task<void>{}, Task<void>{}}); }, 5s);
  EXPECT_TRUE(called);
  loop.run_sync([] { return with_timeout(1s, Task<void>{}); }, 5s);
  loop.run_sync([] { return Task<void>{}; }, 5s);
  EXPECT_TRUE(std::move(copy).release_future().done());
}

// failed() tells a task that ended with an exception, without marking it retrieved.
TEST(Task, FailedTellsATaskThatThrew) {
  IOLoop loop;
  Task<void> thrown = []() -> Task<void> {
    throw std::runtime_error("early");
    co_return;
  }();
  Task<int> pending = add_later(1, 2);
  EXPECT_TRUE(thrown.done());
  EXPECT_TRUE(thrown.failed());
  EXPECT_FALSE(pending.failed());
  EXPECT_THROW(thrown.result(), std::runtime_error);
  EXPECT_EQ(loop.run_sync([&] { return pending; }, 5s), 3);
  EXPECT_FALSE(pending.failed());
}

TEST(WithTimeout, ExpiresWithTimeoutError) {
  IOLoop loop;
  Future<int> never;
  auto start = Clock::now();
  EXPECT_THROW(loop.run_sync([&] { return with_timeout(20ms, never); }, 5s), TimeoutError);
  EXPECT_GE(Clock::now() - start, 20ms);
}

TEST(WithTimeout, PassesTheResultThroughWhenInTime) {
  IOLoop loop;
  EXPECT_EQ(loop.run_sync([] { return with_timeout(5s, add_later(1, 1)); }, 5s), 2);
  EXPECT_EQ(loop.pending_timers(), 0u) << "the timeout timer is removed once the inner future completes";
}

TEST(WithTimeout, InnerFailureAfterTheTimeoutIsLogged) {
  IOLoop loop;
  Future<int> inner;
  EXPECT_THROW(loop.run_sync([&] { return with_timeout(5ms, inner); }, 5s), TimeoutError);
  testing::internal::CaptureStderr();
  inner.set_exception(std::runtime_error("late failure"));
  loop.run_sync([] { return sleep(5ms); });
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("after timeout"), std::string::npos) << err;
  EXPECT_NE(err.find("late failure"), std::string::npos) << err;
}

TEST(WhenAll, ReturnsResultsInInputOrder) {
  IOLoop loop;
  auto body = []() -> Task<std::vector<int>> {
    std::vector<Future<int>> futures;
    for (int i = 0; i < 5; ++i) {
      Future<int> f;
      // Complete in reverse order: the results must still come back in input order.
      IOLoop::current().call_later(std::chrono::milliseconds(10 - 2 * i), [f, i]() mutable { f.set_result(i); });
      futures.push_back(f);
    }
    co_return co_await when_all(std::move(futures));
  };
  EXPECT_EQ(loop.run_sync(body, 5s), (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(WhenAll, FailsWithTheFirstExceptionAndLogsLaterOnes) {
  IOLoop loop;
  Future<int> ok, first, second;
  auto all = when_all(std::vector<Future<int>>{ok, first, second});
  first.set_exception(std::runtime_error("first"));
  testing::internal::CaptureStderr();
  try {
    loop.run_sync([&] { return all; }, 5s);
    FAIL() << "expected the first failure";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "first");
  }
  second.set_exception(std::runtime_error("second"));
  ok.set_result(1);
  loop.run_sync([] { return sleep(1ms); });
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("second"), std::string::npos) << err;
}

TEST(WhenAll, OfNothingIsDoneAtOnce) {
  IOLoop loop;
  auto all = when_all(std::vector<Future<void>>{});
  EXPECT_TRUE(all.done());
}

TEST(Spawn, UncaughtErrorIsLogged) {
  IOLoop loop;
  testing::internal::CaptureStderr();
  spawn(fail_later("spawned failure"));
  // On a loaded machine both timers may fire in one iteration; the failure is logged
  // within a few iterations after its timer, so wait a few more after the later one.
  loop.run_sync([]() -> Task<void> {
    co_await sleep(10ms);
    for (int i = 0; i < 5; ++i) co_await sleep(0ms);
  });
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("spawned failure"), std::string::npos) << err;
}

// A spawned task that failed before its first suspension is reported at once (no loop
// iteration is needed for it).
TEST(Spawn, ErrorOfATaskThatAlreadyEndedIsLoggedAtOnce) {
  IOLoop loop;
  testing::internal::CaptureStderr();
  spawn([]() -> Task<void> {
    throw std::runtime_error("failed before suspending");
    co_return;
  }());
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("failed before suspending"), std::string::npos) << err;
}

Task<void> open_then_end(Future<void> gate, Future<void> ended) {
  co_await gate;
  ended.set_result();
}

// A spawned task leaves nothing queued on the loop when it ends (a done-callback cost every
// spawned task a loop turn, a connection's each): its state goes with its frame.
TEST(Spawn, ATaskThatEndsLeavesNothingForTheLoop) {
  IOLoop loop;
  Future<void> gate;
  Future<void> ended;
  std::weak_ptr<detail::FutureState<void>> state;
  {
    Task<void> task = open_then_end(gate, ended);
    state = task.future().state();
    spawn(task);
  }
  EXPECT_FALSE(state.expired()) << "the running task holds its state";
  // The first callback after the task's end (its last act completed `ended`) finds its
  // state gone: nothing was queued to run after it.
  bool gone_right_after = false;
  ended.add_done_callback([&](Future<void>&) { gone_right_after = state.expired(); });
  loop.add_callback([&] { gate.set_result(); });
  loop.run_sync([&] { return ended; }, 10s);
  EXPECT_TRUE(gone_right_after) << "something queued on the loop still held the ended task's state";
}

TEST(Executor, ResultIsDeliveredOnTheLoopThread) {
  IOLoop loop;
  ThreadPoolExecutor executor(2);
  std::thread::id worker_thread;
  std::thread::id callback_thread;
  auto body = [&]() -> Task<int> {
    int v = co_await executor.submit([&] {
      worker_thread = std::this_thread::get_id();
      return 6 * 7;
    });
    callback_thread = std::this_thread::get_id();
    co_return v;
  };
  EXPECT_EQ(loop.run_sync(body, 5s), 42);
  EXPECT_NE(worker_thread, std::this_thread::get_id());
  EXPECT_EQ(callback_thread, std::this_thread::get_id());
}

TEST(Executor, ExceptionIsDeliveredToTheAwaiter) {
  IOLoop loop;
  ThreadPoolExecutor executor(1);
  auto body = [&]() -> Task<void> {
    co_await executor.submit([]() -> int { throw std::runtime_error("worker failed"); });
  };
  EXPECT_THROW(loop.run_sync(body, 5s), std::runtime_error);
}

TEST(Executor, RunsSubmissionsConcurrently) {
  IOLoop loop;
  ThreadPoolExecutor executor(4);
  std::atomic<int> inside{0}, peak{0};
  auto work = [&] {
    int now = ++inside;
    int seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
    std::this_thread::sleep_for(30ms);
    --inside;
  };
  auto body = [&]() -> Task<void> {
    std::vector<Future<void>> all;
    for (int i = 0; i < 4; ++i) all.push_back(executor.submit(work));
    co_await when_all(std::move(all));
  };
  loop.run_sync(body, 5s);
  EXPECT_GE(peak.load(), 2);
}

// ---- teardown -------------------------------------------------------------------------

namespace {

struct DestructionFlag {
  bool* flag;
  ~DestructionFlag() { *flag = true; }
};

Task<void> wait_forever(Future<void> never, bool* destroyed) {
  DestructionFlag guard{destroyed};
  co_await never;
}

Task<void> wait_on_child(Future<void> never, bool* child_destroyed, bool* parent_destroyed) {
  DestructionFlag guard{parent_destroyed};
  co_await wait_forever(never, child_destroyed);
}

}  // namespace

TEST(Task, ClosingTheLoopDestroysSuspendedCoroutines) {
  bool destroyed = false;
  {
    IOLoop loop;
    Future<void> never;
    auto task = wait_forever(never, &destroyed);
    EXPECT_EQ(loop.live_frames(), 1u);
    EXPECT_FALSE(destroyed);
  }
  EXPECT_TRUE(destroyed);
}

TEST(Task, ClosingTheLoopDestroysChainsOfSuspendedCoroutines) {
  bool child = false, parent = false;
  {
    IOLoop loop;
    Future<void> never;
    spawn(wait_on_child(never, &child, &parent));
    EXPECT_EQ(loop.live_frames(), 2u);
    loop.run_sync([] { return sleep(1ms); });
  }
  EXPECT_TRUE(child);
  EXPECT_TRUE(parent);
}

TEST(Task, FinishedCoroutinesFreeTheirFrames) {
  IOLoop loop;
  for (int i = 0; i < 100; ++i) loop.run_sync([] { return add_later(1, 2); });
  EXPECT_EQ(loop.live_frames(), 0u);
}

// ---- results that are expensive or impossible to copy ---------------------------------

namespace {

struct CopyCounter {
  int* copies;
  explicit CopyCounter(int* c) : copies(c) {}
  CopyCounter(const CopyCounter& other) : copies(other.copies) { ++*copies; }
  CopyCounter(CopyCounter&&) noexcept = default;
  CopyCounter& operator=(const CopyCounter&) = default;
  CopyCounter& operator=(CopyCounter&&) noexcept = default;
};

Task<std::unique_ptr<int>> make_owned_later(int v) {
  co_await sleep(1ms);
  co_return std::make_unique<int>(v);
}

}  // namespace

TEST(Task, MoveOnlyResultsPassThroughCoAwaitRunSyncAndWithTimeout) {
  IOLoop loop;
  auto body = []() -> Task<std::unique_ptr<int>> {
    std::unique_ptr<int> a = co_await make_owned_later(1);
    std::unique_ptr<int> b = co_await with_timeout(5s, make_owned_later(2));
    co_return std::make_unique<int>(*a + *b);
  };
  std::unique_ptr<int> sum = loop.run_sync(body, 5s);
  ASSERT_NE(sum, nullptr);
  EXPECT_EQ(*sum, 3);
}

TEST(Task, AwaitedResultIsMovedNotCopiedWhenNobodyElseHoldsTheFuture) {
  IOLoop loop;
  int copies = 0;
  auto body = [&]() -> Task<void> {
    Future<CopyCounter> pending;
    loop.add_callback([pending, &copies]() mutable { pending.set_result(CopyCounter(&copies)); });
    CopyCounter suspended = co_await std::move(pending);  // resumed through the loop
    CopyCounter ready = co_await make_ready_future(CopyCounter(&copies));  // no suspension
    (void)suspended;
    (void)ready;
  };
  loop.run_sync(body, 5s);
  EXPECT_EQ(copies, 0);
}

TEST(Task, AwaitedResultIsCopiedWhileAnotherHandleCanStillReadIt) {
  IOLoop loop;
  int copies = 0;
  Future<CopyCounter> shared;
  auto body = [&]() -> Task<void> {
    CopyCounter value = co_await shared;
    (void)value;
  };
  loop.add_callback([&] { shared.set_result(CopyCounter(&copies)); });
  loop.run_sync(body, 5s);
  EXPECT_EQ(copies, 1);
  EXPECT_NE(shared.result().copies, nullptr) << "the other handle still sees the value";
}

TEST(WithTimeout, QuietExceptionTypesAreNotLoggedAfterTheTimeout) {
  IOLoop loop;
  Future<int> inner;
  EXPECT_THROW(loop.run_sync([&] { return with_timeout<std::logic_error>(5ms, inner); }, 5s), TimeoutError);
  testing::internal::CaptureStderr();
  inner.set_exception(std::logic_error("expected after cancelling"));
  loop.run_sync([] { return sleep(5ms); });
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(err.find("expected after cancelling"), std::string::npos) << err;
}
