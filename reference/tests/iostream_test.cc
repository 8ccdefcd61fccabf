// Behaviours of IOStream over real sockets (AF_UNIX socketpairs and TCP loopback): the
// four kinds of reads and their fragmentation, limits and errors; writes, flushing and
// broken peers; closing; connect; half-close; teardown with reads pending.
#include "squall/iostream.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <re2/re2.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "heap_in_use.h"
#include "squall/detail/small_pool.h"
#include "squall/log.h"
#include "squall/task.h"

using namespace squall;
using namespace std::chrono_literals;

namespace {

constexpr auto kTimeout = 10s;

struct Pair {
  int ours;
  int peer;
};

Pair socket_pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) throw std::system_error(errno, std::system_category());
  return {fds[0], fds[1]};
}

// A listening TCP socket on 127.0.0.1 with an ephemeral port.
struct Listener {
  int fd = -1;
  sockaddr_in address{};
  Listener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) throw std::system_error(errno, std::system_category());
    socklen_t length = sizeof address;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    ::listen(fd, 16);
  }
  ~Listener() { ::close(fd); }
  const sockaddr* addr() const { return reinterpret_cast<const sockaddr*>(&address); }
};

int tcp_socket() { return ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); }

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::system_error(errno, std::system_category(), "write_all");
    data.remove_prefix(static_cast<size_t>(n));
  }
}

std::string read_exact(int fd, size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, out.data() + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  out.resize(got);
  return out;
}

// Writes each piece after a short pause, so that each one reaches the stream in its
// own read event; then optionally closes (or half-closes) the peer.
enum class Then { nothing, close, shutdown_write };
Task<void> trickle(int fd, std::vector<std::string> pieces, Then then = Then::nothing) {
  for (const std::string& piece : pieces) {
    co_await sleep(2ms);
    write_all(fd, piece);
  }
  if (then == Then::close) ::close(fd);
  if (then == Then::shutdown_write) ::shutdown(fd, SHUT_WR);
}

std::vector<std::string> one_byte_each(std::string_view data) {
  std::vector<std::string> out;
  for (char c : data) out.emplace_back(1, c);
  return out;
}

std::string pattern_bytes(size_t n, uint32_t seed = 1) {
  std::string out(n, '\0');
  uint32_t x = seed;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    out[i] = static_cast<char>(x >> 24);
  }
  return out;
}

uint64_t fnv1a(std::string_view data, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : data) h = (h ^ c) * 1099511628211ull;
  return h;
}

template <typename E, typename F>
E expect_throws(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "unexpected exception type: " << e.what();
    throw;
  }
  ADD_FAILURE() << "no exception";
  throw std::runtime_error("no exception");
}

int system_error_code(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::system_error& e) {
    return e.code().value();
  } catch (...) {
  }
  return -1;
}

}  // namespace

// ---- read_bytes -------------------------------------------------------------------------

TEST(IOStream, ReadBytesReturnsExactlyTheRequestedCount) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  write_all(p.peer, "hello world");
  auto [first, second] = loop.run_sync([&]() -> Task<std::pair<std::string, std::string>> {
    std::string a = co_await stream.read_bytes(5);
    std::string b = co_await stream.read_bytes(6);
    co_return std::pair{a, b};
  }, kTimeout);
  EXPECT_EQ(first, "hello");
  EXPECT_EQ(second, " world");
  ::close(p.peer);
}

// A string handed back with recycle() holds the next read's result (no allocation); one
// too large to keep is not reused.
TEST(IOStream, ARecycledStringHoldsTheNextReadsResult) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  write_all(p.peer, "a request of some forty bytes, say this!");
  std::string spent;
  spent.reserve(1000);  // larger than anything kept before (at most 1 KiB is)
  const char* memory = spent.data();
  IOStream::recycle(std::move(spent));
  std::string got = loop.run_sync([&] { return stream.read_bytes(40); }, kTimeout);
  EXPECT_EQ(got, "a request of some forty bytes, say this!");
  EXPECT_EQ(got.data(), memory);

  std::string huge;
  huge.reserve(1 << 20);
  const char* huge_memory = huge.data();
  IOStream::recycle(std::move(huge));
  write_all(p.peer, "another request, forty bytes long, too..");
  got = loop.run_sync([&] { return stream.read_bytes(40); }, kTimeout);
  EXPECT_EQ(got, "another request, forty bytes long, too..");
  EXPECT_NE(got.data(), huge_memory);
  EXPECT_LT(got.capacity(), 1024u);
  ::close(p.peer);
}

// A stream's read buffer outlives it as a spare for the streams made next, a bounded
// number of them: thousands of streams gone, each with 1.8 KB buffered, keep no more than
// the spares' bound (256 of up to 2 KiB) of heap, not all their buffers.
TEST(IOStream, StreamsGoneKeepOnlyABoundedSpareOfTheirReadBuffers) {
  IOLoop loop;
  const std::string data(1800, 'x');
  // The peer sends its bytes and closes: the stream reads them, then the end, and closes
  // its socket with the bytes still buffered (the pending read fails).
  auto stream_with_bytes_buffered = [&] {
    Pair p = socket_pair();
    auto stream = std::make_unique<IOStream>(p.ours);
    write_all(p.peer, data);
    ::close(p.peer);
    stream->read_until("never sent").mark_retrieved();
    EXPECT_TRUE(stream->closed());
    EXPECT_EQ(stream->read_buffer_size(), data.size());
    return stream;
  };
  stream_with_bytes_buffered();  // the per-thread scratch buffer, made once
  detail::pool_trim();
  const size_t before = testing_support::heap_in_use();
  {
    std::vector<std::unique_ptr<IOStream>> streams;
    for (int i = 0; i < 2000; ++i) streams.push_back(stream_with_bytes_buffered());
    EXPECT_GT(testing_support::heap_in_use(), before + 2000 * data.size());  // while they live, they hold them
  }
  detail::pool_trim();  // the streams' own blocks: only the spares are left
  const size_t after = testing_support::heap_in_use();
  EXPECT_LT(after > before ? after - before : 0, 1024u * 1024u);  // 3.6 MB if every buffer stayed
}

// A stream taking the buffer of one gone shows only its own bytes.
TEST(IOStream, AStreamNeverShowsTheBytesOneGoneLeftInItsBuffer) {
  IOLoop loop;
  {
    Pair p = socket_pair();
    IOStream gone(p.ours);
    write_all(p.peer, std::string(900, 's'));
    gone.read_until("never sent").mark_retrieved();  // 900 bytes buffered, unread
    EXPECT_EQ(gone.read_buffer_size(), 900u);
    ::close(p.peer);
  }
  Pair p = socket_pair();
  IOStream stream(p.ours);
  EXPECT_EQ(stream.read_buffer_size(), 0u);
  write_all(p.peer, "ab");
  ::close(p.peer);
  EXPECT_EQ(loop.run_sync([&] { return stream.read_until_close(); }, kTimeout), "ab");
}

TEST(IOStream, ReadBytesWaitsUntilAllBytesHaveArrived) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  auto [data, rest] = loop.run_sync([&]() -> Task<std::pair<std::string, std::string>> {
    Task<void> writer = trickle(p.peer, {"ab", "cd", "efghij", "klm"});
    std::string got = co_await stream.read_bytes(10);
    co_await writer;
    co_return std::pair{got, co_await stream.read_bytes(3)};
  }, kTimeout);
  EXPECT_EQ(data, "abcdefghij");
  EXPECT_EQ(rest, "klm") << "the surplus is kept for the next read";
  ::close(p.peer);
}

TEST(IOStream, ReadBytesPartialReturnsAsSoonAsAnyBytesArriveAndAtMostN) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  auto results = loop.run_sync([&]() -> Task<std::vector<std::string>> {
    std::vector<std::string> out;
    Task<void> writer = trickle(p.peer, {"abc"});
    out.push_back(co_await stream.read_bytes(100, true));  // waits for the first bytes
    co_await writer;
    write_all(p.peer, "defghij");
    co_await sleep(5ms);
    out.push_back(co_await stream.read_bytes(4, true));  // at most 4
    out.push_back(co_await stream.read_bytes(100, true));
    co_return out;
  }, kTimeout);
  EXPECT_EQ(results, (std::vector<std::string>{"abc", "defg", "hij"}));
  ::close(p.peer);
}

TEST(IOStream, ReadBytesZeroCompletesImmediatelyWithEmptyString) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  Future<std::string> f = stream.read_bytes(0);
  ASSERT_TRUE(f.done());
  EXPECT_EQ(f.result(), "");
  EXPECT_FALSE(stream.reading());
  ::close(p.peer);
}

TEST(IOStream, ReadSatisfiableFromBufferCompletesSynchronously) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  write_all(p.peer, "one\ntwo\n");
  Future<std::string> first = stream.read_until("\n");  // reads the socket inline
  ASSERT_TRUE(first.done());
  EXPECT_EQ(first.result(), "one\n");
  Future<std::string> second = stream.read_until("\n");  // from the buffer
  ASSERT_TRUE(second.done());
  EXPECT_EQ(second.result(), "two\n");
  ::close(p.peer);
}

// ---- ReadStart::wait_readable (a keep-alive server between requests) -----------------------

// The socket is not tried at once: bytes already in it are taken on the loop's next turn
// (the READ interest is level-triggered), not inline.
TEST(IOStream, WaitReadableTakesSocketBytesFromTheLoopNotInline) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  write_all(p.peer, "GET /");
  Future<std::string> read = stream.read_bytes(100, true, IOStream::ReadStart::wait_readable);
  EXPECT_FALSE(read.done()) << "the socket was read inline";
  EXPECT_EQ(loop.run_sync([&] { return read; }, kTimeout), "GET /");
  // The default still reads at once.
  write_all(p.peer, "next");
  Future<std::string> inline_read = stream.read_bytes(100, true);
  ASSERT_TRUE(inline_read.done());
  EXPECT_EQ(inline_read.result(), "next");
  ::close(p.peer);
}

// Bytes the stream already holds (pipelined requests) are served at once.
TEST(IOStream, WaitReadableServesBufferedBytesAtOnce) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  write_all(p.peer, "one\ntwo\n");
  ASSERT_EQ(loop.run_sync([&] { return stream.read_until("\n"); }, kTimeout), "one\n");
  Future<std::string> rest = stream.read_bytes(100, true, IOStream::ReadStart::wait_readable);
  ASSERT_TRUE(rest.done());
  EXPECT_EQ(rest.result(), "two\n");
  ::close(p.peer);
}

// Bytes sent later, and a peer that hangs up instead, are both seen by the waiting read.
TEST(IOStream, WaitReadableSeesLateBytesAndAPeerClose) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  std::string late = loop.run_sync([&]() -> Task<std::string> {
    Task<void> writer = trickle(p.peer, {"late"});
    std::string got = co_await stream.read_bytes(100, true, IOStream::ReadStart::wait_readable);
    co_await writer;
    co_return got;
  }, kTimeout);
  EXPECT_EQ(late, "late");
  EXPECT_THROW(loop.run_sync([&]() -> Task<std::string> {
    Task<void> closer = trickle(p.peer, {""}, Then::close);  // closes after a pause
    std::string got = co_await stream.read_bytes(100, true, IOStream::ReadStart::wait_readable);
    co_await closer;
    co_return got;
  }, kTimeout),
               StreamClosedError);
  EXPECT_TRUE(stream.closed());
}

// A transport that buffers what it took from the socket (as TLS, whose library may hold
// decrypted bytes the socket no longer shows) is always read first.
class OwnTransportStream : public IOStream {
 public:
  using IOStream::IOStream;

 protected:
  ssize_t read_from_fd(iovec* iov, int iovcnt) override { return IOStream::read_from_fd(iov, iovcnt); }
  bool socket_shows_unread_bytes() const override { return false; }
};

TEST(IOStream, WaitReadableStillReadsAtOnceThroughATransportOfItsOwn) {
  IOLoop loop;
  Pair p = socket_pair();
  OwnTransportStream stream(p.ours);
  write_all(p.peer, "held");
  Future<std::string> read = stream.read_bytes(100, true, IOStream::ReadStart::wait_readable);
  ASSERT_TRUE(read.done());
  EXPECT_EQ(read.result(), "held");
  ::close(p.peer);
}

// ---- read_until ---------------------------------------------------------------------------

TEST(IOStream, ReadUntilFindsDelimiterSplitAcrossWrites) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  auto [head, rest] = loop.run_sync([&]() -> Task<std::pair<std::string, std::string>> {
    Task<void> writer = trickle(p.peer, {"GET / HTTP/1.1\r", "\n\r", "\nrest"});
    std::string a = co_await stream.read_until("\r\n\r\n");
    std::string b = co_await stream.read_bytes(4);
    co_await writer;
    co_return std::pair{a, b};
  }, kTimeout);
  EXPECT_EQ(head, "GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(rest, "rest");
  ::close(p.peer);
}

TEST(IOStream, ReadUntilWithDataDeliveredOneByteAtATime) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  const std::string message = "first line--END--second";
  std::string got = loop.run_sync([&]() -> Task<std::string> {
    Task<void> writer = trickle(p.peer, one_byte_each(message));
    std::string a = co_await stream.read_until("--END--");
    co_await writer;
    co_return a + "|" + co_await stream.read_bytes(6);
  }, kTimeout);
  EXPECT_EQ(got, "first line--END--|second");
  ::close(p.peer);
}

TEST(IOStream, ReadUntilKeepsSurplusDataForTheNextRead) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  write_all(p.peer, "line1\nline2\r\nline3\nbytes");
  auto lines = loop.run_sync([&]() -> Task<std::vector<std::string>> {
    std::vector<std::string> out;
    out.push_back(co_await stream.read_until("\n"));
    out.push_back(co_await stream.read_until("\r\n"));
    out.push_back(co_await stream.read_until("\n"));
    out.push_back(co_await stream.read_bytes(5));
    co_return out;
  }, kTimeout);
  EXPECT_EQ(lines, (std::vector<std::string>{"line1\n", "line2\r\n", "line3\n", "bytes"}));
  ::close(p.peer);
}

TEST(IOStream, ReadUntilWithoutDelimiterWithinMaxBytesIsUnsatisfiableAndCloses) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  bool closed_callback = false;
  stream.set_close_callback([&] { closed_callback = true; });
  auto error = expect_throws<UnsatisfiableReadError>([&] {
    loop.run_sync([&]() -> Task<std::string> {
      Task<void> writer = trickle(p.peer, {"123", "456"});  // arrives after the read starts
      std::string s = co_await stream.read_until("def", 5);
      co_await writer;
      co_return s;
    }, kTimeout);
  });
  EXPECT_STREQ(error.what(), "delimiter b'def' not found within 5 bytes");
  EXPECT_TRUE(stream.closed());
  EXPECT_TRUE(stream.error() != nullptr);
  loop.run_sync([] { return sleep(1ms); });
  EXPECT_TRUE(closed_callback);
  ::close(p.peer);
}

TEST(IOStream, ReadUntilUnsatisfiableFromBufferFailsAtOnce) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  write_all(p.peer, "0123456789");
  Future<std::string> f = stream.read_until("\n", 4);
  ASSERT_TRUE(f.done());
  EXPECT_THROW(f.result(), UnsatisfiableReadError);
  EXPECT_TRUE(stream.closed());
  ::close(p.peer);
}

TEST(IOStream, ReadUntilDelimiterFoundBeyondMaxBytesIsUnsatisfiable) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  write_all(p.peer, "abcdef\n");  // 7 bytes through the delimiter
  Future<std::string> f = stream.read_until("\n", 6);
  ASSERT_TRUE(f.done());
  EXPECT_THROW(f.result(), UnsatisfiableReadError);
  EXPECT_TRUE(stream.closed());
  ::close(p.peer);
}

TEST(IOStream, ReadUntilDelimiterEndingExactlyAtMaxBytesSucceeds) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  write_all(p.peer, "abcdef\nmore");
  std::string line = loop.run_sync([&] { return stream.read_until("\n", 7); }, kTimeout);
  EXPECT_EQ(line, "abcdef\n");
  EXPECT_FALSE(stream.closed());
  ::close(p.peer);
}

// A search's limit and delimiter belong to its read alone: reads of other kinds in between
// (which leave the search state untouched) must not let them reach a later search.
TEST(IOStream, ASearchLimitEndsWithItsReadWhateverReadsFollow) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  write_all(p.peer, "ab\ncd0123456789\nxyz!long line past four\n");
  auto reads = loop.run_sync([&]() -> Task<std::vector<std::string>> {
    std::vector<std::string> out;
    out.push_back(co_await stream.read_until("\n", 4));
    out.push_back(co_await stream.read_bytes(2));
    out.push_back(co_await stream.read_until("\n"));  // 11 bytes: past the first read's 4
    out.push_back(co_await stream.read_until_regex("!", 4));
    out.push_back(co_await stream.read_bytes(4, true));
    out.push_back(co_await stream.read_until("\n"));
    co_return out;
  }, kTimeout);
  EXPECT_EQ(reads, (std::vector<std::string>{"ab\n", "cd", "0123456789\n", "xyz!", "long", " line past four\n"}));
  EXPECT_FALSE(stream.closed());
  ::close(p.peer);
}

TEST(IOStream, UnsatisfiableReadIsLoggedAtInfo) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  write_all(p.peer, "xxxxxxxx");
  testing::internal::CaptureStderr();
  Future<std::string> f = stream.read_until("\n", 4);
  std::string logged = testing::internal::GetCapturedStderr();
  EXPECT_NE(logged.find("[I "), std::string::npos) << logged;
  EXPECT_NE(logged.find("Unsatisfiable read, closing connection: delimiter b'\\n' not found within 4 bytes"),
            std::string::npos)
      << logged;
  EXPECT_TRUE(f.done());
  ::close(p.peer);
}

// ---- read_until_regex -------------------------------------------------------------------

TEST(IOStream, ReadUntilRegexMatchesAcrossFragments) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  auto pattern = compile_bytes_regex("\r?\n\r?\n");
  auto [first, second, rest] = loop.run_sync([&]() -> Task<std::tuple<std::string, std::string, std::string>> {
    Task<void> writer = trickle(p.peer, {"HTTP/1.1 200 OK\r\nA: b\r", "\n", "\r", "\nX: y\n", "\nbody"});
    std::string a = co_await stream.read_until_regex(pattern);
    std::string b = co_await stream.read_until_regex(pattern);
    std::string c = co_await stream.read_bytes(4);
    co_await writer;
    co_return std::tuple{a, b, c};
  }, kTimeout);
  EXPECT_EQ(first, "HTTP/1.1 200 OK\r\nA: b\r\n\r\n");
  EXPECT_EQ(second, "X: y\n\n");
  EXPECT_EQ(rest, "body");
  ::close(p.peer);
}

TEST(IOStream, ReadUntilRegexMatchesBytesAbove0x7FAsLatin1) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  write_all(p.peer, std::string("abc\xe9\xff\x80") + "xyz\xff|tail");
  auto [escaped, raw] = loop.run_sync([&]() -> Task<std::pair<std::string, std::string>> {
    std::string a = co_await stream.read_until_regex("[\\x80-\\xff]+");  // escapes: one char per byte
    std::string b = co_await stream.read_until_regex(std::string_view("\xff\\|", 3));  // a raw 0xFF byte
    co_return std::pair{a, b};
  }, kTimeout);
  EXPECT_EQ(escaped, std::string("abc\xe9\xff\x80", 6));
  EXPECT_EQ(raw, std::string("xyz\xff|", 5));
  EXPECT_EQ(stream.read_buffer_size(), 4u);
  ::close(p.peer);
}

TEST(IOStream, ReadUntilRegexMatchEndingBeyondMaxBytesIsUnsatisfiable) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  write_all(p.peer, "aaaaaaaaaa\n\n");
  Future<std::string> f = stream.read_until_regex("\n\n", 8);
  ASSERT_TRUE(f.done());
  try {
    f.result();
    ADD_FAILURE() << "no exception";
  } catch (const UnsatisfiableReadError& e) {
    EXPECT_STREQ(e.what(), "delimiter re.compile(b'\\n\\n') not found within 8 bytes");
  }
  EXPECT_TRUE(stream.closed());
  ::close(p.peer);
}

TEST(IOStream, CompileBytesRegexRejectsABadPattern) {
  EXPECT_THROW(compile_bytes_regex("(unclosed"), std::invalid_argument);
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  EXPECT_THROW(stream.read_until_regex(std::string_view("[z-a]")), std::invalid_argument);
  EXPECT_FALSE(stream.reading()) << "a rejected pattern starts no read";
  ::close(p.peer);
}

// ---- read_until_close ---------------------------------------------------------------------

TEST(IOStream, ReadUntilCloseCollectsMebibytesUntilThePeerCloses) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream reader(p.ours);
  IOStream writer(p.peer);
  const std::string payload = pattern_bytes(6 * 1024 * 1024 + 123);
  std::string got = loop.run_sync([&]() -> Task<std::string> {
    auto send = [&]() -> Task<void> {
      for (size_t off = 0; off < payload.size(); off += 1024 * 1024) {
        co_await writer.write(std::string_view(payload).substr(off, 1024 * 1024));
      }
      writer.close();
    };
    Task<void> sending = send();
    std::string all = co_await reader.read_until_close();
    co_await sending;
    co_return all;
  }, kTimeout);
  EXPECT_EQ(got.size(), payload.size());
  EXPECT_EQ(fnv1a(got), fnv1a(payload));
  EXPECT_TRUE(reader.closed());
  EXPECT_EQ(reader.error(), nullptr) << "an orderly close records no error";
}

TEST(IOStream, ReadUntilCloseOnAClosedStreamReturnsTheBuffer) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  write_all(p.peer, "abcdef");
  EXPECT_EQ(stream.read_bytes(2).result(), "ab");
  stream.close();
  Future<std::string> rest = stream.read_until_close();
  ASSERT_TRUE(rest.done());
  EXPECT_EQ(rest.result(), "cdef");
  ::close(p.peer);
}

// ---- limits -------------------------------------------------------------------------------

TEST(IOStream, ReadBufferOverMaxBufferSizeFailsWithStreamBufferFullError) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStreamOptions options;
  options.max_buffer_size = 1024;
  options.read_chunk_size = 512;
  IOStream stream(p.ours, options);
  testing::internal::CaptureStderr();
  EXPECT_THROW(loop.run_sync([&]() -> Task<std::string> {
    Task<void> writer = trickle(p.peer, {std::string(600, 'x'), std::string(600, 'y')});
    std::string s = co_await stream.read_until("\n");
    co_await writer;
    co_return s;
  }, kTimeout),
               StreamBufferFullError);
  std::string logged = testing::internal::GetCapturedStderr();
  EXPECT_NE(logged.find("Reached maximum read buffer size"), std::string::npos) << logged;
  EXPECT_TRUE(stream.closed());
  ::close(p.peer);
}

// A peer sending far ahead must not overflow a small buffer while the pending read can
// complete: reads take at most max_buffer_size / 2 at a time (as Tornado's).
TEST(IOStream, SurplusBeyondMaxBufferSizeDoesNotFailASatisfiableRead) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStreamOptions options;
  options.max_buffer_size = 1024;  // read_chunk_size stays at its 64 KiB default
  IOStream stream(p.ours, options);
  EXPECT_EQ(stream.options().read_chunk_size, 512u);
  write_all(p.peer, "line\n" + std::string(4000, 'x'));
  std::string line = loop.run_sync([&]() -> Task<std::string> { co_return co_await stream.read_until("\n"); },
                                   kTimeout);
  EXPECT_EQ(line, "line\n");
  std::string next = loop.run_sync([&]() -> Task<std::string> { co_return co_await stream.read_bytes(1000); },
                                   kTimeout);
  EXPECT_EQ(next, std::string(1000, 'x'));
  EXPECT_FALSE(stream.closed());
  ::close(p.peer);
}

TEST(IOStream, WriteBeyondMaxWriteBufferSizeThrows) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStreamOptions options;
  options.max_write_buffer_size = 1024 * 1024;
  IOStream stream(p.ours, options);
  // Fill the socket, then the write buffer.
  size_t total = 0;
  EXPECT_THROW(
      {
        for (int i = 0; i < 1000; ++i) {
          stream.write(std::string(64 * 1024, 'z'));
          total += 64 * 1024;
        }
      },
      StreamBufferFullError);
  EXPECT_LE(stream.write_buffer_size(), options.max_write_buffer_size);
  EXPECT_FALSE(stream.closed()) << "a refused write leaves the stream usable";
  EXPECT_GT(total, 0u);
  ::close(p.peer);
}

// ---- peer close -----------------------------------------------------------------------------

TEST(IOStream, BytesSentBeforeThePeerClosedAreDeliveredBeforeStreamClosedError) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  auto results = loop.run_sync([&]() -> Task<std::vector<std::string>> {
    std::vector<std::string> out;
    Task<void> writer = trickle(p.peer, {"hello", "world"}, Then::close);
    out.push_back(co_await stream.read_bytes(3));         // pending before anything arrived
    co_await writer;
    co_await sleep(5ms);                                   // the close has been seen by now
    out.push_back(co_await stream.read_until("d"));       // buffered before the close
    try {
      co_await stream.read_bytes(1);
      out.push_back("no error");
    } catch (const StreamClosedError& e) {
      out.push_back(e.what());
    }
    co_return out;
  }, kTimeout);
  EXPECT_EQ(results, (std::vector<std::string>{"hel", "loworld", "Stream is closed"}));
  EXPECT_TRUE(stream.closed());
}

TEST(IOStream, PendingReadSatisfiedByBytesArrivingWithTheClose) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  std::string got = loop.run_sync([&]() -> Task<std::string> {
    Future<std::string> read = stream.read_until("\n");
    co_await sleep(2ms);
    write_all(p.peer, "last line\n");
    ::close(p.peer);
    co_return co_await read;
  }, kTimeout);
  EXPECT_EQ(got, "last line\n");
}

TEST(IOStream, PeerCloseFailsAPendingReadItCannotSatisfy) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  EXPECT_THROW(loop.run_sync([&]() -> Task<std::string> {
    Task<void> writer = trickle(p.peer, {"partial"}, Then::close);
    std::string s = co_await stream.read_until("\n");
    co_await writer;
    co_return s;
  }, kTimeout),
               StreamClosedError);
  EXPECT_TRUE(stream.closed());
  EXPECT_EQ(stream.read_buffer_size(), 7u) << "the bytes stay readable";
  EXPECT_EQ(stream.read_bytes(7).result(), "partial");
}

TEST(IOStream, BytesSentToAnIdleStreamSurviveThePeerHangingUp) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  std::string late = loop.run_sync([&]() -> Task<std::string> {
    Future<std::string> first = stream.read_bytes(1);  // pending: registers the stream with the loop
    write_all(p.peer, "1");
    co_await first;
    // No read pending: the hang-up arrives as an error event, not as a read.
    write_all(p.peer, "xyz");
    ::close(p.peer);
    for (int i = 0; i < 500 && !stream.closed(); ++i) co_await sleep(1ms);
    co_return co_await stream.read_bytes(3);
  }, kTimeout);
  EXPECT_TRUE(stream.closed());
  EXPECT_EQ(late, "xyz");
}

TEST(IOStream, PeerCloseOfAnIdleStreamIsNoticedWithACloseCallback) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  bool called = false;
  stream.set_close_callback([&] { called = true; });
  loop.run_sync([&]() -> Task<void> {
    co_await sleep(2ms);
    ::close(p.peer);
    for (int i = 0; i < 500 && !called; ++i) co_await sleep(1ms);
  }, kTimeout);
  EXPECT_TRUE(called);
  EXPECT_TRUE(stream.closed());
}

// ---- one read at a time ---------------------------------------------------------------------

TEST(IOStream, StartingASecondReadWhileOneIsPendingThrows) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  Future<std::string> first = stream.read_bytes(5);
  EXPECT_FALSE(first.done());
  EXPECT_TRUE(stream.reading());
  try {
    stream.read_until("\n");
    ADD_FAILURE() << "no exception";
  } catch (const std::logic_error& e) {
    EXPECT_STREQ(e.what(), "Already reading");
  }
  write_all(p.peer, "12345");
  EXPECT_EQ(loop.run_sync([&] { return first; }, kTimeout), "12345") << "the first read is unaffected";
  ::close(p.peer);
}

// ---- writes ---------------------------------------------------------------------------------

TEST(IOStream, LargeWritesToASlowReaderArriveInOrderAndCompleteInOrder) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  constexpr size_t kPiece = 1024 * 1024;
  constexpr int kPieces = 8;
  std::string all;
  for (int i = 0; i < kPieces; ++i) all += pattern_bytes(kPiece, static_cast<uint32_t>(i + 7));
  uint64_t received_hash = 0;
  size_t received = 0;
  std::thread slow_reader([&] {
    uint64_t h = 1469598103934665603ull;
    char buf[16 * 1024];
    for (int i = 0;; ++i) {
      ssize_t n = ::read(p.peer, buf, sizeof buf);
      if (n <= 0) break;
      h = fnv1a(std::string_view(buf, static_cast<size_t>(n)), h);
      received += static_cast<size_t>(n);
      if (i % 64 == 0) std::this_thread::sleep_for(1ms);
    }
    received_hash = h;
  });
  std::vector<int> completion_order;
  loop.run_sync([&]() -> Task<void> {
    std::vector<Future<void>> writes;
    for (int i = 0; i < kPieces; ++i) {
      writes.push_back(stream.write(std::string_view(all).substr(i * kPiece, kPiece)));
      writes.back().add_done_callback([&completion_order, i] { completion_order.push_back(i); });
    }
    EXPECT_FALSE(writes.back().done());
    co_await when_all(writes);
  }, kTimeout);
  EXPECT_FALSE(stream.writing());
  stream.close();
  slow_reader.join();
  ::close(p.peer);
  EXPECT_EQ(received, all.size());
  EXPECT_EQ(received_hash, fnv1a(all));
  EXPECT_EQ(completion_order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
}

TEST(IOStream, WriteFutureCompletesOnlyAfterEverythingIsFlushed) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  const std::string big = pattern_bytes(4 * 1024 * 1024);
  Future<void> first = stream.write(big);
  Future<void> second = stream.write(std::string("tail"));
  EXPECT_FALSE(first.done()) << "4 MiB cannot fit in the socket buffers";
  EXPECT_TRUE(stream.writing());
  EXPECT_GT(stream.write_buffer_size(), 0u);
  std::string received;
  loop.run_sync([&]() -> Task<void> {
    // Drain the peer in steps; the futures stay pending while the stream still holds data.
    char buf[64 * 1024];
    while (received.size() < big.size() + 4) {
      co_await sleep(1ms);
      if (stream.write_buffer_size() > 4) {
        EXPECT_FALSE(first.done());
      }
      if (stream.write_buffer_size() > 0) {
        EXPECT_FALSE(second.done());
      }
      for (;;) {
        ssize_t n = ::recv(p.peer, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0) break;
        received.append(buf, static_cast<size_t>(n));
      }
    }
    co_await second;
  }, kTimeout);
  EXPECT_TRUE(first.done());
  EXPECT_EQ(stream.write_buffer_size(), 0u);
  EXPECT_EQ(received, big + "tail");
  ::close(p.peer);
}

TEST(IOStream, WritesTheSocketTakesWholeShareOneDoneFuture) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  Future<void> one = stream.write(std::string_view("one"));
  Future<void> two = stream.write(std::string_view("two"));
  EXPECT_TRUE(one.done());
  EXPECT_TRUE(two.done());
  EXPECT_EQ(one.state(), two.state()) << "no future is made for a write the socket took at once";
  // A write the socket cannot take whole gets a future of its own, pending until it is sent.
  Future<void> big = stream.write(std::string_view(pattern_bytes(4 * 1024 * 1024)));
  EXPECT_FALSE(big.done());
  EXPECT_NE(big.state(), one.state());
  std::string received(6, '\0');
  ASSERT_EQ(::recv(p.peer, received.data(), received.size(), MSG_WAITALL), 6);
  EXPECT_EQ(received, "onetwo");
  stream.close();
  ::close(p.peer);
}

TEST(IOStream, EmptyWriteCompletesAfterPriorDataIsFlushed) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  Future<void> idle = stream.write(std::string());
  EXPECT_TRUE(idle.done()) << "nothing queued: done at once";
  Future<void> big = stream.write(pattern_bytes(4 * 1024 * 1024));
  Future<void> empty = stream.write(std::string_view());
  EXPECT_FALSE(empty.done());
  std::thread drain([&] { read_exact(p.peer, 4 * 1024 * 1024); });
  loop.run_sync([&] { return empty; }, kTimeout);
  EXPECT_TRUE(big.done());
  drain.join();
  ::close(p.peer);
}

TEST(IOStream, DrainedCompletesOnceTheQueueIsBackWithinItsBound) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  constexpr size_t kBound = 256 * 1024;
  const std::string big = pattern_bytes(4 * 1024 * 1024);
  Future<void> written = stream.write(big);
  ASSERT_GT(stream.write_buffer_size(), kBound) << "4 MiB cannot fit in the socket buffers";
  EXPECT_TRUE(stream.drained(stream.write_buffer_size()).done()) << "already within its bound: done at once";
  Future<void> drained = stream.drained(kBound);
  Future<void> all_sent = stream.drained();
  EXPECT_FALSE(drained.done());
  EXPECT_LT(stream.bytes_written(), big.size());
  std::string received;
  size_t queued_when_drained = 0;
  bool written_before_drained = false;
  loop.run_sync([&]() -> Task<void> {
    char buf[16 * 1024];
    while (!drained.done()) {
      co_await sleep(1ms);
      if (drained.done()) break;
      EXPECT_GT(stream.write_buffer_size(), kBound) << "still pending although within the bound";
      ssize_t n = ::recv(p.peer, buf, sizeof buf, MSG_DONTWAIT);  // a slow reader: 16 KiB a millisecond
      if (n > 0) received.append(buf, static_cast<size_t>(n));
    }
    queued_when_drained = stream.write_buffer_size();
    written_before_drained = written.done();
    while (received.size() < big.size()) {
      co_await sleep(1ms);
      for (;;) {
        ssize_t n = ::recv(p.peer, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0) break;
        received.append(buf, static_cast<size_t>(n));
      }
    }
    co_await all_sent;
  }, kTimeout);
  EXPECT_LE(queued_when_drained, kBound);
  EXPECT_FALSE(written_before_drained) << "the write future still waits for everything";
  EXPECT_TRUE(written.done());
  EXPECT_EQ(stream.bytes_written(), big.size());
  EXPECT_EQ(received, big);
  ::close(p.peer);
}

TEST(IOStream, DrainedIsNotDelayedByLaterWrites) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  constexpr size_t kFirst = 2 * 1024 * 1024;
  stream.write(pattern_bytes(kFirst)).mark_retrieved();
  Future<void> first_megabytes = stream.drained();
  Future<void> all = stream.write(pattern_bytes(kFirst));
  bool all_sent_first = true;
  loop.run_sync([&]() -> Task<void> {
    // The peer reads no more than the first write until drained() completes: the second
    // write cannot all have gone out by then (the socket holds far less than 2 MiB).
    std::string buf(64 * 1024, '\0');
    size_t read = 0;
    while (!first_megabytes.done()) {
      ssize_t n = ::recv(p.peer, buf.data(), std::min(buf.size(), kFirst - read), MSG_DONTWAIT);
      if (n > 0) read += static_cast<size_t>(n);
      co_await sleep(1ms);
    }
    all_sent_first = all.done();
    while (!all.done()) {
      while (::recv(p.peer, buf.data(), buf.size(), MSG_DONTWAIT) > 0) {
      }
      co_await sleep(1ms);
    }
  }, kTimeout);
  EXPECT_FALSE(all_sent_first) << "drained() waited for bytes written after it";
  ::close(p.peer);
}

TEST(IOStream, ClosingFailsAPendingDrained) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  stream.write(pattern_bytes(4 * 1024 * 1024)).mark_retrieved();
  Future<void> drained = stream.drained(1024);
  ASSERT_FALSE(drained.done());
  stream.close();
  ASSERT_TRUE(drained.done());
  EXPECT_THROW(drained.result(), StreamClosedError);
  EXPECT_THROW(stream.drained(), StreamClosedError);
  ::close(p.peer);
}

TEST(IOStream, WriteToAClosedPeerClosesTheStreamWithEPIPEAndNoSignal) {
  // SIGPIPE is deliberately left at its default action: if it were raised, the test
  // process would die.
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  bool close_callback = false;
  stream.set_close_callback([&] { close_callback = true; });
  ::close(p.peer);
  Future<void> f = stream.write(std::string("into the void"));
  ASSERT_TRUE(f.done());
  EXPECT_TRUE(stream.closed());
  EXPECT_EQ(system_error_code(stream.error()), EPIPE);
  try {
    f.result();
    ADD_FAILURE() << "no exception";
  } catch (const StreamClosedError& e) {
    EXPECT_EQ(system_error_code(e.real_error()), EPIPE);
    EXPECT_NE(std::string(e.what()).find("Stream is closed: "), std::string::npos) << e.what();
  }
  loop.run_sync([] { return sleep(1ms); });
  EXPECT_TRUE(close_callback);
}

TEST(IOStream, WriteToAResetTcpPeerClosesTheStreamWithTheErrorRecorded) {
  IOLoop loop;
  Listener listener;
  int client = tcp_socket();
  ASSERT_EQ(::connect(client, listener.addr(), sizeof listener.address), 0);
  int server = ::accept(listener.fd, nullptr, nullptr);
  ASSERT_GE(server, 0);
  IOStream stream(client);
  // An abortive close: the peer answers further segments with RST.
  linger abort_now{1, 0};
  ::setsockopt(server, SOL_SOCKET, SO_LINGER, &abort_now, sizeof abort_now);
  ::close(server);
  testing::internal::CaptureStderr();
  loop.run_sync([&]() -> Task<void> {
    for (int i = 0; i < 200 && !stream.closed(); ++i) {
      stream.write(std::string(1024, 'r'));
      co_await sleep(1ms);
    }
  }, kTimeout);
  std::string logged = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(stream.closed());
  int code = system_error_code(stream.error());
  EXPECT_TRUE(code == ECONNRESET || code == EPIPE) << "errno " << code;
  EXPECT_EQ(logged.find("error on fd"), std::string::npos) << "a reset is not logged: " << logged;
}

// A hang-up reported with the bytes a read takes part of: the read completes, the rest is
// kept, and the stream closes on the loop's next turn (Tornado's order).
TEST(IOStream, AHangUpClosesTheStreamOnTheNextTurnKeepingTheBytesLeft) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  write_all(p.peer, "abcdef");
  ::close(p.peer);
  EXPECT_EQ(loop.run_sync([&] { return stream.read_bytes(3, false, IOStream::ReadStart::wait_readable); }, kTimeout),
            "abc");
  loop.run_sync([] { return sleep(1ms); });
  EXPECT_TRUE(stream.closed());
  EXPECT_EQ(stream.read_buffer_size(), 3u);
}

// The close a hang-up schedules finds the stream gone when its owner destroyed it first
// (from the read's callback, which runs before it): nothing is touched.
TEST(IOStream, AScheduledCloseOfAStreamDestroyedFirstDoesNothing) {
  IOLoop loop;
  Pair p = socket_pair();
  auto stream = std::make_unique<IOStream>(p.ours);
  write_all(p.peer, "abcdef");
  ::close(p.peer);
  Future<std::string> read = stream->read_bytes(3, false, IOStream::ReadStart::wait_readable);
  bool destroyed = false;
  read.add_done_callback([&](Future<std::string>&) {
    stream.reset();
    destroyed = true;
  });
  loop.run_sync([] { return sleep(5ms); });
  EXPECT_TRUE(destroyed);
  EXPECT_EQ(read.result(), "abc");
}

TEST(IOStream, WriteOnAClosedStreamThrowsStreamClosedError) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  stream.close();
  EXPECT_THROW(stream.write(std::string("x")), StreamClosedError);
  EXPECT_EQ(stream.fd(), -1);
  ::close(p.peer);
}

// ---- close ----------------------------------------------------------------------------------

TEST(IOStream, CloseCallbackRunsOnceOnTheLoop) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  int calls = 0;
  stream.set_close_callback([&] { ++calls; });
  stream.close();
  EXPECT_EQ(calls, 0) << "runs on the loop, not inside close()";
  stream.close();
  loop.run_sync([] { return sleep(2ms); });
  EXPECT_EQ(calls, 1);
  ::close(p.peer);
}

TEST(IOStream, ClosingMidReadFailsTheReadWithStreamClosedError) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  auto error = std::make_exception_ptr(std::runtime_error("shutting down"));
  try {
    loop.run_sync([&]() -> Task<std::string> {
      loop.call_later(2ms, [&] { stream.close(error); });
      co_return co_await stream.read_bytes(10);
    }, kTimeout);
    ADD_FAILURE() << "no exception";
  } catch (const StreamClosedError& e) {
    EXPECT_STREQ(e.what(), "Stream is closed: shutting down");
    EXPECT_EQ(e.real_error(), error);
  }
  EXPECT_FALSE(stream.reading());
  ::close(p.peer);
}

TEST(IOStream, ClosingMidWriteFailsTheWriteFuture) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  Future<void> f = stream.write(pattern_bytes(4 * 1024 * 1024));
  ASSERT_FALSE(f.done());
  stream.close();
  ASSERT_TRUE(f.done());
  EXPECT_THROW(f.result(), StreamClosedError);
  EXPECT_FALSE(stream.writing());
  ::close(p.peer);
}

TEST(IOStream, CloseCompletesAPendingReadTheBufferCanSatisfy) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  write_all(p.peer, "abcdef");
  Future<std::string> all = stream.read_until_close();
  EXPECT_FALSE(all.done());
  stream.close();
  ASSERT_TRUE(all.done());
  EXPECT_EQ(all.result(), "abcdef");
  ::close(p.peer);
}

TEST(IOStream, DestroyingAStreamWithAPendingReadFailsTheRead) {
  IOLoop loop;
  Pair p = socket_pair();
  auto stream = std::make_unique<IOStream>(p.ours);
  Future<std::string> f = stream->read_bytes(10);
  ASSERT_FALSE(f.done());
  stream.reset();
  ASSERT_TRUE(f.done());
  EXPECT_THROW(f.result(), StreamClosedError);
  EXPECT_EQ(read_exact(p.peer, 1), "") << "the fd was closed";
  ::close(p.peer);
}

TEST(IOStream, ClosingTheLoopWhileACoroutineAwaitsAReadIsLeakFree) {
  Pair p = socket_pair();
  auto loop = std::make_unique<IOLoop>();
  bool resumed = false;
  auto reader = [&resumed](int fd) -> Task<void> {
    IOStream stream(fd, {});  // owned by the coroutine frame
    co_await stream.read_until("\n");
    resumed = true;
  };
  Task<void> task = reader(p.ours);
  EXPECT_THROW(loop->run_sync([] { return sleep(1h); }, 5ms), TimeoutError);
  EXPECT_GE(loop->live_frames(), 1u);
  loop.reset();  // destroys the suspended frame, its stream, and everything queued
  EXPECT_FALSE(resumed);
  EXPECT_EQ(read_exact(p.peer, 1), "") << "the frame's stream closed its fd";
  ::close(p.peer);
}

TEST(IOStream, ClosingTheLoopBeforeDestroyingAStreamWithAnAwaitedReadIsSafe) {
  Pair p = socket_pair();
  auto loop = std::make_unique<IOLoop>();
  auto stream = std::make_unique<IOStream>(p.ours, IOStreamOptions{}, loop.get());
  bool resumed = false;
  auto reader = [&]() -> Task<void> {
    co_await stream->read_until("\n");
    resumed = true;
  };
  Task<void> task = reader();
  EXPECT_THROW(loop->run_sync([] { return sleep(1h); }, 5ms), TimeoutError);
  loop->close();    // destroys the suspended frame; the stream still holds its read
  stream.reset();   // fails the read on a closed loop: nothing runs, nothing leaks
  loop.reset();
  EXPECT_FALSE(resumed);
  EXPECT_EQ(read_exact(p.peer, 1), "");
  ::close(p.peer);
}

// ---- connect --------------------------------------------------------------------------------

TEST(IOStream, ConnectToALoopbackListenerThenExchangeData) {
  IOLoop loop;
  Listener listener;
  IOStream stream(tcp_socket());
  stream.set_nodelay(true);
  std::string echoed = loop.run_sync([&]() -> Task<std::string> {
    Future<void> connected = stream.connect(listener.addr(), sizeof listener.address);
    stream.write(std::string("queued while connecting\n"));  // flushed once connected
    co_await connected;
    stream.set_nodelay(true);
    int server = ::accept(listener.fd, nullptr, nullptr);
    std::string line = read_exact(server, 24);
    write_all(server, "reply:" + line);
    ::close(server);
    co_return co_await stream.read_until_close();
  }, kTimeout);
  EXPECT_EQ(echoed, "reply:queued while connecting\n");
}

TEST(IOStream, ConnectToAClosedPortFailsWithStreamClosedErrorCarryingTheErrno) {
  IOLoop loop;
  sockaddr_in address{};
  {
    Listener unused;  // learn a free port, then close it
    address = unused.address;
  }
  IOStream stream(tcp_socket());
  try {
    loop.run_sync([&] { return stream.connect(reinterpret_cast<sockaddr*>(&address), sizeof address); }, kTimeout);
    ADD_FAILURE() << "connected to a closed port";
  } catch (const StreamClosedError& e) {
    EXPECT_EQ(system_error_code(e.real_error()), ECONNREFUSED) << e.what();
  }
  EXPECT_TRUE(stream.closed());
  EXPECT_EQ(system_error_code(stream.error()), ECONNREFUSED);
}

// ---- half close -----------------------------------------------------------------------------

TEST(IOStream, WithAllowHalfCloseWritesStillWorkAfterThePeerShutsDownWriting) {
  IOLoop loop;
  Listener listener;
  int client = tcp_socket();
  ASSERT_EQ(::connect(client, listener.addr(), sizeof listener.address), 0);
  int server = ::accept(listener.fd, nullptr, nullptr);
  IOStreamOptions options;
  options.allow_half_close = true;
  IOStream stream(server, options);
  std::string body = loop.run_sync([&]() -> Task<std::string> {
    Task<void> peer = trickle(client, {"some ", "data"}, Then::shutdown_write);
    std::string all = co_await stream.read_until_close();
    co_await peer;
    co_await stream.write(std::string("ok ") + std::to_string(all.size()) + "\n");
    co_return all;
  }, kTimeout);
  EXPECT_EQ(body, "some data");
  EXPECT_FALSE(stream.closed());
  EXPECT_EQ(read_exact(client, 5), "ok 9\n");
  EXPECT_THROW(stream.read_bytes(1), StreamClosedError) << "nothing more can arrive";
  EXPECT_FALSE(stream.closed());
  ::close(client);
}

TEST(IOStream, WithAllowHalfCloseEofFailsAPendingReadItCannotSatisfy) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStreamOptions options;
  options.allow_half_close = true;
  IOStream stream(p.ours, options);
  EXPECT_THROW(loop.run_sync([&]() -> Task<std::string> {
    Task<void> peer = trickle(p.peer, {"no newline"}, Then::shutdown_write);
    std::string s = co_await stream.read_until("\n");
    co_await peer;
    co_return s;
  }, kTimeout),
               StreamClosedError);
  EXPECT_FALSE(stream.closed());
  EXPECT_EQ(stream.read_bytes(10).result(), "no newline") << "the bytes stay readable";
  loop.run_sync([&] { return stream.write(std::string("still open")); }, kTimeout);
  EXPECT_EQ(read_exact(p.peer, 10), "still open");
  ::close(p.peer);
}

TEST(IOStream, WithoutAllowHalfClosePeerShutdownClosesTheStream) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  std::string all = loop.run_sync([&]() -> Task<std::string> {
    Task<void> peer = trickle(p.peer, {"data"}, Then::shutdown_write);
    std::string s = co_await stream.read_until_close();
    co_await peer;
    co_return s;
  }, kTimeout);
  EXPECT_EQ(all, "data");
  EXPECT_TRUE(stream.closed());
  EXPECT_THROW(stream.write(std::string("late")), StreamClosedError);
  ::close(p.peer);
}

// ---- errors ---------------------------------------------------------------------------------

TEST(IOStream, StreamClosedErrorDescribesItsRealError) {
  EXPECT_STREQ(StreamClosedError().what(), "Stream is closed");
  auto real = std::make_exception_ptr(std::system_error(ECONNRESET, std::system_category(), "read"));
  StreamClosedError e(real);
  EXPECT_EQ(e.real_error(), real);
  EXPECT_EQ(std::string(e.what()), "Stream is closed: read: " + std::system_category().message(ECONNRESET));
}

// write(string_view) hands what the socket takes straight from the caller's memory and
// copies only the rest: once write() returned, the caller may reuse its buffer, whether
// the kernel took everything (small) or only a part (larger than the socket buffer).
TEST(IOStream, WriteOfAViewDoesNotDependOnTheCallersBufferAfterReturning) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStream stream(p.ours);
  std::string small = pattern_bytes(100, 3);
  std::string large = pattern_bytes(8 * 1024 * 1024, 4);
  const std::string expected = small + large;
  std::string received;
  std::thread reader([&] {
    char buf[64 * 1024];
    while (received.size() < expected.size()) {
      ssize_t n = ::read(p.peer, buf, sizeof buf);
      if (n <= 0) break;
      received.append(buf, static_cast<size_t>(n));
    }
  });
  loop.run_sync([&]() -> Task<void> {
    Future<void> first = stream.write(std::string_view(small));
    EXPECT_TRUE(first.done());  // nothing queued and the socket had room: sent at once
    std::fill(small.begin(), small.end(), '!');
    Future<void> second = stream.write(std::string_view(large));
    EXPECT_FALSE(second.done());  // more than the socket buffer: the rest was queued
    std::fill(large.begin(), large.end(), '?');
    co_await second;
  }, kTimeout);
  reader.join();
  stream.close();
  ::close(p.peer);
  EXPECT_EQ(received.size(), expected.size());
  EXPECT_TRUE(received == expected);
}

// A transport that closes the stream while writing (as a TLS handshake failing inside a
// write does): write() reports it through the future, as when the data was queued.
class ClosingOnWriteStream : public IOStream {
 public:
  using IOStream::IOStream;

 protected:
  ssize_t write_to_fd(const iovec*, int) override {
    close();
    errno = ECONNRESET;
    return -1;
  }
};

TEST(IOStream, WriteThatClosesTheStreamFailsItsFutureInsteadOfThrowing) {
  IOLoop loop;
  Pair p = socket_pair();
  ClosingOnWriteStream stream(p.ours);
  Future<void> written = stream.write(std::string_view("hello"));
  ASSERT_TRUE(written.done());
  EXPECT_THROW(written.result(), StreamClosedError);
  EXPECT_TRUE(stream.closed());
  ::close(p.peer);
}

// The stream makes its descriptor non-blocking and close-on-exec when it is not already
// (an accepted socket already is: then nothing is changed).
TEST(IOStream, MakesABlockingDescriptorNonBlockingAndCloseOnExec) {
  IOLoop loop;
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  ASSERT_EQ(::fcntl(fds[0], F_GETFL) & O_NONBLOCK, 0);
  ASSERT_EQ(::fcntl(fds[0], F_GETFD) & FD_CLOEXEC, 0);
  {
    IOStream stream(fds[0]);
    EXPECT_NE(::fcntl(fds[0], F_GETFL) & O_NONBLOCK, 0);
    EXPECT_NE(::fcntl(fds[0], F_GETFD) & FD_CLOEXEC, 0);
  }
  ::close(fds[1]);
}

// A descriptor the stream cannot make non-blocking is refused with the system's error
// (the half-made stream is destroyed, closing what it took).
TEST(IOStream, RefusesADescriptorItCannotMakeNonBlocking) {
  IOLoop loop;
  EXPECT_THROW(IOStream(-1, {}, &loop), std::system_error);
}

// NonBlockingSocket is the caller's word that the flags are set (TCPServer's accepted
// sockets): the stream leaves them alone, and reads and writes as any stream.
TEST(IOStream, TrustsANonBlockingSocketsFlagsAndServesIt) {
  IOLoop loop;
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  ::fcntl(fds[0], F_SETFD, 0);  // cleared behind the stream's back: a constructor that
                                // checked the flags would set it again
  IOStream stream(fds[0], {}, &loop, IOStream::NonBlockingSocket{});
  EXPECT_EQ(::fcntl(fds[0], F_GETFD) & FD_CLOEXEC, 0);
  ASSERT_EQ(::write(fds[1], "ping\n", 5), 5);
  std::string got = loop.run_sync([&] { return stream.read_until("\n"); }, kTimeout);
  EXPECT_EQ(got, "ping\n");
  stream.write(std::string_view("pong"));
  char reply[8] = {};
  EXPECT_EQ(::read(fds[1], reply, sizeof reply), 4);
  EXPECT_EQ(std::string_view(reply, 4), "pong");
  ::close(fds[1]);
}

namespace {

struct StopOnEvents final : IOLoop::FdHandler {
  IOLoop& loop;
  int calls = 0;
  explicit StopOnEvents(IOLoop& l) : loop(l) {}
  void on_fd_events(int, uint32_t) override {
    ++calls;
    loop.stop();
  }
};

}  // namespace

// A server compacting an idle connection: the socket goes to another handler, still
// registered, and a new stream takes it back and reads what arrived meanwhile.
// Only an edge-triggered stream (a server's accepted socket) whose socket is known empty
// is handed over.
std::unique_ptr<IOStream> edge_triggered_stream(int fd, IOStreamOptions options = {}) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return std::make_unique<IOStream>(fd, options, nullptr, IOStream::NonBlockingSocket{.edge_triggered = true});
}

TEST(IOStream, AnIdleSocketIsHandedOverAndTakenBackWithoutLosingBytes) {
  IOLoop loop;
  Pair p = socket_pair();
  auto stream = edge_triggered_stream(p.ours);
  Future<std::string> waiting = stream->read_bytes(100, true, IOStream::ReadStart::wait_readable);
  StopOnEvents record(loop);
  int fd = stream->hand_over_socket(record);
  EXPECT_EQ(fd, p.ours);
  EXPECT_TRUE(stream->closed());
  ASSERT_TRUE(waiting.done());
  EXPECT_THROW(waiting.result(), StreamClosedError);
  stream.reset();  // must not close the fd nor unregister it
  write_all(p.peer, "GET /next");
  loop.call_later(kTimeout, [&] { loop.stop(); });
  loop.start();
  EXPECT_EQ(record.calls, 1) << "the record was called for the bytes";
  IOStream back(fd, {}, loop, IOStream::TakeRegistration{});
  EXPECT_EQ(loop.run_sync([&] { return back.read_bytes(100, true); }, kTimeout), "GET /next");
  loop.run_sync([&] { return back.write("ok"); }, kTimeout);
  char reply[2];
  ASSERT_EQ(::read(p.peer, reply, 2), 2);
  EXPECT_EQ(std::string(reply, 2), "ok");
  ::close(p.peer);
}

TEST(IOStream, ASocketWithBufferedBytesIsNotHandedOver) {
  IOLoop loop;
  Pair p = socket_pair();
  auto stream = edge_triggered_stream(p.ours);
  write_all(p.peer, "abcdef");
  EXPECT_EQ(loop.run_sync([&] { return stream->read_bytes(3); }, kTimeout), "abc");
  StopOnEvents record(loop);
  EXPECT_THROW(stream->hand_over_socket(record), std::logic_error) << "'def' would be lost";
  EXPECT_FALSE(stream->closed());
  ::close(p.peer);
}

// Edge-triggered, a socket not known to be empty may hold bytes no event will report
// (here the read took a whole chunk); a level-triggered stream's registration would not
// match the stream that takes the socket back.
TEST(IOStream, ASocketThatMayHoldBytesOrIsLevelTriggeredIsNotHandedOver) {
  IOLoop loop;
  Pair p = socket_pair();
  IOStreamOptions small;
  small.read_chunk_size = 4;
  auto edge = edge_triggered_stream(p.ours, small);
  write_all(p.peer, "abcdefgh");
  EXPECT_EQ(loop.run_sync([&] { return edge->read_bytes(4); }, kTimeout), "abcd");
  StopOnEvents record(loop);
  EXPECT_THROW(edge->hand_over_socket(record), std::logic_error) << "'efgh' may wait in the socket";
  EXPECT_EQ(loop.run_sync([&] { return edge->read_bytes(4); }, kTimeout), "efgh");
  IOStream level(::dup(p.peer));
  EXPECT_THROW(level.hand_over_socket(record), std::logic_error);
  ::close(p.peer);
}
