// Tests for squall/httpserver.h and the server side of squall/http1connection.h: raw bytes
// in over a loopback socket, exact status lines and framing out.
#include "squall/httpserver.h"

#include <algorithm>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "squall/future.h"
#include "squall/http1connection.h"
#include "squall/httputil.h"
#include "squall/ioloop.h"
#include "squall/iostream.h"
#include "squall/ssl_context.h"
#include "squall/ssl_iostream.h"
#include "squall/task.h"
#include "tls/test_certs.h"

namespace squall {
namespace {

using namespace std::chrono_literals;

// Drops the Date line (its value changes every second) so responses compare exactly.
std::string strip_date(std::string s) {
  for (;;) {
    size_t pos = s.find("\r\nDate: ");
    if (pos == std::string::npos) return s;
    size_t end = s.find("\r\n", pos + 2);
    s.erase(pos, end - pos);
  }
}

struct TestApp;

// Echoes "METHOD target body" with Content-Length, or answers the special targets below.
struct TestMessage : HTTPMessageDelegate {
  TestApp& app;
  HTTPServerConnection& server_conn;
  HTTPConnection& conn;
  RequestStartLine line;
  std::string body;
  std::string remote_ip;
  std::string protocol;

  TestMessage(TestApp& a, HTTPServerConnection& s, HTTPConnection& c) : app(a), server_conn(s), conn(c) {}
  ~TestMessage() override;
  FlowControl headers_received(const RequestStartLine& start, HTTPHeaders&) override;
  FlowControl data_received(std::string chunk) override {
    body += chunk;
    return std::nullopt;
  }
  void finish() override;
  void respond();
  void on_connection_close() override;
};

struct TestApp : HTTPServerConnectionDelegate {
  std::vector<std::string> seen;  // "METHOD target" of each request whose head was received
  int finished = 0;
  int connection_closes = 0;  // on_connection_close of message delegates
  int closes = 0;             // on_close of server connections
  std::optional<Future<void>> release;  // "/wait" is answered once this completes
  std::vector<const HTTP1ConnectionParameters*> parameters;  // each request's connection's
  std::function<void()> on_message_destroyed;  // run by each TestMessage's destructor
  std::unique_ptr<HTTPMessageDelegate> start_request(HTTPServerConnection& server_conn,
                                                     HTTPConnection& request_conn) override {
    parameters.push_back(&server_conn.connection().params());
    return std::make_unique<TestMessage>(*this, server_conn, request_conn);
  }
  void on_close(HTTPServerConnection&) override { ++closes; }
};

FlowControl TestMessage::headers_received(const RequestStartLine& start, HTTPHeaders&) {
  line = start;
  remote_ip = server_conn.context().remote_ip;
  protocol = server_conn.context().protocol;
  app.seen.push_back(start.method + " " + start.target);
  return std::nullopt;
}

void TestMessage::on_connection_close() { ++app.connection_closes; }

TestMessage::~TestMessage() {
  if (app.on_message_destroyed) app.on_message_destroyed();
}

void TestMessage::finish() {
  ++app.finished;
  if (line.target == "/wait" && app.release) {
    app.release->add_done_callback([this](Future<void>&) { respond(); });
    return;
  }
  respond();
}

void TestMessage::respond() {
  const std::string& target = line.target;
  if (target.rfind("/status/", 0) == 0) {
    int code = std::stoi(target.substr(8));
    HTTPHeaders headers;
    conn.write_headers(ResponseStartLine{"HTTP/1.1", code, std::string(reason_phrase(code))}, headers);
    conn.finish();
    return;
  }
  if (target == "/nolength") {
    HTTPHeaders headers;
    conn.write_headers(ResponseStartLine{"HTTP/1.1", 200, "OK"}, headers);
    conn.write("hello");
    conn.write("world!");
    conn.finish();
    return;
  }
  std::string out = target == "/context" ? remote_ip + " " + protocol : line.method + " " + target + " " + body;
  HTTPHeaders headers;
  headers.add("Content-Length", std::to_string(out.size()));
  if (line.method == "HEAD") {
    conn.write_headers(ResponseStartLine{"HTTP/1.1", 200, "OK"}, headers);
  } else {
    conn.write_headers(ResponseStartLine{"HTTP/1.1", 200, "OK"}, headers, out);
  }
  conn.finish();
}

// Connects, sends `request` (in pieces separated by `pause` when given several), reads
// until the server closes.
Task<std::string> send_and_read_all(uint16_t port, std::vector<std::string> pieces, Duration pause = 0ms) {
  IOStream stream(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  SocketAddress address = SocketAddress::from_ip("127.0.0.1", port);
  co_await stream.connect(address.get(), address.length());
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (i > 0 && pause > 0ms) co_await sleep(pause);
    co_await stream.write(std::move(pieces[i]));
  }
  std::string data = co_await stream.read_until_close();
  co_return data;
}

class HTTPServerTest : public ::testing::Test {
 protected:
  void start(HTTPServerOptions options = {}) {
    server = std::make_unique<HTTPServer>(app, std::move(options));
    server->listen(0, "127.0.0.1");
    port = server->ports().at(0);
  }
  std::string exchange(std::string request) { return exchange_pieces({std::move(request)}); }
  std::string exchange_pieces(std::vector<std::string> pieces, Duration pause = 0ms) {
    if (!server) start();
    std::string response = loop.run_sync([&] { return send_and_read_all(port, pieces, pause); }, 5s);
    settle();
    return strip_date(response);
  }
  // Lets the server side finish reacting to what the client saw.
  void settle() {
    loop.run_sync([] { return sleep(20ms); });
  }
  void TearDown() override {
    if (server) server->stop();
  }

  IOLoop loop;
  TestApp app;
  std::unique_ptr<HTTPServer> server;
  uint16_t port = 0;
};

constexpr const char* kBadRequest = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

// A server's connections read one set of parameters (made usable once: a chunk size of 0
// is 1, a timeout of zero or less is none), not a copy each.
TEST_F(HTTPServerTest, ConnectionsShareTheServersParameters) {
  HTTPServerOptions options;
  options.params.chunk_size = 0;
  options.params.header_timeout = -1s;
  options.params.max_body_size = 12345;
  start(options);
  // Two connections open at once (a connection's own block, freed, could come back from
  // the pool at the same address for the next one).
  loop.run_sync([&]() -> Task<void> {
    SocketAddress address = SocketAddress::from_ip("127.0.0.1", port);
    IOStream first(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    IOStream second(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    co_await first.connect(address.get(), address.length());
    co_await second.connect(address.get(), address.length());
    for (IOStream* stream : {&first, &second}) {
      co_await stream->write("GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
      co_await stream->read_until("\r\n\r\n");
    }
  }, 5s);
  ASSERT_EQ(app.parameters.size(), 2u);
  EXPECT_EQ(app.parameters[0], app.parameters[1]) << "a copy per connection";
  const HTTP1ConnectionParameters& shared = *app.parameters[0];
  EXPECT_EQ(shared.chunk_size, 1u);
  EXPECT_FALSE(shared.header_timeout.has_value());
  EXPECT_EQ(shared.max_body_size, 12345u);
}

TEST_F(HTTPServerTest, SimpleGetAnswers200WithContentLength) {
  EXPECT_EQ(exchange("GET /a?b=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\nServer: Squall\r\n\r\nGET /a?b=1 ");
}

TEST_F(HTTPServerTest, ResponseCarriesDateHeader) {
  start();
  std::string raw = loop.run_sync(
      [&] { return send_and_read_all(port, {"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"}); }, 5s);
  EXPECT_NE(raw.find("\r\nDate: "), std::string::npos) << raw;
  EXPECT_NE(raw.find(" GMT\r\n"), std::string::npos) << raw;
}

TEST_F(HTTPServerTest, HeadResponseHasNoBody) {
  EXPECT_EQ(exchange("HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\nServer: Squall\r\n\r\n");
}

TEST_F(HTTPServerTest, Status204HasNoBodyAndNoChunking) {
  EXPECT_EQ(exchange("GET /status/204 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            "HTTP/1.1 204 No Content\r\nConnection: close\r\nServer: Squall\r\n\r\n");
}

TEST_F(HTTPServerTest, Status304HasNoBodyAndNoChunking) {
  EXPECT_EQ(exchange("GET /status/304 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            "HTTP/1.1 304 Not Modified\r\nConnection: close\r\nServer: Squall\r\n\r\n");
}

TEST_F(HTTPServerTest, ResponseWithoutLengthIsChunkedOnHttp11) {
  EXPECT_EQ(exchange("GET /nolength HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\nServer: Squall\r\n\r\n"
            "5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n");
}

TEST_F(HTTPServerTest, ResponseWithoutLengthIsCloseDelimitedOnHttp10) {
  EXPECT_EQ(exchange("GET /nolength HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nConnection: close\r\nServer: Squall\r\n\r\nhelloworld!");
}

TEST_F(HTTPServerTest, PostWithContentLengthBodyIsReceived) {
  EXPECT_EQ(exchange("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"),
            "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nConnection: close\r\nServer: Squall\r\n\r\nPOST /p hello");
}

TEST_F(HTTPServerTest, ChunkedRequestBodyIsDechunked) {
  EXPECT_EQ(exchange("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                     "5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nContent-Length: 22\r\nConnection: close\r\nServer: Squall\r\n\r\n"
            "POST / hello0123456789");
}

TEST_F(HTTPServerTest, ChunkedBodyInOneBytePiecesIsDechunked) {
  std::string request =
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
  std::vector<std::string> pieces;
  for (char c : request) pieces.emplace_back(1, c);
  EXPECT_EQ(exchange_pieces(pieces, 1ms),
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\nServer: Squall\r\n\r\nPOST / abc");
}

TEST_F(HTTPServerTest, InvalidChunkSizeIs400) {
  EXPECT_EQ(exchange("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"), kBadRequest);
  EXPECT_EQ(app.finished, 0);
  EXPECT_EQ(app.connection_closes, 1);
}

TEST_F(HTTPServerTest, ChunkSizeOverflowIsRejected) {
  std::string response =
      exchange("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n");
  EXPECT_TRUE(response == kBadRequest ||
              response == "HTTP/1.1 413 Request Entity Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
      << response;
  EXPECT_EQ(app.finished, 0);
}

TEST_F(HTTPServerTest, MissingCrlfAfterChunkDataIs400) {
  EXPECT_EQ(exchange("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"), kBadRequest);
  EXPECT_EQ(app.finished, 0);
}

TEST_F(HTTPServerTest, ContentLengthWithTransferEncodingIs400AndSmuggledRequestIsIgnored) {
  EXPECT_EQ(exchange("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"),
            kBadRequest);
  EXPECT_TRUE(app.seen.empty());
}

TEST_F(HTTPServerTest, DifferingContentLengthsAre400) {
  EXPECT_EQ(exchange("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"), kBadRequest);
  EXPECT_TRUE(app.seen.empty());
}

TEST_F(HTTPServerTest, SignedOrSpacedContentLengthIs400) {
  for (const char* value : {"+5", "-1", "5 5"}) {
    EXPECT_EQ(exchange(std::string("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ") + value + "\r\n\r\nhello"), kBadRequest)
        << value;
  }
  EXPECT_TRUE(app.seen.empty());
}

TEST_F(HTTPServerTest, UnknownTransferCodingIs501) {
  EXPECT_EQ(exchange("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nxx"),
            "HTTP/1.1 501 Not Implemented\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
}

// After an error answer the server half-closes and keeps reading (and dropping) what the
// client still sends, instead of closing with unread input — which would reset the
// connection and could destroy the answer before the client reads it (RFC 9112 §9.6).
TEST_F(HTTPServerTest, ErrorAnswerIsFollowedByALingeringClose) {
  HTTPServerOptions options;
  options.params.max_header_size = 1024;
  start(options);
  std::string response;
  bool later_writes_ok = false;
  loop.run_sync(
      [&]() -> Task<void> {
        IOStreamOptions half_close;
        half_close.allow_half_close = true;
        IOStream stream(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), half_close);
        SocketAddress address = SocketAddress::from_ip("127.0.0.1", port);
        co_await stream.connect(address.get(), address.length());
        co_await stream.write("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(8000, 'a'));
        response = co_await stream.read_until_close();  // the server half-closed
        // The server still reads: more bytes from us are taken, not answered with a reset.
        for (int i = 0; i < 3; ++i) {
          co_await sleep(30ms);
          co_await stream.write(std::string(1000, 'b'));
        }
        co_await sleep(30ms);
        later_writes_ok = !stream.closed();
      },
      5s);
  EXPECT_EQ(strip_date(response), "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n"
                                  "Content-Length: 0\r\n\r\n");
  EXPECT_TRUE(later_writes_ok);
  settle();
  EXPECT_EQ(app.closes, 1);  // and the connection is gone once we closed ours
}

TEST_F(HTTPServerTest, HeaderLargerThanMaxHeaderSizeIs431) {
  HTTPServerOptions options;
  options.params.max_header_size = 1024;
  start(options);
  EXPECT_EQ(exchange("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n"),
            "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
}

TEST_F(HTTPServerTest, OverlongRequestLineIs414NotA431) {
  HTTPServerOptions options;
  options.params.max_header_size = 1024;
  start(options);
  // No line end within max_header_size: the request line is what is too long.
  EXPECT_EQ(exchange("GET /" + std::string(2000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n"),
            "HTTP/1.1 414 Request-URI Too Long\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(app.seen.empty());
}

TEST_F(HTTPServerTest, RequestLineOverMaxStartLineIs414) {
  HTTPServerOptions options;
  options.params.max_header_size = 1024;
  options.params.head_limits.max_start_line = 100;
  start(options);
  EXPECT_EQ(exchange("GET /" + std::string(200, 'a') + " HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(2000, 'b') +
                     "\r\n\r\n"),
            "HTTP/1.1 414 Request-URI Too Long\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
}

TEST_F(HTTPServerTest, HeadOf50KBInAHundredFieldsIsAccepted) {
  std::string head = "GET / HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 100; ++i) head += "X-F" + std::to_string(i) + ": " + std::string(490, 'v') + "\r\n";
  EXPECT_EQ(exchange(head + "Connection: close\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\nServer: Squall\r\n\r\nGET / ");
}

TEST_F(HTTPServerTest, Http11WithoutHostIs400) {
  EXPECT_EQ(exchange("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"), kBadRequest);
  EXPECT_TRUE(app.seen.empty());
}

TEST_F(HTTPServerTest, Http10WithoutHostIsAnswered) {
  EXPECT_EQ(exchange("GET / HTTP/1.0\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\nServer: Squall\r\n\r\nGET / ");
}

TEST_F(HTTPServerTest, TwoHostFieldsAre400) {
  EXPECT_EQ(exchange("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"),
            kBadRequest);
  EXPECT_EQ(exchange("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"), kBadRequest);
  EXPECT_TRUE(app.seen.empty());
}

TEST_F(HTTPServerTest, InvalidHostIs400) {
  for (const char* host : {"exa mple.com", "a.example, b.example", "user@127.0.0.1", "127.0.0.1:http", "127.0.0.1/evil",
                           "[::1"}) {
    EXPECT_EQ(exchange(std::string("GET / HTTP/1.1\r\nHost: ") + host + "\r\nConnection: close\r\n\r\n"),
              kBadRequest)
        << host;
  }
  EXPECT_TRUE(app.seen.empty());
}

TEST_F(HTTPServerTest, HostWithPortOrIpLiteralIsAccepted) {
  for (const char* host : {"127.0.0.1:8080", "[::1]:80", "Example.COM"}) {
    EXPECT_EQ(exchange(std::string("GET / HTTP/1.1\r\nHost: ") + host + "\r\nConnection: close\r\n\r\n"),
              "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\nServer: Squall\r\n\r\nGET / ")
        << host;
  }
}

TEST_F(HTTPServerTest, ObsFoldIs400) {
  EXPECT_EQ(exchange("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n"), kBadRequest);
}

TEST_F(HTTPServerTest, SpaceBeforeColonIs400) { EXPECT_EQ(exchange("GET / HTTP/1.1\r\nHost : x\r\n\r\n"), kBadRequest); }

TEST_F(HTTPServerTest, Http2VersionIs505) {
  EXPECT_EQ(exchange("GET / HTTP/2.0\r\nHost: x\r\n\r\n"),
            "HTTP/1.1 505 HTTP Version Not Supported\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
}

TEST_F(HTTPServerTest, GarbageStartLineIs400) { EXPECT_EQ(exchange("\x01\x02 garbage\r\n\r\n"), kBadRequest); }

TEST_F(HTTPServerTest, BodyOverMaxBodySizeIs413AndCloses) {
  HTTPServerOptions options;
  options.params.max_body_size = 10;
  start(options);
  // The connection is closed after the 413 although the declared body never came.
  EXPECT_EQ(exchange("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789"),
            "HTTP/1.1 413 Request Entity Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(app.seen.empty());
}

TEST_F(HTTPServerTest, ChunkedBodyOverMaxBodySizeIs413) {
  HTTPServerOptions options;
  options.params.max_body_size = 10;
  start(options);
  EXPECT_EQ(exchange("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n01234567\r\n8\r\n01234567\r\n"),
            "HTTP/1.1 413 Request Entity Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(app.finished, 0);
}

TEST_F(HTTPServerTest, ExpectContinueGets100BeforeTheBodyThen200) {
  start();
  std::string response = strip_date(loop.run_sync(
      [&]() -> Task<std::string> {
        IOStream stream(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        SocketAddress address = SocketAddress::from_ip("127.0.0.1", port);
        co_await stream.connect(address.get(), address.length());
        co_await stream.write(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n");
        std::string interim = co_await stream.read_until("\r\n\r\n", 1000);
        co_await stream.write("hi");
        std::string rest = co_await stream.read_until_close();
        co_return interim + rest;
      },
      5s));
  EXPECT_EQ(response,
            "HTTP/1.1 100 (Continue)\r\n\r\n"
            "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\nServer: Squall\r\n\r\nPOST / hi");
}

TEST_F(HTTPServerTest, ExpectContinueWithoutBodyGetsNo100) {
  EXPECT_EQ(exchange("GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\nServer: Squall\r\n\r\nGET / ");
}

TEST_F(HTTPServerTest, KeepAliveIsTheDefaultOnHttp11) {
  // The second request on the same connection is answered: the first did not close it.
  EXPECT_EQ(exchange_pieces({"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n", "GET /2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"}, 50ms),
            "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nServer: Squall\r\n\r\nGET /1 "
            "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\nServer: Squall\r\n\r\nGET /2 ");
}

TEST_F(HTTPServerTest, ConnectionCloseClosesAfterTheResponse) {
  EXPECT_EQ(exchange("GET /1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\nServer: Squall\r\n\r\nGET /1 ");
  EXPECT_EQ(app.seen, std::vector<std::string>{"GET /1"});
}

TEST_F(HTTPServerTest, CloseAmongConnectionOptionsCloses) {
  EXPECT_EQ(exchange("GET /1 HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\nServer: Squall\r\n\r\nGET /1 ");
  EXPECT_EQ(app.seen, std::vector<std::string>{"GET /1"});
  EXPECT_EQ(exchange("GET /3 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nConnection: CLOSE\r\n\r\n"
                     "GET /4 HTTP/1.1\r\nHost: x\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\nServer: Squall\r\n\r\nGET /3 ");
}

TEST_F(HTTPServerTest, Http10KeepAliveAmongConnectionOptionsIsHonoured) {
  EXPECT_EQ(exchange("GET /1 HTTP/1.0\r\nConnection: foo, Keep-Alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: Keep-Alive\r\nServer: Squall\r\n\r\nGET /1 "
            "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\nServer: Squall\r\n\r\nGET /2 ");
}

TEST_F(HTTPServerTest, Http10ClosesUnlessKeepAliveRequested) {
  EXPECT_EQ(exchange("GET /1 HTTP/1.0\r\n\r\nGET /2 HTTP/1.0\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\nServer: Squall\r\n\r\nGET /1 ");
}

TEST_F(HTTPServerTest, Http10KeepAliveIsHonouredWhenLengthIsKnown) {
  EXPECT_EQ(exchange("GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: Keep-Alive\r\nServer: Squall\r\n\r\nGET /1 "
            "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\nServer: Squall\r\n\r\nGET /2 ");
}

// A blocking client socket connected to the server on `port` (the listen backlog takes it
// before the loop accepts), or -1.
int connect_blocking(uint16_t port) {
  const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (client < 0) return -1;
  SocketAddress address = SocketAddress::from_ip("127.0.0.1", port);
  if (::connect(client, address.get(), address.length()) != 0) {
    ::close(client);
    return -1;
  }
  return client;
}

// How many of TestMessage's answers `received` holds whose body starts with `body_start`.
size_t count_answers(const std::string& received, std::string_view body_start) {
  const std::string marker = "\r\n\r\n" + std::string(body_start);
  size_t count = 0;
  for (size_t at = received.find(marker); at != std::string::npos; at = received.find(marker, at + 1)) ++count;
  return count;
}

// A keep-alive answer made while the loop runs the connection's handler leaves once the
// request is cleaned up (its message delegate destroyed), when the handler returns to the
// loop: that work runs before the send's system call, among the pages the request touched
// (IOLoop::flush_after_handler). It does leave then, with nothing else to wake the loop.
TEST_F(HTTPServerTest, AKeepAliveAnswerLeavesAfterTheRequestsCleanUp) {
  start();
  const int client = connect_blocking(port);
  ASSERT_GE(client, 0);
  std::vector<ssize_t> peeked;  // what the client could read as each delegate was destroyed
  app.on_message_destroyed = [&] {
    char byte;
    peeked.push_back(::recv(client, &byte, 1, MSG_PEEK | MSG_DONTWAIT));
  };
  const std::string request = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string received;
  auto answers = [&received] { return count_answers(received, "GET /a "); };
  for (size_t round = 0; round < 2; ++round) {
    ASSERT_EQ(::send(client, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
    loop.run_sync([&]() -> Task<void> {
      while (answers() < round + 1) {
        char buffer[512];
        ssize_t n = ::recv(client, buffer, sizeof buffer, MSG_DONTWAIT);
        if (n > 0) received.append(buffer, static_cast<size_t>(n));
        co_await sleep(1ms);
      }
    }, 5s);
  }
  ::close(client);
  settle();
  ASSERT_EQ(peeked.size(), 2u);
  EXPECT_EQ(peeked, (std::vector<ssize_t>{-1, -1}));  // nothing yet: the answer was still held
  EXPECT_EQ(app.finished, 2);
}

// What a client got from the server after sending `batch` on a new connection and
// shutting its sending side down at once, both queued before the server's loop first reads
// the socket: what arrived until the server closed the connection, or 3 s passed.
struct HalfClosedExchange {
  std::string received;
  bool closed = false;
};
HalfClosedExchange half_closed_exchange(IOLoop& loop, uint16_t port, const std::string& batch) {
  HalfClosedExchange result;
  const int client = connect_blocking(port);
  if (client < 0) return result;
  const bool sent = ::send(client, batch.data(), batch.size(), 0) == static_cast<ssize_t>(batch.size()) &&
                    ::shutdown(client, SHUT_WR) == 0;
  EXPECT_TRUE(sent);
  loop.run_sync([&]() -> Task<void> {
    for (auto end = Clock::now() + 3s; sent && !result.closed && Clock::now() < end;) {
      char buffer[65536];
      ssize_t n = ::recv(client, buffer, sizeof buffer, MSG_DONTWAIT);
      if (n > 0) result.received.append(buffer, static_cast<size_t>(n));
      result.closed = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
      if (n <= 0) co_await sleep(1ms);
    }
  }, 5s);
  ::close(client);
  return result;
}

// A peer's FIN that arrives together with its last request raises no event of its own on
// the edge-triggered socket, and the short read that takes the request does not see it:
// the loop's PEER_CLOSED tells the stream, whose next read finds the end and closes the
// connection at once (not at the idle timeout, here an hour away).
TEST_F(HTTPServerTest, APeersCloseThatCameWithItsLastRequestEndsTheConnectionAtOnce) {
  HTTPServerOptions options;
  options.idle_connection_timeout = 3600s;
  start(options);
  const std::string request = "GET /f HTTP/1.1\r\nHost: x\r\n\r\n";
  for (size_t requests : {1u, 3u}) {
    std::string batch;
    for (size_t i = 0; i < requests; ++i) batch += request;
    HalfClosedExchange exchanged = half_closed_exchange(loop, port, batch);
    EXPECT_TRUE(exchanged.closed) << requests << " requests: the server kept the connection";
    EXPECT_EQ(count_answers(exchanged.received, "GET /f "), requests);
  }
}

TEST_F(HTTPServerTest, PipelinedRequestsAreAnsweredInOrder) {
  EXPECT_EQ(exchange("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx"
                     "GET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nServer: Squall\r\n\r\nGET /1 "
            "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nServer: Squall\r\n\r\nPOST /2 x"
            "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\nServer: Squall\r\n\r\nGET /3 ");
}

// A peer that sends a pipelined batch and ends its input with it gets every answer, then
// the close, also when the batch fills the server's reads exactly, so that the read after
// the last request finds the end of input at once, in the same handler run as the answers
// still held back for it (1,024 and 2,048 requests of 64 bytes: one and two reads of 64 KiB).
TEST_F(HTTPServerTest, APipelinedBatchEndedByThePeersCloseIsAnsweredInFull) {
  const std::string request = "GET /p HTTP/1.1\r\nHost: x\r\nX: " + std::string(31, 'p') + "\r\n\r\n";
  ASSERT_EQ(request.size(), 64u);
  start();
  for (size_t requests : {1024u, 2048u, 1000u}) {
    std::string batch;
    for (size_t i = 0; i < requests; ++i) batch += request;
    HalfClosedExchange exchanged = half_closed_exchange(loop, port, batch);
    EXPECT_EQ(count_answers(exchanged.received, "GET /p "), requests) << requests << " requests";
    EXPECT_TRUE(exchanged.closed) << requests << " requests";
  }
}

// Responses of a pipelined batch are coalesced into one write; the order never changes,
// and a malformed request's 400 comes after the answers to the requests before it.
TEST_F(HTTPServerTest, PipelinedAnswersPrecedeTheErrorOfALaterMalformedRequest) {
  EXPECT_EQ(exchange("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /3 HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\nx"),
            std::string("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nServer: Squall\r\n\r\nGET /1 "
                        "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nServer: Squall\r\n\r\nGET /2 ") +
                kBadRequest);
}

// A pipelined request whose answer takes time does not hold back the answers before it.
TEST_F(HTTPServerTest, SlowPipelinedAnswerDoesNotHoldBackEarlierOnes) {
  start();
  app.release.emplace();
  std::string first, rest;
  loop.run_sync(
      [&]() -> Task<void> {
        IOStream stream(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        SocketAddress address = SocketAddress::from_ip("127.0.0.1", port);
        co_await stream.connect(address.get(), address.length());
        co_await stream.write(std::string("GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
                                          "GET /wait HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        first = co_await stream.read_until("GET /1 ");  // would time out if held back
        app.release->set_result();
        rest = co_await stream.read_until_close();
      },
      5s);
  EXPECT_EQ(strip_date(first), "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nServer: Squall\r\n\r\nGET /1 ");
  EXPECT_EQ(strip_date(rest),
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\nServer: Squall\r\n\r\nGET /wait ");
}

TEST_F(HTTPServerTest, EmptyLinesBeforeARequestAreIgnored) {
  EXPECT_EQ(exchange("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\nServer: Squall\r\n\r\nGET / ");
}

TEST_F(HTTPServerTest, HeaderTimeoutClosesASlowClient) {
  HTTPServerOptions options;
  options.params.header_timeout = 100ms;
  start(options);
  auto begin = Clock::now();
  EXPECT_EQ(exchange("GET / HTTP/1.1\r\nHost: x\r\n"), "");
  EXPECT_LT(Clock::now() - begin, 3s);
  EXPECT_TRUE(app.seen.empty());
}

TEST_F(HTTPServerTest, BodyTimeoutCloses) {
  HTTPServerOptions options;
  options.params.body_timeout = 100ms;
  start(options);
  auto begin = Clock::now();
  EXPECT_EQ(exchange("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"), "");
  EXPECT_LT(Clock::now() - begin, 3s);
  EXPECT_EQ(app.finished, 0);
  EXPECT_EQ(app.connection_closes, 1);
}

TEST_F(HTTPServerTest, IdleTimeoutClosesBetweenRequests) {
  HTTPServerOptions options;
  options.idle_connection_timeout = 100ms;
  start(options);
  auto begin = Clock::now();
  EXPECT_EQ(exchange("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nServer: Squall\r\n\r\nGET / ");
  EXPECT_LT(Clock::now() - begin, 3s);
  EXPECT_EQ(app.closes, 1);
}

// The idle timeout is measured from the start of each wait, though the connection's one
// timer was armed at the first: 600 ms after it, past its deadline, the third request is
// still answered, and the connection closes 500 ms after that.
TEST_F(HTTPServerTest, IdleTimeoutRunsFromTheLastRequestNotTheFirst) {
  HTTPServerOptions options;
  options.idle_connection_timeout = 500ms;
  start(options);
  const std::string get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nServer: Squall\r\n\r\nGET / ";
  auto begin = Clock::now();
  EXPECT_EQ(exchange_pieces({get, get, get}, 300ms), answer + answer + answer);
  EXPECT_GE(Clock::now() - begin, 1000ms);  // 2 × 300 ms of pauses, then the 500 ms wait
  EXPECT_EQ(app.closes, 1);
}

// Keep-alive requests leave the read watchdog's timer armed rather than adding a timer and
// cancelling it each (a cancelled timer stays in the loop's heap until popped).
TEST_F(HTTPServerTest, KeepAliveRequestsAddNoTimerEach) {
  start();
  const std::string get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  std::vector<std::string> pieces(30, get);
  pieces.push_back("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::string response = exchange_pieces(pieces, 1ms);
  EXPECT_EQ(app.finished, 31);
  EXPECT_LT(loop.timer_heap_size(), 5u);
}

// Connection options may come over several field lines (RFC 9110 §7.6.1): "close" on
// the second line ends the connection after the answer; HTTP/1.0's "keep-alive" on the
// second line keeps it (until the short idle timeout ends the exchange).
TEST_F(HTTPServerTest, ConnectionOptionsAreReadFromEveryConnectionLine) {
  HTTPServerOptions options;
  options.idle_connection_timeout = 300ms;
  start(options);
  EXPECT_EQ(exchange("GET / HTTP/1.1\r\nHost: x\r\nConnection: foo\r\nConnection: bar, Close\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\nServer: Squall\r\n\r\nGET / ");
  EXPECT_EQ(exchange("GET / HTTP/1.0\r\nConnection: foo\r\nConnection: Keep-Alive\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: Keep-Alive\r\nServer: Squall\r\n\r\nGET / ");
}

TEST_F(HTTPServerTest, XHeadersSetRemoteIpAndProtocol) {
  HTTPServerOptions options;
  options.xheaders = true;
  options.trusted_downstream = {"10.0.0.9"};
  start(options);
  EXPECT_EQ(exchange("GET /context HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4, 5.6.7.8, 10.0.0.9\r\n"
                     "X-Forwarded-Proto: https\r\nConnection: close\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nConnection: close\r\nServer: Squall\r\n\r\n5.6.7.8 https");
}

TEST_F(HTTPServerTest, XHeadersIgnoreInvalidValues) {
  HTTPServerOptions options;
  options.xheaders = true;
  start(options);
  EXPECT_EQ(exchange("GET /context HTTP/1.1\r\nHost: x\r\nX-Real-Ip: not-an-ip\r\nX-Scheme: ftp\r\nConnection: close\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nContent-Length: 14\r\nConnection: close\r\nServer: Squall\r\n\r\n127.0.0.1 http");
}

TEST_F(HTTPServerTest, WithoutXHeadersTheProxyHeadersAreIgnored) {
  EXPECT_EQ(exchange("GET /context HTTP/1.1\r\nHost: x\r\nX-Real-Ip: 1.2.3.4\r\nConnection: close\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nContent-Length: 14\r\nConnection: close\r\nServer: Squall\r\n\r\n127.0.0.1 http");
}

TEST_F(HTTPServerTest, CloseAllConnectionsEndsIdleConnections) {
  start();
  bool done = loop.run_sync(
      [&]() -> Task<bool> {
        IOStream stream(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        SocketAddress address = SocketAddress::from_ip("127.0.0.1", port);
        co_await stream.connect(address.get(), address.length());
        co_await stream.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        co_await stream.read_until("GET / ");
        EXPECT_EQ(server->connection_count(), 1u);
        server->stop();
        co_await server->close_all_connections();
        std::string rest = co_await stream.read_until_close();
        co_return rest.empty() && server->connection_count() == 0;
      },
      5s);
  settle();
  EXPECT_TRUE(done);
  EXPECT_EQ(app.closes, 1);
}

// Bodies large enough to be written after their head (not copied behind it) arrive whole
// and in order, also when pipelined responses are collected into one write.
TEST_F(HTTPServerTest, LargeResponseBodiesArriveWholeAndInOrder) {
  std::string big(300000, 'x');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  std::string post = "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n\r\n" + big;
  std::string response = exchange(post + post + "GET /end HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::string body = "POST /big " + big;
  std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                       "\r\nServer: Squall\r\n\r\n" + body;
  std::string expected =
      answer + answer + "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\nServer: Squall\r\n\r\nGET /end ";
  EXPECT_EQ(response.size(), expected.size());
  EXPECT_TRUE(response == expected) << "first difference at byte "
                                    << std::mismatch(response.begin(), response.end(), expected.begin(),
                                                     expected.end()).first - response.begin();
}

// ---- graceful shutdown (HTTPServer::shutdown) --------------------------------------------------

// A client connection for the shutdown tests: connect, then send / read as the test goes.
Task<std::unique_ptr<IOStream>> connect_to(uint16_t port) {
  auto stream = std::make_unique<IOStream>(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  SocketAddress address = SocketAddress::from_ip("127.0.0.1", port);
  co_await stream->connect(address.get(), address.length());
  co_return std::move(stream);
}

// Three connections, the middle one of the server's list closing first: the others stay
// counted, and close_all_connections ends both.
TEST_F(HTTPServerTest, ConnectionsLeaveTheCountInAnyOrder) {
  start();
  bool done = loop.run_sync(
      [&]() -> Task<bool> {
        std::vector<std::unique_ptr<IOStream>> clients;
        for (int i = 0; i < 3; ++i) {
          clients.push_back(co_await connect_to(port));
          co_await clients.back()->write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
          co_await clients.back()->read_until("GET / ");
        }
        EXPECT_EQ(server->connection_count(), 3u);
        EXPECT_EQ(server->busy_connection_count(), 0u);
        clients[1]->close();
        while (server->connection_count() != 2) co_await sleep(1ms);
        EXPECT_EQ(app.closes, 1);
        server->stop();
        co_await server->close_all_connections();
        EXPECT_EQ(server->connection_count(), 0u);
        std::string first = co_await clients[0]->read_until_close();
        std::string last = co_await clients[2]->read_until_close();
        co_return first.empty() && last.empty();
      },
      5s);
  settle();
  EXPECT_TRUE(done);
  EXPECT_EQ(app.closes, 3);
}

TEST_F(HTTPServerTest, ShutdownClosesIdleKeepAliveConnectionsAtOnce) {
  start();
  bool ok = loop.run_sync(
      [&]() -> Task<bool> {
        std::unique_ptr<IOStream> client = co_await connect_to(port);
        co_await client->write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        co_await client->read_until("GET / ");  // answered; the connection is now idle
        EXPECT_EQ(server->connection_count(), 1u);
        EXPECT_EQ(server->busy_connection_count(), 0u);
        // A grace far longer than the test's timeout: only closing at once can pass.
        Task<void> shutdown = server->shutdown(60s);
        std::string rest = co_await client->read_until_close();
        co_await shutdown;
        co_return rest.empty() && server->connection_count() == 0;
      },
      5s);
  EXPECT_TRUE(ok);
  EXPECT_TRUE(server->shutting_down());
}

TEST_F(HTTPServerTest, ShutdownLetsARequestInFlightFinishWithConnectionClose) {
  start();
  app.release.emplace();
  std::string response = loop.run_sync(
      [&]() -> Task<std::string> {
        std::unique_ptr<IOStream> client = co_await connect_to(port);
        co_await client->write("GET /wait HTTP/1.1\r\nHost: x\r\n\r\n");
        while (app.finished == 0) co_await sleep(1ms);  // the request is in the application
        EXPECT_EQ(server->busy_connection_count(), 1u);
        Task<void> shutdown = server->shutdown(60s);
        co_await sleep(20ms);
        EXPECT_FALSE(shutdown.done()) << "the shutdown waits for the request in flight";
        app.release->set_result();
        std::string all = co_await client->read_until_close();
        co_await shutdown;
        co_return all;
      },
      5s);
  EXPECT_EQ(strip_date(response),
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\nServer: Squall\r\n\r\nGET /wait ");
  EXPECT_EQ(server->connection_count(), 0u);
}

TEST_F(HTTPServerTest, ShutdownStopsListeningAtOnce) {
  start();
  loop.run_sync([&]() -> Task<void> { co_await server->shutdown(1s); }, 5s);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  EXPECT_NE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ::close(fd);
}

TEST_F(HTTPServerTest, ShutdownClosesWhatIsStillBusyAtTheGrace) {
  start();
  app.release.emplace();  // never released
  bool ok = loop.run_sync(
      [&]() -> Task<bool> {
        std::unique_ptr<IOStream> client = co_await connect_to(port);
        co_await client->write("GET /wait HTTP/1.1\r\nHost: x\r\n\r\n");
        while (app.finished == 0) co_await sleep(1ms);
        co_await server->shutdown(50ms);
        std::string rest = co_await client->read_until_close();
        co_return rest.empty() && server->connection_count() == 0;
      },
      5s);
  EXPECT_TRUE(ok);
  EXPECT_EQ(app.connection_closes, 1);  // the application heard that its request was cut off
}

TEST_F(HTTPServerTest, RequestPipelinedBehindTheLastAnswerOfAShutdownIsNotProcessed) {
  start();
  app.release.emplace();
  std::string response = loop.run_sync(
      [&]() -> Task<std::string> {
        std::unique_ptr<IOStream> client = co_await connect_to(port);
        co_await client->write("GET /wait HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n");
        while (app.finished == 0) co_await sleep(1ms);
        Task<void> shutdown = server->shutdown(60s);
        app.release->set_result();
        std::string all = co_await client->read_until_close();
        co_await shutdown;
        co_return all;
      },
      5s);
  EXPECT_EQ(strip_date(response),
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\nServer: Squall\r\n\r\nGET /wait ");
  EXPECT_EQ(app.seen, std::vector<std::string>{"GET /wait"});  // RFC 9112 §9.6
}

TEST_F(HTTPServerTest, LargeResponseInFlightArrivesWholeBeforeTheShutdownCloses) {
  start();
  std::string big(2 << 20, 'x');
  std::string post = "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(big.size()) + "\r\n\r\n" + big;
  size_t received = loop.run_sync(
      [&]() -> Task<size_t> {
        std::unique_ptr<IOStream> client = co_await connect_to(port);
        Future<void> sent = client->write(post);
        co_await client->read_until("\r\n\r\n");  // the head of the echo: the body is being written
        Task<void> shutdown = server->shutdown(60s);
        std::string rest = co_await client->read_until_close();
        co_await sent;
        co_await shutdown;
        co_return rest.size();
      },
      10s);
  EXPECT_EQ(received, std::string("POST /big ").size() + big.size());
}

// ---- compaction of idle connections (HTTPServerOptions::idle_compaction_period) ----------------

class CompactionTest : public HTTPServerTest {
 protected:
  static HTTPServerOptions compacting(Duration idle_timeout = 75s) {
    HTTPServerOptions options;
    options.idle_compaction_period = 20ms;
    options.idle_connection_timeout = idle_timeout;
    return options;
  }
  // Waits (bounded) until the server holds `n` compacted connections.
  Task<bool> until_compacted(size_t n) {
    for (int i = 0; i < 400 && server->compacted_connection_count() != n; ++i) co_await sleep(5ms);
    co_return server->compacted_connection_count() == n;
  }
  // A client whose request `target` was answered, once the server holds `n` compacted
  // connections (this one among them).
  Task<std::unique_ptr<IOStream>> compacted_client(std::string target = "/", size_t n = 1) {
    std::unique_ptr<IOStream> client = co_await connect_to(port);
    co_await client->write("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
    co_await client->read_until("GET " + target + " ");
    EXPECT_TRUE(co_await until_compacted(n));
    co_return std::move(client);
  }
};

TEST_F(CompactionTest, AnIdleConnectionIsCompactedThenServesItsNextRequest) {
  start(compacting());
  std::string second = loop.run_sync(
      [&]() -> Task<std::string> {
        std::unique_ptr<IOStream> client = co_await compacted_client("/one");
        EXPECT_EQ(server->connection_count(), 1u);
        EXPECT_EQ(server->busy_connection_count(), 0u);
        EXPECT_EQ(app.closes, 0) << "compaction is not a close";
        co_await client->write("GET /two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        std::string rest = co_await client->read_until_close();
        co_return rest;
      },
      5s);
  settle();
  EXPECT_EQ(strip_date(second), "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\nServer: Squall\r\n\r\nGET /two ");
  EXPECT_GE(server->compactions(), 1u);
  EXPECT_EQ(server->connection_count(), 0u);
  EXPECT_EQ(app.closes, 1);
}

// The same for a compacted connection: the event that wakes its record reports the FIN
// too, and the rebuilt stream is told (IOStream::TakeRegistration::fin_received).
TEST_F(CompactionTest, APeersCloseThatCameWithTheRequestThatWokeItEndsTheConnection) {
  start(compacting());
  std::string rest = loop.run_sync(
      [&]() -> Task<std::string> {
        std::unique_ptr<IOStream> client = co_await compacted_client("/one");
        co_await client->write("GET /two HTTP/1.1\r\nHost: x\r\n\r\n");
        client->shutdown_write();
        co_return co_await client->read_until_close();  // the idle timeout is 75 s away
      },
      5s);
  settle();
  EXPECT_EQ(count_answers(rest, "GET /two "), 1u);
  EXPECT_EQ(server->connection_count(), 0u);
  EXPECT_EQ(app.closes, 1);
}

// A stream handed to handle_stream level-triggered (made by the caller, not TCPServer)
// cannot hand its socket over: its connection is never counted idle for compaction, so
// the sweeps leave it alone (no error) and it serves on.
TEST_F(CompactionTest, AConnectionOnALevelTriggeredStreamIsNeverCompacted) {
  start(compacting());
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const int client_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(::connect(client_fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  sockaddr_in peer{};
  socklen_t peer_length = sizeof peer;
  const int server_fd = ::accept4(listener, reinterpret_cast<sockaddr*>(&peer), &peer_length, SOCK_CLOEXEC);
  ::close(listener);
  ASSERT_GE(server_fd, 0);
  ::testing::internal::CaptureStderr();
  spawn(server->handle_stream(std::make_unique<IOStream>(server_fd),
                              SocketAddress(reinterpret_cast<sockaddr*>(&peer), peer_length)));
  IOStream client(client_fd);
  std::string second = loop.run_sync(
      [&]() -> Task<std::string> {
        co_await client.write("GET /one HTTP/1.1\r\nHost: x\r\n\r\n");
        co_await client.read_until("GET /one ");
        co_await sleep(150ms);  // seven sweeps
        EXPECT_EQ(server->compacted_connection_count(), 0u);
        co_await client.write("GET /two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        co_return co_await client.read_until_close();
      },
      5s);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(second.find("GET /two "), std::string::npos) << second;
  EXPECT_EQ(server->compactions(), 0u);
  EXPECT_EQ(log.find("rror"), std::string::npos) << log;
}

TEST_F(CompactionTest, PipelinedRequestsToACompactedConnectionAreAnsweredInOrder) {
  start(compacting());
  std::string rest = loop.run_sync(
      [&]() -> Task<std::string> {
        std::unique_ptr<IOStream> client = co_await compacted_client("/one");
        co_await client->write("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"
                               "GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        co_return co_await client->read_until_close();
      },
      5s);
  EXPECT_EQ(strip_date(rest),
            "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nServer: Squall\r\n\r\nGET /a "
            "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nServer: Squall\r\n\r\nGET /b "
            "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\nServer: Squall\r\n\r\nGET /c ");
}

TEST_F(CompactionTest, ABusyConnectionIsNotCompactedAndCountsAsBusy) {
  start(compacting());
  app.release.emplace();
  bool ok = loop.run_sync(
      [&]() -> Task<bool> {
        std::unique_ptr<IOStream> client = co_await compacted_client("/one");
        co_await client->write("GET /wait HTTP/1.1\r\nHost: x\r\n\r\n");
        while (app.finished < 2) co_await sleep(1ms);  // the request is in the application
        co_await sleep(100ms);                         // five sweep periods
        EXPECT_EQ(server->compacted_connection_count(), 0u);
        EXPECT_EQ(server->connection_count(), 1u);
        EXPECT_EQ(server->busy_connection_count(), 1u);
        app.release->set_result();
        co_await client->read_until("GET /wait ");
        co_return true;
      },
      5s);
  EXPECT_TRUE(ok);
}

TEST_F(CompactionTest, AConnectionKeptBusyIsNeverCompacted) {
  HTTPServerOptions options = compacting();
  options.idle_compaction_period = 200ms;  // far longer than the pauses between requests
  start(options);
  int answered = loop.run_sync(
      [&]() -> Task<int> {
        std::unique_ptr<IOStream> client = co_await connect_to(port);
        int n = 0;
        for (auto end = Clock::now() + 500ms; Clock::now() < end; ++n) {
          co_await client->write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
          co_await client->read_until("GET / ");
          co_await sleep(1ms);
        }
        co_return n;
      },
      5s);
  EXPECT_GT(answered, 10);
  EXPECT_EQ(server->compactions(), 0u);
}

TEST_F(CompactionTest, TheIdleTimeoutClosesACompactedConnection) {
  start(compacting(300ms));
  ::testing::internal::CaptureStderr();
  auto [rest, idle_for] = loop.run_sync(
      [&]() -> Task<std::pair<std::string, Duration>> {
        std::unique_ptr<IOStream> client = co_await connect_to(port);
        co_await client->write("GET /one HTTP/1.1\r\nHost: x\r\n\r\n");
        co_await client->read_until("GET /one ");
        auto answered = Clock::now();
        EXPECT_TRUE(co_await until_compacted(1));
        std::string tail = co_await client->read_until_close();
        co_return std::pair{tail, Clock::now() - answered};
      },
      5s);
  settle();
  std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(rest, "");
  EXPECT_GE(idle_for, 250ms);  // the timeout counts from the end of the answer, not from the compaction
  EXPECT_NE(log.find("Idle timeout (0.3 s): closing the connection from 127.0.0.1:"), std::string::npos) << log;
  EXPECT_EQ(server->connection_count(), 0u);
  EXPECT_EQ(server->compacted_connection_count(), 0u);
  EXPECT_EQ(app.closes, 1);
}

TEST_F(CompactionTest, ShutdownClosesCompactedConnectionsAtOnce) {
  start(compacting());
  bool ok = loop.run_sync(
      [&]() -> Task<bool> {
        std::unique_ptr<IOStream> first = co_await compacted_client();
        std::unique_ptr<IOStream> second = co_await compacted_client("/", 2);
        EXPECT_EQ(server->connection_count(), 2u);
        Task<void> shutdown = server->shutdown(60s);  // only closing at once passes in time
        std::string rest = co_await first->read_until_close();
        rest += co_await second->read_until_close();
        co_await shutdown;
        co_return rest.empty() && server->connection_count() == 0;
      },
      5s);
  EXPECT_TRUE(ok);
  EXPECT_EQ(app.closes, 2);
}

TEST_F(CompactionTest, CloseAllConnectionsClosesCompactedConnections) {
  start(compacting());
  bool ok = loop.run_sync(
      [&]() -> Task<bool> {
        std::unique_ptr<IOStream> client = co_await compacted_client();
        server->stop();
        co_await server->close_all_connections();
        std::string rest = co_await client->read_until_close();
        co_return rest.empty() && server->connection_count() == 0;
      },
      5s);
  EXPECT_TRUE(ok);
  EXPECT_EQ(app.closes, 1);
}

TEST_F(CompactionTest, APeerThatLeavesACompactedConnectionClosesIt) {
  start(compacting());
  bool ok = loop.run_sync(
      [&]() -> Task<bool> {
        std::unique_ptr<IOStream> client = co_await compacted_client();
        client.reset();
        for (int i = 0; i < 400 && server->connection_count() != 0; ++i) co_await sleep(5ms);
        co_return server->connection_count() == 0;
      },
      5s);
  EXPECT_TRUE(ok);
  EXPECT_EQ(app.closes, 1);
}

TEST_F(CompactionTest, WithoutAPeriodNothingIsCompacted) {
  HTTPServerOptions options = compacting();
  options.idle_compaction_period.reset();
  start(options);
  loop.run_sync(
      [&]() -> Task<void> {
        std::unique_ptr<IOStream> client = co_await connect_to(port);
        co_await client->write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        co_await client->read_until("GET / ");
        co_await sleep(100ms);
      },
      5s);
  EXPECT_EQ(server->compactions(), 0u);
}

// TLS connections keep their objects while idle (OpenSSL's state is most of what they
// hold), and go on serving.
TEST_F(CompactionTest, TLSConnectionsAreNotCompacted) {
  SSLOptions server_tls;
  server_tls.certfile = squall::testing::TestCerts::get().file("server.pem");
  server_tls.keyfile = squall::testing::TestCerts::get().file("server.key");
  server = std::make_unique<HTTPServer>(app, compacting(), IOStreamOptions{}, SSLContext::server(server_tls));
  server->listen(0, "127.0.0.1");
  port = server->ports().at(0);
  std::string second = loop.run_sync(
      [&]() -> Task<std::string> {
        SSLOptions client_tls;
        client_tls.validate_cert = false;
        std::unique_ptr<IOStream> plain = co_await connect_to(port);
        SSLIOStream client(plain->release_socket().first, SSLContext::client(client_tls));
        co_await client.write("GET /one HTTP/1.1\r\nHost: x\r\n\r\n");
        co_await client.read_until("GET /one ");
        co_await sleep(100ms);  // five sweep periods
        EXPECT_EQ(server->compactions(), 0u);
        EXPECT_EQ(server->connection_count(), 1u);
        co_await client.write("GET /two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        co_return co_await client.read_until_close();
      },
      5s);
  EXPECT_NE(second.find("GET /two "), std::string::npos) << second;
}

}  // namespace
}  // namespace squall
