// HTTP/1.x microbenchmarks: header-block parsing on request corpora, the chunked-body
// decoding path, and request/response exchanges through HTTP1Connection (where the
// response head is built). Bytes/s is bytes of input parsed (or of the exchange);
// items/s is requests (or chunks) handled.
//
// Corpora: the minimal GET wrk sends; the TechEmpower plaintext request (from the
// benchmark's published request); a ~500-byte browser GET with a typical Chrome header
// set. The parsers are pure functions (http_parse.h), so the parse benchmarks call them
// on a string in memory with no loop or socket.
#include <benchmark/benchmark.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <string_view>

#include "squall/chunked_decoder.h"
#include "squall/http1connection.h"
#include "squall/http_parse.h"
#include "squall/ioloop.h"
#include "squall/iostream.h"
#include "squall/task.h"

using namespace squall;

namespace {

const std::string kWrkGet = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

const std::string kTechEmpower =
    "GET /plaintext HTTP/1.1\r\n"
    "Host: server\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20130501 Firefox/30.0 "
    "AppleWebKit/600.00 Chrome/30.0.0000.0 Trident/10.0 Safari/600.00\r\n"
    "Cookie: uid=12345678901234567890; __utma=1.1234567890.1234567890.1234567890."
    "1234567890.12; wd=2560x1600\r\n"
    "Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,"
    "*/*;q=0.7\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";

const std::string kBrowserGet =
    "GET /static/app/index.html?lang=en&v=42 HTTP/1.1\r\n"
    "Host: www.example.com\r\n"
    "Connection: keep-alive\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "*/*;q=0.8\r\n"
    "Referer: https://www.example.com/\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9,fr;q=0.8\r\n"
    "Cookie: session=3f2a9c1e7b; theme=dark\r\n"
    "\r\n";

// As the server parses: into a field vector reused from request to request.
void parse_head(benchmark::State& state, const std::string& head) {
  std::vector<HeaderField> fields;
  for (auto _ : state) {
    auto result = parse_request_head(head, fields);
    if (!result) {
      state.SkipWithError("parse failed");
      break;
    }
    benchmark::DoNotOptimize(fields.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(head.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["head_bytes"] = static_cast<double>(head.size());
}

std::string chunked_body(size_t chunks, size_t chunk_size) {
  std::string out;
  char line[32];
  for (size_t i = 0; i < chunks; ++i) {
    int n = std::snprintf(line, sizeof line, "%zx\r\n", chunk_size);
    out.append(line, static_cast<size_t>(n));
    out.append(chunk_size, static_cast<char>('a' + i % 26));
    out += "\r\n";
  }
  out += "0\r\n\r\n";
  return out;
}

struct SocketPair {
  int fds[2] = {-1, -1};
  SocketPair() { ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds); }
  ~SocketPair() {
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
  }
};

void send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// Reads from fd until the bytes received end with `tail` (the end of one response).
size_t recv_until(int fd, std::string_view tail, std::string& buf) {
  buf.clear();
  char tmp[65536];
  while (buf.size() < tail.size() || std::string_view(buf).substr(buf.size() - tail.size()) != tail) {
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) break;
    buf.append(tmp, static_cast<size_t>(n));
  }
  return buf.size();
}

// Answers each request the way the contract app answers /plaintext (fixed length) or
// /stream/N (chunked, N writes).
class Responder : public HTTPMessageDelegate {
 public:
  Responder(HTTP1Connection& conn, int chunks) : conn_(conn), chunks_(chunks) {}
  FlowControl data_received(std::string) override { return std::nullopt; }
  void finish() override {
    HTTPHeaders headers;
    headers.add("Content-Type", "text/plain");
    if (chunks_ == 0) {
      headers.add("Content-Length", "13");
      written = conn_.write_headers(ResponseStartLine{"HTTP/1.1", 200, "OK"}, headers, "Hello, World!");
    } else {
      written = conn_.write_headers(ResponseStartLine{"HTTP/1.1", 200, "OK"}, headers);
      for (int i = 0; i < chunks_; ++i) written = conn_.write("chunk of the stream\n");
    }
    conn_.finish();
  }
  void on_connection_close() override {}
  std::optional<Future<void>> written;

 private:
  HTTP1Connection& conn_;
  int chunks_;
};

// One request -> response exchange per iteration over a socketpair: the client side is
// plain send()/recv(); the server side is an HTTP1Connection reading the request head,
// calling the delegate, building and writing the response head (+ body or chunks). It
// reads as HTTPServerConnection's request loop does: wait_for_request, then read_request
// (which handles a buffered bodiless request without a coroutine frame).
void exchange(benchmark::State& state, const std::string& request, int chunks) {
  IOLoop loop;
  SocketPair pair;
  IOStream stream(pair.fds[0]);
  pair.fds[0] = -1;
  HTTP1Connection conn(stream, HTTP1Connection::Side::server);
  const std::string_view tail = chunks == 0 ? std::string_view("Hello, World!") : std::string_view("0\r\n\r\n");
  std::string buf;
  int64_t bytes = 0;
  loop.run_sync([&]() -> Task<void> {
    for (auto _ : state) {
      send_all(pair.fds[1], request);
      Responder responder(conn, chunks);
      if (!co_await conn.wait_for_request(std::nullopt)) {
        state.SkipWithError("no request arrived");
        break;
      }
      bool keep = co_await conn.read_request(responder, std::nullopt);
      if (responder.written) co_await *responder.written;
      bytes += static_cast<int64_t>(request.size() + recv_until(pair.fds[1], tail, buf));
      if (!keep) {
        state.SkipWithError("connection not kept alive");
        break;
      }
    }
  });
  state.SetBytesProcessed(bytes);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

}  // namespace

static void BM_ParseRequestHead_WrkGet(benchmark::State& state) { parse_head(state, kWrkGet); }
static void BM_ParseRequestHead_TechEmpower(benchmark::State& state) { parse_head(state, kTechEmpower); }
static void BM_ParseRequestHead_BrowserGet(benchmark::State& state) { parse_head(state, kBrowserGet); }
BENCHMARK(BM_ParseRequestHead_WrkGet);
BENCHMARK(BM_ParseRequestHead_TechEmpower);
BENCHMARK(BM_ParseRequestHead_BrowserGet);

// The header block alone (no request line) of the browser GET into a reused vector.
static void BM_ParseHeaderBlock_BrowserGet(benchmark::State& state) {
  const std::string_view block = std::string_view(kBrowserGet).substr(kBrowserGet.find("\r\n") + 2);
  std::vector<HeaderField> fields;
  for (auto _ : state) {
    fields.clear();
    auto ok = parse_header_block(block, fields);
    if (!ok) {
      state.SkipWithError("parse failed");
      break;
    }
    benchmark::DoNotOptimize(fields.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(block.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_ParseHeaderBlock_BrowserGet);

// De-chunking a body held in memory with ChunkedDecoder (what HTTP1Connection runs on its
// read buffer), the data copied out to a reused buffer as the connection hands it to its
// delegate. Args: chunk count, chunk size. items/s = chunks.
static void BM_ChunkedDecode(benchmark::State& state) {
  const auto chunks = static_cast<size_t>(state.range(0));
  const auto size = static_cast<size_t>(state.range(1));
  const std::string body = chunked_body(chunks, size);
  std::string out;
  out.reserve(chunks * size);
  for (auto _ : state) {
    out.clear();
    ChunkedDecoder decoder;
    std::string_view rest = body;
    for (;;) {
      ParseResult<ChunkedStep> step = decoder.step(rest, 64 * 1024);
      if (!step || step->kind == ChunkedStep::Kind::need_more) {
        state.SkipWithError("bad chunked body");
        break;
      }
      rest.remove_prefix(step->consumed);
      if (step->kind == ChunkedStep::Kind::done) break;
      out.append(step->data);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(body.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * chunks));
}
BENCHMARK(BM_ChunkedDecode)->Args({1024, 16})->Args({64, 1024})->Args({16, 65536});

// Whole exchanges through HTTP1Connection (parse + delegate + response building + write).
static void BM_Exchange_WrkGet_Plaintext(benchmark::State& state) { exchange(state, kWrkGet, 0); }
static void BM_Exchange_TechEmpower_Plaintext(benchmark::State& state) { exchange(state, kTechEmpower, 0); }
static void BM_Exchange_WrkGet_Chunked10(benchmark::State& state) { exchange(state, kWrkGet, 10); }
BENCHMARK(BM_Exchange_WrkGet_Plaintext);
BENCHMARK(BM_Exchange_TechEmpower_Plaintext);
BENCHMARK(BM_Exchange_WrkGet_Chunked10);
