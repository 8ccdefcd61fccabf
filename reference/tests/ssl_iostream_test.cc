// Behaviours of SSLIOStream (squall/ssl_iostream.h) over AF_UNIX socketpairs: the
// handshake (versions, ALPN, SNI, client certificates, certificate verification), the
// read/write API of IOStream over TLS, start_tls, the handshake timeout, plaintext sent
// to a TLS stream, close_notify both ways. The peer is another SSLIOStream or, where the
// wire matters, a blocking OpenSSL client in a thread. Certificates: tests/tls/.
#include "squall/ssl_iostream.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "squall/log.h"
#include "squall/task.h"
#include "tls/test_certs.h"

namespace squall {
namespace {

using namespace std::chrono_literals;
using testing::TestCerts;

constexpr auto kTimeout = 20s;

std::pair<int, int> socket_pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    throw std::system_error(errno, std::system_category(), "socketpair");
  }
  return {fds[0], fds[1]};
}

std::string cert(std::string_view name) { return TestCerts::get().file(name); }

SSLOptions server_options(const std::string& name = "server") {
  SSLOptions options;
  options.certfile = cert(name + ".pem");
  options.keyfile = cert(name + ".key");
  return options;
}

SSLOptions client_options() {
  SSLOptions options;
  options.ca_certs = cert("ca.pem");
  return options;
}

std::string pattern_bytes(size_t n, uint32_t seed) {
  std::string out(n, '\0');
  uint32_t x = seed;
  for (char& c : out) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return out;
}

// Both ends of a TLS connection over a socketpair; the handshake starts at once.
struct TLSPair {
  std::unique_ptr<SSLIOStream> server;
  std::unique_ptr<SSLIOStream> client;
};

TLSPair tls_pair(SSLOptions server_tls = server_options(), SSLOptions client_tls = client_options(),
                 std::string host = "localhost", IOStreamOptions server_stream = {}) {
  auto [a, b] = socket_pair();
  TLSPair pair;
  pair.server = std::make_unique<SSLIOStream>(a, SSLContext::server(std::move(server_tls)), "", server_stream);
  pair.client = std::make_unique<SSLIOStream>(b, SSLContext::client(std::move(client_tls)), std::move(host));
  return pair;
}

// What a stream's failure was, in words: the what() of StreamClosedError's real error.
std::string failure_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const StreamClosedError& e) {
    if (!e.real_error()) return "closed without error";
    try {
      std::rethrow_exception(e.real_error());
    } catch (const std::exception& real) {
      return real.what();
    }
  } catch (const std::exception& e) {
    return std::string("not a StreamClosedError: ") + e.what();
  }
  return "?";
}

// The handshake outcome of each side: "" for success, else failure_of().
struct Outcome {
  std::string server;
  std::string client;
};

Task<std::string> handshake_outcome(SSLIOStream& stream) {
  try {
    Future<void> done = stream.wait_for_handshake();
    co_await done;
    co_return std::string();
  } catch (...) {
    co_return failure_of(std::current_exception());
  }
}

// Runs both handshakes; a client whose handshake "succeeds" before the server rejects it
// (TLS 1.3 client certificates) reports the failure of its first read instead.
Outcome handshake(IOLoop& loop, TLSPair& pair) {
  return loop.run_sync(
      [&]() -> Task<Outcome> {
        Task<std::string> server = handshake_outcome(*pair.server);
        Task<std::string> client = handshake_outcome(*pair.client);
        Outcome out;
        out.server = co_await server;
        out.client = co_await client;
        if (out.client.empty() && !out.server.empty()) {
          try {
            Future<std::string> read = pair.client->read_bytes(1);
            co_await read;
          } catch (...) {
            out.client = failure_of(std::current_exception());
          }
        }
        co_return out;
      },
      kTimeout);
}

void expect_both_succeeded(const Outcome& outcome) {
  EXPECT_EQ(outcome.server, "");
  EXPECT_EQ(outcome.client, "");
}

SSLOptions client_with_certificate() {
  SSLOptions client = client_options();
  client.certfile = cert("client.pem");
  client.keyfile = cert("client.key");
  return client;
}

// ---- the handshake ------------------------------------------------------------------------

TEST(SSLIOStreamTest, HandshakeNegotiatesTLS13AndALPNHttp11) {
  IOLoop loop;
  TLSPair pair = tls_pair();
  expect_both_succeeded(handshake(loop, pair));
  EXPECT_TRUE(pair.server->handshake_done());
  EXPECT_EQ(pair.server->tls_version(), "TLSv1.3");
  EXPECT_EQ(pair.client->tls_version(), "TLSv1.3");
  EXPECT_EQ(pair.server->alpn_protocol(), "http/1.1");
  EXPECT_EQ(pair.client->alpn_protocol(), "http/1.1");
  EXPECT_FALSE(pair.client->cipher().empty());
  EXPECT_EQ(pair.server->server_name(), "localhost");  // SNI
  EXPECT_EQ(pair.client->peer_certificate_subject(), "CN=localhost");
  EXPECT_EQ(pair.server->peer_certificate_subject(), "");
}

TEST(SSLIOStreamTest, TLS12WorksWhenTheClientAllowsNoMore) {
  IOLoop loop;
  SSLOptions client = client_options();
  client.max_version = TLSVersion::tls1_2;
  TLSPair pair = tls_pair(server_options(), client);
  expect_both_succeeded(handshake(loop, pair));
  EXPECT_EQ(pair.server->tls_version(), "TLSv1.2");
}

TEST(SSLIOStreamTest, NoCommonVersionFailsBothSides) {
  IOLoop loop;
  SSLOptions server = server_options();
  server.min_version = TLSVersion::tls1_3;
  SSLOptions client = client_options();
  client.max_version = TLSVersion::tls1_2;
  TLSPair pair = tls_pair(server, client);
  Outcome outcome = handshake(loop, pair);
  EXPECT_NE(outcome.server.find("unsupported protocol"), std::string::npos) << outcome.server;
  EXPECT_NE(outcome.client, "");
}

TEST(SSLIOStreamTest, ALPNIsLeftOutWhenTheClientOffersNothingWeSpeak) {
  IOLoop loop;
  SSLOptions client = client_options();
  client.alpn_protocols = {"h2"};
  TLSPair pair = tls_pair(server_options(), client);
  Outcome outcome = handshake(loop, pair);
  EXPECT_EQ(outcome.client, "");
  EXPECT_EQ(pair.server->alpn_protocol(), "");
  EXPECT_EQ(pair.client->alpn_protocol(), "");
}

TEST(SSLIOStreamTest, SNICallbackPicksTheCertificateForTheName) {
  IOLoop loop;
  std::vector<std::string> asked;
  SSLOptions server = server_options();
  server.sni_callback = [&](const std::string& name) -> std::shared_ptr<const SSLContext> {
    asked.push_back(name);
    // A fresh context nobody else holds: the connection must keep it alive by itself.
    return name == "sni.example" ? SSLContext::server(server_options("sni")) : nullptr;
  };
  {
    // The client validates: it only succeeds if it was shown sni.pem.
    TLSPair pair = tls_pair(server, client_options(), "sni.example");
    Outcome outcome = handshake(loop, pair);
    EXPECT_EQ(outcome.client, "");
    EXPECT_EQ(pair.server->server_name(), "sni.example");
    EXPECT_EQ(pair.client->peer_certificate_subject(), "CN=sni.example");
  }
  {
    TLSPair pair = tls_pair(server, client_options(), "localhost");
    Outcome outcome = handshake(loop, pair);
    EXPECT_EQ(outcome.client, "");
    EXPECT_EQ(pair.client->peer_certificate_subject(), "CN=localhost");
  }
  EXPECT_EQ(asked, (std::vector<std::string>{"sni.example", "localhost"}));
}

// ---- certificate verification (client side) ------------------------------------------------

TEST(SSLIOStreamTest, ClientAcceptsTheServerByNameAndByIPAddress) {
  IOLoop loop;
  for (const char* host : {"localhost", "127.0.0.1", "::1"}) {
    SCOPED_TRACE(host);
    TLSPair pair = tls_pair(server_options(), client_options(), host);
    expect_both_succeeded(handshake(loop, pair));
  }
}

TEST(SSLIOStreamTest, ClientRejectsAnExpiredCertificate) {
  IOLoop loop;
  TLSPair pair = tls_pair(server_options("expired"));
  Outcome outcome = handshake(loop, pair);
  EXPECT_EQ(outcome.client, "certificate verify failed: certificate has expired");
  EXPECT_NE(outcome.server, "");  // the client's alert ends the server's side too
}

TEST(SSLIOStreamTest, ClientRejectsACertificateForAnotherHost) {
  IOLoop loop;
  TLSPair pair = tls_pair(server_options("wronghost"));
  Outcome outcome = handshake(loop, pair);
  EXPECT_EQ(outcome.client, "certificate verify failed: hostname mismatch, certificate is not valid for 'localhost'");
}

TEST(SSLIOStreamTest, ClientRejectsACertificateWithoutItsIPAddress) {
  IOLoop loop;
  TLSPair pair = tls_pair(server_options("wronghost"), client_options(), "127.0.0.1");
  Outcome outcome = handshake(loop, pair);
  EXPECT_EQ(outcome.client,
            "certificate verify failed: IP address mismatch, certificate is not valid for '127.0.0.1'");
}

TEST(SSLIOStreamTest, ClientRejectsACertificateFromAnUnknownCA) {
  IOLoop loop;
  SSLOptions client = client_options();
  client.ca_certs = cert("other-ca.pem");
  TLSPair pair = tls_pair(server_options(), client);
  Outcome outcome = handshake(loop, pair);
  EXPECT_EQ(outcome.client, "certificate verify failed: unable to get local issuer certificate");
}

TEST(SSLIOStreamTest, VerificationFailureCarriesTheX509Code) {
  IOLoop loop;
  TLSPair pair = tls_pair(server_options("expired"));
  handshake(loop, pair);
  try {
    std::rethrow_exception(pair.client->error());
  } catch (const SSLError& e) {
    EXPECT_EQ(e.verify_result(), X509_V_ERR_CERT_HAS_EXPIRED);
  } catch (...) {
    ADD_FAILURE() << "not an SSLError";
  }
}

TEST(SSLIOStreamTest, ValidateCertFalseAcceptsAnyCertificate) {
  IOLoop loop;
  SSLOptions client;
  client.validate_cert = false;
  for (const char* name : {"expired", "wronghost", "server"}) {
    TLSPair pair = tls_pair(server_options(name), client, "");
    Outcome outcome = handshake(loop, pair);
    EXPECT_EQ(outcome.client, "") << name;
  }
}

TEST(SSLIOStreamTest, ValidatingClientNeedsAServerHostname) {
  IOLoop loop;
  auto [a, b] = socket_pair();
  ::close(a);
  EXPECT_THROW(SSLIOStream(b, SSLContext::client(client_options()), ""), std::invalid_argument);
}

// ---- client certificates (server side) ------------------------------------------------------

SSLOptions requiring_client_cert(ClientCertMode mode) {
  SSLOptions server = server_options();
  server.client_cert = mode;
  server.ca_certs = cert("ca.pem");
  return server;
}

TEST(SSLIOStreamTest, RequiredClientCertificateGivenIsSeenByTheServer) {
  IOLoop loop;
  TLSPair pair = tls_pair(requiring_client_cert(ClientCertMode::required), client_with_certificate());
  expect_both_succeeded(handshake(loop, pair));
  EXPECT_EQ(pair.server->peer_certificate_subject(), "CN=Squall Test Client");
}

TEST(SSLIOStreamTest, RequiredClientCertificateMissingFailsTheHandshake) {
  IOLoop loop;
  TLSPair pair = tls_pair(requiring_client_cert(ClientCertMode::required));
  Outcome outcome = handshake(loop, pair);
  EXPECT_EQ(outcome.server, "peer did not return a certificate");
  EXPECT_NE(outcome.client.find("certificate required"), std::string::npos) << outcome.client;
}

TEST(SSLIOStreamTest, OptionalClientCertificateMayBeLeftOut) {
  IOLoop loop;
  TLSPair pair = tls_pair(requiring_client_cert(ClientCertMode::optional));
  Outcome outcome = handshake(loop, pair);
  EXPECT_EQ(outcome.server, "");
  EXPECT_EQ(pair.server->peer_certificate_subject(), "");
}

TEST(SSLIOStreamTest, ClientCertificateFromAnUnknownCAIsRejected) {
  IOLoop loop;
  SSLOptions server = requiring_client_cert(ClientCertMode::optional);
  server.ca_certs = cert("other-ca.pem");
  TLSPair pair = tls_pair(server, client_with_certificate());
  Outcome outcome = handshake(loop, pair);
  // The client sends its CA along (it trusts it): a chain ending in a CA we do not know.
  EXPECT_EQ(outcome.server, "certificate verify failed: self-signed certificate in certificate chain");
}

// ---- context errors -----------------------------------------------------------------------

TEST(SSLContextTest, BadFilesAndMismatchedKeysFailAtOnce) {
  SSLOptions missing = server_options();
  missing.certfile = "/nonexistent/cert.pem";
  EXPECT_THROW(SSLContext::server(missing), SSLError);
  SSLOptions mismatched = server_options();
  mismatched.keyfile = cert("client.key");
  try {
    SSLContext::server(mismatched);
    ADD_FAILURE() << "no error";
  } catch (const SSLError& e) {
    EXPECT_NE(std::string(e.what()).find("private key"), std::string::npos) << e.what();
  }
  SSLOptions ciphers = server_options();
  ciphers.ciphers = "NO-SUCH-CIPHER";
  EXPECT_THROW(SSLContext::server(ciphers), SSLError);
  EXPECT_THROW(SSLContext::server(SSLOptions{}), std::invalid_argument);
  SSLOptions bad_ca = client_options();
  bad_ca.ca_certs = "/nonexistent/ca.pem";
  EXPECT_THROW(SSLContext::client(bad_ca), SSLError);
}

TEST(SSLContextTest, KeyMayLiveInTheCertificateFile) {
  std::string combined = (TestCerts::get().dir() / "combined.pem").string();
  std::string command = "cat '" + cert("server.pem") + "' '" + cert("server.key") + "' > '" + combined + "'";
  ASSERT_EQ(std::system(command.c_str()), 0);
  SSLOptions options;
  options.certfile = combined;
  EXPECT_NO_THROW(SSLContext::server(options));
}

// ---- reads and writes over TLS: the IOStream API ------------------------------------------------

TEST(SSLIOStreamTest, ReadUntilFindsDelimitersAcrossRecords) {
  IOLoop loop;
  TLSPair pair = tls_pair();
  auto lines = loop.run_sync(
      [&]() -> Task<std::vector<std::string>> {
        pair.client->write("hel");
        pair.client->write("lo\r");
        pair.client->write("\nworld\r\n");
        std::vector<std::string> out;
        out.push_back(co_await pair.server->read_until("\r\n"));
        out.push_back(co_await pair.server->read_until("\r\n"));
        co_return out;
      },
      kTimeout);
  EXPECT_EQ(lines, (std::vector<std::string>{"hello\r\n", "world\r\n"}));
}

TEST(SSLIOStreamTest, ReadBytesExactAndPartial) {
  IOLoop loop;
  TLSPair pair = tls_pair();
  std::string data = pattern_bytes(1000, 7);
  auto got = loop.run_sync(
      [&]() -> Task<std::vector<std::string>> {
        Future<void> written = pair.client->write(data);
        co_await written;
        std::vector<std::string> out;
        out.push_back(co_await pair.server->read_bytes(10));
        out.push_back(co_await pair.server->read_bytes(5000, true));  // what there is
        co_return out;
      },
      kTimeout);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], data.substr(0, 10));
  EXPECT_EQ(got[1], data.substr(10));
}

TEST(SSLIOStreamTest, ReadUntilRegexMatchesDecryptedBytes) {
  IOLoop loop;
  TLSPair pair = tls_pair();
  std::string got = loop.run_sync(
      [&]() -> Task<std::string> {
        pair.client->write("abc 123 def\n");
        co_return co_await pair.server->read_until_regex("[0-9]+");
      },
      kTimeout);
  EXPECT_EQ(got, "abc 123");
}

TEST(SSLIOStreamTest, UnsatisfiableReadUntilClosesTheStream) {
  IOLoop loop;
  TLSPair pair = tls_pair();
  std::string error = loop.run_sync(
      [&]() -> Task<std::string> {
        pair.client->write(std::string(100, 'x'));
        try {
          co_await pair.server->read_until("\n", 50);
        } catch (const UnsatisfiableReadError& e) {
          co_return std::string(e.what());
        }
        co_return std::string("no error");
      },
      kTimeout);
  EXPECT_NE(error.find("not found within 50 bytes"), std::string::npos) << error;
  EXPECT_TRUE(pair.server->closed());
}

TEST(SSLIOStreamTest, ReadUntilCloseGetsEverythingSentBeforeClose) {
  IOLoop loop;
  TLSPair pair = tls_pair();
  std::string data = pattern_bytes(3 * 1024 * 1024 + 17, 3);
  std::string got = loop.run_sync(
      [&]() -> Task<std::string> {
        Future<std::string> everything = pair.server->read_until_close();
        Future<void> written = pair.client->write(data);
        co_await written;  // close() drops what is still queued: wait until it is sent
        pair.client->close();
        co_return co_await everything;
      },
      kTimeout);
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
}

TEST(SSLIOStreamTest, SeveralMiBBothWaysAtOnce) {
  IOLoop loop;
  TLSPair pair = tls_pair();
  const size_t n = 6 * 1024 * 1024;
  std::string up = pattern_bytes(n, 11), down = pattern_bytes(n, 12);
  auto got = loop.run_sync(
      [&]() -> Task<std::pair<std::string, std::string>> {
        // Both sides write everything before either reads: each write waits for the
        // other side's reads (WANT_WRITE), which wait for its writes to drain.
        Future<void> w1 = pair.client->write(up);
        Future<void> w2 = pair.server->write(down);
        Future<std::string> r1 = pair.server->read_bytes(n);
        Future<std::string> r2 = pair.client->read_bytes(n);
        std::pair<std::string, std::string> out;
        out.first = co_await r1;
        out.second = co_await r2;
        co_await w1;
        co_await w2;
        co_return out;
      },
      kTimeout);
  EXPECT_TRUE(got.first == up);
  EXPECT_TRUE(got.second == down);
}

TEST(SSLIOStreamTest, ManySmallWritesArriveInOrder) {
  IOLoop loop;
  TLSPair pair = tls_pair();
  std::string expected;
  auto got = loop.run_sync(
      [&]() -> Task<std::string> {
        for (int i = 0; i < 20000; ++i) {
          std::string piece = std::to_string(i) + ",";
          expected += piece;
          pair.client->write(std::move(piece));
        }
        co_return co_await pair.server->read_bytes(expected.size());
      },
      kTimeout);
  EXPECT_TRUE(got == expected);
}

TEST(SSLIOStreamTest, DecryptedBytesLeftInOpenSSLAreReadWithoutNewSocketData) {
  // With 5-byte reads, a 12 KB record is mostly left decrypted inside OpenSSL, where the
  // loop cannot see it: later reads must take it from there, not wait for the socket.
  IOLoop loop;
  IOStreamOptions small;
  small.read_chunk_size = 5;
  TLSPair pair = tls_pair(server_options(), client_options(), "localhost", small);
  std::string data = pattern_bytes(12000, 5);
  std::replace(data.begin(), data.end(), '\n', ' ');
  data += "\n";
  auto got = loop.run_sync(
      [&]() -> Task<std::vector<std::string>> {
        Future<void> written = pair.client->write(data);
        co_await written;
        std::vector<std::string> out;
        out.push_back(co_await pair.server->read_bytes(5));
        co_await sleep(50ms);  // nothing more comes
        out.push_back(co_await pair.server->read_bytes(3000));
        out.push_back(co_await pair.server->read_until("\n"));
        co_return out;
      },
      kTimeout);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].size(), 5u);
  EXPECT_EQ(got[1].size(), 3000u);
  EXPECT_EQ(got[2].size(), data.size() - 3005);
  EXPECT_TRUE(got[0] + got[1] + got[2] == data);
}

TEST(SSLIOStreamTest, WritesBeforeTheHandshakeAreSentAfterIt) {
  IOLoop loop;
  TLSPair pair = tls_pair();
  EXPECT_FALSE(pair.client->handshake_done());
  Future<void> early = pair.client->write("early\n");
  std::string got = loop.run_sync([&]() -> Task<std::string> { co_return co_await pair.server->read_until("\n"); },
                                  kTimeout);
  EXPECT_EQ(got, "early\n");
  EXPECT_TRUE(early.done());
}

TEST(SSLIOStreamTest, CloseCallbackRunsWhenThePeerCloses) {
  IOLoop loop;
  TLSPair pair = tls_pair();
  handshake(loop, pair);
  bool called = false;
  pair.server->set_close_callback([&] { called = true; });
  pair.client->close();
  loop.run_sync(
      [&]() -> Task<void> {
        while (!called) co_await sleep(1ms);
      },
      kTimeout);
  EXPECT_TRUE(pair.server->closed());
  EXPECT_EQ(pair.server->error(), nullptr);  // an orderly close
}

// ---- failures that must stay on one connection ------------------------------------------------

TEST(SSLIOStreamTest, PlainHTTPToATLSStreamFailsItsHandshakeAndIsLoggedOnce) {
  IOLoop loop;
  auto [a, b] = socket_pair();
  LogLevel saved = log_level();
  set_log_level(LogLevel::info);
  ::testing::internal::CaptureStderr();
  SSLIOStream server(a, SSLContext::server(server_options()));
  std::string request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(b, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
  std::string failure = loop.run_sync(
      [&]() -> Task<std::string> {
        try {
          co_await server.read_until("\r\n\r\n");
        } catch (...) {
          co_return failure_of(std::current_exception());
        }
        co_return std::string("no error");
      },
      kTimeout);
  std::string logged = ::testing::internal::GetCapturedStderr();
  set_log_level(saved);
  EXPECT_EQ(failure, "http request");
  EXPECT_TRUE(server.closed());
  size_t first = logged.find("TLS handshake with");
  EXPECT_NE(first, std::string::npos) << logged;
  EXPECT_EQ(logged.find("TLS handshake with", first + 1), std::string::npos) << logged;
  EXPECT_NE(logged.find("http request"), std::string::npos) << logged;
  ::close(b);
}

// Reads fd until the peer closes (or 5 s pass).
std::string read_all(int fd) {
  timeval limit{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

constexpr std::string_view kPlainReply = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

TEST(SSLIOStreamTest, PlainHTTPIsAnsweredInClearWhenAReplyIsSet) {
  for (std::string request : {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
                              "PROPFIND /dav HTTP/1.1\r\nHost: x\r\n\r\n"}) {
    IOLoop loop;
    auto [a, b] = socket_pair();
    SSLIOStream server(a, SSLContext::server(server_options()));
    server.set_plain_http_reply(kPlainReply);
    ASSERT_EQ(::send(b, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
    ::shutdown(b, SHUT_WR);  // the client is done: the server's linger ends at its EOF
    std::string failure = loop.run_sync(
        [&]() -> Task<std::string> {
          try {
            co_await server.read_until("\r\n\r\n");
          } catch (...) {
            co_return failure_of(std::current_exception());
          }
          co_return std::string("no error");
        },
        kTimeout);
    EXPECT_EQ(failure, "plain HTTP request on a TLS port") << request;
    EXPECT_TRUE(server.closed());
    EXPECT_EQ(read_all(b), kPlainReply) << request;
    ::close(b);
  }
}

TEST(SSLIOStreamTest, ABadTLSRecordIsNotAnsweredInClear) {
  for (std::string bytes : {std::string("\x16\x03\x01\x00\x05hello", 10), std::string("\x80\x01garbage", 9)}) {
    IOLoop loop;
    auto [a, b] = socket_pair();
    SSLIOStream server(a, SSLContext::server(server_options()));
    server.set_plain_http_reply(kPlainReply);
    ASSERT_EQ(::send(b, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
    std::string failure =
        loop.run_sync([&]() -> Task<std::string> { co_return co_await handshake_outcome(server); }, kTimeout);
    EXPECT_NE(failure, "plain HTTP request on a TLS port");
    EXPECT_NE(failure, "");
    EXPECT_EQ(read_all(b).find("HTTP/"), std::string::npos);
    ::close(b);
  }
}

TEST(SSLIOStreamTest, HandshakeTimeoutClosesAPeerThatSendsNothing) {
  IOLoop loop;
  auto [a, b] = socket_pair();
  SSLOptions options = server_options();
  options.handshake_timeout = 200ms;
  SSLIOStream server(a, SSLContext::server(options));
  auto start = Clock::now();
  std::string failure = loop.run_sync([&]() -> Task<std::string> { co_return co_await handshake_outcome(server); },
                                      kTimeout);
  auto elapsed = Clock::now() - start;
  EXPECT_EQ(failure, "TLS handshake timed out");
  EXPECT_GE(elapsed, 190ms);
  EXPECT_LT(elapsed, 5s);
  char byte;
  EXPECT_EQ(::recv(b, &byte, 1, 0), 0);  // the server closed the socket
  ::close(b);
}

TEST(SSLIOStreamTest, PeerVanishingMidHandshakeFailsQuietly) {
  IOLoop loop;
  auto [a, b] = socket_pair();
  SSLIOStream server(a, SSLContext::server(server_options()));
  ::close(b);
  std::string failure = loop.run_sync([&]() -> Task<std::string> { co_return co_await handshake_outcome(server); },
                                      kTimeout);
  EXPECT_EQ(failure, "connection closed during the TLS handshake");
}

TEST(SSLIOStreamTest, DestroyingAStreamMidHandshakeIsClean) {
  IOLoop loop;
  TLSPair pair = tls_pair();
  Future<void> waiting = pair.server->wait_for_handshake();
  pair.server.reset();
  EXPECT_TRUE(waiting.done());
  EXPECT_THROW(waiting.result(), StreamClosedError);
  std::string failure = loop.run_sync([&]() -> Task<std::string> { co_return co_await handshake_outcome(*pair.client); },
                                      kTimeout);
  EXPECT_NE(failure, "");
}

// ---- close_notify, checked on the wire by a blocking OpenSSL peer ------------------------------

// A blocking TLS client on fd, in a thread; it trusts anything (the wire is the subject).
class RawTLSClient {
 public:
  explicit RawTLSClient(int fd) : fd_(fd) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd);
  }
  ~RawTLSClient() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
    ::close(fd_);
  }
  bool connect() { return SSL_connect(ssl_) == 1; }
  // Reads until SSL_read fails; returns the data and sets how it ended (SSL_get_error).
  std::string read_to_end(int& how) {
    std::string out;
    char buf[4096];
    for (;;) {
      int n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) {
        how = SSL_get_error(ssl_, n);
        ERR_clear_error();
        return out;
      }
      out.append(buf, static_cast<size_t>(n));
    }
  }
  bool write(std::string_view data) { return SSL_write(ssl_, data.data(), static_cast<int>(data.size())) > 0; }
  int shutdown() { return SSL_shutdown(ssl_); }

 private:
  int fd_;
  SSL_CTX* ctx_;
  SSL* ssl_;
};

TEST(SSLIOStreamTest, CloseSendsCloseNotify) {
  IOLoop loop;
  auto [a, b] = socket_pair();
  std::string received;
  int how = -1;
  std::thread peer([&, fd = b] {
    RawTLSClient client(fd);
    if (client.connect()) received = client.read_to_end(how);
  });
  SSLIOStream server(a, SSLContext::server(server_options()));
  loop.run_sync(
      [&]() -> Task<void> {
        Future<void> written = server.write("bye");
        co_await written;
        server.close();
      },
      kTimeout);
  peer.join();
  EXPECT_EQ(received, "bye");
  EXPECT_EQ(how, SSL_ERROR_ZERO_RETURN);  // a clean TLS close, not a truncation
}

TEST(SSLIOStreamTest, PeerCloseNotifyEndsTheStreamWithoutATCPClose) {
  IOLoop loop;
  auto [a, b] = socket_pair();
  std::atomic<bool> done{false};
  std::thread peer([&, fd = b] {
    RawTLSClient client(fd);
    if (client.connect() && client.write("last words")) client.shutdown();
    while (!done) std::this_thread::sleep_for(5ms);  // the TCP connection stays open meanwhile
  });
  SSLIOStream server(a, SSLContext::server(server_options()));
  std::string got =
      loop.run_sync([&]() -> Task<std::string> { co_return co_await server.read_until_close(); }, kTimeout);
  done = true;
  peer.join();
  EXPECT_EQ(got, "last words");
  EXPECT_EQ(server.error(), nullptr);
}

// ---- start_tls ------------------------------------------------------------------------------

TEST(SSLIOStreamTest, StartTlsUpgradesPlainStreams) {
  IOLoop loop;
  auto [a, b] = socket_pair();
  auto plain_server = std::make_unique<IOStream>(a);
  auto plain_client = std::make_unique<IOStream>(b);
  bool close_callback_ran = false;
  auto got = loop.run_sync(
      [&]() -> Task<std::pair<std::string, std::string>> {
        // A STARTTLS exchange in the clear, then both sides upgrade.
        co_await plain_client->write("STARTTLS\n");
        std::string command = co_await plain_server->read_until("\n");
        co_await plain_server->write("GO\n");
        std::string go = co_await plain_client->read_until("\n");
        plain_server->set_close_callback([&] { close_callback_ran = true; });
        Future<std::unique_ptr<SSLIOStream>> server_tls =
            start_tls(std::move(plain_server), SSLContext::server(server_options()));
        Future<std::unique_ptr<SSLIOStream>> client_tls =
            start_tls(std::move(plain_client), SSLContext::client(client_options()), "localhost");
        std::unique_ptr<SSLIOStream> server = co_await server_tls;
        std::unique_ptr<SSLIOStream> client = co_await client_tls;
        EXPECT_TRUE(server->handshake_done());
        co_await client->write("secret\n");
        std::string secret = co_await server->read_until("\n");
        client->close();
        co_await server->read_until_close();
        co_await moment();
        co_return std::make_pair(command + go, secret);
      },
      kTimeout);
  EXPECT_EQ(got.first, "STARTTLS\nGO\n");
  EXPECT_EQ(got.second, "secret\n");
  EXPECT_TRUE(close_callback_ran);  // moved to the TLS stream
}

TEST(SSLIOStreamTest, StartTlsRefusesAStreamWithBufferedData) {
  IOLoop loop;
  auto [a, b] = socket_pair();
  auto plain = std::make_unique<IOStream>(a);
  ASSERT_EQ(::send(b, "line\nmore", 9, MSG_NOSIGNAL), 9);
  std::string line = loop.run_sync([&]() -> Task<std::string> { co_return co_await plain->read_until("\n"); },
                                   kTimeout);
  EXPECT_EQ(line, "line\n");
  // "more" came in the same read: it is buffered, and TLS would lose it.
  ASSERT_EQ(plain->read_buffer_size(), 4u);
  EXPECT_THROW(start_tls(std::move(plain), SSLContext::server(server_options())), std::logic_error);
  auto reading = std::make_unique<IOStream>(b);
  Future<std::string> pending = reading->read_bytes(100);
  EXPECT_THROW(start_tls(std::move(reading), SSLContext::server(server_options())), std::logic_error);
}

}  // namespace
}  // namespace squall
