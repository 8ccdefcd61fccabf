// Tests for HTTP1Connection::read_request (squall/http1connection.h): a request it can
// handle within the call (head buffered, no body, no flow control, answered inside the
// delegate) is handled without read_message's coroutine; every other case continues in
// that coroutine from the step that has to wait, with read_message's results. The
// coroutine is seen through IOLoop::live_frames: a read in it holds one frame while the
// delegate runs.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "squall/future.h"
#include "squall/http1connection.h"
#include "squall/ioloop.h"
#include "squall/iostream.h"
#include "squall/task.h"

namespace squall {
namespace {

using namespace std::chrono_literals;

// A request recorded as the connection hands it over; `answer` runs from finish().
struct Recorder : HTTPMessageDelegate {
  IOLoop& loop;
  std::string target;
  std::string body;
  int heads = 0;
  int finished = 0;
  int closed = 0;
  size_t frames_in_finish = 0;  // live coroutine frames while finish() ran
  std::string remote_ip_seen;
  HTTPRequestContext* context = nullptr;
  FlowControl flow;  // what headers_received returns
  std::function<void()> answer;
  bool throw_in_head = false;

  explicit Recorder(IOLoop& l) : loop(l) {}
  FlowControl headers_received(const RequestStartLine& line, HTTPHeaders&) override {
    ++heads;
    target = line.target;
    if (context) remote_ip_seen = context->remote_ip;
    if (throw_in_head) throw std::runtime_error("delegate failed");
    return flow;
  }
  FlowControl data_received(std::string chunk) override {
    body += chunk;
    return std::nullopt;
  }
  void finish() override {
    ++finished;
    frames_in_finish = loop.live_frames();
    if (answer) answer();
  }
  void on_connection_close() override { ++closed; }
};

class ReadRequestTest : public ::testing::Test {
 protected:
  ReadRequestTest() {
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    stream.emplace(fds[0]);
  }
  ~ReadRequestTest() override {
    conn.reset();
    stream.reset();
    ::close(fds[1]);
  }
  void make_connection(HTTPRequestContext* context = nullptr, bool xheaders = false) {
    conn.emplace(*stream, HTTP1Connection::Side::server, HTTP1ConnectionParameters{}, context, xheaders);
  }
  void send(std::string_view bytes) { ASSERT_EQ(::write(fds[1], bytes.data(), bytes.size()), ssize_t(bytes.size())); }
  std::string received() {
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::recv(fds[1], buf, sizeof buf, MSG_DONTWAIT)) > 0;) out.append(buf, size_t(n));
    return out;
  }
  // Sends `bytes` and waits (as HTTPServerConnection does) until they are buffered.
  void arrive(std::string_view bytes) {
    send(bytes);
    bool arrived = loop.run_sync([&]() -> Task<bool> { co_return co_await conn->wait_for_request(1s); }, 5s);
    ASSERT_TRUE(arrived);
  }
  // A request whose first part is buffered when read_request is called: the read waits
  // (with `heads` heads handed over) until the rest arrives. Its result.
  bool read_split(std::string_view first, std::string_view rest, int heads) {
    arrive(first);
    HTTP1Connection::RequestRead read = conn->read_request(recorder, 1s);
    EXPECT_FALSE(read.await_ready());
    EXPECT_EQ(recorder.heads, heads);
    send(rest);
    return finish_read(std::move(read));
  }
  // A 200 ("ok") from the delegate's finish().
  void answer_at_once() {
    recorder.answer = [this] {
      HTTPHeaders headers{{"Content-Length", "2"}};
      conn->write_headers(ResponseStartLine{"HTTP/1.1", 200, "OK"}, headers, "ok").mark_retrieved();
      conn->finish();
    };
  }
  // Awaits a read_request made now, to its end: its result.
  bool finish_read(HTTP1Connection::RequestRead read) {
    return loop.run_sync([&]() -> Task<bool> { co_return co_await read; }, 5s);
  }

  IOLoop loop;
  int fds[2] = {-1, -1};
  std::optional<IOStream> stream;
  std::optional<HTTP1Connection> conn;
  Recorder recorder{loop};
};

TEST_F(ReadRequestTest, BufferedGetAnsweredInTheDelegateIsHandledWithinTheCall) {
  make_connection();
  answer_at_once();
  arrive("GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
  const size_t frames = loop.live_frames();
  HTTP1Connection::RequestRead read = conn->read_request(recorder, 1s);
  EXPECT_TRUE(read.await_ready());
  EXPECT_EQ(recorder.frames_in_finish, frames) << "no coroutine frame while the request was handled";
  EXPECT_TRUE(read.await_resume());
  EXPECT_EQ(recorder.target, "/a");
  EXPECT_EQ(recorder.finished, 1);
  EXPECT_EQ(recorder.closed, 0);
  EXPECT_NE(received().find("HTTP/1.1 200 OK\r\n"), std::string::npos);
  EXPECT_FALSE(stream->closed());
}

TEST_F(ReadRequestTest, PipelinedRequestsAreReadOneAfterTheOther) {
  make_connection();
  answer_at_once();
  arrive("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(finish_read(conn->read_request(recorder, 1s)));
  EXPECT_EQ(recorder.target, "/1");
  EXPECT_TRUE(conn->has_buffered_input());
  EXPECT_TRUE(finish_read(conn->read_request(recorder, 1s)));
  EXPECT_EQ(recorder.target, "/2");
  EXPECT_EQ(recorder.finished, 2);
}

TEST_F(ReadRequestTest, AHeadNotYetWholeIsReadOnInTheCoroutine) {
  make_connection();
  answer_at_once();
  EXPECT_TRUE(read_split("GET /split HTTP/1.1\r\nHo", "st: x\r\n\r\n", 0));
  EXPECT_EQ(recorder.target, "/split");
  EXPECT_EQ(recorder.finished, 1);
  EXPECT_NE(received().find("HTTP/1.1 200 OK\r\n"), std::string::npos);
}

TEST_F(ReadRequestTest, ABodyIsReadInTheCoroutine) {
  make_connection();
  answer_at_once();
  EXPECT_TRUE(read_split("POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel", "lo", 1));
  EXPECT_EQ(recorder.body, "hello");
  EXPECT_EQ(recorder.finished, 1);
}

TEST_F(ReadRequestTest, TheDelegatesFlowControlIsAwaitedBeforeTheBody) {
  make_connection();
  answer_at_once();
  Future<void> ready;
  recorder.flow = ready;
  arrive("GET /f HTTP/1.1\r\nHost: x\r\n\r\n");
  HTTP1Connection::RequestRead read = conn->read_request(recorder, 1s);
  EXPECT_FALSE(read.await_ready());
  loop.run_sync([] { return sleep(5ms); });
  EXPECT_EQ(recorder.finished, 0) << "finish() waits for the delegate's future";
  ready.set_result();
  EXPECT_TRUE(finish_read(std::move(read)));
  EXPECT_EQ(recorder.finished, 1);
}

TEST_F(ReadRequestTest, AnAnswerThatComesLaterIsAwaited) {
  make_connection();
  arrive("GET /later HTTP/1.1\r\nHost: x\r\n\r\n");
  HTTP1Connection::RequestRead read = conn->read_request(recorder, 1s);
  EXPECT_EQ(recorder.finished, 1);
  EXPECT_FALSE(read.await_ready()) << "the read ends with the response";
  answer_at_once();
  loop.add_callback(recorder.answer);
  EXPECT_TRUE(finish_read(std::move(read)));
  EXPECT_NE(received().find("HTTP/1.1 200 OK\r\n"), std::string::npos);
}

TEST_F(ReadRequestTest, AMalformedRequestIsAnsweredAndTheConnectionClosed) {
  make_connection();
  answer_at_once();
  arrive("GET /no-host HTTP/1.1\r\n\r\n");
  ::shutdown(fds[1], SHUT_WR);  // the peer sends no more: the lingering close ends at once
  EXPECT_FALSE(finish_read(conn->read_request(recorder, 1s)));
  EXPECT_EQ(recorder.heads, 0);
  EXPECT_EQ(recorder.closed, 0);
  EXPECT_TRUE(stream->closed());
  EXPECT_EQ(received().substr(0, 25), "HTTP/1.1 400 Bad Request\r");
}

TEST_F(ReadRequestTest, ADelegatesExceptionReachesTheAwaiterAfterItsCloseNotice) {
  make_connection();
  recorder.throw_in_head = true;
  arrive("GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
  bool thrown = false;
  try {
    finish_read(conn->read_request(recorder, 1s));
  } catch (const std::runtime_error& e) {
    thrown = std::string(e.what()) == "delegate failed";
  }
  EXPECT_TRUE(thrown);
  EXPECT_EQ(recorder.closed, 1);
  EXPECT_TRUE(stream->closed());
}

TEST_F(ReadRequestTest, AnHttp10RequestWithoutKeepAliveEndsTheConnection) {
  make_connection();
  answer_at_once();
  arrive("GET /old HTTP/1.0\r\n\r\n");
  EXPECT_FALSE(finish_read(conn->read_request(recorder, 1s)));
  EXPECT_EQ(recorder.finished, 1);
  EXPECT_TRUE(stream->closed());
  std::string out = received();
  EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos) << out;
}

// RFC 9112 §9.6: "close" among the Connection options (a list, case-insensitive, over
// one line or several) ends the connection after the answer; other options do not.
TEST_F(ReadRequestTest, AConnectionCloseOptionInAnyFormEndsTheConnection) {
  const std::pair<const char*, bool> cases[] = {
      {"Connection: close\r\n", false},
      {"Connection: keep-alive, CLOSE\r\n", false},
      {"Connection: ,, Close ,\r\n", false},
      {"Connection: keep-alive\r\nConnection: close\r\n", false},
      {"Connection: keep-alive\r\n", true},
      {"Connection: closed, x-close\r\n", true},
      {"Connection: upgrade\r\nConnection: keep-alive\r\n", true},
  };
  for (const auto& [field, keeps] : cases) {
    SCOPED_TRACE(field);
    conn.reset();
    stream.reset();
    ::close(fds[1]);
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    stream.emplace(fds[0]);
    make_connection();
    answer_at_once();
    arrive(std::string("GET /c HTTP/1.1\r\nHost: x\r\n") + field + "\r\n");
    EXPECT_EQ(finish_read(conn->read_request(recorder, 1s)), keeps);
    EXPECT_EQ(stream->closed(), !keeps);
    EXPECT_EQ(received().find("Connection: close\r\n") != std::string::npos, !keeps);
  }
}

TEST_F(ReadRequestTest, XHeadersApplyWhileTheRequestIsHandled) {
  HTTPRequestContext context(SocketAddress{}, "http");
  make_connection(&context, true);
  recorder.context = &context;
  answer_at_once();
  arrive("GET /x HTTP/1.1\r\nHost: x\r\nX-Real-Ip: 10.1.2.3\r\n\r\n");
  EXPECT_TRUE(finish_read(conn->read_request(recorder, 1s)));
  EXPECT_EQ(recorder.remote_ip_seen, "10.1.2.3");
  EXPECT_EQ(context.remote_ip, "0.0.0.0") << "back to the peer's own address after the request";
}

TEST_F(ReadRequestTest, AClientConnectionRefusesIt) {
  conn.emplace(*stream, HTTP1Connection::Side::client);
  EXPECT_THROW(conn->read_request(recorder, std::nullopt), std::logic_error);
}

}  // namespace
}  // namespace squall
