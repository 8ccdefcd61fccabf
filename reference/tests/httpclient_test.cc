// Tests for squall/httpclient.h: AsyncHTTPClient against scripted raw servers on
// 127.0.0.1 (a thread per connection answering exact bytes) and against the reference
// HTTPServer + Application in-process. Only loopback addresses are ever used.
#include "squall/httpclient.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include "squall/future.h"
#include "squall/httpserver.h"
#include "squall/ioloop.h"
#include "squall/netutil.h"
#include "squall/task.h"
#include "squall/web.h"

namespace squall {
namespace {

using namespace std::chrono_literals;

// ---- a scripted raw server -----------------------------------------------------------

struct RawRequest {
  std::string head;  // through the blank line
  std::string method;
  std::string target;
  std::string body;  // de-chunked
  int connection = 0;  // index of the connection it came on
  int index_on_connection = 0;
};

struct Reply {
  Reply(std::string b = {}) : bytes(std::move(b)) {}  // NOLINT: implicit
  std::string bytes;
  bool close_after = false;         // close the connection after sending
  bool close_without_reply = false;  // close at once, sending nothing
  bool hang = false;                // send bytes, then never answer again (until the server stops)
  std::vector<std::string> pieces;  // sent one by one with a pause (after bytes)
};

using Responder = std::function<Reply(const RawRequest&)>;

class ScriptedServer {
 public:
  explicit ScriptedServer(Responder responder) : responder_(std::move(responder)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    EXPECT_EQ(::listen(listen_fd_, 64), 0);
    port_ = socket_port(listen_fd_);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~ScriptedServer() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    acceptor_.join();
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mutex_);
      threads = std::move(threads_);
    }
    for (auto& t : threads) t.join();
    ::close(listen_fd_);
  }
  uint16_t port() const { return port_; }
  std::string url(std::string_view path) const { return "http://127.0.0.1:" + std::to_string(port_) + std::string(path); }
  int connections() const { return connections_; }
  int max_concurrent() const { return max_concurrent_; }
  std::vector<RawRequest> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  void accept_loop() {
    for (;;) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (stopping_) return;
        if (errno == EINTR) continue;
        return;
      }
      int index = connections_++;
      std::lock_guard lock(mutex_);
      threads_.emplace_back([this, fd, index] { serve(fd, index); });
    }
  }

  // Reads more bytes into buf; false on EOF/error/stop.
  bool fill(int fd, std::string& buf) {
    while (!stopping_) {
      pollfd p{fd, POLLIN, 0};
      int r = ::poll(&p, 1, 50);
      if (r == 0) continue;
      if (r < 0) return false;
      char tmp[65536];
      ssize_t n = ::read(fd, tmp, sizeof tmp);
      if (n <= 0) return false;
      buf.append(tmp, static_cast<size_t>(n));
      return true;
    }
    return false;
  }

  void send_all(int fd, std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      data.remove_prefix(static_cast<size_t>(n));
    }
  }

  void serve(int fd, int index) {
    int now = ++concurrent_;
    int seen = max_concurrent_;
    while (now > seen && !max_concurrent_.compare_exchange_weak(seen, now)) {
    }
    std::string buf;
    int n_on_conn = 0;
    for (;;) {
      size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        if (!fill(fd, buf)) goto done;
      }
      RawRequest req;
      req.head = buf.substr(0, end + 4);
      buf.erase(0, end + 4);
      req.method = req.head.substr(0, req.head.find(' '));
      size_t t0 = req.head.find(' ') + 1;
      req.target = req.head.substr(t0, req.head.find(' ', t0) - t0);
      req.connection = index;
      req.index_on_connection = n_on_conn++;
      std::string lower_head;
      for (char c : req.head) lower_head += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      bool expect = lower_head.find("\r\nexpect: 100-continue") != std::string::npos;
      if (size_t cl = lower_head.find("\r\ncontent-length: "); cl != std::string::npos) {
        size_t len = std::stoul(req.head.substr(cl + 18));
        if (expect) send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n");
        while (buf.size() < len) {
          if (!fill(fd, buf)) goto done;
        }
        req.body = buf.substr(0, len);
        buf.erase(0, len);
      } else if (lower_head.find("\r\ntransfer-encoding: chunked") != std::string::npos) {
        for (;;) {
          size_t line_end;
          while ((line_end = buf.find("\r\n")) == std::string::npos) {
            if (!fill(fd, buf)) goto done;
          }
          size_t size = std::stoul(buf.substr(0, line_end), nullptr, 16);
          while (buf.size() < line_end + 2 + size + 2) {
            if (!fill(fd, buf)) goto done;
          }
          req.body += buf.substr(line_end + 2, size);
          buf.erase(0, line_end + 2 + size + 2);
          if (size == 0) break;
        }
      }
      {
        std::lock_guard lock(mutex_);
        requests_.push_back(req);
      }
      Reply reply = responder_(req);
      if (reply.close_without_reply) break;
      send_all(fd, reply.bytes);
      for (const std::string& piece : reply.pieces) {
        std::this_thread::sleep_for(20ms);
        send_all(fd, piece);
      }
      if (reply.hang) {
        while (fill(fd, buf)) {
        }
        break;
      }
      if (reply.close_after) break;
    }
  done:
    ::close(fd);
    --concurrent_;
  }

  Responder responder_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> concurrent_{0};
  std::atomic<int> max_concurrent_{0};
  std::thread acceptor_;
  std::mutex mutex_;
  std::vector<std::thread> threads_;
  std::vector<RawRequest> requests_;
};

Reply ok(std::string body, std::string extra_headers = {}) {
  return Reply{"HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra_headers + "\r\n" + body};
}

// "/<i>" (built by appending: GCC 12 warns falsely about `"/" + std::to_string(i)`).
std::string numbered_path(int i) {
  std::string path = "/";
  path += std::to_string(i);
  return path;
}

std::string gzip(std::string_view data) {
  z_stream zs{};
  deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, data.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

class HTTPClientTest : public ::testing::Test {
 protected:
  HTTPResponse fetch(HTTPRequest request) {
    return loop.run_sync([&] { return client->fetch(request); }, 10s);
  }
  // The 599 / non-2xx error of a fetch that must fail, of class Error (HTTPClientError
  // or one of its subclasses: HTTPTimeoutError, HTTPStreamClosedError, HTTPBadResponseError).
  template <class Error = HTTPClientError>
  Error fetch_error(HTTPRequest request) {
    try {
      fetch(std::move(request));
    } catch (const HTTPClientError& e) {
      if constexpr (std::is_same_v<Error, HTTPClientError>) {
        return e;
      } else {
        if (const auto* wanted = dynamic_cast<const Error*>(&e)) return *wanted;
        ADD_FAILURE() << "fetch failed with another HTTPClientError class: " << e.what();
        return Error(0, "none");
      }
    }
    ADD_FAILURE() << "fetch did not fail";
    return Error(0, "none");
  }

  IOLoop loop;
  std::unique_ptr<AsyncHTTPClient> client = std::make_unique<AsyncHTTPClient>();
};

// ---- URLs ----------------------------------------------------------------------------------

TEST(HTTPClientURLTest, ParsesHostPortTargetAndDefaults) {
  ParsedURL u = parse_http_url("http://Example.org:8080/a/b?x=1#frag");
  EXPECT_EQ(u.scheme, "http");
  EXPECT_EQ(u.host, "Example.org");
  EXPECT_EQ(u.port, 8080);
  EXPECT_EQ(u.netloc, "Example.org:8080");
  EXPECT_EQ(u.target, "/a/b?x=1");
  ParsedURL d = parse_http_url("HTTP://h");
  EXPECT_EQ(d.port, 80);
  EXPECT_EQ(d.target, "/");
  ParsedURL v6 = parse_http_url("http://user:pw@[::1]:81/p");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 81);
  EXPECT_EQ(v6.netloc, "[::1]:81");
  EXPECT_EQ(v6.userinfo, "user:pw");
}

TEST(HTTPClientURLTest, HttpsDefaultsToPort443) {
  ParsedURL u = parse_http_url("HTTPS://127.0.0.1/x");
  EXPECT_EQ(u.scheme, "https");
  EXPECT_EQ(u.port, 443);
  EXPECT_EQ(parse_http_url("https://h:8443/").port, 8443);
}

TEST(HTTPClientURLTest, RejectsBadURLs) {
  try {
    (void)parse_http_url("ftp://127.0.0.1/");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "Unsupported URL scheme: \"ftp\"");
  }
  EXPECT_THROW((void)parse_http_url("ftp://h/"), std::invalid_argument);
  EXPECT_THROW((void)parse_http_url("/relative"), std::invalid_argument);
  EXPECT_THROW((void)parse_http_url("http://h:99999/"), std::invalid_argument);
  EXPECT_THROW((void)parse_http_url("http://[::1/"), std::invalid_argument);
  EXPECT_THROW((void)parse_http_url("http:///path"), std::invalid_argument);
}

TEST(HTTPClientURLTest, ResolvesReferencesPerRFC3986) {
  // RFC 3986 §5.4 examples.
  const std::string base = "http://a/b/c/d;p?q";
  EXPECT_EQ(resolve_url(base, "g"), "http://a/b/c/g");
  EXPECT_EQ(resolve_url(base, "./g"), "http://a/b/c/g");
  EXPECT_EQ(resolve_url(base, "g/"), "http://a/b/c/g/");
  EXPECT_EQ(resolve_url(base, "/g"), "http://a/g");
  EXPECT_EQ(resolve_url(base, "//g"), "http://g");
  EXPECT_EQ(resolve_url(base, "?y"), "http://a/b/c/d;p?y");
  EXPECT_EQ(resolve_url(base, "g?y"), "http://a/b/c/g?y");
  EXPECT_EQ(resolve_url(base, "#s"), "http://a/b/c/d;p?q#s");
  EXPECT_EQ(resolve_url(base, ""), "http://a/b/c/d;p?q");
  EXPECT_EQ(resolve_url(base, "."), "http://a/b/c/");
  EXPECT_EQ(resolve_url(base, ".."), "http://a/b/");
  EXPECT_EQ(resolve_url(base, "../g"), "http://a/b/g");
  EXPECT_EQ(resolve_url(base, "../../g"), "http://a/g");
  EXPECT_EQ(resolve_url(base, "../../../g"), "http://a/g");
  EXPECT_EQ(resolve_url(base, "/./g"), "http://a/g");
  EXPECT_EQ(resolve_url(base, "g;x=1/../y"), "http://a/b/c/y");
  EXPECT_EQ(resolve_url(base, "http://other:81/x"), "http://other:81/x");
}

// ---- the fetch path ---------------------------------------------------------------------

TEST_F(HTTPClientTest, ContentLengthBodyAndRequestHead) {
  ScriptedServer server([](const RawRequest&) { return ok("hello", "X-Test: 1\r\n"); });
  HTTPResponse r = fetch(server.url("/path?q=1"));
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.reason, "OK");
  EXPECT_EQ(r.body, "hello");
  EXPECT_EQ(r.headers.get("X-Test"), "1");
  EXPECT_EQ(r.effective_url, server.url("/path?q=1"));
  EXPECT_FALSE(r.error);
  EXPECT_GT(r.request_time, 0);
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const std::string& head = reqs[0].head;
  EXPECT_TRUE(head.starts_with("GET /path?q=1 HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(server.port()) + "\r\n")) << head;
  EXPECT_NE(head.find("\r\nUser-Agent: Squall/1.0\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("\r\nAccept-Encoding: gzip\r\n"), std::string::npos) << head;
  EXPECT_EQ(head.find("Content-Length"), std::string::npos) << head;
}

TEST_F(HTTPClientTest, ChunkedBody) {
  ScriptedServer server([](const RawRequest&) {
    return Reply{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"};
  });
  EXPECT_EQ(fetch(server.url("/")).body, "hello world");
}

TEST_F(HTTPClientTest, CloseDelimitedBody) {
  ScriptedServer server([](const RawRequest&) {
    Reply r{"HTTP/1.1 200 OK\r\n\r\nuntil the end"};
    r.close_after = true;
    return r;
  });
  HTTPResponse r = fetch(server.url("/"));
  EXPECT_EQ(r.body, "until the end");
  EXPECT_EQ(client->idle_connection_count(), 0u);
}

TEST_F(HTTPClientTest, GzipBodyIsDecodedAndRawWhenDecompressOff) {
  std::string plain(5000, 'z');
  std::string packed = gzip(plain);
  ScriptedServer server([&](const RawRequest&) { return ok(packed, "Content-Encoding: gzip\r\n"); });
  HTTPResponse decoded = fetch(server.url("/"));
  EXPECT_EQ(decoded.body, plain);
  EXPECT_FALSE(decoded.headers.contains("Content-Encoding"));
  HTTPRequest raw(server.url("/"));
  raw.decompress_response = false;
  HTTPResponse r = fetch(raw);
  EXPECT_EQ(r.body, packed);
  EXPECT_EQ(r.headers.get("Content-Encoding"), "gzip");
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].head.find("Accept-Encoding"), std::string::npos);
}

TEST_F(HTTPClientTest, HeadAnd204And304HaveNoBody) {
  ScriptedServer server([](const RawRequest& req) {
    if (req.method == "HEAD") return Reply{"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"};
    if (req.target == "/204") return Reply{"HTTP/1.1 204 No Content\r\n\r\n"};
    return Reply{"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n"};
  });
  HTTPRequest head(server.url("/"));
  head.method = "HEAD";
  HTTPResponse h = fetch(head);
  EXPECT_EQ(h.code, 200);
  EXPECT_EQ(h.body, "");
  EXPECT_EQ(fetch(server.url("/204")).code, 204);
  HTTPRequest not_modified(server.url("/304"));
  not_modified.raise_error = false;
  HTTPResponse n = fetch(not_modified);
  EXPECT_EQ(n.code, 304);
  EXPECT_EQ(n.body, "");
  // All three on one kept-alive connection: no body bytes were left behind.
  EXPECT_EQ(server.connections(), 1);
}

TEST_F(HTTPClientTest, NonSuccessRaisesWithResponseUnlessRaiseErrorFalse) {
  ScriptedServer server([](const RawRequest&) {
    return Reply{"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope"};
  });
  HTTPClientError e = fetch_error(server.url("/"));
  EXPECT_EQ(e.code(), 404);
  EXPECT_STREQ(e.what(), "HTTP 404: Not Found");
  ASSERT_TRUE(e.response());
  EXPECT_EQ(e.response()->body, "nope");
  HTTPRequest req(server.url("/"));
  req.raise_error = false;
  HTTPResponse r = fetch(req);
  EXPECT_EQ(r.code, 404);
  EXPECT_EQ(r.body, "nope");
  EXPECT_TRUE(r.error);
  EXPECT_EQ(r.error_message, "HTTP 404: Not Found");
}

TEST_F(HTTPClientTest, BodyRulesPerMethod) {
  HTTPRequest post("http://127.0.0.1:1/");
  post.method = "POST";
  EXPECT_THROW(fetch(post), std::invalid_argument);
  HTTPRequest get_with_body("http://127.0.0.1:1/");
  get_with_body.body = "x";
  EXPECT_THROW(fetch(get_with_body), std::invalid_argument);
  EXPECT_THROW(fetch(HTTPRequest("ftp://127.0.0.1:1/")), std::invalid_argument);

  ScriptedServer server([](const RawRequest& req) { return ok(req.method + ":" + req.body); });
  HTTPRequest nonstandard(server.url("/"));
  nonstandard.body = "payload";
  nonstandard.allow_nonstandard_methods = true;
  EXPECT_EQ(fetch(nonstandard).body, "GET:payload");
  HTTPRequest put(server.url("/"));
  put.method = "PUT";
  put.body = "data";
  EXPECT_EQ(fetch(put).body, "PUT:data");
  auto reqs = server.requests();
  EXPECT_NE(reqs.back().head.find("\r\nContent-Length: 4\r\n"), std::string::npos);
}

TEST_F(HTTPClientTest, PostGetsContentLengthAndDefaultContentType) {
  ScriptedServer server([](const RawRequest& req) { return ok(req.body); });
  HTTPRequest post(server.url("/"));
  post.method = "POST";
  post.body = "a=1&b=2";
  EXPECT_EQ(fetch(post).body, "a=1&b=2");
  std::string head = server.requests()[0].head;
  EXPECT_NE(head.find("\r\nContent-Length: 7\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("\r\nContent-Type: application/x-www-form-urlencoded\r\n"), std::string::npos) << head;
}

TEST_F(HTTPClientTest, BodyProducerStreamsChunkedUpload) {
  ScriptedServer server([](const RawRequest& req) { return ok(req.body); });
  HTTPRequest req(server.url("/upload"));
  req.method = "PUT";
  req.body_producer = [](BodyWriter write) -> Future<void> {
    return [](BodyWriter w) -> Task<void> {
      for (int i = 0; i < 3; ++i) {
        std::string piece = "piece" + std::to_string(i) + ";";
        co_await w(piece);
      }
    }(std::move(write)).future();
  };
  EXPECT_EQ(fetch(req).body, "piece0;piece1;piece2;");
  std::string head = server.requests()[0].head;
  EXPECT_NE(head.find("\r\nTransfer-Encoding: chunked\r\n"), std::string::npos) << head;
}

TEST_F(HTTPClientTest, BasicAuthFromFieldsAndFromUserinfo) {
  ScriptedServer server([](const RawRequest&) { return ok("x"); });
  HTTPRequest req(server.url("/"));
  req.auth_username = "Aladdin";
  req.auth_password = "open sesame";
  fetch(req);
  fetch("http://user:p%40ss@127.0.0.1:" + std::to_string(server.port()) + "/");
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_NE(reqs[0].head.find("\r\nAuthorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"), std::string::npos);
  EXPECT_NE(reqs[1].head.find("\r\nAuthorization: Basic dXNlcjpwQHNz\r\n"), std::string::npos) << reqs[1].head;
  EXPECT_NE(reqs[1].head.find("\r\nHost: 127.0.0.1:"), std::string::npos) << reqs[1].head;
  EXPECT_EQ(reqs[1].head.find("user"), std::string::npos);
}

TEST_F(HTTPClientTest, StreamingCallbackGetsPiecesAndBodyStaysEmpty) {
  ScriptedServer server([](const RawRequest&) {
    Reply r{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"};
    r.pieces = {"4\r\naaaa\r\n", "4\r\nbbbb\r\n", "4\r\ncccc\r\n", "0\r\n\r\n"};
    return r;
  });
  std::vector<std::string> pieces;
  HTTPRequest req(server.url("/"));
  req.streaming_callback = [&](std::string_view piece) { pieces.emplace_back(piece); };
  HTTPResponse r = fetch(req);
  EXPECT_EQ(r.body, "");
  std::string joined;
  for (auto& p : pieces) joined += p;
  EXPECT_EQ(joined, "aaaabbbbcccc");
  EXPECT_EQ(pieces.size(), 3u);
}

TEST_F(HTTPClientTest, HeaderCallbackGetsEachLine) {
  ScriptedServer server([](const RawRequest&) { return ok("x", "X-A: b\r\n"); });
  std::vector<std::string> lines;
  HTTPRequest req(server.url("/"));
  req.header_callback = [&](std::string_view line) { lines.emplace_back(line); };
  fetch(req);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], "HTTP/1.1 200 OK\r\n");
  EXPECT_EQ(lines[1], "Content-Length: 1\r\n");
  EXPECT_EQ(lines[2], "X-A: b\r\n");
  EXPECT_EQ(lines[3], "\r\n");
}

TEST_F(HTTPClientTest, ExpectContinueSendsBodyAfter100) {
  ScriptedServer server([](const RawRequest& req) { return ok(req.body); });
  HTTPRequest req(server.url("/"));
  req.method = "POST";
  req.body = "after-continue";
  req.expect_100_continue = true;
  EXPECT_EQ(fetch(req).body, "after-continue");
  EXPECT_NE(server.requests()[0].head.find("\r\nExpect: 100-continue\r\n"), std::string::npos);
}

// ---- bad responses are errors ------------------------------------------------------------

TEST_F(HTTPClientTest, TruncatedBodyIsAnError) {
  ScriptedServer server([](const RawRequest&) {
    Reply r{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf!"};
    r.close_after = true;
    return r;
  });
  EXPECT_EQ(fetch_error<HTTPStreamClosedError>(server.url("/")).code(), 599);
}

TEST_F(HTTPClientTest, TruncatedChunkedBodyIsAnError) {
  ScriptedServer server([](const RawRequest&) {
    Reply r{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"};
    r.close_after = true;
    return r;
  });
  EXPECT_EQ(fetch_error<HTTPStreamClosedError>(server.url("/")).code(), 599);
}

TEST_F(HTTPClientTest, MalformedStatusLineIsAnError) {
  ScriptedServer server([](const RawRequest&) { return Reply{"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n"}; });
  EXPECT_EQ(fetch_error<HTTPBadResponseError>(server.url("/")).code(), 599);
}

TEST_F(HTTPClientTest, ContentLengthWithTransferEncodingIsAnError) {
  ScriptedServer server([](const RawRequest&) {
    return Reply{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"};
  });
  HTTPBadResponseError e = fetch_error<HTTPBadResponseError>(server.url("/"));
  EXPECT_EQ(e.code(), 599);
  EXPECT_NE(e.message().find("Transfer-Encoding and Content-Length"), std::string::npos) << e.message();
}

TEST_F(HTTPClientTest, InvalidChunkSizeIsAnError) {
  ScriptedServer server([](const RawRequest&) {
    return Reply{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"};
  });
  EXPECT_EQ(fetch_error<HTTPBadResponseError>(server.url("/")).code(), 599);
}

TEST_F(HTTPClientTest, OversizedHeadersAndBodyAreErrors) {
  ScriptedServer server([](const RawRequest& req) {
    if (req.target == "/big-head") return ok("x", "X-Big: " + std::string(4000, 'h') + "\r\n");
    if (req.target == "/big-body") return ok(std::string(1000, 'b'));
    Reply r{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"};
    for (int i = 0; i < 10; ++i) r.bytes += "64\r\n" + std::string(100, 'c') + "\r\n";
    r.bytes += "0\r\n\r\n";
    return r;
  });
  HTTPRequest head(server.url("/big-head"));
  head.max_header_size = 1024;
  EXPECT_EQ(fetch_error<HTTPBadResponseError>(head).code(), 599);
  HTTPRequest body(server.url("/big-body"));
  body.max_body_size = 100;
  HTTPBadResponseError e = fetch_error<HTTPBadResponseError>(body);
  EXPECT_EQ(e.code(), 599);
  EXPECT_NE(e.message().find("too long"), std::string::npos) << e.message();
  HTTPRequest chunked(server.url("/big-chunked"));
  chunked.max_body_size = 500;
  EXPECT_EQ(fetch_error<HTTPBadResponseError>(chunked).code(), 599);
}

// ---- timeouts and connection errors -------------------------------------------------------

// A resolver that never answers: the connect timeout must fire.
class SilentResolver : public Resolver {
 public:
  Future<std::vector<SocketAddress>> resolve(std::string, uint16_t, int) override { return pending_; }

 private:
  Future<std::vector<SocketAddress>> pending_;
};

TEST_F(HTTPClientTest, ConnectTimeout) {
  SilentResolver resolver;
  ClientOptions options;
  options.resolver = &resolver;
  client = std::make_unique<AsyncHTTPClient>(options);
  HTTPRequest req("http://never.invalid/");
  req.connect_timeout = 100ms;
  auto start = Clock::now();
  HTTPClientError e = fetch_error(req);
  EXPECT_EQ(e.code(), 599);
  EXPECT_EQ(e.message(), "Timeout while connecting");
  EXPECT_THROW(fetch(req), HTTPTimeoutError);
  EXPECT_LT(Clock::now() - start, 2s);
  client.reset();
}

TEST_F(HTTPClientTest, RequestTimeoutWhenServerNeverAnswers) {
  ScriptedServer server([](const RawRequest&) {
    Reply r;
    r.hang = true;
    return r;
  });
  HTTPRequest req(server.url("/"));
  req.request_timeout = 200ms;
  HTTPClientError e = fetch_error(req);
  EXPECT_EQ(e.code(), 599);
  EXPECT_EQ(e.message(), "Timeout during request");
  ASSERT_TRUE(e.response());
  EXPECT_EQ(e.response()->code, 599);
  // The connection was closed, not pooled.
  loop.run_sync([] { return sleep(10ms); });
  EXPECT_EQ(client->idle_connection_count(), 0u);
  EXPECT_EQ(client->active_count(), 0u);
}

TEST_F(HTTPClientTest, ConnectionRefused) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);  // bound, not listening
  HTTPClientError e = fetch_error("http://127.0.0.1:" + std::to_string(socket_port(fd)) + "/");
  ::close(fd);
  EXPECT_EQ(e.code(), 599);
  EXPECT_EQ(e.message(), "Connection refused");
}

TEST_F(HTTPClientTest, ServerClosingWithoutAnswerIsStreamClosed) {
  ScriptedServer server([](const RawRequest&) {
    Reply r;
    r.close_without_reply = true;
    return r;
  });
  HTTPClientError e = fetch_error(server.url("/"));
  EXPECT_EQ(e.code(), 599);
  EXPECT_EQ(e.message(), "Stream closed");
  EXPECT_THROW(fetch(server.url("/")), HTTPStreamClosedError);
}

// ---- max_clients ----------------------------------------------------------------------------

TEST_F(HTTPClientTest, EleventhRequestWaitsInQueue) {
  ScriptedServer server([](const RawRequest&) {
    std::this_thread::sleep_for(150ms);
    return ok("done");
  });
  std::vector<Future<HTTPResponse>> futures;
  for (int i = 0; i < 11; ++i) futures.push_back(client->fetch(server.url(numbered_path(i))));
  EXPECT_EQ(client->active_count(), 10u);
  EXPECT_EQ(client->queued_count(), 1u);
  std::vector<HTTPResponse> all = loop.run_sync([&] { return when_all(futures); }, 10s);
  ASSERT_EQ(all.size(), 11u);
  for (auto& r : all) EXPECT_EQ(r.body, "done");
  EXPECT_EQ(server.max_concurrent(), 10);
  EXPECT_EQ(server.connections(), 10);  // the 11th reused a connection
}

TEST_F(HTTPClientTest, TimeInQueueCountsAgainstRequestTimeout) {
  ClientOptions options;
  options.max_clients = 1;
  client = std::make_unique<AsyncHTTPClient>(options);
  ScriptedServer server([](const RawRequest&) {
    std::this_thread::sleep_for(400ms);
    return ok("slow");
  });
  Future<HTTPResponse> first = client->fetch(server.url("/1"));
  HTTPRequest second(server.url("/2"));
  second.request_timeout = 100ms;
  Future<HTTPResponse> queued = client->fetch(second);
  try {
    loop.run_sync([&] { return queued; }, 5s);
    FAIL() << "no timeout";
  } catch (const HTTPClientError& e) {
    EXPECT_EQ(e.code(), 599);
    EXPECT_EQ(e.message(), "Timeout in request queue");
  }
  EXPECT_EQ(loop.run_sync([&] { return first; }, 5s).body, "slow");
  EXPECT_EQ(server.requests().size(), 1u);
}

// ---- keep-alive pool ----------------------------------------------------------------------

TEST_F(HTTPClientTest, PoolReusesOneConnectionForSequentialRequests) {
  ScriptedServer server([](const RawRequest& req) { return ok(req.target); });
  for (int i = 0; i < 5; ++i) EXPECT_EQ(fetch(server.url(numbered_path(i))).body, numbered_path(i));
  EXPECT_EQ(server.connections(), 1);
  EXPECT_EQ(client->connections_opened(), 1u);
  EXPECT_EQ(client->idle_connection_count(), 1u);
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 5u);
  EXPECT_EQ(reqs[4].index_on_connection, 4);
}

TEST_F(HTTPClientTest, ConnectionCloseResponseIsNotPooled) {
  ScriptedServer server([](const RawRequest&) {
    Reply r = ok("x", "Connection: close\r\n");
    r.close_after = true;
    return r;
  });
  fetch(server.url("/"));
  fetch(server.url("/"));
  EXPECT_EQ(server.connections(), 2);
}

TEST_F(HTTPClientTest, IdleConnectionClosedByServerIsDropped) {
  std::atomic<int> count{0};
  ScriptedServer server([&](const RawRequest&) {
    Reply r = ok("x");
    r.close_after = ++count == 1;  // keep-alive response, then the server closes
    return r;
  });
  fetch(server.url("/"));
  loop.run_sync([] { return sleep(100ms); });
  EXPECT_EQ(client->idle_connection_count(), 0u);
  fetch(server.url("/"));
  EXPECT_EQ(server.connections(), 2);
}

TEST_F(HTTPClientTest, IdleTimeoutClosesPooledConnection) {
  ClientOptions options;
  options.idle_timeout = 50ms;
  client = std::make_unique<AsyncHTTPClient>(options);
  ScriptedServer server([](const RawRequest&) { return ok("x"); });
  fetch(server.url("/"));
  EXPECT_EQ(client->idle_connection_count(), 1u);
  loop.run_sync([] { return sleep(150ms); });
  EXPECT_EQ(client->idle_connection_count(), 0u);
}

TEST_F(HTTPClientTest, DeadPooledConnectionIsRetriedOnceForGet) {
  ScriptedServer server([](const RawRequest& req) {
    if (req.connection == 0 && req.index_on_connection == 1) {
      Reply r;
      r.close_without_reply = true;  // the keep-alive race: the server dropped it
      return r;
    }
    return ok("fine");
  });
  EXPECT_EQ(fetch(server.url("/a")).body, "fine");
  EXPECT_EQ(fetch(server.url("/b")).body, "fine");
  EXPECT_EQ(server.connections(), 2);
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST_F(HTTPClientTest, DeadPooledConnectionIsNotRetriedForPost) {
  ScriptedServer server([](const RawRequest& req) {
    if (req.connection == 0 && req.index_on_connection == 1) {
      Reply r;
      r.close_without_reply = true;
      return r;
    }
    return ok("fine");
  });
  EXPECT_EQ(fetch(server.url("/a")).body, "fine");
  HTTPRequest post(server.url("/b"));
  post.method = "POST";
  post.body = "once";
  EXPECT_EQ(fetch_error(post).message(), "Stream closed");
  EXPECT_EQ(server.requests().size(), 2u);
}

// ---- redirects ------------------------------------------------------------------------------

class HTTPClientRedirectTest : public HTTPClientTest, public ::testing::WithParamInterface<int> {};

TEST_P(HTTPClientRedirectTest, MethodAndBodyRules) {
  int status = GetParam();
  ScriptedServer server([status](const RawRequest& req) {
    bool head = req.method == "HEAD";  // an answer to HEAD carries no body bytes
    if (req.target == "/from") {
      return Reply{"HTTP/1.1 " + std::to_string(status) + " Moved\r\nLocation: /to\r\nContent-Length: 3\r\n\r\n" +
                   (head ? "" : "abc")};
    }
    if (head) return Reply{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"};
    return ok(req.method + ":" + req.body);
  });
  HTTPRequest post(server.url("/from"));
  post.method = "POST";
  post.body = "payload";
  HTTPResponse r = fetch(post);
  EXPECT_EQ(r.effective_url, server.url("/to"));
  if (status == 307 || status == 308) {
    EXPECT_EQ(r.body, "POST:payload");
  } else {
    EXPECT_EQ(r.body, "GET:");
    auto reqs = server.requests();
    EXPECT_EQ(reqs.back().head.find("Content-Length"), std::string::npos) << reqs.back().head;
    EXPECT_EQ(reqs.back().head.find("Content-Type"), std::string::npos) << reqs.back().head;
  }
  HTTPRequest head(server.url("/from"));
  head.method = "HEAD";
  EXPECT_EQ(fetch(head).code, 200);
  EXPECT_EQ(server.requests().back().method, "HEAD");
}

INSTANTIATE_TEST_SUITE_P(Statuses, HTTPClientRedirectTest, ::testing::Values(301, 302, 303, 307, 308));

TEST_F(HTTPClientTest, RelativeAndAbsoluteLocations) {
  std::string base;
  ScriptedServer server([&](const RawRequest& req) {
    if (req.target == "/a/b/start") return Reply{"HTTP/1.1 302 Found\r\nLocation: ../c?x=1\r\nContent-Length: 0\r\n\r\n"};
    if (req.target == "/a/c?x=1") return Reply{"HTTP/1.1 302 Found\r\nLocation: " + base + "/abs\r\nContent-Length: 0\r\n\r\n"};
    return ok("at " + req.target);
  });
  base = server.url("");
  HTTPResponse r = fetch(server.url("/a/b/start"));
  EXPECT_EQ(r.body, "at /abs");
  EXPECT_EQ(r.effective_url, server.url("/abs"));
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST_F(HTTPClientTest, RedirectLoopStopsAtMaxRedirects) {
  ScriptedServer server([](const RawRequest&) {
    return Reply{"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n"};
  });
  HTTPRequest req(server.url("/loop"));
  req.max_redirects = 3;
  HTTPClientError e = fetch_error(req);
  EXPECT_EQ(e.code(), 302);
  EXPECT_EQ(server.requests().size(), 4u);
  req.raise_error = false;
  HTTPResponse r = fetch(req);
  EXPECT_EQ(r.code, 302);
  EXPECT_EQ(r.headers.get("Location"), "/loop");
  EXPECT_EQ(server.requests().size(), 8u);
  HTTPRequest no_follow(server.url("/loop"));
  no_follow.follow_redirects = false;
  no_follow.raise_error = false;
  EXPECT_EQ(fetch(no_follow).code, 302);
  EXPECT_EQ(server.requests().size(), 9u);
}

TEST_F(HTTPClientTest, RedirectToAnUnsupportedSchemeIsAClearError) {
  ScriptedServer server([](const RawRequest&) {
    return Reply{"HTTP/1.1 301 Moved\r\nLocation: ftp://127.0.0.1/\r\nContent-Length: 0\r\n\r\n"};
  });
  HTTPClientError e = fetch_error(server.url("/"));
  EXPECT_EQ(e.code(), 599);
  EXPECT_EQ(e.message(), "Unsupported URL scheme: \"ftp\"");
}

// ---- against the reference server in-process -------------------------------------------------

class HelloHandler : public RequestHandler {
 public:
  Task<void> get() override {
    write(std::string(3000, 'h'));
    co_return;
  }
  Task<void> post() override {
    write("posted:" + request().body);
    co_return;
  }
};

class StreamHandler : public RequestHandler {
 public:
  Task<void> get() override {
    for (int i = 0; i < 3; ++i) {
      write("part" + std::to_string(i));
      co_await flush();
    }
  }
};

class RedirectHandler : public RequestHandler {
 public:
  Task<void> get() override {
    int n = std::stoi(path_args().at(0));
    if (n == 0) {
      write("landed");
    } else {
      redirect("/redirect/" + std::to_string(n - 1));
    }
    co_return;
  }
};

TEST_F(HTTPClientTest, AgainstReferenceServer) {
  ApplicationSettings settings;
  settings.compress_response = true;
  settings.log_requests = false;
  Application app({{"/", handler<HelloHandler>()},
                   {"/stream", handler<StreamHandler>()},
                   {"/redirect/([0-9]+)", handler<RedirectHandler>()}},
                  settings);
  HTTPServer server(app);
  server.listen(0, "127.0.0.1");
  std::string base = "http://127.0.0.1:" + std::to_string(server.ports().at(0));
  HTTPResponse hello = fetch(base + "/");
  EXPECT_EQ(hello.body, std::string(3000, 'h'));
  EXPECT_EQ(hello.headers.get("X-Consumed-Content-Encoding"), "gzip");  // was compressed
  EXPECT_EQ(fetch(base + "/stream").body, "part0part1part2");
  HTTPResponse landed = fetch(base + "/redirect/3");
  EXPECT_EQ(landed.body, "landed");
  EXPECT_EQ(landed.effective_url, base + "/redirect/0");
  HTTPRequest post(base + "/");
  post.method = "POST";
  post.body = "b=1";
  EXPECT_EQ(fetch(post).body, "posted:b=1");
  HTTPRequest missing(base + "/missing");
  missing.raise_error = false;
  EXPECT_EQ(fetch(missing).code, 404);
  EXPECT_EQ(client->connections_opened(), 1u);  // all over one kept-alive connection
  client.reset();
  server.stop();
  loop.run_sync([&] { return server.close_all_connections(); }, 5s);
}

}  // namespace
}  // namespace squall
