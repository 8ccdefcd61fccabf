// StopSignalWatcher: SIGTERM and SIGINT are read on the loop, logged, and run the stop
// callback. Its own test binary: blocking the signals must not meet other tests' threads.
#include "squall/stop_signals.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <string>

using namespace squall;
using namespace std::chrono_literals;

namespace {

// Raises `signal` from a loop callback and runs the loop until the watcher stops it (or
// a watchdog fires). Returns what was logged.
std::string stop_with(int signal, bool& stopped, bool& watchdog_fired) {
  block_stop_signals();
  IOLoop loop;
  StopSignalWatcher watcher(loop, [&] {
    stopped = true;
    loop.stop();
  });
  loop.call_later(5s, [&] {
    watchdog_fired = true;
    loop.stop();
  });
  loop.add_callback([signal] { raise(signal); });  // pending: blocked, read from the signalfd
  testing::internal::CaptureStderr();
  loop.start();
  return testing::internal::GetCapturedStderr();
}

}  // namespace

TEST(StopSignalWatcher, SigtermRunsTheStopCallbackOnTheLoop) {
  bool stopped = false, watchdog_fired = false;
  std::string log = stop_with(SIGTERM, stopped, watchdog_fired);
  EXPECT_TRUE(stopped);
  EXPECT_FALSE(watchdog_fired);
  EXPECT_NE(log.find("received Terminated, shutting down"), std::string::npos) << log;
}

TEST(StopSignalWatcher, SigintRunsTheStopCallbackToo) {
  bool stopped = false, watchdog_fired = false;
  stop_with(SIGINT, stopped, watchdog_fired);
  EXPECT_TRUE(stopped);
  EXPECT_FALSE(watchdog_fired);
}

TEST(StopSignalWatcher, ReleasesItsDescriptorAndHandler) {
  block_stop_signals();
  IOLoop loop;
  int probe[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, probe), 0);
  int lowest_free = probe[0];  // the number the watcher's signalfd will take
  close(probe[0]);
  close(probe[1]);
  {
    StopSignalWatcher watcher(loop, [] {});
    EXPECT_EQ(fcntl(lowest_free, F_GETFD), FD_CLOEXEC) << "the watcher holds this descriptor";
  }
  EXPECT_EQ(fcntl(lowest_free, F_GETFD), -1) << "closed with the watcher";
  // A new descriptor with the same number registers cleanly: no stale handler is left.
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
  ASSERT_EQ(pair[0], lowest_free);
  EXPECT_NO_THROW(loop.add_handler(pair[0], [](int, uint32_t) {}, IOLoop::READ));
  loop.remove_handler(pair[0]);
  close(pair[0]);
  close(pair[1]);
}

// ---- GracefulStop ------------------------------------------------------------------------------

namespace {

Task<void> drain_for(Duration delay, bool& finished) {
  co_await sleep(delay);
  finished = true;
}

Task<void> wait_forever(Future<void> never) { co_await never; }

}  // namespace

TEST(GracefulStop, FirstSignalRunsTheGracefulTaskAndStopsTheLoopWhenItCompletes) {
  block_stop_signals();
  IOLoop loop;
  bool finished = false, watchdog_fired = false;
  GracefulStop stop(loop, [&] { return drain_for(50ms, finished); });
  loop.call_later(5s, [&] {
    watchdog_fired = true;
    loop.stop();
  });
  loop.add_callback([] { raise(SIGTERM); });
  testing::internal::CaptureStderr();
  loop.start();
  testing::internal::GetCapturedStderr();
  EXPECT_TRUE(finished) << "the loop stopped before the graceful part was done";
  EXPECT_FALSE(watchdog_fired);
  EXPECT_TRUE(stop.stopping());
  EXPECT_FALSE(stop.forced());
}

TEST(GracefulStop, SecondSignalStopsTheLoopAtOnce) {
  block_stop_signals();
  IOLoop loop;
  Future<void> never;
  bool watchdog_fired = false;
  GracefulStop stop(loop, [&] { return wait_forever(never); });
  loop.call_later(5s, [&] {
    watchdog_fired = true;
    loop.stop();
  });
  loop.add_callback([] { raise(SIGTERM); });
  loop.call_later(50ms, [] { raise(SIGINT); });
  testing::internal::CaptureStderr();
  loop.start();
  std::string log = testing::internal::GetCapturedStderr();
  EXPECT_FALSE(watchdog_fired);
  EXPECT_TRUE(stop.forced());
  EXPECT_NE(log.find("received Interrupt, stopping now"), std::string::npos) << log;
}
