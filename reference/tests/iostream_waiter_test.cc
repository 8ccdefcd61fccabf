// IOStream::read_some_to: a partial read whose outcome goes to a waiter object (a server
// connection's wait for its next request) instead of a future; and the direct read into
// the room a waiter offers (ReadWaiter::offer_room) when the stream holds no bytes.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>

#include <memory>
#include <string>
#include <system_error>
#include <utility>

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

// ---- the direct read into a waiter's room ----------------------------------------------

namespace {

// Offers `room_size` bytes of its own buffer (none with 0); keeps what the stream filled.
struct RoomWaiter final : IOStream::ReadWaiter {
  explicit RoomWaiter(size_t room_size) : room_size(room_size) {}
  IOLoop* loop = nullptr;
  size_t room_size;
  std::string buffer;       // what came, through either path
  size_t room_at = 0;
  bool room_out = false;    // offered and not yet given back
  int offers = 0;
  int fills = 0;            // room_filled with bytes
  int empty_fills = 0;      // room_filled(0)
  int lent = 0;             // read_done
  int failed = 0;
  std::span<char> offer_room(size_t max_bytes) override {
    EXPECT_FALSE(room_out) << "offered twice without getting it back";
    ++offers;
    if (room_size == 0) return {};
    room_at = buffer.size();
    buffer.resize(room_at + std::min(room_size, max_bytes));
    room_out = true;
    return {buffer.data() + room_at, buffer.size() - room_at};
  }
  void room_filled(size_t got) override {
    EXPECT_TRUE(room_out) << "filled a room never offered";
    EXPECT_LE(got, buffer.size() - room_at);
    buffer.resize(room_at + got);
    room_out = false;
    if (got == 0) {
      ++empty_fills;
      return;
    }
    ++fills;
    if (loop) loop->stop();
  }
  void read_done(std::string_view b) override {
    buffer.append(b);
    ++lent;
    if (loop) loop->stop();
  }
  void read_failed(const std::exception_ptr&) override {
    if (room_out) buffer.resize(room_at);
    room_out = false;
    ++failed;
    if (loop) loop->stop();
  }
};

void run_until_called(IOLoop& loop, RoomWaiter& waiter) {
  waiter.loop = &loop;
  TimeoutHandle guard = loop.call_later(kTimeout, [&] { loop.stop(); });
  loop.start();
  loop.remove_timeout(guard);
  waiter.loop = nullptr;
}

// An edge-triggered stream (a server's accepted socket) over its own socket pair, which it
// alone holds (see IOStream::NonBlockingSocket).
struct EdgeStream {
  IOLoop loop;
  Pair p;
  std::unique_ptr<IOStream> stream;
  EdgeStream() {
    ::fcntl(p.ours, F_SETFL, ::fcntl(p.ours, F_GETFL) | O_NONBLOCK);
    stream = std::make_unique<IOStream>(p.ours, IOStreamOptions{}, &loop,
                                        IOStream::NonBlockingSocket{.edge_triggered = true});
  }
};

// A transport over the plain socket that shows every byte upper-cased: what the direct
// read takes must come through the read_from_fd seam (as SSLIOStream's records do).
class UpperCaseStream final : public IOStream {
 public:
  using IOStream::IOStream;
  bool close_within_read = false;  // as a transport that fails (a bad TLS record) does

 protected:
  ssize_t read_from_fd(iovec* iov, int iovcnt) override {
    if (close_within_read) {
      close(std::make_exception_ptr(std::runtime_error("bad record")));
      errno = EIO;
      return -1;
    }
    const ssize_t n = IOStream::read_from_fd(iov, iovcnt);
    for (ssize_t i = 0; i < n && iovcnt == 1; ++i) {
      char& c = static_cast<char*>(iov[0].iov_base)[i];
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    return n;
  }
};

}  // namespace

TEST_F(IOStreamWaiter, DirectBytesGoStraightIntoTheOfferedRoom) {
  RoomWaiter room(64);
  p.send("GET / HTTP/1.1\r\n\r\n");
  stream->read_some_to(room, 1024, IOStream::ReadStart::try_socket);
  EXPECT_EQ(room.offers, 1);
  EXPECT_EQ(room.fills, 1);
  EXPECT_EQ(room.lent, 0) << "not lent from the stream's buffer";
  EXPECT_EQ(room.buffer, "GET / HTTP/1.1\r\n\r\n") << "the room trimmed to what came";
  EXPECT_FALSE(stream->reading());
  EXPECT_EQ(stream->read_buffer_size(), 0u);
}

TEST_F(IOStreamWaiter, DirectReadTakesAtMostMaxBytesAndLeavesTheRestInTheSocket) {
  RoomWaiter room(64);
  p.send("abcdefgh");
  stream->read_some_to(room, 3, IOStream::ReadStart::try_socket);
  EXPECT_EQ(room.buffer, "abc");
  EXPECT_EQ(stream->read_buffer_size(), 0u);
  EXPECT_EQ(loop.run_sync([&] { return stream->read_bytes(5); }, kTimeout), "defgh");
}

TEST_F(IOStreamWaiter, DirectReadThatFindsNothingGivesTheRoomBackAndWaits) {
  RoomWaiter room(64);
  stream->read_some_to(room, 1024, IOStream::ReadStart::try_socket);
  EXPECT_EQ(room.empty_fills, 1);
  EXPECT_TRUE(room.buffer.empty()) << "the room given back";
  EXPECT_TRUE(stream->reading());
  p.send("later");
  run_until_called(loop, room);
  EXPECT_EQ(room.offers, 2);
  EXPECT_EQ(room.fills, 1);
  EXPECT_EQ(room.buffer, "later");
}

TEST_F(IOStreamWaiter, BytesTheStreamHoldsAreLentNotReadAgain) {
  RoomWaiter room(64);
  p.send("abcdefgh");
  EXPECT_EQ(loop.run_sync([&] { return stream->read_bytes(4); }, kTimeout), "abcd");
  ASSERT_EQ(stream->read_buffer_size(), 4u) << "the first read took all eight";
  stream->read_some_to(room, 1024, IOStream::ReadStart::try_socket);
  EXPECT_EQ(room.offers, 0) << "no room asked for while the stream holds bytes";
  EXPECT_EQ(room.lent, 1);
  EXPECT_EQ(room.buffer, "efgh");
}

TEST_F(IOStreamWaiter, AWaiterThatOffersNoRoomIsLentTheBytes) {
  RoomWaiter none(0);
  p.send("abc");
  stream->read_some_to(none, 1024, IOStream::ReadStart::try_socket);
  EXPECT_EQ(none.offers, 1);
  EXPECT_EQ(none.lent, 1);
  EXPECT_EQ(none.buffer, "abc");
}

TEST_F(IOStreamWaiter, DirectReadAtTheEndOfTheStreamFailsTheWaitAndClosesTheStream) {
  RoomWaiter room(64);
  stream->read_some_to(room, 1024, IOStream::ReadStart::try_socket);
  ::shutdown(p.peer, SHUT_WR);
  run_until_called(loop, room);
  EXPECT_EQ(room.failed, 1);
  EXPECT_EQ(room.fills, 0);
  EXPECT_EQ(room.empty_fills, 2) << "the first read found nothing, the second the end";
  EXPECT_TRUE(room.buffer.empty());
  EXPECT_TRUE(stream->closed());
  EXPECT_EQ(stream->error(), nullptr) << "an orderly end";
}

TEST_F(IOStreamWaiter, DirectReadAtTheEndWithHalfCloseFailsTheWaitAndKeepsWriting) {
  IOStreamOptions half;
  half.allow_half_close = true;
  auto own = std::make_unique<IOStream>(::dup(p.ours), half);
  RoomWaiter room(64);
  ::shutdown(p.peer, SHUT_WR);
  own->read_some_to(room, 1024, IOStream::ReadStart::try_socket);
  EXPECT_EQ(room.failed, 1);
  EXPECT_EQ(room.fills, 0);
  EXPECT_TRUE(room.buffer.empty());
  EXPECT_FALSE(own->closed()) << "only the read side ended";
  EXPECT_FALSE(own->reading());
  own->write(std::string_view("still writing"));
  char got[32] = {};
  EXPECT_EQ(::read(p.peer, got, sizeof got), 13);
}

// A Unix socket closed with bytes it never read resets its peer (ECONNRESET), as a TCP
// peer that aborts does.
TEST_F(IOStreamWaiter, AResetDuringADirectReadFailsTheWaitWithTheError) {
  RoomWaiter room(64);
  stream->read_some_to(room, 1024, IOStream::ReadStart::wait_readable);
  stream->write(std::string_view("never read"));
  ::close(std::exchange(p.peer, -1));
  run_until_called(loop, room);
  EXPECT_EQ(room.failed, 1);
  EXPECT_EQ(room.fills, 0);
  EXPECT_TRUE(room.buffer.empty());
  ASSERT_TRUE(stream->closed());
  ASSERT_NE(stream->error(), nullptr);
  try {
    std::rethrow_exception(stream->error());
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ECONNRESET);
  }
}

// Edge-triggered, a read that filled its room may have left bytes that no new event will
// report: the stream must try the socket before it waits, and must not be handed over.
TEST(IOStreamWaiterEdge, ADirectReadThatFillsItsRoomLeavesTheSocketMaybeReadable) {
  EdgeStream e;
  RoomWaiter room(8);
  e.stream->read_some_to(room, 1024, IOStream::ReadStart::wait_readable);  // registers, waits
  e.p.send("abcdefghijkl");
  run_until_called(e.loop, room);
  EXPECT_EQ(room.buffer, "abcdefgh");
  EXPECT_FALSE(e.stream->can_hand_over()) << "bytes may still wait in the socket";
  e.stream->read_some_to(room, 1024, IOStream::ReadStart::wait_readable);
  EXPECT_EQ(room.buffer, "abcdefghijkl") << "read at once: no event will tell of them";
  EXPECT_TRUE(e.stream->can_hand_over()) << "a short read found the socket empty";
}

TEST(IOStreamWaiterEdge, ADirectReadThatFillsExactlyItsRoomThenMoreBytesLaterReadsBoth) {
  EdgeStream e;
  RoomWaiter room(8);
  e.stream->read_some_to(room, 1024, IOStream::ReadStart::wait_readable);
  e.p.send("abcdefgh");
  run_until_called(e.loop, room);
  EXPECT_FALSE(e.stream->can_hand_over());
  e.stream->read_some_to(room, 1024, IOStream::ReadStart::wait_readable);
  EXPECT_EQ(room.empty_fills, 1) << "tried the socket at once, found it empty";
  EXPECT_TRUE(e.stream->can_hand_over());
  e.p.send("ij");
  run_until_called(e.loop, room);
  EXPECT_EQ(room.buffer, "abcdefghij");
}

TEST_F(IOStreamWaiter, DirectReadGoesThroughTheTransportSeam) {
  UpperCaseStream upper(::dup(p.ours));
  RoomWaiter room(64);
  p.send("get /");
  upper.read_some_to(room, 1024, IOStream::ReadStart::try_socket);
  EXPECT_EQ(room.fills, 1);
  EXPECT_EQ(room.buffer, "GET /");
}

TEST_F(IOStreamWaiter, ATransportThatClosesWithinTheDirectReadFailsTheWaitOnce) {
  UpperCaseStream upper(::dup(p.ours));
  upper.close_within_read = true;
  RoomWaiter room(64);
  p.send("abc");
  upper.read_some_to(room, 1024, IOStream::ReadStart::try_socket);
  EXPECT_EQ(room.failed, 1);
  EXPECT_EQ(room.fills + room.empty_fills, 0) << "no room_filled after read_failed";
  EXPECT_TRUE(room.buffer.empty());
  EXPECT_TRUE(upper.closed());
}
