// IOStream::read_some_to: a partial read whose outcome goes to a waiter object (a server
// connection's wait for its next request) instead of a future.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <system_error>

#include "squall/iostream.h"
#include "squall/task.h"

using namespace squall;
using namespace std::chrono_literals;

namespace {

constexpr auto kTimeout = 10s;

// Records what the stream hands it; stops the loop when called.
struct RecordingWaiter final : IOStream::ReadWaiter {
  IOLoop* loop = nullptr;
  std::string bytes;
  int done = 0;
  int failed = 0;
  void read_done(std::string_view b) override {
    bytes.append(b);
    ++done;
    if (loop) loop->stop();
  }
  void read_failed(const std::exception_ptr&) override {
    ++failed;
    if (loop) loop->stop();
  }
};

struct Pair {
  int ours = -1;
  int peer = -1;
  Pair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) throw std::system_error(errno, std::system_category());
    ours = fds[0];
    peer = fds[1];
  }
  ~Pair() { ::close(peer); }
  void send(std::string_view b) const { ASSERT_EQ(::write(peer, b.data(), b.size()), static_cast<ssize_t>(b.size())); }
};

void run_until_called(IOLoop& loop, RecordingWaiter& waiter) {
  waiter.loop = &loop;
  TimeoutHandle guard = loop.call_later(kTimeout, [&] { loop.stop(); });
  loop.start();
  loop.remove_timeout(guard);
}

// A stream over a socket pair, with a waiter.
class IOStreamWaiter : public testing::Test {
 protected:
  IOLoop loop;
  Pair p;
  RecordingWaiter waiter;  // outlives the stream: a read still pending is failed to it
  std::unique_ptr<IOStream> stream = std::make_unique<IOStream>(p.ours);
  void wait_readable() { stream->read_some_to(waiter, 16, IOStream::ReadStart::wait_readable); }
};

}  // namespace

TEST_F(IOStreamWaiter, BytesAlreadyThereAreHandedOverWithinTheCall) {
  p.send("GET / HTTP/1.1\r\n\r\n");
  stream->read_some_to(waiter, 1024, IOStream::ReadStart::try_socket);
  EXPECT_EQ(waiter.done, 1);
  EXPECT_EQ(waiter.bytes, "GET / HTTP/1.1\r\n\r\n");
  EXPECT_FALSE(stream->reading());
  EXPECT_EQ(stream->read_buffer_size(), 0u) << "the lent bytes are dropped once the waiter took them";
}

TEST_F(IOStreamWaiter, BytesThatArriveLaterAreHandedOverByTheHandlerAtMostMaxBytes) {
  stream->read_some_to(waiter, 4, IOStream::ReadStart::wait_readable);
  EXPECT_EQ(waiter.done, 0);
  EXPECT_TRUE(stream->reading());
  p.send("abcdefgh");
  run_until_called(loop, waiter);
  EXPECT_EQ(waiter.done, 1);
  EXPECT_EQ(waiter.bytes, "abcd");
  EXPECT_EQ(loop.run_sync([&] { return stream->read_bytes(4); }, kTimeout), "efgh") << "the rest stays buffered";
}

TEST_F(IOStreamWaiter, ClosingTheStreamTellsTheWaiterOnce) {
  wait_readable();
  stream->close();
  EXPECT_EQ(waiter.failed, 1);
  stream.reset();
  EXPECT_EQ(waiter.failed, 1);
  EXPECT_EQ(waiter.done, 0);
}

TEST_F(IOStreamWaiter, APeerThatLeavesFailsTheRead) {
  wait_readable();
  ::shutdown(p.peer, SHUT_WR);
  run_until_called(loop, waiter);
  EXPECT_EQ(waiter.failed, 1);
  EXPECT_EQ(waiter.done, 0);
}

// A waiter that goes away first cancels its read: it is not called, and the stream may
// read again.
TEST_F(IOStreamWaiter, ACancelledReadCallsNobody) {
  {
    RecordingWaiter gone;
    stream->read_some_to(gone, 16, IOStream::ReadStart::wait_readable);
    stream->cancel_read(gone);
  }
  EXPECT_FALSE(stream->reading());
  p.send("later");
  EXPECT_EQ(loop.run_sync([&] { return stream->read_bytes(5); }, kTimeout), "later");
  RecordingWaiter other;
  stream->cancel_read(other);  // not its read: nothing happens
}

TEST_F(IOStreamWaiter, ASecondReadWhileOneIsPendingIsAnError) {
  wait_readable();
  EXPECT_THROW(stream->read_some_to(waiter, 16, IOStream::ReadStart::wait_readable), std::logic_error);
  EXPECT_THROW((void)stream->read_bytes(1), std::logic_error);
}

TEST_F(IOStreamWaiter, AClosedStreamThrowsStreamClosedError) {
  stream->close();
  EXPECT_THROW(stream->read_some_to(waiter, 16, IOStream::ReadStart::try_socket), StreamClosedError);
  EXPECT_EQ(waiter.done + waiter.failed, 0);
}
