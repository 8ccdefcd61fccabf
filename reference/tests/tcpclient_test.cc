// Tests for squall/tcpclient.h: TCPClient::connect over loopback sockets only.
#include "squall/tcpclient.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <thread>
#include <chrono>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include "squall/netutil.h"
#include "squall/ssl_iostream.h"
#include "squall/task.h"
#include "squall/tcpserver.h"
#include "tls/test_certs.h"
#include "open_fds.h"

namespace squall {
namespace {

using namespace std::chrono_literals;

using testing_support::open_fd_count;

// A listening socket whose accepted connections receive `greeting` and stay open until
// the listener goes away.
class GreetingListener {
 public:
  explicit GreetingListener(std::string greeting, std::string address = "127.0.0.1")
      : greeting_(std::move(greeting)) {
    fds_ = bind_sockets(0, address);
    remove_ = add_accept_handler(fds_[0], [this](int fd, SocketAddress) {
      EXPECT_EQ(::write(fd, greeting_.data(), greeting_.size()), static_cast<ssize_t>(greeting_.size()));
      accepted_.push_back(fd);
    });
  }
  ~GreetingListener() {
    remove_();
    for (int fd : accepted_) ::close(fd);
    for (int fd : fds_) ::close(fd);
  }
  uint16_t port() const { return socket_port(fds_[0]); }
  size_t accepted() const { return accepted_.size(); }

 private:
  std::string greeting_;
  std::vector<int> fds_;
  std::vector<int> accepted_;
  std::function<void()> remove_;
};

// A port where nothing listens: a socket bound to it (kept bound so no one else gets
// it) but not listening answers connects with a reset.
class RefusingPort {
 public:
  RefusingPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  }
  ~RefusingPort() { ::close(fd_); }
  uint16_t port() const { return socket_port(fd_); }

 private:
  int fd_;
};

// Resolves every name to a fixed list.
class FixedResolver : public Resolver {
 public:
  explicit FixedResolver(std::vector<SocketAddress> addresses) : addresses_(std::move(addresses)) {}
  Future<std::vector<SocketAddress>> resolve(std::string, uint16_t, int) override {
    ++calls;
    return make_ready_future(addresses_);
  }
  int calls = 0;

 private:
  std::vector<SocketAddress> addresses_;
};

// Never answers.
class SilentResolver : public Resolver {
 public:
  Future<std::vector<SocketAddress>> resolve(std::string, uint16_t, int) override { return {}; }
};

// Connects and reads one line; returns it.
Task<std::string> connect_and_read_line(TCPClient& client, std::string host, uint16_t port) {
  std::unique_ptr<IOStream> stream = co_await client.connect(host, port, 5s);
  EXPECT_FALSE(stream->closed());
  co_return co_await stream->read_until("\n");
}

// Runs the loop until the connect has an outcome (which the test then inspects).
void settle(IOLoop& loop, Future<std::unique_ptr<IOStream>>& result, Duration timeout) {
  loop.run_sync([&]() -> Task<void> {
    try {
      co_await result;
    } catch (...) {
    }
  }, timeout);
}

// The system_error a failed connect carries.
std::error_code connect_error(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const StreamClosedError& e) {
    try {
      if (e.real_error()) std::rethrow_exception(e.real_error());
    } catch (const std::system_error& real) {
      return real.code();
    } catch (...) {
    }
  } catch (...) {
  }
  return {};
}

TEST(tcpclient, ConnectsToAListeningPortAndTheStreamCarriesData) {
  IOLoop loop;
  GreetingListener listener("hello\n");
  TCPClient client;
  std::string line = loop.run_sync([&] { return connect_and_read_line(client, "127.0.0.1", listener.port()); }, 10s);
  EXPECT_EQ(line, "hello\n");
  EXPECT_EQ(listener.accepted(), 1u);
}

TEST(tcpclient, ConnectsByHostName) {
  IOLoop loop;
  GreetingListener listener("by name\n");
  TCPClient client;  // the default resolver: getaddrinfo on the executor
  std::string line = loop.run_sync([&] { return connect_and_read_line(client, "localhost", listener.port()); }, 10s);
  EXPECT_EQ(line, "by name\n");
}

TEST(tcpclient, ConnectsOverIpv6Loopback) {
  std::ifstream probe("/proc/net/if_inet6");
  if (!probe) GTEST_SKIP() << "kernel has no IPv6 (/proc/net/if_inet6 missing)";
  IOLoop loop;
  GreetingListener listener("six\n", "::1");
  TCPClient client;
  std::string line = loop.run_sync([&] { return connect_and_read_line(client, "::1", listener.port()); }, 10s);
  EXPECT_EQ(line, "six\n");
}

TEST(tcpclient, StreamGetsTheGivenOptions) {
  IOLoop loop;
  GreetingListener listener("x\n");
  TCPClient client;
  IOStreamOptions options;
  options.max_buffer_size = 12345;
  options.read_chunk_size = 321;
  auto stream_options = loop.run_sync(
      [&]() -> Task<IOStreamOptions> {
        std::unique_ptr<IOStream> stream = co_await client.connect("127.0.0.1", listener.port(), 5s, options);
        co_return stream->options();
      },
      10s);
  EXPECT_EQ(stream_options.max_buffer_size, 12345u);
  EXPECT_EQ(stream_options.read_chunk_size, 321u);
}

TEST(tcpclient, RefusedConnectionFailsWithStreamClosedErrorCarryingEconnrefused) {
  IOLoop loop;
  RefusingPort refusing;
  TCPClient client;
  int before = open_fd_count();
  Future<std::unique_ptr<IOStream>> result = client.connect("127.0.0.1", refusing.port(), 5s);
  settle(loop, result, 10s);
  ASSERT_TRUE(result.done());
  std::exception_ptr error = result.exception();
  ASSERT_TRUE(error);
  EXPECT_THROW(std::rethrow_exception(error), StreamClosedError);
  EXPECT_EQ(connect_error(error), std::errc::connection_refused);
  EXPECT_EQ(open_fd_count(), before);  // the failed attempt's socket is closed
}

TEST(tcpclient, TriesTheNextAddressWhenOneFails) {
  IOLoop loop;
  RefusingPort refusing;
  GreetingListener listener("second\n");
  FixedResolver resolver({SocketAddress::from_ip("127.0.0.1", refusing.port()),
                          SocketAddress::from_ip("127.0.0.1", listener.port())});
  TCPClient client(&resolver);
  std::string line = loop.run_sync([&] { return connect_and_read_line(client, "anything", 1); }, 10s);
  EXPECT_EQ(line, "second\n");
  EXPECT_EQ(resolver.calls, 1);
}

// Connects through a resolver that returns addresses, all of which fail; returns the
// error code the connect failed with.
std::error_code failure_for(IOLoop& loop, std::vector<SocketAddress> addresses) {
  FixedResolver resolver(std::move(addresses));
  TCPClient client(&resolver);
  Future<std::unique_ptr<IOStream>> result = client.connect("anything", 1, 5s);
  settle(loop, result, 10s);
  std::exception_ptr error = result.exception();
  EXPECT_TRUE(error);
  return connect_error(error);
}

TEST(tcpclient, WhenEveryAddressFailsTheFirstErrorIsReported) {
  if (!std::ifstream("/proc/net/if_inet6")) GTEST_SKIP() << "kernel has no IPv6 (/proc/net/if_inet6 missing)";
  IOLoop loop;
  RefusingPort refusing;
  // A link-local IPv6 address without a scope: the kernel rejects the connect with
  // EINVAL on the spot, without sending anything.
  SocketAddress invalid = SocketAddress::from_ip("fe80::1", 80);
  SocketAddress refused = SocketAddress::from_ip("127.0.0.1", refusing.port());
  int before = open_fd_count();
  EXPECT_EQ(failure_for(loop, {invalid, refused}), std::errc::invalid_argument);
  EXPECT_EQ(failure_for(loop, {refused, invalid}), std::errc::connection_refused);
  EXPECT_EQ(open_fd_count(), before);  // every attempt's socket is closed
}

TEST(tcpclient, TimesOutWhenTheResolverNeverAnswers) {
  IOLoop loop;
  SilentResolver resolver;
  TCPClient client(&resolver);
  auto started = std::chrono::steady_clock::now();
  Future<std::unique_ptr<IOStream>> result = client.connect("nowhere.example", 80, 100ms);
  settle(loop, result, 5s);
  auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_THROW(result.result(), TimeoutError);
  EXPECT_GE(elapsed, 90ms);
  EXPECT_LT(elapsed, 2s);
}

TEST(tcpclient, TimeoutWhileConnectingClosesTheAttemptInFlight) {
  IOLoop loop;
  // A listener nobody accepts on, with its queue full: further SYNs are dropped by the
  // kernel, so a connect to it hangs (on loopback; the client retransmits, nothing
  // leaves the machine).
  std::vector<int> listener = bind_sockets(0, "127.0.0.1", AF_INET, /*backlog=*/0);
  SocketAddress target = socket_address(listener[0]);
  std::vector<int> fillers;
  for (int i = 0; i < 2; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ::connect(fd, target.get(), target.length());
    fillers.push_back(fd);
  }
  std::this_thread::sleep_for(100ms);

  TCPClient client;
  int before = open_fd_count();
  auto started = std::chrono::steady_clock::now();
  Future<std::unique_ptr<IOStream>> result = client.connect("127.0.0.1", target.port(), 300ms);
  settle(loop, result, 5s);
  auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_THROW(result.result(), TimeoutError);
  EXPECT_GE(elapsed, 250ms);
  EXPECT_EQ(open_fd_count(), before);  // the attempt's socket was closed at the timeout
  for (int fd : fillers) ::close(fd);
  for (int fd : listener) ::close(fd);
}

TEST(tcpclient, ResolutionFailureFailsTheConnect) {
  IOLoop loop;
  TCPClient client;
  Future<std::unique_ptr<IOStream>> result = client.connect("127.0.0.1", 80, 5s, {}, AF_INET6);
  settle(loop, result, 5s);
  EXPECT_THROW(result.result(), ResolveError);
}

TEST(tcpclient, ConnectOutlivesTheClientObject) {
  IOLoop loop;
  GreetingListener listener("still\n");
  Future<std::unique_ptr<IOStream>> pending;
  {
    TCPClient client;  // owns its resolver; destroyed while "localhost" is being resolved
    pending = client.connect("localhost", listener.port(), 5s);
  }
  std::string line = loop.run_sync([&]() -> Task<std::string> {
    std::unique_ptr<IOStream> stream = co_await pending;
    co_return co_await stream->read_until("\n");
  }, 10s);
  EXPECT_EQ(line, "still\n");
}

// ---- TLS ------------------------------------------------------------------------------------

std::string cert(std::string_view name) { return testing::TestCerts::get().file(name); }

// Answers every line with itself, over TLS.
class TLSEchoServer : public TCPServer {
 public:
  explicit TLSEchoServer(const std::string& name)
      : TCPServer({}, SSLContext::server([&] {
          SSLOptions options;
          options.certfile = cert(name + ".pem");
          options.keyfile = cert(name + ".key");
          return options;
        }())) {}
  Task<void> handle_stream(std::unique_ptr<IOStream> stream, SocketAddress) override {
    try {
      for (;;) {
        std::string line = co_await stream->read_until("\n");
        co_await stream->write(std::move(line));
      }
    } catch (const StreamClosedError&) {
    }
  }
};

std::shared_ptr<const SSLContext> trusting_client() {
  SSLOptions options;
  options.ca_certs = cert("ca.pem");
  return SSLContext::client(options);
}

TEST(tcpclient, TLSConnectHandsOverAStreamWhoseHandshakeIsDone) {
  IOLoop loop;
  TLSEchoServer server("server");
  server.listen(0, "127.0.0.1");
  TCPClient client;
  std::string echoed = loop.run_sync([&]() -> Task<std::string> {
    Future<std::unique_ptr<IOStream>> connecting =
        client.connect("localhost", server.ports().at(0), 5s, IOStreamOptions{}, AF_UNSPEC, trusting_client());
    std::unique_ptr<IOStream> stream = co_await connecting;
    auto* tls = dynamic_cast<SSLIOStream*>(stream.get());
    EXPECT_NE(tls, nullptr);
    EXPECT_TRUE(tls != nullptr && tls->handshake_done());
    co_await stream->write("over tls\n");
    co_return co_await stream->read_until("\n");
  }, 10s);
  EXPECT_EQ(echoed, "over tls\n");
}

TEST(tcpclient, TLSConnectFailsWhenTheCertificateDoesNotVerify) {
  IOLoop loop;
  TLSEchoServer server("wronghost");
  server.listen(0, "127.0.0.1");
  TCPClient client;
  Future<std::unique_ptr<IOStream>> result =
      client.connect("127.0.0.1", server.ports().at(0), 5s, IOStreamOptions{}, AF_UNSPEC, trusting_client());
  settle(loop, result, 10s);
  try {
    result.result();
    ADD_FAILURE() << "connected";
  } catch (const StreamClosedError& e) {
    try {
      std::rethrow_exception(e.real_error());
    } catch (const SSLError& ssl) {
      EXPECT_STREQ(ssl.what(), "certificate verify failed: IP address mismatch, certificate is not valid for '127.0.0.1'");
    } catch (...) {
      ADD_FAILURE() << "not an SSLError";
    }
  }
}

TEST(tcpclient, TLSHandshakeCountsAgainstTheTimeoutAndItsSocketIsClosed) {
  IOLoop loop;
  GreetingListener listener("");  // accepts, never answers the client hello
  TCPClient client;
  int before = open_fd_count();
  Future<std::unique_ptr<IOStream>> result =
      client.connect("127.0.0.1", listener.port(), 300ms, IOStreamOptions{}, AF_UNSPEC, trusting_client());
  settle(loop, result, 5s);
  EXPECT_THROW(result.result(), TimeoutError);
  EXPECT_EQ(open_fd_count(), before + 1);  // only the listener's accepted socket is left
}

}  // namespace
}  // namespace squall
