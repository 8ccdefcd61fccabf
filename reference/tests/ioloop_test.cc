// Behaviours of the event loop: ordering of callbacks and timers, I/O dispatch,
// cross-thread wake-up, lazy timer cancellation, error isolation, cleanup.
#include "squall/ioloop.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "squall/future.h"
#include "open_fds.h"

using namespace squall;
using namespace std::chrono_literals;

namespace {

// Stops the loop after `limit` so that a broken behaviour fails instead of hanging.
struct Watchdog {
  IOLoop& loop;
  bool fired = false;
  TimeoutHandle handle;
  Watchdog(IOLoop& l, Duration limit) : loop(l) {
    handle = loop.call_later(limit, [this] {
      fired = true;
      loop.stop();
    });
  }
  ~Watchdog() { loop.remove_timeout(handle); }
};

struct SocketPair {
  int fds[2];
  SocketPair() { EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0); }
  ~SocketPair() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
};

using testing_support::epoll_watchers;
using testing_support::open_fd_count;

}  // namespace

TEST(IOLoop, CallbacksRunInFifoOrder) {
  IOLoop loop;
  std::vector<int> order;
  for (int i = 0; i < 5; ++i) loop.add_callback([&, i] { order.push_back(i); });
  loop.add_callback([&] { loop.stop(); });
  loop.start();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(IOLoop, InlineAndHeapStoredCallbacksKeepFifoOrderAcrossQueueGrowth) {
  IOLoop loop;
  std::vector<int> order;
  // Every third callback carries a capture too big for Callback's inline buffer; 300
  // callbacks make the queue reallocate (and so move both kinds) several times.
  std::array<char, Callback::kInlineSize> padding{};
  for (int i = 0; i < 300; ++i) {
    if (i % 3 == 0) {
      loop.add_callback([&order, i, padding] { order.push_back(i + padding[0]); });
    } else {
      loop.add_callback([&order, i] { order.push_back(i); });
    }
  }
  loop.add_callback([&] { loop.stop(); });
  loop.start();
  ASSERT_EQ(order.size(), 300u);
  for (int i = 0; i < 300; ++i) EXPECT_EQ(order[i], i);
}

TEST(IOLoop, MoveOnlyCapturesCanBeQueuedAndScheduled) {
  IOLoop loop;
  int sum = 0;
  loop.add_callback([p = std::make_unique<int>(1), &sum] { sum += *p; });
  loop.call_later(0ms, [p = std::make_unique<int>(10), &sum, &loop] {
    sum += *p;
    loop.stop();
  });
  loop.start();
  EXPECT_EQ(sum, 11);
}

TEST(IOLoop, MoveOnlyCaptureQueuedFromAnotherThreadRuns) {
  IOLoop loop;
  Watchdog watchdog(loop, 10s);
  int seen = 0;
  std::thread other([&] {
    loop.add_callback([p = std::make_unique<int>(7), &seen, &loop] {
      seen = *p;
      loop.stop();
    });
  });
  loop.start();
  other.join();
  EXPECT_EQ(seen, 7);
  EXPECT_FALSE(watchdog.fired);
}

TEST(IOLoop, CapturesOfCallbacksAndTimersAreDestroyedOnceAfterRunning) {
  IOLoop loop;
  auto owner = std::make_shared<int>(0);
  int runs = 0;
  loop.add_callback([owner, &runs] { ++runs; });
  std::array<char, Callback::kInlineSize> padding{};
  loop.add_callback([owner, &runs, padding] { runs += 1 + padding[0]; });  // heap-stored
  loop.call_later(0ms, [owner, &runs, &loop] {
    ++runs;
    loop.stop();
  });
  EXPECT_EQ(owner.use_count(), 4);
  loop.start();
  EXPECT_EQ(runs, 3);
  // The loop holds no copy of a capture once its callback has run.
  EXPECT_EQ(owner.use_count(), 1);
}

TEST(IOLoop, RemovingATimeoutDestroysItsCaptureAtOnce) {
  IOLoop loop;
  auto owner = std::make_shared<int>(0);
  TimeoutHandle h = loop.call_later(1h, [owner] {});
  EXPECT_EQ(owner.use_count(), 2);
  loop.remove_timeout(h);
  EXPECT_EQ(owner.use_count(), 1);
}

TEST(IOLoop, CallbackQueuedByCallbackWaitsForNextIteration) {
  IOLoop loop;
  std::vector<std::string> order;
  loop.add_callback([&] {
    order.push_back("a");
    loop.add_callback([&] { order.push_back("c (queued by a)"); });
  });
  loop.add_callback([&] {
    order.push_back("b");
    loop.stop();  // stop ends this iteration: c must not have run yet
  });
  loop.start();
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b"}));
  loop.add_callback([&] { loop.stop(); });
  loop.start();
  EXPECT_EQ(order.back(), "c (queued by a)");
}

TEST(IOLoop, SelfRequeueingCallbackDoesNotStarveIo) {
  IOLoop loop;
  SocketPair pair;
  Watchdog watchdog(loop, 5s);
  int spins = 0;
  std::function<void()> spin = [&] {
    ++spins;
    loop.add_callback(spin);
  };
  loop.add_callback(spin);
  bool read_seen = false;
  loop.add_handler(pair.fds[0], [&](int, uint32_t events) {
    if (events & IOLoop::READ) {
      read_seen = true;
      loop.stop();
    }
  }, IOLoop::READ);
  ASSERT_EQ(::write(pair.fds[1], "x", 1), 1);
  loop.start();
  loop.remove_handler(pair.fds[0]);
  EXPECT_FALSE(watchdog.fired);
  EXPECT_TRUE(read_seen);
  EXPECT_LT(spins, 10) << "I/O should be polled on every iteration";
}

TEST(IOLoop, AddCallbackFromAnotherThreadWakesIdleLoop) {
  IOLoop loop;
  Watchdog watchdog(loop, 10s);  // with no wake-up the loop would sleep until this
  std::atomic<bool> ran{false};
  std::thread other([&] {
    std::this_thread::sleep_for(50ms);
    loop.add_callback([&] {
      ran = true;
      loop.stop();
    });
  });
  auto started = Clock::now();
  loop.start();
  other.join();
  EXPECT_TRUE(ran);
  EXPECT_FALSE(watchdog.fired);
  EXPECT_LT(Clock::now() - started, 5s);
}

TEST(IOLoop, ManyThreadsAddingCallbacksLoseNone) {
  IOLoop loop;
  Watchdog watchdog(loop, 10s);
  constexpr int kThreads = 4, kEach = 2000;
  int received = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        loop.add_callback([&] {
          if (++received == kThreads * kEach) loop.stop();
        });
      }
    });
  }
  loop.start();
  for (auto& t : threads) t.join();
  EXPECT_EQ(received, kThreads * kEach);
}

TEST(IOLoop, TimersRunInDeadlineOrder) {
  IOLoop loop;
  std::vector<int> order;
  auto now = loop.time();
  loop.call_at(now + 30ms, [&] { order.push_back(3); });
  loop.call_at(now + 10ms, [&] { order.push_back(1); });
  loop.call_at(now + 20ms, [&] { order.push_back(2); });
  loop.call_at(now + 40ms, [&] { loop.stop(); });
  loop.start();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(IOLoop, TimersWithEqualDeadlinesRunInInsertionOrder) {
  IOLoop loop;
  std::vector<int> order;
  auto deadline = loop.time() + 5ms;
  for (int i = 0; i < 50; ++i) loop.call_at(deadline, [&, i] { order.push_back(i); });
  loop.call_at(deadline, [&] { loop.stop(); });
  loop.start();
  ASSERT_EQ(order.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(order[i], i);
}

TEST(IOLoop, CallLaterWaitsAtLeastItsDelay) {
  IOLoop loop;
  auto start = loop.time();
  TimePoint fired;
  loop.call_later(30ms, [&] {
    fired = loop.time();
    loop.stop();
  });
  loop.start();
  EXPECT_GE(fired - start, 30ms);
}

TEST(IOLoop, RemovedTimeoutDoesNotRun) {
  IOLoop loop;
  bool ran = false;
  auto handle = loop.call_later(1ms, [&] { ran = true; });
  loop.remove_timeout(handle);
  loop.remove_timeout(handle);  // removing twice is harmless
  loop.call_later(20ms, [&] { loop.stop(); });
  loop.start();
  EXPECT_FALSE(ran);
}

TEST(IOLoop, StaleHandleDoesNotCancelANewTimerInTheReusedSlot) {
  IOLoop loop;
  auto old_handle = loop.call_later(1ms, [] {});
  loop.remove_timeout(old_handle);
  bool ran = false;
  loop.call_later(1ms, [&] {
    ran = true;
    loop.stop();
  });  // reuses the freed slot
  loop.remove_timeout(old_handle);
  Watchdog watchdog(loop, 5s);
  loop.start();
  EXPECT_TRUE(ran);
}

TEST(IOLoop, TimerRemovedByEarlierCallbackInSameIterationDoesNotRun) {
  IOLoop loop;
  bool ran = false;
  auto deadline = loop.time() + 10ms;
  TimeoutHandle second;
  loop.call_at(deadline, [&] { loop.remove_timeout(second); });
  second = loop.call_at(deadline, [&] { ran = true; });
  loop.call_at(deadline + 10ms, [&] { loop.stop(); });
  loop.start();
  EXPECT_FALSE(ran);
}

TEST(IOLoop, CancelledTimersStayInHeapUntilPoppedOrCompacted) {
  IOLoop loop;
  std::vector<TimeoutHandle> handles;
  for (int i = 0; i < 2000; ++i) handles.push_back(loop.call_later(1h, [] {}));
  // Cancel the latest ones: cancelled entries at the head of the heap are popped anyway.
  for (int i = 1400; i < 2000; ++i) loop.remove_timeout(handles[i]);
  EXPECT_EQ(loop.pending_timers(), 1400u);
  EXPECT_EQ(loop.timer_heap_size(), 2000u);  // lazy: nothing removed yet
  loop.add_callback([&] { loop.stop(); });
  loop.start();
  // 600 > 512 but not more than half of 2000: still no compaction.
  EXPECT_EQ(loop.timer_heap_size(), 2000u);
}

TEST(IOLoop, CancelledTimersAtTheHeadArePoppedLazily) {
  IOLoop loop;
  std::vector<TimeoutHandle> handles;
  for (int i = 0; i < 100; ++i) handles.push_back(loop.call_later(1h, [] {}));
  for (int i = 0; i < 10; ++i) loop.remove_timeout(handles[i]);  // the earliest ten
  EXPECT_EQ(loop.timer_heap_size(), 100u);
  loop.add_callback([&] { loop.stop(); });
  loop.start();
  EXPECT_EQ(loop.timer_heap_size(), 90u);
}

TEST(IOLoop, HeapIsCompactedWhenCancellationsExceedThresholdAndHalf) {
  IOLoop loop;
  std::vector<TimeoutHandle> handles;
  for (int i = 0; i < 1000; ++i) handles.push_back(loop.call_later(1h, [] {}));
  for (int i = 400; i < 1000; ++i) loop.remove_timeout(handles[i]);
  EXPECT_EQ(loop.timer_heap_size(), 1000u);
  loop.add_callback([&] { loop.stop(); });
  loop.start();
  EXPECT_EQ(loop.timer_heap_size(), 400u);
  EXPECT_EQ(loop.pending_timers(), 400u);
}

TEST(IOLoop, FewCancellationsAreNotCompacted) {
  IOLoop loop;
  std::vector<TimeoutHandle> handles;
  for (int i = 0; i < 600; ++i) handles.push_back(loop.call_later(1h, [] {}));
  for (int i = 100; i < 600; ++i) loop.remove_timeout(handles[i]);  // > half, but not > 512
  loop.add_callback([&] { loop.stop(); });
  loop.start();
  EXPECT_EQ(loop.timer_heap_size(), 600u);
}

TEST(IOLoop, HandlerGetsReadEventsUntilRemoved) {
  IOLoop loop;
  SocketPair pair;
  Watchdog watchdog(loop, 5s);
  int calls = 0;
  loop.add_handler(pair.fds[0], [&](int fd, uint32_t events) {
    EXPECT_EQ(fd, pair.fds[0]);
    EXPECT_TRUE(events & IOLoop::READ);
    ++calls;
    char buf[8];
    EXPECT_EQ(::read(fd, buf, sizeof buf), 1);
    loop.remove_handler(fd);
    loop.call_later(20ms, [&] { loop.stop(); });
    EXPECT_EQ(::write(pair.fds[1], "y", 1), 1);  // readable again, but no longer watched
  }, IOLoop::READ);
  ASSERT_EQ(::write(pair.fds[1], "x", 1), 1);
  loop.start();
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(watchdog.fired);
}

TEST(IOLoop, UpdateHandlerSwitchesToWriteEvents) {
  IOLoop loop;
  SocketPair pair;
  Watchdog watchdog(loop, 5s);
  std::vector<uint32_t> seen;
  loop.add_handler(pair.fds[0], [&](int fd, uint32_t events) {
    seen.push_back(events);
    loop.remove_handler(fd);
    loop.stop();
  }, IOLoop::READ);
  loop.update_handler(pair.fds[0], IOLoop::WRITE);  // nothing to read, but writable
  loop.start();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0] & IOLoop::WRITE);
  EXPECT_FALSE(seen[0] & IOLoop::READ);
}

// Makes the first fds of a and b readable, with `handler` for both, and runs the loop until
// a handler stops it: the two are reported in one epoll batch.
void run_with_both_readable(IOLoop& loop, SocketPair& a, SocketPair& b, const Handler& handler) {
  loop.add_handler(a.fds[0], handler, IOLoop::READ);
  loop.add_handler(b.fds[0], handler, IOLoop::READ);
  ASSERT_EQ(::write(a.fds[1], "x", 1), 1);
  ASSERT_EQ(::write(b.fds[1], "x", 1), 1);
  loop.start();
}

TEST(IOLoop, EventForFdRemovedEarlierInSameBatchIsSkipped) {
  IOLoop loop;
  SocketPair a, b;
  Watchdog watchdog(loop, 5s);
  int calls = 0;
  // Both fds are readable before the loop polls, so both events arrive in one batch;
  // whichever handler runs first removes the other one.
  auto handler = [&](int fd, uint32_t) {
    ++calls;
    int other = fd == a.fds[0] ? b.fds[0] : a.fds[0];
    loop.remove_handler(other);
    loop.remove_handler(fd);
    loop.call_later(20ms, [&] { loop.stop(); });
  };
  run_with_both_readable(loop, a, b, handler);
  EXPECT_EQ(calls, 1);
}

// Two fds readable in one batch: what a handler queues with add_callback_after_handler
// runs before the other handler (and what that queues in turn, too); add_callback's
// waits for the next iteration, after both.
TEST(IOLoop, CallbacksQueuedAfterAHandlerRunBeforeTheNextHandlerOfTheBatch) {
  IOLoop loop;
  SocketPair a, b;
  Watchdog watchdog(loop, 5s);
  std::vector<std::string> order;
  auto handler = [&](int fd, uint32_t) {
    const std::string name = fd == a.fds[0] ? "a" : "b";
    loop.remove_handler(fd);
    order.push_back(name);
    loop.add_callback([&order, name] { order.push_back(name + " next iteration"); });
    loop.add_callback_after_handler([&order, &loop, name] {
      order.push_back(name + " after");
      loop.add_callback_after_handler([&order, name] { order.push_back(name + " after, queued by after"); });
    });
    if (order.size() > 3) loop.call_later(20ms, [&] { loop.stop(); });
  };
  run_with_both_readable(loop, a, b, handler);
  ASSERT_FALSE(watchdog.fired);
  ASSERT_EQ(order.size(), 8u);
  const std::string first = order[0], second = order[3];
  EXPECT_NE(first, second);
  EXPECT_EQ(order, (std::vector<std::string>{first, first + " after", first + " after, queued by after", second,
                                             second + " after", second + " after, queued by after",
                                             first + " next iteration", second + " next iteration"}));
}

// Held writes (HTTP1Connection's corked responses) are flushed once the handler that held
// them and everything it queued with add_callback_after_handler have run, before the next
// handler of the batch; what a flush queues runs before that handler too. Outside a
// handler there is nothing to hold.
struct RecordingHeldWrites final : IOLoop::HeldWrites {
  RecordingHeldWrites(std::vector<std::string>& order, std::string name) : order(order), name(std::move(name)) {}
  void flush_held_writes() override {
    order.push_back(name + " flushed");
    if (on_flush) on_flush();
  }
  std::vector<std::string>& order;
  std::string name;
  std::function<void()> on_flush;
};

TEST(IOLoop, HeldWritesAreFlushedAfterTheHandlersCallbacksBeforeTheNextHandler) {
  IOLoop loop;
  SocketPair a, b;
  Watchdog watchdog(loop, 5s);
  std::vector<std::string> order;
  RecordingHeldWrites held_a(order, "a"), held_b(order, "b");
  for (RecordingHeldWrites* held : {&held_a, &held_b}) {
    held->on_flush = [&order, &loop, name = held->name] {
      loop.add_callback_after_handler([&order, name] { order.push_back(name + " after, queued by the flush"); });
    };
  }
  EXPECT_FALSE(loop.holding_writes());
  auto handler = [&](int fd, uint32_t) {
    const bool is_a = fd == a.fds[0];
    const std::string name = is_a ? "a" : "b";
    EXPECT_TRUE(loop.holding_writes());
    loop.remove_handler(fd);
    order.push_back(name);
    loop.add_callback_after_handler([&order, &loop, &held_a, &held_b, is_a, name] {
      order.push_back(name + " after");
      loop.flush_after_handler(is_a ? held_a : held_b);  // held by a callback of the handler: still this batch's
    });
    if (order.size() > 3) loop.call_later(20ms, [&] { loop.stop(); });
  };
  run_with_both_readable(loop, a, b, handler);
  ASSERT_FALSE(watchdog.fired);
  ASSERT_EQ(order.size(), 8u);
  const std::string first = order[0], second = order[4];
  EXPECT_NE(first, second);
  EXPECT_EQ(order, (std::vector<std::string>{first, first + " after", first + " flushed",
                                             first + " after, queued by the flush", second, second + " after",
                                             second + " flushed", second + " after, queued by the flush"}));
}

// An object cancelled before its flush is not called: one destroyed by the handler that
// held it, or by another object's flush earlier in the same batch.
TEST(IOLoop, CancelledHeldWritesAreNotFlushed) {
  IOLoop loop;
  SocketPair pair;
  Watchdog watchdog(loop, 5s);
  std::vector<std::string> order;
  RecordingHeldWrites gone(order, "gone"), first(order, "first"), second(order, "second"), kept(order, "kept");
  first.on_flush = [&] { loop.cancel_flush(second); };
  loop.add_handler(pair.fds[0], [&](int fd, uint32_t) {
    loop.remove_handler(fd);
    loop.flush_after_handler(gone);
    loop.flush_after_handler(first);
    loop.flush_after_handler(second);
    loop.flush_after_handler(kept);
    loop.cancel_flush(gone);
    loop.call_later(20ms, [&] { loop.stop(); });
  }, IOLoop::READ);
  ASSERT_EQ(::write(pair.fds[1], "x", 1), 1);
  loop.start();
  ASSERT_FALSE(watchdog.fired);
  EXPECT_EQ(order, (std::vector<std::string>{"first flushed", "kept flushed"}));
}

TEST(IOLoop, CallbackAfterHandlerQueuedOutsideAHandlerWaitsForTheNextIteration) {
  IOLoop loop;
  Watchdog watchdog(loop, 5s);
  std::vector<int> order;
  loop.add_callback([&] {
    loop.add_callback_after_handler([&] { order.push_back(2); });
    order.push_back(1);
  });
  loop.add_callback([&] { order.push_back(0); });
  loop.call_later(20ms, [&] { loop.stop(); });
  loop.start();
  EXPECT_EQ(order, (std::vector<int>{1, 0, 2}));
}

TEST(IOLoop, HandlerMayRemoveItselfAndRegisterManyOthers) {
  IOLoop loop;
  SocketPair pair;
  Watchdog watchdog(loop, 5s);
  std::vector<int> extra;
  bool done = false;
  loop.add_handler(pair.fds[0], [&](int fd, uint32_t) {
    loop.remove_handler(fd);
    // Growing the handler table while this handler runs must not disturb it.
    for (int i = 0; i < 64; ++i) {
      int d = dup(pair.fds[1]);
      extra.push_back(d);
      loop.add_handler(d, [](int, uint32_t) {}, IOLoop::WRITE);
    }
    done = (fd == pair.fds[0]);
    loop.stop();
  }, IOLoop::READ);
  ASSERT_EQ(::write(pair.fds[1], "x", 1), 1);
  loop.start();
  EXPECT_TRUE(done);
  for (int d : extra) {
    loop.remove_handler(d);
    ::close(d);
  }
}

TEST(IOLoop, AddingAnFdTwiceIsAnError) {
  IOLoop loop;
  SocketPair pair;
  loop.add_handler(pair.fds[0], [](int, uint32_t) {}, IOLoop::READ);
  EXPECT_THROW(loop.add_handler(pair.fds[0], [](int, uint32_t) {}, IOLoop::READ), std::logic_error);
  EXPECT_THROW(loop.update_handler(pair.fds[1], IOLoop::READ), std::logic_error);
  loop.remove_handler(pair.fds[0]);
}

TEST(IOLoop, ThrowingCallbackIsLoggedAndLoopCarriesOn) {
  IOLoop loop;
  bool after = false;
  loop.add_callback([] { throw std::runtime_error("boom in callback"); });
  loop.add_callback([&] {
    after = true;
    loop.stop();
  });
  testing::internal::CaptureStderr();
  loop.start();
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_TRUE(after);
  EXPECT_NE(err.find("Exception in callback"), std::string::npos) << err;
  EXPECT_NE(err.find("boom in callback"), std::string::npos) << err;
}

TEST(IOLoop, ThrowingHandlerIsLoggedWithItsFd) {
  IOLoop loop;
  SocketPair pair;
  Watchdog watchdog(loop, 5s);
  loop.add_handler(pair.fds[0], [&](int fd, uint32_t) {
    loop.remove_handler(fd);
    loop.call_later(10ms, [&] { loop.stop(); });
    throw std::runtime_error("boom in handler");
  }, IOLoop::READ);
  ASSERT_EQ(::write(pair.fds[1], "x", 1), 1);
  testing::internal::CaptureStderr();
  loop.start();
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_FALSE(watchdog.fired);
  EXPECT_NE(err.find("I/O handler for fd " + std::to_string(pair.fds[0])), std::string::npos) << err;
  EXPECT_NE(err.find("boom in handler"), std::string::npos) << err;
}

TEST(IOLoop, ThrowingTimerIsLoggedAndLaterTimersRun) {
  IOLoop loop;
  bool later = false;
  loop.call_later(1ms, [] { throw std::runtime_error("boom in timer"); });
  loop.call_later(5ms, [&] {
    later = true;
    loop.stop();
  });
  testing::internal::CaptureStderr();
  loop.start();
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_TRUE(later);
  EXPECT_NE(err.find("boom in timer"), std::string::npos);
}

namespace {
void ignore_signal(int) {}
}  // namespace

TEST(IOLoop, SignalInterruptingPollIsTolerated) {
  struct sigaction action {};
  action.sa_handler = ignore_signal;  // no SA_RESTART: epoll_wait fails with EINTR
  struct sigaction previous {};
  ASSERT_EQ(sigaction(SIGUSR1, &action, &previous), 0);
  IOLoop loop;
  Watchdog watchdog(loop, 10s);
  pthread_t loop_thread = pthread_self();
  bool stopped_by_callback = false;
  std::thread other([&] {
    std::this_thread::sleep_for(50ms);
    pthread_kill(loop_thread, SIGUSR1);
    std::this_thread::sleep_for(50ms);
    loop.add_callback([&] {
      stopped_by_callback = true;
      loop.stop();
    });
  });
  EXPECT_NO_THROW(loop.start());
  other.join();
  sigaction(SIGUSR1, &previous, nullptr);
  EXPECT_TRUE(stopped_by_callback);
}

TEST(IOLoop, RunSyncReturnsTheResult) {
  IOLoop loop;
  int value = loop.run_sync([&] {
    Future<int> f;
    loop.call_later(1ms, [f]() mutable { f.set_result(42); });
    return f;
  });
  EXPECT_EQ(value, 42);
}

TEST(IOLoop, RunSyncRethrowsTheFailure) {
  IOLoop loop;
  EXPECT_THROW(loop.run_sync([&] {
    Future<void> f;
    f.set_exception(std::runtime_error("failed"));
    return f;
  }),
               std::runtime_error);
}

TEST(IOLoop, RunSyncTimesOut) {
  IOLoop loop;
  Future<int> never;
  auto start = Clock::now();
  EXPECT_THROW(loop.run_sync([&] { return never; }, 20ms), TimeoutError);
  EXPECT_GE(Clock::now() - start, 20ms);
}

TEST(IOLoop, CurrentIsPerThread) {
  IOLoop loop;
  EXPECT_EQ(&IOLoop::current(), &loop);
  IOLoop* other_current = nullptr;
  std::thread other([&] { other_current = &IOLoop::current(); });
  other.join();
  EXPECT_NE(other_current, nullptr);
  EXPECT_NE(other_current, &loop);
}

TEST(IOLoop, CloseReleasesItsDescriptors) {
  int before = open_fd_count();
  {
    IOLoop loop;
    EXPECT_EQ(open_fd_count(), before + 2);  // epoll + eventfd
    loop.call_later(1h, [] {});
    loop.add_callback([] {});
  }
  EXPECT_EQ(open_fd_count(), before);
}

TEST(IOLoop, CloseDropsQueuedCallbacksAndTimersWithoutRunning) {
  bool ran = false;
  auto owner = std::make_shared<int>(1);
  std::weak_ptr<int> watch = owner;
  {
    IOLoop loop;
    loop.add_callback([&ran, owner] { ran = true; });
    loop.call_later(1ms, [&ran, owner] { ran = true; });
    owner.reset();
    loop.close();
    loop.add_callback([&] { ran = true; });  // dropped: the loop is closed
    EXPECT_TRUE(watch.expired());
  }
  EXPECT_FALSE(ran);
}

TEST(IOLoop, PosterDropsCallbacksOnceTheLoopIsClosed) {
  std::shared_ptr<LoopPoster> poster;
  {
    IOLoop loop;
    poster = loop.poster();
    EXPECT_TRUE(poster->post([] {}));
  }
  EXPECT_FALSE(poster->post([] { FAIL() << "must not run"; }));
}

namespace {

// An FdHandler that records the fds it was called for and stops the loop.
struct RecordingHandler final : IOLoop::FdHandler {
  IOLoop& loop;
  std::vector<int> calls;
  explicit RecordingHandler(IOLoop& l) : loop(l) {}
  void on_fd_events(int fd, uint32_t events) override {
    if (events & IOLoop::READ) calls.push_back(fd);
    loop.stop();
  }
};

}  // namespace

TEST(IOLoop, AnObjectHandlerIsCalledForItsFd) {
  IOLoop loop;
  SocketPair pair;
  RecordingHandler handler(loop);
  loop.add_handler(pair.fds[0], handler, IOLoop::READ);
  ASSERT_EQ(::write(pair.fds[1], "x", 1), 1);
  Watchdog watchdog(loop, 5s);
  loop.start();
  EXPECT_FALSE(watchdog.fired);
  EXPECT_EQ(handler.calls, std::vector<int>{pair.fds[0]});
  loop.remove_handler(pair.fds[0]);
}

TEST(IOLoop, ReplaceHandlerHandsARegisteredFdToAnotherHandler) {
  IOLoop loop;
  SocketPair pair;
  int old_calls = 0;
  loop.add_handler(pair.fds[0], [&](int, uint32_t) { ++old_calls; }, IOLoop::READ);
  RecordingHandler next(loop);
  loop.replace_handler(pair.fds[0], next);
  ASSERT_EQ(::write(pair.fds[1], "x", 1), 1);
  Watchdog watchdog(loop, 5s);
  loop.start();
  EXPECT_FALSE(watchdog.fired);
  EXPECT_EQ(old_calls, 0);
  EXPECT_EQ(next.calls, std::vector<int>{pair.fds[0]}) << "the READ interest stayed";
  // And back from one object to another, then removed: no further calls.
  RecordingHandler third(loop);
  loop.replace_handler(pair.fds[0], third);
  loop.remove_handler(pair.fds[0]);
  loop.call_later(20ms, [&] { loop.stop(); });
  loop.start();
  EXPECT_TRUE(third.calls.empty());
  EXPECT_THROW(loop.replace_handler(pair.fds[0], third), std::logic_error);
}

// What a handler taking a registration over reads: the READ / WRITE interest as last
// set, without the loop's own bits (ERROR, EDGE), and 0 once the fd is not registered.
TEST(IOLoop, RegisteredInterestIsTheReadWriteInterestAsLastSet) {
  IOLoop loop;
  SocketPair pair;
  EXPECT_EQ(loop.registered_interest(pair.fds[0]), 0u);
  EXPECT_EQ(loop.registered_interest(-1), 0u);
  RecordingHandler handler(loop);
  loop.add_handler(pair.fds[0], handler, IOLoop::READ | IOLoop::EDGE);
  EXPECT_EQ(loop.registered_interest(pair.fds[0]), IOLoop::READ);
  loop.update_handler(pair.fds[0], IOLoop::READ | IOLoop::WRITE | IOLoop::EDGE);
  EXPECT_EQ(loop.registered_interest(pair.fds[0]), IOLoop::READ | IOLoop::WRITE);
  loop.remove_handler(pair.fds[0]);
  EXPECT_EQ(loop.registered_interest(pair.fds[0]), 0u);
}

TEST(IOLoop, AHandlerReplacedWhileItRunsFinishesSafely) {
  IOLoop loop;
  SocketPair pair;
  RecordingHandler next(loop);
  int calls = 0;
  loop.add_handler(pair.fds[0], [&, token = std::make_shared<int>(7)](int fd, uint32_t) {
    ++calls;
    loop.replace_handler(fd, next);  // destroys this lambda's std::function after the batch
    EXPECT_EQ(*token, 7);
  }, IOLoop::READ);
  ASSERT_EQ(::write(pair.fds[1], "x", 1), 1);
  Watchdog watchdog(loop, 5s);
  loop.start();  // the first handler runs, then (level-triggered) the new one stops the loop
  EXPECT_FALSE(watchdog.fired);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(next.calls.size(), 1u);
  loop.remove_handler(pair.fds[0]);
}

// remove_handler_before_close makes no EPOLL_CTL_DEL: the registration stays until
// close(2) takes the socket out of the epoll set. The loop forgets the fd at once (no
// event reaches the old handler), and the fd's number can be registered again.
TEST(IOLoop, RemoveHandlerBeforeCloseLeavesTheEpollSetToClose) {
  IOLoop loop;
  SocketPair pair;
  const int fd = pair.fds[0];
  int old_calls = 0;
  loop.add_handler(fd, [&](int, uint32_t) { ++old_calls; }, IOLoop::READ | IOLoop::EDGE);
  ASSERT_EQ(epoll_watchers(fd), 1);
  loop.remove_handler_before_close(fd);
  EXPECT_EQ(epoll_watchers(fd), 1) << "no EPOLL_CTL_DEL was made";
  ASSERT_EQ(::write(pair.fds[1], "x", 1), 1);
  loop.call_later(20ms, [&] { loop.stop(); });
  loop.start();
  EXPECT_EQ(old_calls, 0) << "an event of the forgotten registration was delivered";
  ::close(fd);
  pair.fds[0] = -1;
  EXPECT_EQ(epoll_watchers(fd), 0) << "close(2) took it out";
  // The number comes back with the next socket: registering it works, and it is the new
  // handler that hears of it.
  SocketPair next;
  if (next.fds[0] != fd) {  // a lower number was free: put the socket on fd's
    ASSERT_EQ(::dup3(next.fds[0], fd, O_CLOEXEC), fd);
    ::close(next.fds[0]);
    next.fds[0] = fd;
  }
  RecordingHandler handler(loop);
  loop.add_handler(fd, handler, IOLoop::READ);
  ASSERT_EQ(::write(next.fds[1], "y", 1), 1);
  Watchdog watchdog(loop, 5s);
  loop.start();
  EXPECT_FALSE(watchdog.fired);
  EXPECT_EQ(handler.calls, std::vector<int>{fd});
  EXPECT_EQ(old_calls, 0);
  loop.remove_handler(fd);
  EXPECT_EQ(epoll_watchers(fd), 0) << "remove_handler makes the EPOLL_CTL_DEL";
}

// cached_time() is the time of the iteration: read after epoll_wait returned (and where
// due timers are looked for), not per call; outside a running loop it is the clock's.
TEST(IOLoop, CachedTimeIsTheIterationsAndMovesOnWithTheNext) {
  IOLoop loop;
  const TimePoint before_start = loop.cached_time();
  EXPECT_GE(loop.time(), before_start) << "outside a running loop: the clock";
  TimePoint first{}, again{}, fresh{}, later{};
  loop.add_callback([&] {
    first = loop.cached_time();
    const TimePoint spin_until = loop.time() + 3ms;
    while (loop.time() < spin_until) {
    }
    again = loop.cached_time();
    fresh = loop.time();
    loop.call_later(5ms, [&] {
      later = loop.cached_time();
      loop.stop();
    });
  });
  Watchdog watchdog(loop, 5s);
  loop.start();
  EXPECT_FALSE(watchdog.fired);
  EXPECT_GE(first, before_start);
  EXPECT_EQ(again, first) << "no clock read within the iteration";
  EXPECT_GE(fresh - first, 3ms);
  EXPECT_GE(later - fresh, 5ms) << "a later iteration has a later time (its timer was due)";
}

