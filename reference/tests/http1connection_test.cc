// Tests for squall/http1connection.h over socketpairs: the client side (read_response
// framing) and the output checks of the server side. The server's request handling is
// tested through HTTPServer in httpserver_test.cc.
#include "squall/http1connection.h"

#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "heap_in_use.h"
#include "open_fds.h"
#include "squall/detail/small_pool.h"
#include "squall/future.h"
#include "squall/ioloop.h"
#include "squall/iostream.h"
#include "squall/log.h"
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
    HTTP1Connection conn(stream, HTTP1Connection::Side::client, params);
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
  // Its own type, for clients to tell a cut stream from a malformed response.
  EXPECT_THROW(fetch("GET", {}, true), HTTPConnectionClosedError);
  EXPECT_EQ(collector.finished, 0);
  EXPECT_EQ(collector.closed, 1);
}

TEST_F(ClientTest, TruncatedChunkedBodyIsAConnectionClosedError) {
  pair.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
  EXPECT_THROW(fetch("GET", {}, true), HTTPConnectionClosedError);
  EXPECT_EQ(collector.body, "hello");
  EXPECT_EQ(collector.finished, 0);
}

TEST_F(ClientTest, MalformedResponseIsNotAConnectionClosedError) {
  pair.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX");
  try {
    fetch("GET", {}, true);
    ADD_FAILURE() << "no error";
  } catch (const HTTPConnectionClosedError& e) {
    ADD_FAILURE() << "a malformed chunk reported as a closed connection: " << e.what();
  } catch (const HTTPInputError&) {
  }
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
    HTTP1Connection conn(stream, HTTP1Connection::Side::server);
    Responder responder;
    responder.respond = [&] { respond(conn); };
    pair.send(request);
    loop.run_sync([&] { return conn.read_message(responder); }, 5s);
    loop.run_sync([] { return sleep(10ms); });
    output = pair.receive_available();
  }
  // Answers one request: first tries to write `bad` as the response head (true if that
  // was refused with std::invalid_argument), then writes an empty 200.
  bool first_head_refused(HTTPHeaders& bad) {
    bool refused = false;
    serve("GET / HTTP/1.1\r\nHost: x\r\n\r\n", [&](HTTP1Connection& conn) {
      try {
        conn.write_headers(ResponseStartLine{"HTTP/1.1", 200, "OK"}, bad);
      } catch (const std::invalid_argument&) {
        refused = true;
      }
      HTTPHeaders ok{{"Content-Length", "0"}};
      conn.write_headers(ResponseStartLine{"HTTP/1.1", 200, "OK"}, ok);
      conn.finish();
    });
    return refused;
  }
  IOLoop loop;
  Pair pair;
  std::string output;
};

TEST_F(ServerOutputTest, HeaderValueWithCrLfIsRefused) {
  HTTPHeaders headers{{"X-Evil", "a\r\nSet-Cookie: x=1"}};
  EXPECT_TRUE(first_head_refused(headers));
  EXPECT_EQ(output.find("Set-Cookie"), std::string::npos) << output;
}

// A set of headers changed after it was marked checked is validated again.
TEST_F(ServerOutputTest, HeaderAddedAfterTheCheckedMarkIsStillRefused) {
  HTTPHeaders headers{{"Content-Length", "0"}};
  headers.mark_fields_checked();
  headers.add("X-Evil", "a\r\nSet-Cookie: x=1");
  EXPECT_TRUE(first_head_refused(headers));
  EXPECT_EQ(output.find("Set-Cookie"), std::string::npos) << output;
}

// The start line is written as given (200 OK is a constant; other codes and reasons are
// formatted), and a reason phrase with control characters is refused before anything
// is written — also one that starts like "OK".
TEST_F(ServerOutputTest, StartLineIsWrittenAsGivenAndAnUnsafeReasonIsRefused) {
  bool refused = false;
  serve("GET / HTTP/1.1\r\nHost: x\r\n\r\n", [&](HTTP1Connection& conn) {
    HTTPHeaders bad{{"Content-Length", "0"}};
    try {
      conn.write_headers(ResponseStartLine{"HTTP/1.1", 200, "OK\r\nX-Evil: 1"}, bad);
    } catch (const std::invalid_argument&) {
      refused = true;
    }
    HTTPHeaders headers{{"Content-Length", "0"}};
    conn.write_headers(ResponseStartLine{"HTTP/1.1", 299, "Fine"}, headers);
    conn.finish();
  });
  EXPECT_TRUE(refused);
  EXPECT_TRUE(output.starts_with("HTTP/1.1 299 Fine\r\nContent-Length: 0\r\nDate: ")) << output;
  EXPECT_EQ(output.find("X-Evil"), std::string::npos) << output;
}

// A set made from a parsed head (its lines not held in wire form) is written line by
// line: the same bytes as a set built line by line.
TEST_F(ServerOutputTest, AParsedHeaderSetIsWrittenLineByLine) {
  const std::string block = "X-A:1\r\nContent-Length:  2\r\n";
  const std::string_view view(block);
  const std::vector<HeaderField> fields{{view.substr(0, 3), view.substr(4, 1)}, {view.substr(7, 14), view.substr(24, 1)}};
  serve("GET / HTTP/1.1\r\nHost: x\r\n\r\n", [&](HTTP1Connection& conn) {
    HTTPHeaders parsed = HTTPHeaders::from_fields(fields);
    EXPECT_FALSE(parsed.wire_lines().has_value());
    conn.write_headers(ResponseStartLine{"HTTP/1.1", 200, "OK"}, parsed, "hi");
    conn.finish();
  });
  EXPECT_TRUE(output.starts_with("HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 2\r\nDate: ")) << output;
  EXPECT_TRUE(output.ends_with("\r\nServer: Squall\r\n\r\nhi")) << output;
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

TEST_F(ServerOutputTest, FramingFieldsAreFoundInAnyCase) {
  // In any case: the length is known (no chunking), Date and Server are not added.
  serve("GET / HTTP/1.1\r\nHost: x\r\n\r\n", [&](HTTP1Connection& conn) {
    HTTPHeaders headers{{"content-LENGTH", "2"}, {"sErVeR", "s"}, {"DATE", "d"}};
    conn.write_headers(ResponseStartLine{"HTTP/1.1", 200, "OK"}, headers, "ok");
    conn.finish();
  });
  EXPECT_EQ(output, "HTTP/1.1 200 OK\r\ncontent-LENGTH: 2\r\nsErVeR: s\r\nDATE: d\r\n\r\nok");
}

TEST_F(ServerOutputTest, NamesThatDifferFromTheFramingFieldsByMoreThanCaseAreOtherFields) {
  // Same lengths, a non-letter in place of '-' or of a letter: the body is chunked, Date
  // and Server are added.
  serve("GET / HTTP/1.1\r\nHost: x\r\n\r\n", [&](HTTP1Connection& conn) {
    HTTPHeaders headers{{"Content_Length", "2"}, {"Serve~", "s"}, {"Dat%", "d"}, {"Transfer_Encoding", "x"}};
    conn.write_headers(ResponseStartLine{"HTTP/1.1", 200, "OK"}, headers, "ok");
    conn.finish();
  });
  EXPECT_NE(output.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << output;
  EXPECT_NE(output.find("\r\nDate: "), std::string::npos) << output;
  EXPECT_NE(output.find("\r\nServer: Squall\r\n"), std::string::npos) << output;
  EXPECT_NE(output.find("\r\n\r\n2\r\nok\r\n0\r\n\r\n"), std::string::npos) << output;
}

// ---- server side: framing lines noted by the set's owner ------------------------------
//
// A response whose owner noted what its framing lines say (HTTPHeaders::note_framing,
// as the web layer does) is framed exactly as one whose lines the connection reads.

// One response to `request` over a fresh socketpair: the head with `headers`, then
// `body` by write(), then finish() (an HTTPOutputError from it is the output's own).
// The Date line's value (the current date, when the connection adds it) is blanked.
std::string answer_once(const std::string& request, int code, HTTPHeaders headers, const std::string& body) {
  IOLoop loop;
  Pair pair;
  std::string output;
  {
    IOStream stream(pair.fds[0]);
    HTTP1Connection conn(stream, HTTP1Connection::Side::server);
    Responder responder;
    responder.respond = [&] {
      conn.write_headers(ResponseStartLine{"HTTP/1.1", code, code == 200 ? "OK" : "Other"}, headers)
          .mark_retrieved();
      if (!body.empty()) conn.write(body).mark_retrieved();
      try {
        conn.finish();
      } catch (const HTTPOutputError&) {
        output = "[short of Content-Length]";
      }
      if (conn.stream().closed()) output += "[closed]";
    };
    pair.send(request);
    loop.run_sync([&] { return conn.read_message(responder); }, 5s);
    loop.run_sync([] { return sleep(10ms); });
  }
  output += pair.receive_available();
  const size_t date = output.find("\r\nDate: ");
  if (date != std::string::npos) {
    const size_t value = date + 8;
    output.replace(value, output.find("\r\n", value) - value, "D");
  }
  return output;
}

struct FramingCase {
  std::string request;
  int code;
  std::vector<HeaderField> lines;
  std::string body;
  FramingLines noted;  // what the lines say, as their owner would note it
};

TEST(NotedFramingTest, ResponsesAreFramedAsTheirLinesSay) {
  const std::string get11 = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string get10_keep_alive = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
  const std::string head11 = "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::vector<FramingCase> cases{
      {get11, 200, {{"Content-Length", "2"}, {"Date", "x"}, {"Server", "s"}}, "ok", {2, true, false, true, true}},
      {get11, 200, {{"Content-Type", "t"}}, "ok", {}},  // chunked; Date and Server added
      {get11, 200, {{"Transfer-Encoding", "chunked"}, {"Date", "x"}}, "2\r\nok\r\n0\r\n\r\n", {0, false, true, true}},
      {get11, 200, {{"Content-Length", "3"}}, "ok", {3, true}},  // short of its length
      {get10_keep_alive, 200, {{"Content-Length", "2"}}, "ok", {2, true}},  // kept alive
      {get10_keep_alive, 200, {{"Server", "s"}}, "ok", {0, false, false, false, true}},  // close-delimited
      {head11, 200, {{"Content-Length", "5"}}, "", {5, true}},
      {get11, 304, {{"Etag", "\"e\""}}, "", {}},
      {get11, 204, {{"Content-Length", "0"}}, "", {0, true}},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const FramingCase& c = cases[i];
    HTTPHeaders read;
    for (const HeaderField& line : c.lines) read.add(line.name, line.value);
    read.mark_fields_checked();
    HTTPHeaders noted = read;
    noted.note_framing(c.noted);
    const std::string expected = answer_once(c.request, c.code, read, c.body);
    EXPECT_EQ(answer_once(c.request, c.code, noted, c.body), expected) << "case " << i;
    EXPECT_NE(expected.find("HTTP/1.1 "), std::string::npos) << "case " << i << ": " << expected;
  }
}

// The note is what the connection goes by (it does not read the lines again): a note
// that says Date and Server are set keeps the connection from adding them.
TEST(NotedFramingTest, TheNoteIsTakenForTheLines) {
  HTTPHeaders headers{{"Content-Length", "2"}};
  headers.mark_fields_checked();
  headers.note_framing({2, true, false, true, true});
  EXPECT_EQ(answer_once("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 200, headers, "ok"),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
}

// A set not marked checked is read (and validated) whatever its note says: a line with
// CR LF in its value is refused, and Date and Server are added as the lines say.
TEST_F(ServerOutputTest, ANotedSetNotMarkedCheckedIsStillReadAndValidated) {
  HTTPHeaders bad{{"Content-Length", "0"}, {"X-Evil", "a\r\nSet-Cookie: x=1"}};
  bad.note_framing({0, true, false, true, true});
  EXPECT_TRUE(first_head_refused(bad));
  EXPECT_EQ(output.find("Set-Cookie"), std::string::npos) << output;
  HTTPHeaders unchecked{{"Content-Length", "0"}};
  unchecked.note_framing({0, true, false, true, true});
  EXPECT_EQ(answer_once("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 200, unchecked, ""),
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nDate: D\r\nServer: Squall\r\n\r\n");
}

// ---- server side: output flow control, body limits, timeouts ------------------------
//
// An HTTPServerConnection over a socketpair whose peer the test reads (or does not) by
// hand: what is queued on the server's stream is what a slow client costs.

struct FlowApp;

struct FlowMessage : HTTPMessageDelegate {
  FlowApp& app;
  HTTPConnection& conn;
  HTTP1Connection& http1;
  std::string target;
  std::string body;
  FlowMessage(FlowApp& a, HTTPConnection& c, HTTP1Connection& h);
  ~FlowMessage() override;
  FlowControl headers_received(const RequestStartLine& line, HTTPHeaders&) override;
  FlowControl data_received(std::string chunk) override {
    body += chunk;
    return std::nullopt;
  }
  void finish() override;
  void on_connection_close() override;
};

struct FlowApp : HTTPServerConnectionDelegate {
  std::vector<std::string> seen;  // targets whose head was read
  int finished = 0;
  int connection_closes = 0;
  int closes = 0;
  std::optional<uint64_t> buffered_limit;  // set_max_body_size from headers_received
  std::function<void(FlowMessage&)> respond;
  int live_messages = 0;         // message delegates made and not yet destroyed
  std::vector<int> ended_with;   // live_messages at each request_ended
  std::unique_ptr<HTTPMessageDelegate> start_request(HTTPServerConnection& server, HTTPConnection& conn) override {
    return std::make_unique<FlowMessage>(*this, conn, server.connection());
  }
  void request_ended(HTTPServerConnection&) override { ended_with.push_back(live_messages); }
  void on_close(HTTPServerConnection&) override { ++closes; }
};

FlowMessage::FlowMessage(FlowApp& a, HTTPConnection& c, HTTP1Connection& h) : app(a), conn(c), http1(h) {
  ++app.live_messages;
}
FlowMessage::~FlowMessage() { --app.live_messages; }

FlowControl FlowMessage::headers_received(const RequestStartLine& line, HTTPHeaders&) {
  target = line.target;
  app.seen.push_back(target);
  if (app.buffered_limit) http1.set_max_body_size(*app.buffered_limit);
  return std::nullopt;
}
void FlowMessage::finish() {
  ++app.finished;
  app.respond(*this);
}
void FlowMessage::on_connection_close() { ++app.connection_closes; }

// Answers with `size` bytes of 'x' written at once; returns the future of that write.
Future<void> answer_bytes(HTTPConnection& conn, size_t size) {
  HTTPHeaders headers{{"Content-Length", std::to_string(size)}};
  conn.write_headers(ResponseStartLine{"HTTP/1.1", 200, "OK"}, headers).mark_retrieved();
  Future<void> written = conn.write(std::string(size, 'x'));
  written.mark_retrieved();
  conn.finish();
  return written;
}

class ServerFlowTest : public ::testing::Test {
 protected:
  void start(HTTPServerOptions options) {
    // A small socket buffer: what the client does not read stays queued on the stream.
    int size = 16 * 1024;
    ::setsockopt(pair.fds[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    server = std::make_unique<HTTPServerConnection>(std::make_unique<IOStream>(pair.fds[0]), SocketAddress{}, options);
    serving.emplace(server->serve(app));
  }
  void run_for(Duration d) {
    loop.run_sync([d] { return sleep(d); });
  }
  // Reads what arrived, `step` bytes at a time with a loop iteration in between, until
  // `until` holds or nothing more comes for a while.
  void read_slowly(std::string& into, std::function<bool()> until, size_t step = 4096) {
    loop.run_sync(
        [&]() -> Task<void> {
          std::string buf(step, '\0');
          int idle = 0;
          while (!until() && idle < 200) {
            ssize_t n = ::recv(pair.fds[1], buf.data(), buf.size(), MSG_DONTWAIT);
            if (n > 0) {
              into.append(buf.data(), size_t(n));
              idle = 0;
            } else {
              ++idle;
            }
            co_await sleep(1ms);
          }
        },
        10s);
  }
  // What the server logs at info while `run` runs.
  std::string info_log_of(const std::function<void()>& run) {
    LogLevel before = log_level();
    set_log_level(LogLevel::info);
    testing::internal::CaptureStderr();
    run();
    std::string log = testing::internal::GetCapturedStderr();
    set_log_level(before);
    return log;
  }
  void TearDown() override {
    if (serving && !serving->done()) {
      server->close().mark_retrieved();
      loop.run_sync([&] { return serving->future(); }, 5s);
    }
  }

  IOLoop loop;
  Pair pair;
  FlowApp app;
  std::unique_ptr<HTTPServerConnection> server;
  std::optional<Task<void>> serving;
};

HTTPServerOptions flow_options(size_t high_water) {
  HTTPServerOptions options;
  options.params.output_high_water = high_water;
  return options;
}

TEST_F(ServerFlowTest, OutputAboveTheMarkStopsReadingPipelinedRequestsUntilItDrains) {
  app.respond = [](FlowMessage& m) { answer_bytes(m.conn, m.target == "/big" ? 1024 * 1024 : 5); };
  start(flow_options(64 * 1024));
  pair.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /small HTTP/1.1\r\nHost: x\r\n\r\n");
  run_for(50ms);
  EXPECT_EQ(app.seen, std::vector<std::string>{"/big"}) << "the next request waits while the output is above the mark";
  EXPECT_GT(server->stream().write_buffer_size(), 64u * 1024);
  std::string received;
  read_slowly(received, [&] { return std::count(received.begin(), received.end(), 'x') == 1024 * 1024 + 5; });
  EXPECT_EQ(app.seen, (std::vector<std::string>{"/big", "/small"}));
  EXPECT_EQ(app.finished, 2);
  EXPECT_EQ(std::count(received.begin(), received.end(), 'x'), 1024 * 1024 + 5);
}

TEST_F(ServerFlowTest, EachRequestEndsOnceAfterItsMessageDelegateIsDestroyed) {
  app.respond = [](FlowMessage& m) { answer_bytes(m.conn, 5); };
  start(flow_options(64 * 1024));
  pair.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
  run_for(50ms);
  EXPECT_EQ(app.ended_with, (std::vector<int>{0, 0})) << "one request_ended per request, each after its delegate";
  // A request cut off in its body: the delegate hears of the close, and its request ends once.
  pair.send("POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
  run_for(20ms);
  EXPECT_EQ(app.ended_with.size(), 2u) << "not while the request is being read";
  pair.close_peer();
  run_for(50ms);
  EXPECT_EQ(app.connection_closes, 1);
  EXPECT_EQ(app.ended_with, (std::vector<int>{0, 0, 0}));
  EXPECT_EQ(app.closes, 1);
  EXPECT_EQ(app.live_messages, 0);
}

TEST_F(ServerFlowTest, WriteFutureCompletesWhenTheOutputIsBackWithinTheMark) {
  constexpr size_t kMark = 64 * 1024;
  std::optional<Future<void>> written;
  size_t queued_at_completion = 0;
  app.respond = [&](FlowMessage& m) {
    written = answer_bytes(m.conn, 1024 * 1024);
    written->add_done_callback([&] { queued_at_completion = server->stream().write_buffer_size(); });
  };
  start(flow_options(kMark));
  pair.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  run_for(50ms);
  ASSERT_TRUE(written);
  EXPECT_FALSE(written->done()) << "1 MiB queued for a client that does not read";
  std::string received;
  read_slowly(received, [&] { return written->done(); });
  EXPECT_TRUE(written->done());
  EXPECT_LE(queued_at_completion, kMark);
  EXPECT_GT(queued_at_completion, 0u) << "it did not wait for everything to be sent";
}

TEST_F(ServerFlowTest, WithoutAMarkTheWriteFutureWaitsForEverything) {
  std::optional<Future<void>> written;
  size_t queued_at_completion = 1;
  app.respond = [&](FlowMessage& m) {
    written = answer_bytes(m.conn, 1024 * 1024);
    written->add_done_callback([&] { queued_at_completion = server->stream().write_buffer_size(); });
  };
  start(flow_options(0));  // Tornado's flow control
  pair.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string received;
  read_slowly(received, [&] { return written && written->done(); });
  EXPECT_EQ(queued_at_completion, 0u);
}

TEST_F(ServerFlowTest, SendTimeoutDropsAClientThatStopsReading) {
  app.respond = [](FlowMessage& m) { answer_bytes(m.conn, 1024 * 1024); };
  HTTPServerOptions options;
  options.params.send_timeout = 100ms;
  LogLevel before = log_level();
  set_log_level(LogLevel::info);
  testing::internal::CaptureStderr();
  start(options);
  pair.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  loop.run_sync([&] { return serving->future(); }, 5s);  // the connection ends on its own
  std::string log = testing::internal::GetCapturedStderr();
  set_log_level(before);
  EXPECT_TRUE(server->stream().closed());
  EXPECT_EQ(app.closes, 1);
  EXPECT_NE(log.find("Send timeout (0.1 s without progress)"), std::string::npos) << log;
}

TEST_F(ServerFlowTest, SendTimeoutSparesASlowClientThatKeepsReading) {
  // A 1 s timeout, so that a stalled (sanitizer, busy) machine does not look like a
  // stalled client; 16 KiB every 10 ms makes the 2 MiB answer take 1.3 s or more, longer
  // than the timeout, in 128 reads (few loop iterations, so a slow build stays fast).
  constexpr size_t kBody = 2 * 1024 * 1024;
  app.respond = [](FlowMessage& m) { answer_bytes(m.conn, kBody); };
  HTTPServerOptions options;
  options.params.send_timeout = 1s;
  start(options);
  pair.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string received;
  loop.run_sync(
      [&]() -> Task<void> {
        std::vector<char> buf(16384);
        auto body_bytes = [&] { return static_cast<size_t>(std::count(received.begin(), received.end(), 'x')); };
        while (received.size() < kBody || body_bytes() < kBody) {
          ssize_t n = ::recv(pair.fds[1], buf.data(), buf.size(), MSG_DONTWAIT);
          if (n > 0) received.append(buf.data(), size_t(n));
          if (n == 0) break;
          co_await sleep(10ms);
        }
      },
      30s);
  EXPECT_EQ(std::count(received.begin(), received.end(), 'x'), static_cast<std::ptrdiff_t>(kBody));
  EXPECT_FALSE(server->stream().closed());
}

TEST_F(ServerFlowTest, ContentLengthAboveTheMessageLimitIs413BeforeAnyBodyIsRead) {
  app.buffered_limit = 1000;
  app.respond = [](FlowMessage& m) { answer_bytes(m.conn, 2); };
  start({});
  // 10 MB announced, 10 bytes sent: the answer may not wait for the rest.
  pair.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n0123456789");
  std::string received;
  read_slowly(received, [&] { return received.find("\r\n\r\n") != std::string::npos; });
  EXPECT_TRUE(received.starts_with("HTTP/1.1 413 Request Entity Too Large\r\n")) << received;
  EXPECT_NE(received.find("Connection: close\r\n"), std::string::npos) << received;
  EXPECT_EQ(app.finished, 0);
  EXPECT_EQ(app.seen, std::vector<std::string>{"/"});
}

TEST_F(ServerFlowTest, ChunkedBodyPassingTheMessageLimitIs413BeforeItEnds) {
  app.buffered_limit = 100 * 1024;
  app.respond = [](FlowMessage& m) { answer_bytes(m.conn, 2); };
  start({});
  pair.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  std::string chunk = "4000\r\n" + std::string(0x4000, 'b') + "\r\n";  // 16 KiB chunks, no last chunk
  std::string received;
  size_t sent = 0;
  loop.run_sync(
      [&]() -> Task<void> {
        char buf[4096];
        while (received.find("\r\n\r\n") == std::string::npos && sent < 1024 * 1024) {
          ssize_t w = ::send(pair.fds[1], chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
          if (w > 0) sent += size_t(w);
          if (w < 0 && errno != EAGAIN) break;
          ssize_t n = ::recv(pair.fds[1], buf, sizeof buf, MSG_DONTWAIT);
          if (n > 0) received.append(buf, size_t(n));
          co_await sleep(1ms);
        }
      },
      10s);
  EXPECT_TRUE(received.starts_with("HTTP/1.1 413 Request Entity Too Large\r\n")) << received;
  EXPECT_LT(sent, 300u * 1024) << "answered soon after the limit, not at the end of the body";
  EXPECT_EQ(app.finished, 0);
}

TEST_F(ServerFlowTest, ContentLengthWithinTheLimitIsRead) {
  app.buffered_limit = 10;
  std::string body;
  app.respond = [&](FlowMessage& m) {
    body = m.body;
    answer_bytes(m.conn, 2);
  };
  start({});
  pair.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789");
  std::string received;
  read_slowly(received, [&] { return received.ends_with("xx"); });
  EXPECT_EQ(body, "0123456789");
  EXPECT_TRUE(received.starts_with("HTTP/1.1 200 OK\r\n")) << received;
}

TEST_F(ServerFlowTest, HeaderAndIdleTimeoutsAreLogged) {
  app.respond = [](FlowMessage& m) { answer_bytes(m.conn, 2); };
  HTTPServerOptions options;
  options.params.header_timeout = 50ms;
  std::string log = info_log_of([&] {
    start(options);
    pair.send("GET / HTTP/1.1\r\nHost: x\r\n");  // never finished
    loop.run_sync([&] { return serving->future(); }, 5s);
  });
  EXPECT_NE(log.find("Header timeout (0.05 s): closing the connection"), std::string::npos) << log;
  EXPECT_EQ(app.finished, 0);
}

TEST_F(ServerFlowTest, IdleTimeoutIsLogged) {
  app.respond = [](FlowMessage& m) { answer_bytes(m.conn, 2); };
  HTTPServerOptions options;
  options.idle_connection_timeout = 50ms;
  std::string log = info_log_of([&] {
    start(options);
    pair.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    loop.run_sync([&] { return serving->future(); }, 5s);
  });
  EXPECT_NE(log.find("Idle timeout (0.05 s): closing the connection"), std::string::npos) << log;
  EXPECT_EQ(app.finished, 1);
}

// The idle timer's callback holds the connection itself (no liveness flag): destroying
// the connection must take the timer back, or it would run on freed memory once due
// (a sanitizer build reports that; a plain one may crash or close some other stream).
TEST_F(ServerFlowTest, AConnectionDestroyedWithItsIdleTimerArmedNeverHearsFromIt) {
  app.respond = [](FlowMessage& m) { answer_bytes(m.conn, 2); };
  HTTPServerOptions options;
  options.idle_connection_timeout = 30ms;
  start(options);
  pair.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string received;
  read_slowly(received, [&] { return received.ends_with("xx"); });
  ASSERT_EQ(app.finished, 1);
  ASSERT_FALSE(serving->done()) << "waiting for the next request, its idle timer armed";
  const size_t timers_armed = loop.pending_timers();
  ASSERT_GE(timers_armed, 1u);
  server->close().mark_retrieved();
  loop.run_sync([&] { return serving->future(); }, 5s);
  server.reset();
  EXPECT_LT(loop.pending_timers(), timers_armed) << "the idle timer outlived its connection";
  run_for(60ms);  // past the deadline: nothing may run for the destroyed connection
  EXPECT_EQ(app.finished, 1);
}

// A delegate that owns its connection, as HTTPServer's do: serve() with it owned by the
// request loop destroys both when the loop ends, after on_close.
struct OwningDelegate : FlowApp {
  std::unique_ptr<HTTPServerConnection> connection;
  std::vector<std::string>& events;
  explicit OwningDelegate(std::vector<std::string>& e) : events(e) {}
  ~OwningDelegate() override { events.push_back("destroyed"); }
  void on_close(HTTPServerConnection&) override { events.push_back("on_close"); }
};

TEST_F(ServerFlowTest, ServeWithAnOwnedDelegateDestroysItAndTheConnectionWhenTheLoopEnds) {
  std::vector<std::string> events;
  auto owner = std::make_unique<OwningDelegate>(events);
  owner->respond = [](FlowMessage& m) { answer_bytes(m.conn, 2); };
  owner->connection = std::make_unique<HTTPServerConnection>(std::make_unique<IOStream>(pair.fds[0]),
                                                             SocketAddress{}, HTTPServerOptions{});
  HTTPServerConnection& connection = *owner->connection;
  Task<void> serving = connection.serve(std::move(owner));
  pair.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  loop.run_sync([&] { return serving.future(); }, 5s);
  EXPECT_EQ(events, (std::vector<std::string>{"on_close", "destroyed"}));
  EXPECT_TRUE(pair.receive_available().ends_with("\r\n\r\nxx"));
}

TEST_F(ServerFlowTest, CloseCompletesOnceTheOwnedDelegateIsGone) {
  std::vector<std::string> events;
  auto owner = std::make_unique<OwningDelegate>(events);
  owner->connection = std::make_unique<HTTPServerConnection>(std::make_unique<IOStream>(pair.fds[0]),
                                                             SocketAddress{}, HTTPServerOptions{});
  HTTPServerConnection& connection = *owner->connection;
  Task<void> serving = connection.serve(std::move(owner));
  run_for(10ms);
  ASSERT_FALSE(serving.done()) << "waiting for a request";
  Future<void> closed = connection.close();
  EXPECT_FALSE(closed.done());
  loop.run_sync([&] { return closed; }, 5s);
  EXPECT_EQ(events, (std::vector<std::string>{"on_close", "destroyed"}));
  EXPECT_TRUE(serving.done());
}

TEST_F(ServerFlowTest, CloseWithoutARequestLoopIsDoneAtOnce) {
  start(HTTPServerOptions{});
  server->close().mark_retrieved();
  loop.run_sync([&] { return serving->future(); }, 5s);
  EXPECT_TRUE(server->close().done()) << "the loop has ended";
  HTTPServerConnection never_served(std::make_unique<IOStream>(::dup(pair.fds[1])), SocketAddress{},
                                    HTTPServerOptions{});
  EXPECT_TRUE(never_served.close().done());
}

TEST_F(ServerFlowTest, IdleTimeoutCountsFromTheStartOfEachWait) {
  // Requests 60 ms apart under a 200 ms idle timeout: no wait is that long, though the
  // waits add up to more; the connection closes once one wait reaches it.
  app.respond = [](FlowMessage& m) { answer_bytes(m.conn, 2); };
  HTTPServerOptions options;
  options.idle_connection_timeout = 200ms;
  bool open_while_used = false;
  std::string log = info_log_of([&] {
    start(options);
    for (int i = 0; i < 6 && !serving->done(); ++i) {  // (no write to a closed peer: SIGPIPE)
      pair.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      run_for(60ms);
    }
    open_while_used = !serving->done();
    loop.run_sync([&] { return serving->future(); }, 5s);
  });
  EXPECT_TRUE(open_while_used);
  EXPECT_EQ(app.finished, 6);
  EXPECT_NE(log.find("Idle timeout (0.2 s): closing the connection"), std::string::npos) << log;
}

// ---- server side: strict by default, lenient as an option; no input hangs -----------

struct Answered {
  int status = 0;          // 0: no complete answer within the wait
  std::string response;    // what arrived
  std::string body;        // the body the app received (when it was called)
  Duration waited{};
};

// One request through an HTTPServerConnection with every timeout at 30 s: an answer must
// come from the bytes alone, at once (the wait is bounded at 2 s). The app echoes the
// body it got.
Answered answer(std::string_view request, const ParsePolicy& policy) {
  IOLoop loop;
  Pair pair;
  FlowApp app;
  Answered out;
  app.respond = [&](FlowMessage& m) {
    out.body = m.body;
    HTTPHeaders headers{{"Content-Length", std::to_string(m.body.size())}};
    m.conn.write_headers(ResponseStartLine{"HTTP/1.1", 200, "OK"}, headers).mark_retrieved();
    m.conn.write(m.body).mark_retrieved();
    m.conn.finish();
  };
  HTTPServerOptions options;
  options.params.header_timeout = 30s;
  options.params.body_timeout = 30s;
  options.idle_connection_timeout = 30s;
  options.params.head_limits.policy = policy;
  options.params.explain_errors = true;
  auto server = std::make_unique<HTTPServerConnection>(std::make_unique<IOStream>(pair.fds[0]), SocketAddress{}, options);
  Task<void> serving = server->serve(app);
  pair.send(request);
  const TimePoint start = loop.time();
  loop.run_sync(
      [&]() -> Task<void> {
        char buf[4096];
        while (loop.time() - start < 2s) {
          ssize_t n = ::recv(pair.fds[1], buf, sizeof buf, MSG_DONTWAIT);
          if (n > 0) out.response.append(buf, size_t(n));
          const size_t head_end = out.response.find("\r\n\r\n");
          if (head_end != std::string::npos) {
            const size_t cl = out.response.find("Content-Length: ");
            const size_t length = cl < head_end ? std::stoul(out.response.substr(cl + 16)) : 0;
            if (out.response.size() >= head_end + 4 + length) {
              out.status = std::stoi(out.response.substr(9, 3));
              break;
            }
          }
          co_await sleep(1ms);
        }
      },
      5s);
  out.waited = loop.time() - start;
  if (!serving.done()) {
    server->close().mark_retrieved();
    loop.run_sync([&] { return serving.future(); }, 5s);
  }
  return out;
}

struct PolicyCase {
  std::string_view request;
  int strict;   // status by default
  int lenient;  // status with ParsePolicy::lenient()
};

void expect_answers(const std::vector<PolicyCase>& cases) {
  for (const PolicyCase& c : cases) {
    Answered strict = answer(c.request, ParsePolicy{});
    EXPECT_EQ(strict.status, c.strict) << "strict: " << testing::PrintToString(std::string(c.request)) << "\n"
                                       << strict.response;
    if (c.strict != 0) {
      EXPECT_LT(strict.waited, 1s) << testing::PrintToString(std::string(c.request));
    }
    Answered lenient = answer(c.request, ParsePolicy::lenient());
    EXPECT_EQ(lenient.status, c.lenient) << "lenient: " << testing::PrintToString(std::string(c.request)) << "\n"
                                         << lenient.response;
    if (c.lenient != 0) {
      EXPECT_LT(lenient.waited, 1s) << testing::PrintToString(std::string(c.request));
    }
  }
}

TEST(ServerLineEnds, NoOddLineEndingLeavesARequestWaiting) {
  // None of these is a complete request, and none can become one: each gets a 400 at
  // once under either policy, not the header (or body) timeout.
  expect_answers({
      {"\nGET /echo HTTP/1.1\r\nHost: 127.0.0.1\nX-Probe: b\n\r\r", 400, 400},  // the wire fuzzer's
      {"GET / HTTP/1.1\r\nHost: x\r\n\r\r", 400, 400},
      {"GET / HTTP/1.1\r\nHost: x\r\r\n", 400, 400},
      {"GET / HTTP/1.1\r\nHost: x\n\r\r", 400, 400},
      {"GET / HTTP/1.1\r\r", 400, 400},
      {"GET / HTTP/1.1\rHost: x", 400, 400},
      {"\r\rGET / HTTP/1.1\r\n\r\n", 400, 400},
      {"\n\r\r", 400, 400},
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\rWiki", 400, 400},
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\r", 400, 400},
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWikiX", 400, 400},
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n0\r\nA: b\r\r", 400, 400},
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n0\r\n\r\r", 400, 400},
  });
}

TEST(ServerLineEnds, BareLfIsRefusedByDefaultAndAcceptedWhenLenient) {
  expect_answers({
      {"GET / HTTP/1.1\nHost: x\n\n", 400, 200},
      {"GET / HTTP/1.1\r\nHost: x\n\r\n", 400, 200},
      {"\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", 400, 200},
      {"GET / HTTP/1.1\nHost: x\r\n", 400, 0},  // strict: refused before the head is complete
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\nWiki\n0\n\n", 400, 200},
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\n0\r\n\r\n", 400, 200},
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n0\r\nA: b\n\r\n", 400, 200},
  });
  Answered lenient = answer("POST / HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n4\nWiki\n0\n\n", ParsePolicy::lenient());
  EXPECT_EQ(lenient.status, 200);
  EXPECT_EQ(lenient.body, "Wiki");
}

TEST(ServerStrictness, EachStrictRuleAndItsLenientVariant) {
  expect_answers({
      // Content-Length: lists (leading zeros and surrounding OWS are fine under both).
      {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 003\r\n\r\nabc", 200, 200},
      {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc", 400, 200},
      {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400, 200},
      {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length:  3 \r\n\r\nabc", 200, 200},
      // Framing look-alikes.
      {"GET / HTTP/1.1\r\nHost: x\r\nTransfer_Encoding: chunked\r\n\r\n", 400, 200},
      {"GET / HTTP/1.1\r\nHost: x\r\nContent_Length: 5\r\n\r\n", 400, 200},
      // Empty Host: valid (an empty reg-name) under both.
      {"GET / HTTP/1.1\r\nHost:\r\n\r\n", 200, 200},
      {"GET / HTTP/1.1\r\nHost: \r\n\r\n", 200, 200},
      // The request-target.
      {"GET /a%00b HTTP/1.1\r\nHost: x\r\n\r\n", 400, 200},
      {"GET /a%0D%0Ab HTTP/1.1\r\nHost: x\r\n\r\n", 400, 200},
      {"GET /a%7fb HTTP/1.1\r\nHost: x\r\n\r\n", 400, 200},
      {"GET /a\\b HTTP/1.1\r\nHost: x\r\n\r\n", 400, 200},
      {"GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n", 400, 200},
      {"GET /a%20b HTTP/1.1\r\nHost: x\r\n\r\n", 200, 200},
      // Expectations.
      {"GET / HTTP/1.1\r\nHost: x\r\nExpect: foo\r\n\r\n", 417, 200},
      {"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue, foo\r\nContent-Length: 1\r\n\r\na", 417, 200},
      {"GET / HTTP/1.0\r\nExpect: foo\r\n\r\n", 200, 200},
      // Transfer-Encoding: parameters on chunked, empty list elements.
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked;q=1\r\n\r\n1\r\na\r\n0\r\n\r\n", 400, 200},
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: , chunked\r\n\r\n1\r\na\r\n0\r\n\r\n", 400, 200},
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked,\r\n\r\n1\r\na\r\n0\r\n\r\n", 400, 200},
      // An over-long method: 501 (RFC 9112 §3).
      {"ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG / HTTP/1.1\r\nHost: x\r\n\r\n", 501, 200},
  });
}

TEST(ServerStrictness, ErrorAnswersNameTheProblem) {
  Answered a = answer("GET / HTTP/1.1\r\nHost: x\r\n\r\r", ParsePolicy{});
  EXPECT_EQ(a.status, 400);
  EXPECT_NE(a.response.find("Connection: close\r\n"), std::string::npos) << a.response;
  EXPECT_TRUE(a.response.ends_with("\r\n\r\nbare CR in head\n")) << a.response;
  Answered e = answer("GET / HTTP/1.1\r\nHost: x\r\nExpect: foo\r\n\r\n", ParsePolicy{});
  EXPECT_TRUE(e.response.starts_with("HTTP/1.1 417 ")) << e.response;
  EXPECT_TRUE(e.response.ends_with("Unknown expectation\n")) << e.response;
  Answered head = answer("HEAD / HTTP/1.1\r\nHost: x\r\nExpect: foo\r\n\r\n", ParsePolicy{});
  EXPECT_TRUE(head.response.ends_with("Content-Length: 0\r\n\r\n")) << head.response;
}

TEST(ServerFields, HostFramingAndKeepAliveFieldsAreFoundInAnyCase) {
  expect_answers({
      {"GET / HTTP/1.1\r\nhOST: x\r\nHOST: y\r\n\r\n", 400, 400},  // two Host fields
      {"GET / HTTP/1.1\r\nhost: x\r\nEXPECT: nonsense\r\n\r\n", 417, 200},
      {"POST / HTTP/1.1\r\nHost: x\r\ncontent-length: 1\r\nTRANSFER-encoding: chunked\r\n\r\n", 400, 400},
  });
  Answered fixed = answer("POST / HTTP/1.1\r\nHost: x\r\ncontent-LENGTH: 3\r\n\r\nabc", ParsePolicy{});
  EXPECT_EQ(fixed.body, "abc");
  Answered chunked =
      answer("POST / HTTP/1.1\r\nHost: x\r\ntransfer-ENCODING: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", ParsePolicy{});
  EXPECT_EQ(chunked.body, "abc");
  Answered close = answer("GET / HTTP/1.1\r\nHost: x\r\nCONNECTION: Close\r\n\r\n", ParsePolicy{});
  EXPECT_NE(close.response.find("Connection: close\r\n"), std::string::npos) << close.response;
  Answered old = answer("GET / HTTP/1.0\r\nconnection: KEEP-ALIVE\r\n\r\n", ParsePolicy{});
  EXPECT_NE(old.response.find("Connection: Keep-Alive\r\n"), std::string::npos) << old.response;
  Answered plain = answer("GET / HTTP/1.1\r\nHost: x\r\n\r\n", ParsePolicy{});
  EXPECT_EQ(plain.status, 200);
  EXPECT_EQ(plain.response.find("Connection: "), std::string::npos) << "kept alive: " << plain.response;
}

// ---- server side: a connection's buffers, handed on to the next one -----------------

// Waits (up to 2 s) until `done` holds, running the loop.
void run_until(IOLoop& loop, const std::function<bool()>& done) {
  const TimePoint start = loop.time();
  loop.run_sync(
      [&]() -> Task<void> {
        while (!done() && loop.time() - start < 2s) co_await sleep(1ms);
      },
      5s);
}

// A connection closed with part of a pipelined request buffered leaves those bytes to no
// one: the next connection (which gets its buffers) reads only its own request.
TEST(ServerBuffers, AConnectionNeverSeesTheBytesOneGoneLeftBuffered) {
  IOLoop loop;
  FlowApp app;
  app.respond = [](FlowMessage& m) { answer_bytes(m.conn, 2); };
  {
    Pair first;
    auto server = std::make_unique<HTTPServerConnection>(std::make_unique<IOStream>(first.fds[0]), SocketAddress{},
                                                         HTTPServerOptions{});
    Task<void> serving = server->serve(app);
    first.send("GET /first HTTP/1.1\r\nHost: a\r\n\r\nGET /left-behind HTTP/1.1\r\nX-Left: 1\r\n");
    std::string answers;
    run_until(loop, [&] { return (answers += first.receive_available()).find("\r\n\r\nxx") != std::string::npos; });
    ASSERT_EQ(app.seen, std::vector<std::string>{"/first"});
    server->close().mark_retrieved();
    loop.run_sync([&] { return serving.future(); }, 5s);
  }
  Pair second;
  auto server = std::make_unique<HTTPServerConnection>(std::make_unique<IOStream>(second.fds[0]), SocketAddress{},
                                                       HTTPServerOptions{});
  Task<void> serving = server->serve(app);
  second.send("GET /second HTTP/1.1\r\nHost: b\r\n\r\n");
  run_until(loop, [&] { return app.seen.size() >= 2; });
  EXPECT_EQ(app.seen, (std::vector<std::string>{"/first", "/second"}));
  server->close().mark_retrieved();
  loop.run_sync([&] { return serving.future(); }, 5s);
}

// Connections gone hand their buffers (the stream's, the head's, the output's, the parsed
// fields) on to the next ones, a bounded number of each: thousands of them, each with a
// head of 29 fields read and answered, keep no more than the spares' bounds of heap, and
// none of their sockets.
TEST(ServerBuffers, ConnectionsGoneKeepOnlyABoundedSpareOfTheirBuffers) {
  IOLoop loop;
  FlowApp app;
  app.respond = [](FlowMessage& m) { answer_bytes(m.conn, 2); };
  std::string head = "GET /n HTTP/1.1\r\nHost: a\r\n";
  for (int i = 10; i < 38; ++i) head += "X-F-" + std::to_string(i) + ": v-of-some-length\r\n";
  head += "\r\n";
  // The peer sends the head and closes: the answer finds no reader and the connection ends,
  // its socket closed, its objects (and buffers) kept until destroyed.
  auto served_connection = [&] {
    Pair pair;
    auto server = std::make_unique<HTTPServerConnection>(std::make_unique<IOStream>(pair.fds[0]), SocketAddress{},
                                                         HTTPServerOptions{});
    Task<void> serving = server->serve(app);
    pair.send(head);
    pair.close_peer();
    loop.run_sync([&] { return serving.future(); }, 5s);
    return server;
  };
  constexpr int kConnections = 2000;
  app.seen.reserve(kConnections + 1);
  served_connection();  // the per-thread scratch buffers, made once
  detail::pool_trim();
  const size_t before = testing_support::heap_in_use();
  const int fds_before = testing_support::open_fd_count();
  {
    std::vector<std::unique_ptr<HTTPServerConnection>> gone;
    for (int i = 0; i < kConnections; ++i) gone.push_back(served_connection());
    EXPECT_GT(testing_support::heap_in_use(), before + kConnections * 2 * head.size());  // the stream's and the head's
  }
  detail::pool_trim();  // the connections' own blocks: only the spares are left
  const size_t after = testing_support::heap_in_use();
  EXPECT_EQ(app.seen.size(), size_t(kConnections + 1));
  EXPECT_EQ(testing_support::open_fd_count(), fds_before);  // every socket closed as its connection ended
  EXPECT_LT(after > before ? after - before : 0, 2u * 1024 * 1024);  // ~5.4 MB if every buffer stayed
}

// ---- HTTPRequestContext ------------------------------------------------------------------

TEST(HTTPRequestContext, RemoteIpIsThePeersNumericAddress) {
  EXPECT_EQ(HTTPRequestContext(SocketAddress::from_ip("192.168.10.200", 8080), "").remote_ip, "192.168.10.200");
  EXPECT_EQ(HTTPRequestContext(SocketAddress::from_ip("10.0.0.1", 80), "").remote_ip, "10.0.0.1");
  EXPECT_EQ(HTTPRequestContext(SocketAddress::from_ip("2001:db8::17", 80), "").remote_ip, "2001:db8::17");
  EXPECT_EQ(HTTPRequestContext(SocketAddress::from_ip("::1", 80), "").remote_ip, "::1");
  EXPECT_EQ(HTTPRequestContext(SocketAddress{}, "").remote_ip, "0.0.0.0") << "no address";
}

TEST(HTTPRequestContext, ProtocolIsHttpUnlessNamed) {
  const SocketAddress peer = SocketAddress::from_ip("127.0.0.1", 80);
  EXPECT_EQ(HTTPRequestContext(peer, "").protocol, "http");
  EXPECT_EQ(HTTPRequestContext(peer, "https").protocol, "https");
  EXPECT_EQ(HTTPRequestContext(peer, "https").address, peer);
}

TEST(HTTPRequestContext, UnapplyRestoresThePeerAfterAnyNumberOfApplies) {
  HTTPRequestContext context(SocketAddress::from_ip("127.0.0.1", 80), "http", {"10.0.0.9"});
  context.unapply_xheaders();  // nothing applied: nothing to restore
  EXPECT_EQ(context.remote_ip, "127.0.0.1");
  context.apply_xheaders(HTTPHeaders{{"X-Forwarded-For", "1.2.3.4, 10.0.0.9"}});
  EXPECT_EQ(context.remote_ip, "1.2.3.4");
  context.apply_xheaders(HTTPHeaders{{"X-Real-Ip", "5.6.7.8"}, {"X-Scheme", "https"}});
  EXPECT_EQ(context.remote_ip, "5.6.7.8");
  EXPECT_EQ(context.protocol, "https");
  context.unapply_xheaders();
  EXPECT_EQ(context.remote_ip, "127.0.0.1");
  EXPECT_EQ(context.protocol, "http");
  context.apply_xheaders(HTTPHeaders{{"X-Forwarded-Proto", "https"}});
  EXPECT_EQ(context.protocol, "https");
  context.unapply_xheaders();
  EXPECT_EQ(context.protocol, "http");
}

TEST(HTTP1ConnectionParameters, StrictByDefaultWithEmptyErrorBodies) {
  EXPECT_EQ(HTTP1ConnectionParameters{}.head_limits.policy, ParsePolicy::strict());
  EXPECT_FALSE(HTTP1ConnectionParameters{}.explain_errors);
}

TEST(HTTP1ConnectionParameters, DefaultsAreBoundedLikeNginx) {
  HTTP1ConnectionParameters params;
  EXPECT_EQ(params.header_timeout, std::chrono::seconds(60));
  EXPECT_EQ(params.body_timeout, std::chrono::seconds(60));
  EXPECT_EQ(params.send_timeout, std::chrono::seconds(60));
  EXPECT_EQ(params.max_buffered_body_size, 8u * 1024 * 1024);
  EXPECT_EQ(params.output_high_water, 256u * 1024);
  EXPECT_EQ(HTTPServerOptions{}.idle_connection_timeout, std::chrono::seconds(75));
}

}  // namespace
}  // namespace squall
