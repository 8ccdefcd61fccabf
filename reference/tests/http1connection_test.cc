// Tests for squall/http1connection.h over socketpairs: the client side (read_response
// framing) and the output checks of the server side. The server's request handling is
// tested through HTTPServer in httpserver_test.cc.
#include "squall/http1connection.h"

#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "squall/future.h"
#include "squall/ioloop.h"
#include "squall/iostream.h"
#include "squall/task.h"

namespace squall {
namespace {

using namespace std::chrono_literals;

struct Pair {
  int fds[2] = {-1, -1};
  Pair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0); }
  ~Pair() {
    if (fds[1] >= 0) ::close(fds[1]);
  }
  void send(std::string_view bytes) { ASSERT_EQ(::write(fds[1], bytes.data(), bytes.size()), ssize_t(bytes.size())); }
  void close_peer() {
    ::close(fds[1]);
    fds[1] = -1;
  }
  std::string receive_available() {
    std::string out;
    char buf[4096];
    for (;;) {
      ssize_t n = ::recv(fds[1], buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) return out;
      out.append(buf, size_t(n));
    }
  }
};

struct ResponseCollector : HTTPMessageDelegate {
  int code = 0;
  std::string reason;
  HTTPHeaders headers;
  std::string body;
  int finished = 0;
  int closed = 0;
  FlowControl headers_received(const ResponseStartLine& line, HTTPHeaders& h) override {
    code = line.code;
    reason = line.reason;
    headers = h;
    return std::nullopt;
  }
  FlowControl data_received(std::string chunk) override {
    body += chunk;
    return std::nullopt;
  }
  void finish() override { ++finished; }
  void on_connection_close() override { ++closed; }
};

class ClientTest : public ::testing::Test {
 protected:
  // Sends a request with `method`, then reads the response the peer side already sent.
  // With close_after, the peer closes its end once the request was sent.
  bool fetch(const std::string& method, HTTP1ConnectionParameters params = {}, bool close_after = false) {
    IOStream stream(pair.fds[0]);
    HTTP1Connection conn(stream, true, params);
    bool result = loop.run_sync(
        [&]() -> Task<bool> {
          HTTPHeaders headers;
          RequestStartLine start{method, "/", "HTTP/1.1"};  // named: no temporaries across co_await (GCC 12)
          Future<void> sent = conn.write_headers(start, headers);
          co_await sent;
          conn.finish();
          if (close_after) {
            request_bytes = pair.receive_available();
            pair.close_peer();
          }
          bool ok = co_await conn.read_response(collector);
          co_return ok;
        },
        5s);
    if (!close_after) request_bytes = pair.receive_available();
    return result;
  }

  IOLoop loop;
  Pair pair;
  ResponseCollector collector;
  std::string request_bytes;
};

TEST_F(ClientTest, WritesRequestHead) {
  pair.send("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(fetch("GET"));
  EXPECT_EQ(request_bytes, "GET / HTTP/1.1\r\n\r\n");
}

TEST_F(ClientTest, ReadsContentLengthBody) {
  pair.send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA");
  EXPECT_TRUE(fetch("GET"));
  EXPECT_EQ(collector.code, 200);
  EXPECT_EQ(collector.reason, "OK");
  EXPECT_EQ(collector.body, "hello");
  EXPECT_EQ(collector.finished, 1);
  EXPECT_EQ(collector.closed, 0);
}

TEST_F(ClientTest, ReadsChunkedBody) {
  pair.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\nA\r\n0123456789\r\n0\r\nT: v\r\n\r\n");
  EXPECT_TRUE(fetch("GET"));
  EXPECT_EQ(collector.body, "abc0123456789");
  EXPECT_EQ(collector.finished, 1);
}

TEST_F(ClientTest, ReadsCloseDelimitedBody) {
  pair.send("HTTP/1.1 200 OK\r\n\r\nuntil the end");
  EXPECT_FALSE(fetch("GET", {}, true));  // the connection cannot be reused
  EXPECT_EQ(collector.body, "until the end");
  EXPECT_EQ(collector.finished, 1);
}

TEST_F(ClientTest, ShortBodyIsAnErrorNotASilentShortBody) {
  pair.send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
  EXPECT_THROW(fetch("GET", {}, true), HTTPInputError);
  EXPECT_EQ(collector.finished, 0);
  EXPECT_EQ(collector.closed, 1);
}

TEST_F(ClientTest, HeadResponseHasNoBody) {
  pair.send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n");
  EXPECT_TRUE(fetch("HEAD"));
  EXPECT_EQ(collector.body, "");
  EXPECT_EQ(collector.finished, 1);
}

TEST_F(ClientTest, Status304HasNoBody) {
  pair.send("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n");
  EXPECT_TRUE(fetch("GET"));
  EXPECT_EQ(collector.code, 304);
  EXPECT_EQ(collector.finished, 1);
}

TEST_F(ClientTest, InterimResponsesAreSkipped) {
  pair.send("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_TRUE(fetch("GET"));
  EXPECT_EQ(collector.code, 201);
  EXPECT_EQ(collector.body, "ok");
}

TEST_F(ClientTest, ContentLengthWithTransferEncodingIsAnError) {
  pair.send("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
  EXPECT_THROW(fetch("GET"), HTTPInputError);
}

TEST_F(ClientTest, BadChunkIsAnError) {
  pair.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX");
  EXPECT_THROW(fetch("GET", {}, true), HTTPInputError);
}

std::string gzip(std::string_view data) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, data.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

TEST_F(ClientTest, GzipBodyIsDecompressedWhenAsked) {
  std::string plain(10000, 'z');
  std::string packed = gzip(plain);
  pair.send("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: " + std::to_string(packed.size()) +
            "\r\n\r\n" + packed);
  HTTP1ConnectionParameters params;
  params.decompress = true;
  EXPECT_TRUE(fetch("GET", params));
  EXPECT_EQ(collector.body, plain);
  EXPECT_FALSE(collector.headers.contains("Content-Encoding"));
  EXPECT_EQ(collector.headers.get("X-Consumed-Content-Encoding"), "gzip");
}

TEST_F(ClientTest, DecompressedSizeCountsAgainstMaxBodySize) {
  std::string packed = gzip(std::string(100000, 'z'));
  pair.send("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: " + std::to_string(packed.size()) +
            "\r\n\r\n" + packed);
  HTTP1ConnectionParameters params;
  params.decompress = true;
  params.max_body_size = 1000;
  EXPECT_THROW(fetch("GET", params), HTTPInputError);
  EXPECT_EQ(collector.finished, 0);
}

// ---- server-side output checks --------------------------------------------------------

// Reads one request on a server connection and runs `respond` when it is complete.
struct Responder : HTTPMessageDelegate {
  std::function<void()> respond;
  FlowControl data_received(std::string) override { return std::nullopt; }
  void finish() override { respond(); }
  void on_connection_close() override {}
};

class ServerOutputTest : public ::testing::Test {
 protected:
  void serve(std::string request, std::function<void(HTTP1Connection&)> respond) {
    IOStream stream(pair.fds[0]);
    HTTP1Connection conn(stream, false);
    Responder responder;
    responder.respond = [&] { respond(conn); };
    pair.send(request);
    loop.run_sync([&] { return conn.read_message(responder); }, 5s);
    loop.run_sync([] { return sleep(10ms); });
    output = pair.receive_available();
  }
  IOLoop loop;
  Pair pair;
  std::string output;
};

TEST_F(ServerOutputTest, HeaderValueWithCrLfIsRefused) {
  bool refused = false;
  serve("GET / HTTP/1.1\r\nHost: x\r\n\r\n", [&](HTTP1Connection& conn) {
    HTTPHeaders headers{{"X-Evil", "a\r\nSet-Cookie: x=1"}};
    try {
      conn.write_headers(ResponseStartLine{"HTTP/1.1", 200, "OK"}, headers);
    } catch (const std::invalid_argument&) {
      refused = true;
    }
    HTTPHeaders ok{{"Content-Length", "0"}};
    conn.write_headers(ResponseStartLine{"HTTP/1.1", 200, "OK"}, ok);
    conn.finish();
  });
  EXPECT_TRUE(refused);
  EXPECT_EQ(output.find("Set-Cookie"), std::string::npos) << output;
}

TEST_F(ServerOutputTest, WritingMoreThanContentLengthThrows) {
  bool thrown = false;
  serve("GET / HTTP/1.1\r\nHost: x\r\n\r\n", [&](HTTP1Connection& conn) {
    HTTPHeaders headers{{"Content-Length", "3"}};
    conn.write_headers(ResponseStartLine{"HTTP/1.1", 200, "OK"}, headers);
    try {
      conn.write("abcd");
    } catch (const HTTPOutputError&) {
      thrown = true;
    }
  });
  EXPECT_TRUE(thrown);
}

TEST_F(ServerOutputTest, FinishingShortOfContentLengthThrowsAndCloses) {
  bool thrown = false;
  bool closed = false;
  serve("GET / HTTP/1.1\r\nHost: x\r\n\r\n", [&](HTTP1Connection& conn) {
    HTTPHeaders headers{{"Content-Length", "5"}};
    conn.write_headers(ResponseStartLine{"HTTP/1.1", 200, "OK"}, headers, "abc");
    try {
      conn.finish();
    } catch (const HTTPOutputError&) {
      thrown = true;
    }
    closed = conn.stream().closed();
  });
  EXPECT_TRUE(thrown);
  EXPECT_TRUE(closed);
}

TEST_F(ServerOutputTest, ExplicitTransferEncodingIsLeftAlone) {
  serve("GET / HTTP/1.1\r\nHost: x\r\n\r\n", [&](HTTP1Connection& conn) {
    HTTPHeaders headers{{"Transfer-Encoding", "chunked"}, {"Server", "Custom"}, {"Date", "x"}};
    conn.write_headers(ResponseStartLine{"HTTP/1.1", 200, "OK"}, headers);
    conn.write("1\r\na\r\n0\r\n\r\n");
    conn.finish();
  });
  EXPECT_EQ(output, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nServer: Custom\r\nDate: x\r\n\r\n1\r\na\r\n0\r\n\r\n");
}

}  // namespace
}  // namespace squall
