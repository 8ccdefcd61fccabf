// SSLIOStream: an IOStream over TLS — Tornado's iostream.SSLIOStream, on OpenSSL 3.
//
// Same reads and writes as IOStream (read_bytes, read_until, read_until_regex,
// read_until_close, write, close callback, limits): only the transport differs.
// IOStream's buffering and read machinery are reused as they are; this class overrides
// the transport seam — SSL_read / SSL_write instead of readv / sendmsg, with OpenSSL's
// WANT_READ / WANT_WRITE mapped onto the loop's interest in the socket.
//
// The handshake is non-blocking and driven by the loop. It starts when the stream is
// made (a client sends its hello at once; a server waits for one) and completes before
// the first read or write does; wait_for_handshake() waits for it explicitly (to look at
// the peer certificate or the ALPN protocol first). A failed handshake — plain HTTP sent
// to a TLS port, a certificate that does not verify, no common version or cipher, the
// peer going away, the handshake timeout — closes this stream only: the pending futures
// fail with StreamClosedError whose real_error() says why (SSLError, TimeoutError or a
// std::system_error), and one line is logged with the peer's address (info for TLS
// errors, debug for a peer that just went away or a timeout). Never a crash, never a
// stream left waiting.
//
// A server may also answer plain text sent to its TLS port: with set_plain_http_reply, a
// handshake that fails because the client's first bytes are a plaintext request line (a
// token, then a space: "GET / HTTP/1.1", never the start of a TLS record) writes that
// reply in clear, half-closes, reads and drops what the client still sends for up to
// kPlainHttpLinger (so the close does not reset the connection before the client read the
// reply), then closes as for any failed handshake.
//
// close() sends close_notify (best effort, never waiting for the peer's) unless the
// connection already failed; a peer's close_notify — or, as with Python's
// suppress_ragged_eofs, a plain TCP close — ends the stream like EOF on a socket.
//
// start_tls() upgrades a plain, idle IOStream (STARTTLS-style protocols, and TCPClient's
// TLS connections).
//
// The fd must be a connected socket; connect first (TCPClient, or IOStream::connect) and
// then start_tls.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "squall/future.h"
#include "squall/iostream.h"
#include "squall/netutil.h"
#include "squall/ssl_context.h"

namespace squall {

namespace detail {
// What the stream's socket BIO knows: the descriptor, and the first bytes received (to
// tell a plaintext request from a TLS record once a handshake failed).
struct SocketBioState {
  int fd = -1;
  std::uint8_t head_length = 0;
  char head[16] = {};
};
}  // namespace detail

class SSLIOStream : public IOStream {
 public:
  // Takes ownership of the connected socket fd and starts the handshake, as the server
  // or the client according to context->server_side(). A client passes the name (or IP
  // literal) it connected to as server_hostname: it is sent as SNI and, when the context
  // validates, checked against the certificate (required then: std::invalid_argument
  // without it). Throws SSLError if OpenSSL cannot make the connection object.
  SSLIOStream(int fd, std::shared_ptr<const SSLContext> context, std::string server_hostname = {},
              IOStreamOptions options = {}, IOLoop* loop = nullptr);
  // Closes (with close_notify when the connection is healthy).
  ~SSLIOStream() override;

  // Completes when the handshake has (at once if it already has); fails with
  // StreamClosedError if the stream closes first. One waiter at a time (std::logic_error
  // "Already waiting" otherwise), as in Tornado.
  Future<void> wait_for_handshake();
  bool handshake_done() const { return !handshaking_; }

  // Server side: the bytes written in clear when the client speaks plain HTTP (see above);
  // empty (the default) for none. The string must outlive the stream (a constant).
  void set_plain_http_reply(std::string_view reply) { plain_http_reply_ = reply; }
  static constexpr Duration kPlainHttpLinger = std::chrono::seconds(2);

  // After the handshake: the negotiated ALPN protocol ("" if none), the protocol version
  // ("TLSv1.3"), the cipher, the server name the client sent ("" if none), and the
  // subject of the peer's certificate in RFC 2253 form ("" if it sent none).
  std::string alpn_protocol() const;
  std::string tls_version() const;
  std::string cipher() const;
  std::string server_name() const;
  std::string peer_certificate_subject() const;
  const std::shared_ptr<const SSLContext>& context() const { return context_; }
  SSL* native_handle() const { return ssl_.get(); }
  // close_notify, then the TCP half-close.
  void shutdown_write() override;

 protected:
  ssize_t read_from_fd(iovec* iov, int iovcnt) override;
  // OpenSSL may hold decrypted bytes the socket no longer shows.
  bool socket_shows_unread_bytes() const override { return false; }
  ssize_t write_to_fd(const iovec* iov, int iovcnt) override;
  void close_fd() override;
  void handle_events(uint32_t events) override;

 private:
  struct Free {
    void operator()(SSL* ssl) const;
  };

  bool drive_handshake();  // true once the handshake is done
  void do_handshake();
  void handshake_failed(int ssl_error);
  void handshake_timed_out();
  bool is_plain_http_request();  // after a failed server handshake
  void reply_plain_http();
  void linger_read();
  void transport_failed(const char* what);
  int socket_failed();  // after SSL_ERROR_SYSCALL: marks the failure, returns errno (kept)
  void update_interest();
  std::string peer() const;  // for log lines

  std::shared_ptr<const SSLContext> context_;
  // The context an SNI callback switched to: its callbacks point at it (ssl_context.cc).
  std::shared_ptr<const SSLContext> sni_context_;
  detail::SocketBioState bio_state_;  // before ssl_, which uses it until destroyed
  std::unique_ptr<SSL, Free> ssl_;
  std::string server_hostname_;
  // Taken when the stream is made: by the time a handshake fails the peer may have reset
  // the connection, and getpeername() no longer answers.
  SocketAddress peer_;
  bool handshaking_ = true;
  bool failed_ = false;           // a fatal TLS or socket error: no close_notify then
  bool lingering_ = false;        // answered plain HTTP: dropping input until the close
  std::string_view plain_http_reply_;
  bool read_wants_write_ = false;  // SSL_read needs the socket writable first
  bool write_wants_read_ = false;  // SSL_write needs the socket readable first
  uint32_t handshake_interest_ = IOLoop::READ;
  TimeoutHandle handshake_timer_;
  std::optional<Future<void>> handshake_future_;
};

// Upgrades a plain stream to TLS, as Tornado's IOStream.start_tls: the stream must be
// idle (nothing buffered or queued, no read pending, not connecting; std::logic_error
// otherwise — data in the kernel's socket buffer is fine). Its socket and close callback
// move to a new SSLIOStream with the same options, and the future completes with it once
// the handshake has; on a failed handshake it fails with StreamClosedError (the socket is
// closed). server_hostname as for the SSLIOStream constructor.
Future<std::unique_ptr<SSLIOStream>> start_tls(std::unique_ptr<IOStream> stream,
                                               std::shared_ptr<const SSLContext> context,
                                               std::string server_hostname = {});
// The same hand-over without the wait: returns the new stream with its handshake under
// way, for callers that bound the wait themselves (TCPClient's timeout closes it).
std::unique_ptr<SSLIOStream> wrap_tls(std::unique_ptr<IOStream> stream, std::shared_ptr<const SSLContext> context,
                                      std::string server_hostname = {});

}  // namespace squall
