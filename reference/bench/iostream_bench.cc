// IOStream microbenchmarks over an AF_UNIX socketpair: read_until and read_until_regex
// throughput (bytes/s of messages delivered to the reader), and the per-read cost of
// small pipelined messages. The peer writes with plain send(); the reader is an IOStream
// driven by a coroutine on a loop, so the numbers are the stream's own overhead plus the
// kernel copy.
#include <benchmark/benchmark.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <string_view>

#include "squall/iostream.h"
#include "squall/task.h"

using namespace squall;

namespace {

struct SocketPair {
  int fds[2] = {-1, -1};
  SocketPair() { ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds); }
  ~SocketPair() {
    if (fds[1] >= 0) ::close(fds[1]);
  }
};

void send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// A message of `size` bytes ending with the header terminator, shaped like HTTP headers.
std::string header_block(size_t size) {
  std::string out;
  for (int i = 0;; ++i) {
    std::string line = "X-Header-" + std::to_string(i) + ": some-header-value-0123456789\r\n";
    if (out.size() + line.size() + 16 > size) break;
    out += line;
  }
  out += "X-Pad: ";
  out.append(size - 4 - out.size(), 'v');
  out += "\r\n\r\n";
  return out;
}

}  // namespace

// One message per iteration: the peer sends it, the stream reads it with read_until.
static void BM_ReadUntilSocketpair(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  IOLoop loop;
  SocketPair pair;
  IOStream reader(pair.fds[0]);
  pair.fds[0] = -1;
  const std::string message = std::string(size - 4, 'x') + "\r\n\r\n";
  loop.run_sync([&]() -> Task<void> {
    for (auto _ : state) {
      send_all(pair.fds[1], message);
      std::string got = co_await reader.read_until("\r\n\r\n");
      benchmark::DoNotOptimize(got.data());
    }
  });
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(size));
}
BENCHMARK(BM_ReadUntilSocketpair)->Arg(16 * 1024)->Arg(32 * 1024)->Arg(64 * 1024);

// As above with the HTTP header terminator as a regex over header-shaped data.
static void BM_ReadUntilRegex(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  IOLoop loop;
  SocketPair pair;
  IOStream reader(pair.fds[0]);
  pair.fds[0] = -1;
  const std::string message = header_block(size);
  auto pattern = compile_bytes_regex("\r?\n\r?\n");
  loop.run_sync([&]() -> Task<void> {
    for (auto _ : state) {
      send_all(pair.fds[1], message);
      std::string got = co_await reader.read_until_regex(pattern);
      if (got.size() != size) state.SkipWithError("short read");
      benchmark::DoNotOptimize(got.data());
    }
  });
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(size));
}
BENCHMARK(BM_ReadUntilRegex)->Arg(1024)->Arg(16 * 1024)->Arg(64 * 1024);

// 64 pipelined 128-byte lines per send: mostly reads served from the buffer, so this is
// the per-read cost (search, copy out, future).
static void BM_ReadUntilPipelinedLines(benchmark::State& state) {
  constexpr int kLines = 64;
  constexpr size_t kLine = 128;
  IOLoop loop;
  SocketPair pair;
  IOStream reader(pair.fds[0]);
  pair.fds[0] = -1;
  std::string batch;
  for (int i = 0; i < kLines; ++i) batch += std::string(kLine - 1, 'a' + i % 26) + "\n";
  loop.run_sync([&]() -> Task<void> {
    for (auto _ : state) {
      send_all(pair.fds[1], batch);
      for (int i = 0; i < kLines; ++i) {
        std::string line = co_await reader.read_until("\n");
        benchmark::DoNotOptimize(line.data());
      }
    }
  });
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kLines);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(batch.size()));
}
BENCHMARK(BM_ReadUntilPipelinedLines);

// read_until_close of a large body sent in one go (the buffer growth and hand-over path).
static void BM_ReadUntilClose(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  const std::string body(size, 'b');
  for (auto _ : state) {
    IOLoop loop;
    SocketPair pair;
    IOStream reader(pair.fds[0]);
    IOStream writer(pair.fds[1]);
    pair.fds[0] = pair.fds[1] = -1;
    std::string got = loop.run_sync([&]() -> Task<std::string> {
      Future<void> sent = writer.write(std::string_view(body));
      sent.add_done_callback([&writer] { writer.close(); });
      co_return co_await reader.read_until_close();
    });
    if (got.size() != size) state.SkipWithError("short read");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(size));
}
BENCHMARK(BM_ReadUntilClose)->Arg(8 * 1024 * 1024)->Unit(benchmark::kMillisecond);
