// connection: a whole server connection (HTTPServerConnection + HTTP1Connection) fed
// fuzzer bytes in fuzzer-chosen pieces, then EOF; every request is answered by a small
// delegate ("200 OK", body "ok", optionally chunked; HEAD answers carry no body). Invariants: serve() completes
// (neither a crash nor a hang: no timers fire, so a hang is a libFuzzer timeout); the
// stream is closed at the end; whatever the server wrote is a sequence of HTTP/1.1
// responses (each head parses with parse_response_head); no more final responses than
// requests were started; every started request got finish() or on_connection_close().
// flags & 32 picks the lenient parse policy (else the default, strict); an error answer
// carries a short text body (its Content-Length).
//
// Input layout: [flags][n_sizes][sizes...] then the request bytes.
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_input.h"
#include "squall/future.h"
#include "squall/http1connection.h"
#include "squall/http_parse.h"
#include "squall/task.h"
#include "stream_harness.h"

namespace {

using namespace squall;

struct Counts {
  size_t started = 0;
  size_t finished = 0;
  size_t closed = 0;
  size_t body_bytes = 0;
  std::vector<std::string> answered;  // the method of each request answered 200, in order
};

class Answer : public HTTPMessageDelegate {
 public:
  Answer(HTTPConnection& conn, Counts& counts, bool chunked) : conn_(conn), counts_(counts), chunked_(chunked) {}
  FlowControl headers_received(const RequestStartLine& start_line, HTTPHeaders&) override {
    method_ = start_line.method;
    return std::nullopt;
  }
  FlowControl data_received(std::string chunk) override {
    counts_.body_bytes += chunk.size();
    return std::nullopt;
  }
  void finish() override {
    ++counts_.finished;
    counts_.answered.push_back(method_);
    HTTPHeaders headers;
    if (!chunked_) headers.add("Content-Length", "2");
    conn_.write_headers(ResponseStartLine{"HTTP/1.1", 200, "OK"}, headers).mark_retrieved();
    conn_.write("ok").mark_retrieved();
    conn_.finish();
  }
  void on_connection_close() override { ++counts_.closed; }

 private:
  HTTPConnection& conn_;
  Counts& counts_;
  bool chunked_;
  std::string method_;
};

class Server : public HTTPServerConnectionDelegate {
 public:
  Server(Counts& counts, bool chunked) : counts_(counts), chunked_(chunked) {}
  std::unique_ptr<HTTPMessageDelegate> start_request(HTTPServerConnection&, HTTPConnection& conn) override {
    ++counts_.started;
    return std::make_unique<Answer>(conn, counts_, chunked_);
  }

 private:
  Counts& counts_;
  bool chunked_;
};

Task<void> serve(HTTPServerConnection& conn, Server& server, bool& done) {
  co_await conn.serve(server);
  done = true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 16384) return 0;
  squall_fuzz::FuzzInput in(data, size);
  uint8_t flags = in.byte();
  size_t n_sizes = in.range(0, 16);
  std::string sizes;
  for (size_t i = 0; i < n_sizes; ++i) sizes.push_back(static_cast<char>(in.byte()));
  std::string_view bytes = in.rest();

  HTTPServerOptions options;
  options.params.decompress = flags & 1;
  if (flags & 2) {
    options.params.max_header_size = 512;
    options.params.max_body_size = 1024;
    options.params.chunk_size = 16;
  }
  options.params.no_keep_alive = flags & 4;
  if (flags & 32) options.params.head_limits.policy = ParsePolicy::lenient();
  Counts counts;
  Server server(counts, flags & 8);
  bool done = false;
  std::string received;
  {
    squall_fuzz::StreamHarness harness;
    IOStreamOptions stream_options;
    stream_options.read_chunk_size = (flags & 16) ? 5 : 65536;
    HTTPServerConnection conn(harness.make_stream(stream_options), SocketAddress{}, options);
    harness.feed(squall_fuzz::split_pieces(bytes, sizes));
    harness.loop().run_sync([&] { return serve(conn, server, done); });
    FUZZ_CHECK(done);
    FUZZ_CHECK(conn.stream().closed());
    received = harness.received();
  }
  FUZZ_CHECK(counts.finished + counts.closed <= counts.started);
  FUZZ_CHECK(counts.body_bytes <= bytes.size() || (flags & 1));
  // What came back is a sequence of responses: check every head.
  std::string_view rest(received);
  size_t finals = 0;
  size_t oks = 0;
  while (!rest.empty()) {
    size_t end = rest.find("\r\n\r\n");
    FUZZ_CHECK(end != std::string_view::npos);
    ParseResult<ResponseHead> head = parse_response_head(rest.substr(0, end + 4));
    FUZZ_CHECK(head.ok());
    rest.remove_prefix(end + 4);
    int code = head->start_line.code;
    if (code >= 200) ++finals;
    if (code != 200) {  // 100-continue carries no body; an error a short one
      if (code >= 400) {
        ParseResult<uint64_t> length = parse_content_length(head->headers.get("Content-Length", ""));
        FUZZ_CHECK(length.ok() && *length <= rest.size() && *length < 200);
        rest.remove_prefix(*length);
      }
      continue;
    }
    FUZZ_CHECK(oks < counts.answered.size());
    if (counts.answered[oks++] == "HEAD") continue;  // headers only, whatever they announce
    if (head->headers.contains("Content-Length")) {
      FUZZ_CHECK(rest.substr(0, 2) == "ok");
      rest.remove_prefix(2);
    } else if (head->headers.contains("Transfer-Encoding")) {
      constexpr std::string_view kChunked = "2\r\nok\r\n0\r\n\r\n";
      FUZZ_CHECK(rest.substr(0, kChunked.size()) == kChunked);
      rest.remove_prefix(kChunked.size());
    } else {
      // HTTP/1.0 without a length: the body runs until the connection closes.
      FUZZ_CHECK(rest == "ok");
      rest = {};
    }
  }
  FUZZ_CHECK(finals <= counts.started);
  return 0;
}
