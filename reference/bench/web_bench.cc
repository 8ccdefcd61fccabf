// The web layer end to end: bytes in -> bytes out through HTTPServer's connection
// handling, HTTP1Connection, an Application and a RequestHandler subclass — the path
// squall-contract-app serves /plaintext and /json on — and what an idle connection costs.
//
// Exchange benchmarks: one keep-alive request per iteration over a socketpair; the client
// side is plain send()/recv() in the same loop (it yields to the loop until the whole
// response arrived). Counter allocs_per_req: malloc/calloc/realloc calls per request
// (malloc_counter_bench.cc); blocks of the per-thread pool (small_pool.h) reach malloc
// only when the pool grows, so in steady state they are not counted.
//
// Idle benchmark: N connections handed to HTTPServer::handle_stream, waiting for their
// first request (fresh) and, separately, after one request each (kept alive), and after
// one request each once the server compacted them (HTTPServerOptions::
// idle_compaction_period; the pool's cached blocks given back first): the heap grows by
// bytes_per_idle_conn each (mallinfo2's in-use bytes; the pool's blocks count as in use,
// the kernel's socket buffers do not, nor do the 80-byte records, which live in slabs of
// their own: record_bytes_per_conn).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "../apps/hello_handlers.h"
#include "malloc_counter.h"
#include "squall/detail/small_pool.h"
#include "squall/httpserver.h"
#include "squall/ioloop.h"
#include "squall/iostream.h"
#include "squall/log.h"
#include "squall/task.h"
#include "squall/web.h"

using namespace squall;

namespace {

ApplicationSettings contract_settings() {
  ApplicationSettings settings;
  settings.compress_response = true;  // as the contract app: every answer gets Vary
  return settings;
}

Application contract_app() {
  return Application({{"/plaintext", handler<hello::PlaintextHandler>()}, {"/json", handler<hello::JsonHandler>()}},
                     contract_settings());
}

// The server's side of a connection as TCPServer makes it (non-blocking, close-on-exec,
// registered edge-triggered), so that idle connections can be compacted.
std::unique_ptr<IOStream> server_stream(int fd) {
  return std::make_unique<IOStream>(fd, IOStreamOptions{}, nullptr, IOStream::NonBlockingSocket{.edge_triggered = true});
}

// A connected socketpair: [0] for the server's stream, [1] the client's (non-blocking).
struct Pair {
  int server = -1;
  int client = -1;
  Pair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) == 0) {
      server = fds[0];
      client = fds[1];
    }
  }
};

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

// Appends what the socket holds to buf (outside the coroutine below, so that its frame
// stays small enough for the pool and is not counted as an allocation per request).
void receive_available(int fd, std::string& buf) {
  char tmp[4096];
  for (;;) {
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return;
    buf.append(tmp, static_cast<size_t>(n));
  }
}

// Sends the request and lets the loop run until the response (ending in `tail`) is read.
Task<bool> round_trip(int fd, std::string_view request, std::string_view tail, std::string& buf) {
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    co_return false;
  }
  buf.clear();
  for (int spins = 0; !ends_with(buf, tail); ++spins) {
    if (spins > 1000) co_return false;
    co_await moment();
    receive_available(fd, buf);
  }
  co_return true;
}

void web_exchange(benchmark::State& state, std::string_view path, std::string_view body) {
  set_log_level(LogLevel::warning);  // as the load runs: no access log line
  const std::string request = "GET " + std::string(path) + " HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
  IOLoop loop;
  Application app = contract_app();
  HTTPServer server(app);
  Pair pair;
  std::string buf;
  buf.reserve(4096);
  uint64_t allocations = 0;
  loop.run_sync([&]() -> Task<void> {
    spawn(server.handle_stream(server_stream(pair.server), SocketAddress()));
    // Warm up: the pool, the connection's buffers, the Date cache.
    for (int i = 0; i < 100; ++i) co_await round_trip(pair.client, request, body, buf);
    const uint64_t before = bench_allocation_count();
    for (auto _ : state) {
      if (!co_await round_trip(pair.client, request, body, buf)) {
        state.SkipWithError("no answer");
        break;
      }
    }
    allocations = bench_allocation_count() - before;
    ::close(pair.client);
    co_await server.close_all_connections();
  });
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["allocs_per_req"] =
      static_cast<double>(allocations) / static_cast<double>(std::max<int64_t>(1, state.iterations()));
  state.counters["response_bytes"] = static_cast<double>(buf.size());
}

enum class IdleKind { fresh, after_request, compacted };

// N connections idle in the server; bytes of heap each.
void idle_connections(benchmark::State& state, IdleKind kind) {
  const bool after_a_request = kind != IdleKind::fresh;
  const bool compacted = kind == IdleKind::compacted;
  set_log_level(LogLevel::warning);
  const auto n = static_cast<size_t>(state.range(0));
  const std::string request = "GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
  double per_connection = 0;
  for (auto _ : state) {
    IOLoop loop;
    Application app = contract_app();
    HTTPServerOptions options;
    options.idle_compaction_period = std::chrono::milliseconds(20);
    HTTPServer server(app, options);
    server.trim_memory_when_idle(std::nullopt);
    std::vector<Pair> pairs(n);
    std::string buf;
    // Only a connection with an IP peer is compacted; a socketpair has none of its own.
    auto peer = [compacted](size_t i) {
      return compacted ? SocketAddress::from_ip("127.0.0.1", static_cast<uint16_t>(1024 + i)) : SocketAddress();
    };
    auto settle = [&]() -> Task<void> {
      for (int i = 0; i < 3; ++i) co_await moment();
      if (!compacted) co_return;
      for (int i = 0; i < 1000 && server.compacted_connection_count() != server.connection_count(); ++i) {
        co_await sleep(std::chrono::milliseconds(5));
      }
      for (int i = 0; i < 10; ++i) co_await moment();  // the request loops unwind
      detail::pool_trim();
    };
    loop.run_sync([&]() -> Task<void> {
      // One connection first, so that what every connection shares (the pool's first
      // blocks, the Date cache, the registry) is not counted.
      spawn(server.handle_stream(server_stream(pairs[0].server), peer(0)));
      if (after_a_request) co_await round_trip(pairs[0].client, request, "Hello, World!", buf);
      co_await settle();
      const size_t before = mallinfo2().uordblks;
      for (size_t i = 1; i < n; ++i) {
        spawn(server.handle_stream(server_stream(pairs[i].server), peer(i)));
        if (after_a_request) co_await round_trip(pairs[i].client, request, "Hello, World!", buf);
      }
      co_await settle();
      if (compacted && server.compacted_connection_count() != n) state.SkipWithError("not all compacted");
      const size_t after = mallinfo2().uordblks;
      per_connection = (static_cast<double>(after) - static_cast<double>(before)) / static_cast<double>(n - 1);
      for (Pair& p : pairs) ::close(p.client);
      co_await server.close_all_connections();
    });
  }
  state.counters["bytes_per_idle_conn"] = per_connection;
  if (compacted) state.counters["record_bytes_per_conn"] = static_cast<double>(detail::IdleRecords::record_bytes());
}

}  // namespace

static void BM_Web_Plaintext(benchmark::State& state) { web_exchange(state, "/plaintext", "Hello, World!"); }
static void BM_Web_Json(benchmark::State& state) {
  web_exchange(state, "/json", R"({"message":"Hello, World!"})");
}
BENCHMARK(BM_Web_Plaintext);
BENCHMARK(BM_Web_Json);

static void BM_IdleConnections_Fresh(benchmark::State& state) { idle_connections(state, IdleKind::fresh); }
static void BM_IdleConnections_AfterRequest(benchmark::State& state) {
  idle_connections(state, IdleKind::after_request);
}
static void BM_IdleConnections_Compacted(benchmark::State& state) { idle_connections(state, IdleKind::compacted); }
BENCHMARK(BM_IdleConnections_Fresh)->Arg(1000)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_IdleConnections_AfterRequest)->Arg(1000)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_IdleConnections_Compacted)->Arg(1000)->Iterations(1)->Unit(benchmark::kMillisecond);
