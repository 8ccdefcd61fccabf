// HTTPS end to end, in-process: HTTPServer with an SSLContext (TCPServer wraps each
// connection in an SSLIOStream) against AsyncHTTPClient fetching https URLs, and against
// raw sockets that misbehave. Loopback only; certificates from tests/tls/make_certs.sh.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "squall/httpclient.h"
#include "squall/httpserver.h"
#include "squall/ioloop.h"
#include "squall/task.h"
#include "squall/web.h"
#include "tls/test_certs.h"

namespace squall {
namespace {

using namespace std::chrono_literals;
using testing::TestCerts;

std::string cert(std::string_view name) { return TestCerts::get().file(name); }

class HelloHandler : public RequestHandler {
 public:
  Task<void> get() override {
    write("hello");
    co_return;
  }
  Task<void> post() override {
    write(request().body);
    co_return;
  }
};

class ProtocolHandler : public RequestHandler {
 public:
  Task<void> get() override {
    write(request().protocol + " " + request().full_url());
    co_return;
  }
};

class RedirectHandler : public RequestHandler {
 public:
  Task<void> get() override {
    redirect(get_argument("url"));
    co_return;
  }
};

class AuthHandler : public RequestHandler {
 public:
  Task<void> get() override {
    write(request().headers.get("Authorization").value_or("none"));
    co_return;
  }
};

class BigHandler : public RequestHandler {
 public:
  Task<void> get() override {
    write(std::string(4 * 1024 * 1024, 'b'));
    co_return;
  }
};

Application make_app() {
  ApplicationSettings settings;
  settings.log_requests = false;
  return Application(
      {{"/", handler<HelloHandler>()},
       {"/proto", handler<ProtocolHandler>()},
       {"/big", handler<BigHandler>()},
       {"/to", handler<RedirectHandler>()},
       {"/auth", handler<AuthHandler>()}},
      settings);
}

// A blocking TCP connection to 127.0.0.1:port, for clients that misbehave.
int raw_connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  timeval limit{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  return fd;
}

// Reads until the peer closes (or resets, or 10 s pass); true if it did close.
bool wait_for_close(int fd) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
  }
}

class HTTPSTest : public ::testing::Test {
 protected:
  // An HTTPS server presenting <name>.pem on a kernel-chosen port; returns the port.
  uint16_t serve(const std::string& name = "server", SSLOptions options = {}) {
    options.certfile = cert(name + ".pem");
    options.keyfile = cert(name + ".key");
    servers_.push_back(std::make_unique<HTTPServer>(app_, HTTPServerOptions{}, IOStreamOptions{},
                                                    SSLContext::server(std::move(options))));
    servers_.back()->listen(0, "127.0.0.1");
    return servers_.back()->ports().at(0);
  }
  uint16_t serve_plain() {
    servers_.push_back(std::make_unique<HTTPServer>(app_));
    servers_.back()->listen(0, "127.0.0.1");
    return servers_.back()->ports().at(0);
  }
  static std::string url(uint16_t port, const std::string& path = "/", const std::string& host = "127.0.0.1") {
    return "https://" + host + ":" + std::to_string(port) + path;
  }
  // A request that trusts the test CA.
  static HTTPRequest trusting(std::string u) {
    HTTPRequest request(std::move(u));
    request.ca_certs = cert("ca.pem");
    return request;
  }
  HTTPResponse fetch(HTTPRequest request) { return loop_.run_sync([&] { return client_->fetch(request); }, 20s); }
  // The message of a fetch that must fail with 599.
  std::string fetch_599(HTTPRequest request) {
    try {
      fetch(std::move(request));
    } catch (const HTTPClientError& e) {
      EXPECT_EQ(e.code(), 599) << e.what();
      return e.message();
    }
    ADD_FAILURE() << "fetch did not fail";
    return "";
  }
  // Runs `blocking` on a thread while the loop runs; returns when it has.
  void while_serving(std::function<void()> blocking) {
    std::atomic<bool> done{false};
    std::thread thread([&] {
      blocking();
      done = true;
    });
    loop_.run_sync(
        [&]() -> Task<void> {
          while (!done) co_await sleep(2ms);
        },
        30s);
    thread.join();
  }

  void TearDown() override {
    // Connections still open (the plaintext server waiting for a head) end before the loop.
    loop_.run_sync(
        [&]() -> Task<void> {
          for (auto& server : servers_) {
            server->stop();
            co_await server->close_all_connections();
          }
        },
        10s);
  }

  IOLoop loop_;
  Application app_ = make_app();
  std::vector<std::unique_ptr<HTTPServer>> servers_;
  std::unique_ptr<AsyncHTTPClient> client_ = std::make_unique<AsyncHTTPClient>();
};

TEST_F(HTTPSTest, FetchesByIPAddressAndByName) {
  uint16_t port = serve();
  EXPECT_EQ(fetch(trusting(url(port))).body, "hello");
  EXPECT_EQ(fetch(trusting(url(port, "/", "localhost"))).body, "hello");
}

TEST_F(HTTPSTest, ClientSendsSNIForNamesButNotForIPAddresses) {
  std::vector<std::string> names;
  SSLOptions options;
  options.sni_callback = [&](const std::string& name) -> std::shared_ptr<const SSLContext> {
    names.push_back(name);
    return nullptr;
  };
  uint16_t port = serve("server", options);
  EXPECT_EQ(fetch(trusting(url(port, "/", "localhost"))).body, "hello");
  EXPECT_EQ(fetch(trusting(url(port))).body, "hello");
  EXPECT_EQ(names, std::vector<std::string>{"localhost"});
}

TEST_F(HTTPSTest, RequestsKnowTheyCameOverHTTPS) {
  uint16_t port = serve();
  EXPECT_EQ(fetch(trusting(url(port, "/proto"))).body, "https " + url(port, "/proto"));
}

TEST_F(HTTPSTest, LargeBodiesBothWays) {
  uint16_t port = serve();
  HTTPRequest post = trusting(url(port));
  post.method = "POST";
  post.body = std::string(5 * 1024 * 1024 + 3, 'p');
  HTTPResponse echoed = fetch(post);
  EXPECT_EQ(echoed.body.size(), post.body->size());
  EXPECT_TRUE(echoed.body == *post.body);
  HTTPRequest big = trusting(url(port, "/big"));
  big.decompress_response = false;
  EXPECT_EQ(fetch(big).body, std::string(4 * 1024 * 1024, 'b'));
}

TEST_F(HTTPSTest, KeepAliveReusesTheTLSConnection) {
  uint16_t port = serve();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(fetch(trusting(url(port))).body, "hello");
  EXPECT_EQ(client_->connections_opened(), 1u);
}

TEST_F(HTTPSTest, PoolNeverLendsAnHTTPSConnectionToHTTP) {
  uint16_t port = serve();
  EXPECT_EQ(fetch(trusting(url(port))).body, "hello");
  EXPECT_EQ(client_->idle_connection_count(), 1u);
  // Same host and port, plain http: a new (plaintext) connection, which the TLS server
  // answers "400 Bad Request" in clear — had the pooled TLS connection been reused, this
  // would have succeeded.
  try {
    fetch(HTTPRequest("http://127.0.0.1:" + std::to_string(port) + "/"));
    ADD_FAILURE() << "the plaintext fetch succeeded";
  } catch (const HTTPClientError& e) {
    EXPECT_EQ(e.code(), 400) << e.what();
  }
  EXPECT_EQ(client_->connections_opened(), 2u);
  EXPECT_EQ(fetch(trusting(url(port))).body, "hello");  // the TLS one is still there
  EXPECT_EQ(client_->connections_opened(), 2u);
}

TEST_F(HTTPSTest, PoolNeverLendsAnHTTPConnectionToHTTPS) {
  uint16_t port = serve_plain();
  EXPECT_EQ(fetch(HTTPRequest("http://127.0.0.1:" + std::to_string(port) + "/")).body, "hello");
  // A plaintext server refuses the client hello (a bare CR in a head is a 400 at once:
  // "wrong version number" to the TLS client) or waits for a head that never comes (the
  // client's connect_timeout covers its handshake): either way the fetch fails.
  HTTPRequest request = trusting(url(port));
  request.connect_timeout = 500ms;
  std::string failure = fetch_599(request);
  EXPECT_TRUE(failure == "wrong version number" || failure == "Timeout while connecting") << failure;
  // Had the idle plaintext connection been lent, the fetch would have "succeeded" in the
  // clear; it is still idle, and unused.
  EXPECT_EQ(client_->idle_connection_count(), 1u);
  EXPECT_EQ(client_->connections_opened(), 1u);
}

TEST_F(HTTPSTest, PoolKeepsConnectionsWithDifferentTLSSettingsApart) {
  uint16_t port = serve();
  EXPECT_EQ(fetch(trusting(url(port))).body, "hello");
  HTTPRequest insecure(url(port));
  insecure.validate_cert = false;
  EXPECT_EQ(fetch(insecure).body, "hello");
  EXPECT_EQ(client_->connections_opened(), 2u);
}

TEST_F(HTTPSTest, ClientRejectsAnExpiredCertificateWith599) {
  uint16_t port = serve("expired");
  EXPECT_EQ(fetch_599(trusting(url(port))), "certificate verify failed: certificate has expired");
}

TEST_F(HTTPSTest, ClientRejectsACertificateForAnotherHostWith599) {
  uint16_t port = serve("wronghost");
  EXPECT_EQ(fetch_599(trusting(url(port, "/", "localhost"))),
            "certificate verify failed: hostname mismatch, certificate is not valid for 'localhost'");
  EXPECT_EQ(fetch_599(trusting(url(port))),
            "certificate verify failed: IP address mismatch, certificate is not valid for '127.0.0.1'");
}

TEST_F(HTTPSTest, ClientRejectsAnUnknownCAWith599) {
  uint16_t port = serve();
  // By default the system store is trusted, which does not know the test CA.
  EXPECT_EQ(fetch_599(HTTPRequest(url(port))), "certificate verify failed: unable to get local issuer certificate");
  HTTPRequest other = trusting(url(port));
  other.ca_certs = cert("other-ca.pem");
  EXPECT_EQ(fetch_599(other), "certificate verify failed: unable to get local issuer certificate");
}

TEST_F(HTTPSTest, ValidateCertFalseAcceptsBadCertificates) {
  for (const char* name : {"expired", "wronghost"}) {
    uint16_t port = serve(name);
    HTTPRequest request(url(port));
    request.validate_cert = false;
    EXPECT_EQ(fetch(request).body, "hello") << name;
  }
}

TEST_F(HTTPSTest, MissingCAFileIs599) {
  uint16_t port = serve();
  HTTPRequest request(url(port));
  request.ca_certs = "/nonexistent/ca.pem";
  EXPECT_NE(fetch_599(request).find("cannot load ca_certs '/nonexistent/ca.pem'"), std::string::npos);
}

TEST_F(HTTPSTest, RequiredClientCertificateGivenOrMissing) {
  SSLOptions options;
  options.client_cert = ClientCertMode::required;
  options.ca_certs = cert("ca.pem");
  uint16_t port = serve("server", options);
  HTTPRequest with = trusting(url(port));
  with.client_cert = cert("client.pem");
  with.client_key = cert("client.key");
  EXPECT_EQ(fetch(with).body, "hello");
  std::string message = fetch_599(trusting(url(port)));
  EXPECT_EQ(message, "Stream closed: tlsv13 alert certificate required");
}

TEST_F(HTTPSTest, PlainHTTPToTheTLSPortFailsThatConnectionOnly) {
  uint16_t port = serve();
  bool closed = false;
  while_serving([&] {
    int fd = raw_connect(port);
    std::string request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    closed = wait_for_close(fd);
    ::close(fd);
  });
  EXPECT_TRUE(closed);
  EXPECT_EQ(fetch(trusting(url(port))).body, "hello");  // the server carries on
}

TEST_F(HTTPSTest, PlainHTTPToTheTLSPortIsAnswered400InClearThenClosed) {
  uint16_t port = serve();
  std::string answer;
  while_serving([&] {
    int fd = raw_connect(port);
    std::string request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    char buf[4096];
    for (;;) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      answer.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
  });
  EXPECT_EQ(answer.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << answer;
  EXPECT_NE(answer.find("\r\nConnection: close\r\n"), std::string::npos) << answer;
  EXPECT_NE(answer.find("The plain HTTP request was sent to HTTPS port"), std::string::npos) << answer;
  EXPECT_EQ(fetch(trusting(url(port))).body, "hello");  // the server carries on
}

TEST_F(HTTPSTest, SilentClientIsDroppedAfterTheHandshakeTimeoutWhileOthersAreServed) {
  SSLOptions options;
  options.handshake_timeout = 300ms;
  uint16_t port = serve("server", options);
  int silent = raw_connect(port);
  ASSERT_GE(silent, 0);
  EXPECT_EQ(fetch(trusting(url(port))).body, "hello");  // served meanwhile
  auto start = std::chrono::steady_clock::now();
  bool closed = false;
  while_serving([&] { closed = wait_for_close(silent); });
  EXPECT_TRUE(closed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  ::close(silent);
}

TEST_F(HTTPSTest, HandshakeThatNeverFinishesIsAConnectTimeout) {
  // A listener that accepts (the kernel does) and never speaks: the client's hello goes
  // unanswered, and connect_timeout covers the handshake.
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  socklen_t length = sizeof address;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  HTTPRequest request = trusting(url(ntohs(address.sin_port)));
  request.connect_timeout = 300ms;
  EXPECT_EQ(fetch_599(request), "Timeout while connecting");
  ::close(listener);
}

TEST_F(HTTPSTest, RedirectFromHTTPSToHTTPDropsCredentials) {
  uint16_t tls_port = serve();
  uint16_t plain_port = serve_plain();
  std::string target = "http://127.0.0.1:" + std::to_string(plain_port) + "/auth";
  HTTPRequest downgrade = trusting(url(tls_port, "/to?url=" + target));
  downgrade.auth_username = "user";
  downgrade.auth_password = "secret";
  EXPECT_EQ(fetch(downgrade).body, "none");
  HTTPRequest same_origin = trusting(url(tls_port, "/to?url=" + url(tls_port, "/auth")));
  same_origin.auth_username = "user";
  EXPECT_EQ(fetch(same_origin).body, "Basic dXNlcjo=");  // "user:"
}

}  // namespace
}  // namespace squall
