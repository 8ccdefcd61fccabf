// IOStream registered edge-triggered (a server's accepted plain sockets): the loop reports
// readiness only when it arises, so the stream must remember what it has not consumed.
// Each case is a way a wake-up could be lost; a lost one shows as a read or write that
// never completes (run_sync's timeout fails the test).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <system_error>

#include "squall/iostream.h"
#include "squall/task.h"
#include "open_fds.h"

using namespace squall;
using namespace std::chrono_literals;

namespace {

constexpr auto kTimeout = 10s;

struct EdgePair {
  int ours = -1;
  int peer = -1;
  EdgePair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
      throw std::system_error(errno, std::system_category());
    }
    ours = fds[0];
    peer = fds[1];
    ::fcntl(peer, F_SETFL, ::fcntl(peer, F_GETFL) & ~O_NONBLOCK);  // the test's side blocks
  }
  ~EdgePair() { ::close(peer); }
  std::unique_ptr<IOStream> stream(IOStreamOptions options = {}) const {
    return std::make_unique<IOStream>(ours, options, nullptr, IOStream::NonBlockingSocket{.edge_triggered = true});
  }
  void send(std::string_view bytes) const {
    ASSERT_EQ(::write(peer, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
};

// A read that finds nothing (so the stream registers), then `bytes` sent and read: the
// stream is registered and its socket empty afterwards.
std::string register_and_read(IOLoop& loop, IOStream& stream, const EdgePair& p, std::string_view bytes) {
  Future<std::string> read = stream.read_bytes(100, true);
  p.send(bytes);
  return loop.run_sync([&] { return read; }, kTimeout);
}

std::string read_when_readable(IOLoop& loop, IOStream& stream) {
  return loop.run_sync([&] { return stream.read_bytes(100, true, IOStream::ReadStart::wait_readable); }, kTimeout);
}

// Lets the loop run a few iterations (events are delivered) with nothing else to do.
void spin(IOLoop& loop) {
  loop.run_sync([]() -> Task<void> {
    for (int i = 0; i < 3; ++i) co_await sleep(1ms);
  });
}

// The peer reading everything the stream sends, on the loop, as fast as it comes: counts
// the bytes and keeps the last four.
struct PeerDrain {
  IOLoop& loop;
  int fd;
  size_t bytes = 0;
  std::string tail;
  PeerDrain(IOLoop& l, int peer) : loop(l), fd(peer) {
    loop.add_handler(fd, [this](int, uint32_t) {
      char chunk[65536];
      ssize_t n = ::recv(fd, chunk, sizeof chunk, MSG_DONTWAIT);
      if (n <= 0) return;
      bytes += static_cast<size_t>(n);
      tail.assign(chunk + (n > 4 ? n - 4 : 0), chunk + n);
    }, IOLoop::READ);
  }
  ~PeerDrain() { loop.remove_handler(fd); }
  void wait_for(size_t n) {
    loop.run_sync([&]() -> Task<void> {
      while (bytes < n) co_await sleep(1ms);
    }, kTimeout);
  }
};

}  // namespace

// A read that fills the whole chunk leaves bytes in the socket that no new event will
// report: the next reads must take them without waiting for one.
TEST(IOStreamEdge, BytesLeftAfterAFullReadAreReadWithoutANewEvent) {
  IOLoop loop;
  EdgePair p;
  IOStreamOptions small;
  small.read_chunk_size = 16;
  auto stream = p.stream(small);
  const std::string sent(100, 'x');
  p.send(sent);
  std::string got;
  while (got.size() < sent.size()) {
    got += loop.run_sync([&] { return stream->read_bytes(10, true, IOStream::ReadStart::wait_readable); }, kTimeout);
  }
  EXPECT_EQ(got, sent);
}

// The same for a waiter's reads (a server connection's wait for its next request), which
// go through the thread's scratch buffer when the stream holds nothing: each read that
// filled the chunk is followed by another without an event, and what a waiter did not take
// stays buffered for the next.
TEST(IOStreamEdge, AWaitersReadsThatFillTheChunkReadOnWithoutANewEvent) {
  struct Collecting final : IOStream::ReadWaiter {
    std::string bytes;
    int calls = 0;
    void read_done(std::string_view b) override {
      bytes.append(b);
      ++calls;
    }
    void read_failed(const std::exception_ptr&) override { ADD_FAILURE() << "the read failed"; }
  };
  IOLoop loop;
  EdgePair p;
  IOStreamOptions small;
  small.read_chunk_size = 16;
  auto stream = p.stream(small);
  std::string sent;
  for (int i = 0; i < 100; ++i) sent += static_cast<char>('a' + i % 26);
  p.send(sent);
  Collecting waiter;
  stream->read_some_to(waiter, 10, IOStream::ReadStart::wait_readable);  // registers: the event comes next
  for (int turn = 0; waiter.bytes.size() < sent.size() && turn < 100; ++turn) {
    if (waiter.calls == 0) {
      loop.run_sync([] { return sleep(1ms); }, kTimeout);
      continue;
    }
    const int before = waiter.calls;
    stream->read_some_to(waiter, 10, IOStream::ReadStart::wait_readable);
    ASSERT_EQ(waiter.calls, before + 1) << "bytes left in the socket or the buffer were not read at once";
  }
  EXPECT_EQ(waiter.bytes, sent);
  EXPECT_EQ(stream->read_buffer_size(), 0u);
}

// Bytes that arrive while no read is pending raise their one event then; the read that
// starts later must still find them.
TEST(IOStreamEdge, BytesThatArrivedWhileNotReadingAreFoundByTheNextRead) {
  IOLoop loop;
  EdgePair p;
  auto stream = p.stream();
  EXPECT_EQ(register_and_read(loop, *stream, p, "first"), "first");
  p.send("second");
  spin(loop);  // the event for "second" is delivered to a stream that is not reading
  EXPECT_EQ(read_when_readable(loop, *stream), "second");
}

// The peer's close reported while no read is pending: the next read fails rather than
// waiting for an event that already came.
TEST(IOStreamEdge, APeerCloseSeenWhileNotReadingFailsTheNextRead) {
  IOLoop loop;
  EdgePair p;
  auto stream = p.stream();
  EXPECT_EQ(register_and_read(loop, *stream, p, "only"), "only");
  ::shutdown(p.peer, SHUT_WR);
  spin(loop);
  EXPECT_THROW(read_when_readable(loop, *stream), StreamClosedError);
}

// The peer's close arriving together with its last bytes raises one event, and the short
// read that takes the bytes does not see the end: the loop's PEER_CLOSED must leave the
// stream reading on, so that the next read fails rather than waiting for an event that
// will not come.
TEST(IOStreamEdge, APeerCloseThatCameWithTheLastBytesFailsTheReadAfterThem) {
  IOLoop loop;
  EdgePair p;
  auto stream = p.stream();
  EXPECT_EQ(register_and_read(loop, *stream, p, "first"), "first");
  p.send("last");
  ::shutdown(p.peer, SHUT_WR);
  EXPECT_EQ(read_when_readable(loop, *stream), "last");
  EXPECT_THROW(read_when_readable(loop, *stream), StreamClosedError);
}

// A write larger than the socket takes completes once the peer drains it: the write that
// hit EAGAIN must be resumed by the WRITE event of the room freed later.
TEST(IOStreamEdge, AWriteThatFillsTheSocketCompletesWhenThePeerDrains) {
  IOLoop loop;
  EdgePair p;
  auto stream = p.stream();
  const std::string big(4 << 20, 'y');
  PeerDrain peer(loop, p.peer);
  loop.run_sync([&] { return stream->write(big + "done"); }, kTimeout);
  peer.wait_for(big.size() + 4);
  EXPECT_EQ(peer.bytes, big.size() + 4);
  EXPECT_EQ(peer.tail, "done");
}

// Interest in WRITE is registered only once a write has to wait (as nginx does): with it,
// every new connection is reported writable at once, and the kernel polls the socket
// for room it has no use for. A registered stream whose big write hits EAGAIN adds it
// (EPOLL_CTL_MOD reports room that came meanwhile) and keeps it; the write completes.
TEST(IOStreamEdge, WriteInterestIsAddedWhenAWriteFirstWaits) {
  using testing_support::epoll_interest;
  IOLoop loop;
  EdgePair p;
  auto stream = p.stream();
  EXPECT_EQ(register_and_read(loop, *stream, p, "ask"), "ask");
  EXPECT_EQ(epoll_interest(p.ours) & (EPOLLIN | EPOLLOUT | EPOLLET), unsigned{EPOLLIN | EPOLLET});
  loop.run_sync([&] { return stream->write("small answer"); }, kTimeout);
  EXPECT_EQ(epoll_interest(p.ours) & EPOLLOUT, 0u) << "a write the socket took at once registered WRITE";
  char small[12];
  ASSERT_EQ(::recv(p.peer, small, sizeof small, MSG_WAITALL), 12);
  const std::string big(4 << 20, 'z');
  Future<void> written = stream->write(big);
  EXPECT_FALSE(written.done());
  EXPECT_NE(epoll_interest(p.ours) & EPOLLOUT, 0u) << "a write that waits must be woken by room";
  PeerDrain peer(loop, p.peer);
  loop.run_sync([&] { return written; }, kTimeout);
  peer.wait_for(big.size());
  EXPECT_EQ(peer.bytes, big.size());
}

// A stream taking over a registration (a compacted idle connection woken) learns its
// interest from the loop: registered for READ alone, its first waiting write adds WRITE.
TEST(IOStreamEdge, AStreamTakingOverAReadOnlyRegistrationAddsWriteInterestWhenItWaits) {
  struct Parked final : IOLoop::FdHandler {
    void on_fd_events(int, uint32_t) override {}
  };
  IOLoop loop;
  EdgePair p;
  auto stream = p.stream();
  EXPECT_EQ(register_and_read(loop, *stream, p, "hello"), "hello");
  Parked record;
  const int fd = stream->hand_over_socket(record);
  stream.reset();
  IOStream back(fd, {}, loop, IOStream::TakeRegistration{});
  const std::string big(4 << 20, 'w');
  Future<void> written = back.write(big);
  EXPECT_NE(testing_support::epoll_interest(fd) & EPOLLOUT, 0u);
  PeerDrain peer(loop, p.peer);
  loop.run_sync([&] { return written; }, kTimeout);
  peer.wait_for(big.size());
  EXPECT_EQ(peer.bytes, big.size());
}

// Pipelined requests: what one event brought is consumed over several reads and writes
// in between, and what arrives next still wakes the stream.
TEST(IOStreamEdge, ReadsAndWritesInterleaveOverManyRoundsWithoutStalling) {
  IOLoop loop;
  EdgePair p;
  auto stream = p.stream();
  for (int round = 0; round < 50; ++round) {
    const std::string ask = "ask" + std::to_string(round) + ";";
    p.send(ask + ask);  // two per event
    for (int i = 0; i < 2; ++i) {
      EXPECT_EQ(loop.run_sync([&] { return stream->read_until(";"); }, kTimeout), ask);
      loop.run_sync([&] { return stream->write("ok;"); }, kTimeout);
    }
    char reply[6];
    ASSERT_EQ(::recv(p.peer, reply, sizeof reply, MSG_WAITALL), 6);
    EXPECT_EQ(std::string(reply, 6), "ok;ok;");
  }
}

// Counts the socket reads a stream makes, through the transport seam.
class ReadCountingStream final : public IOStream {
 public:
  using IOStream::IOStream;
  int reads = 0;

 protected:
  ssize_t read_from_fd(iovec* iov, int iovcnt) override {
    ++reads;
    return IOStream::read_from_fd(iov, iovcnt);
  }
};

// A new stream knows nothing of its socket yet: a read that may wait registers it and
// waits for the loop's report — no read that would find nothing (on a server, the
// client sends its request after accept(2) returned). Bytes already there when it
// registers are reported all the same; bytes sent later wake it.
TEST(IOStreamEdge, AFreshStreamRegistersBeforeItsFirstRead) {
  IOLoop loop;
  for (bool bytes_first : {false, true}) {
    EdgePair p;
    ReadCountingStream stream(p.ours, {}, nullptr, IOStream::NonBlockingSocket{.edge_triggered = true});
    if (bytes_first) p.send("early");
    Future<std::string> read = stream.read_bytes(100, true, IOStream::ReadStart::wait_readable);
    EXPECT_EQ(stream.reads, 0) << "the socket was read before the loop reported bytes";
    EXPECT_FALSE(read.done());
    EXPECT_EQ(testing_support::epoll_watchers(p.ours), 1) << "registered";
    if (!bytes_first) p.send("late");
    EXPECT_EQ(loop.run_sync([&] { return read; }, kTimeout), bytes_first ? "early" : "late");
    EXPECT_GE(stream.reads, 1);
  }
}

