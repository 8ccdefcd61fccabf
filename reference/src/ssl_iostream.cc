// SSLIOStream (see squall/ssl_iostream.h).
#include "squall/ssl_iostream.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <system_error>
#include <utility>

#include "squall/log.h"
#include "squall/netutil.h"
#include "squall/task.h"

namespace squall {

namespace {

// The largest plaintext of one TLS record: small queued pieces are gathered up to this
// before SSL_write, so that a response head and its body go out as one record.
constexpr size_t kRecordSize = 16384;

// ---- the socket BIO ---------------------------------------------------------------------
// OpenSSL's own socket BIO writes with write(2): a peer that reset the connection would
// raise SIGPIPE. This one sends with MSG_NOSIGNAL, as IOStream does, and otherwise only
// maps EAGAIN onto OpenSSL's retry flags.

detail::SocketBioState& bio_state(BIO* bio) { return *static_cast<detail::SocketBioState*>(BIO_get_data(bio)); }
int bio_fd(BIO* bio) { return bio_state(bio).fd; }

int bio_write(BIO* bio, const char* data, int length) {
  BIO_clear_retry_flags(bio);
  ssize_t n;
  do {
    n = ::send(bio_fd(bio), data, static_cast<size_t>(length), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) BIO_set_retry_write(bio);
  return static_cast<int>(n);
}

int bio_read(BIO* bio, char* data, int length) {
  BIO_clear_retry_flags(bio);
  ssize_t n;
  do {
    n = ::recv(bio_fd(bio), data, static_cast<size_t>(length), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) BIO_set_retry_read(bio);
  detail::SocketBioState& state = bio_state(bio);
  if (n > 0 && state.head_length < sizeof state.head) {
    // The first bytes the peer sent, kept to tell a plaintext request from a TLS record.
    size_t take = std::min(static_cast<size_t>(n), sizeof state.head - state.head_length);
    std::memcpy(state.head + state.head_length, data, take);
    state.head_length = static_cast<std::uint8_t>(state.head_length + take);
  }
  return static_cast<int>(n);
}

long bio_ctrl(BIO*, int command, long, void*) { return command == BIO_CTRL_FLUSH ? 1 : 0; }

BIO_METHOD* socket_bio_method() {
  // Made once per process and never freed (OpenSSL's own methods are static too).
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "squall socket");
    if (m == nullptr || BIO_meth_set_write(m, bio_write) != 1 || BIO_meth_set_read(m, bio_read) != 1 ||
        BIO_meth_set_ctrl(m, bio_ctrl) != 1) {
      throw SSLError("cannot create the socket BIO method");
    }
    return m;
  }();
  return method;
}

// OpenSSL's error queue must be empty before a call whose failure SSL_get_error reads.
// Every failure path here empties it, so it almost always is: looking is much cheaper
// than clearing (this runs for every record read and written).
void clear_stale_errors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

// RFC 9110 tchar.
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool is_connreset(int err) { return err == ECONNRESET || err == ECONNABORTED || err == EPIPE || err == ETIMEDOUT; }

}  // namespace

void SSLIOStream::Free::operator()(SSL* ssl) const { SSL_free(ssl); }

// ---- life cycle ---------------------------------------------------------------------------

SSLIOStream::SSLIOStream(int fd, std::shared_ptr<const SSLContext> context, std::string server_hostname,
                         IOStreamOptions options, IOLoop* loop)
    : IOStream(fd, options, loop), context_(std::move(context)), server_hostname_(std::move(server_hostname)) {
  if (!context_) throw std::invalid_argument("SSLIOStream: no SSLContext");
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    peer_ = SocketAddress(reinterpret_cast<const sockaddr*>(&address), length);
  }
  const SSLOptions& tls = context_->options();
  const bool server = context_->server_side();
  if (!server && tls.validate_cert && tls.check_hostname && server_hostname_.empty()) {
    throw std::invalid_argument("SSLIOStream: checking the host name needs server_hostname");
  }
  ERR_clear_error();
  ssl_.reset(SSL_new(context_->native_handle()));
  BIO* bio = ssl_ ? BIO_new(socket_bio_method()) : nullptr;
  if (bio == nullptr) throw SSLError("cannot create a TLS connection: " + take_ssl_errors());
  bio_state_.fd = fd;
  BIO_set_data(bio, &bio_state_);
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl_.get(), bio, bio);  // the SSL owns the BIO (one reference for both ends)
  SSL_set_app_data(ssl_.get(), &sni_context_);
  if (server) {
    SSL_set_accept_state(ssl_.get());
  } else {
    SSL_set_connect_state(ssl_.get());
    const bool ip = is_valid_ip(server_hostname_);
    // RFC 6066: SNI carries host names only, never IP literals.
    if (!server_hostname_.empty() && !ip) SSL_set_tlsext_host_name(ssl_.get(), server_hostname_.c_str());
    if (tls.validate_cert && tls.check_hostname) {
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl_.get());
      int ok;
      if (ip) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(param, server_hostname_.c_str());  // SAN IP entries
      } else {
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = X509_VERIFY_PARAM_set1_host(param, server_hostname_.c_str(), 0);
      }
      if (ok != 1) throw SSLError("cannot check host name '" + server_hostname_ + "': " + take_ssl_errors());
    }
  }
  if (tls.handshake_timeout > Duration::zero()) {
    // Removed by close_fd and on completion, so `this` is alive whenever it runs.
    handshake_timer_ = io_loop().call_later(tls.handshake_timeout, [this] { handshake_timed_out(); });
  }
  if (server) {
    add_io_state(IOLoop::READ);  // the client speaks first
  } else {
    do_handshake();  // send the client hello now
    if (!closed() && handshaking_) set_io_state(handshake_interest_);
  }
}

SSLIOStream::~SSLIOStream() {
  // Here, not in ~IOStream: by then close_fd would no longer be this class's.
  close();
}

// ---- the handshake ------------------------------------------------------------------------

Future<void> SSLIOStream::wait_for_handshake() {
  Future<void> future(std::make_shared<detail::FutureState<void>>(&io_loop()));
  if (!handshaking_) {
    future.set_result();
  } else if (closed()) {
    future.set_exception(std::make_exception_ptr(StreamClosedError(error())));
  } else {
    if (handshake_future_) throw std::logic_error("Already waiting");
    handshake_future_ = future;
  }
  return future;
}

bool SSLIOStream::drive_handshake() {
  if (handshaking_ && !lingering_ && !closed() && !connecting()) do_handshake();
  return !handshaking_ && !closed();
}

void SSLIOStream::do_handshake() {
  clear_stale_errors();
  const int rc = SSL_do_handshake(ssl_.get());
  if (rc == 1) {
    handshaking_ = false;
    io_loop().remove_timeout(handshake_timer_);
    handshake_timer_ = {};
    if (handshake_future_) {
      Future<void> future = std::move(*handshake_future_);
      handshake_future_.reset();
      future.set_result();
    }
    return;
  }
  const int error = SSL_get_error(ssl_.get(), rc);
  if (error == SSL_ERROR_WANT_READ) {
    handshake_interest_ = IOLoop::READ;
  } else if (error == SSL_ERROR_WANT_WRITE) {
    handshake_interest_ = IOLoop::WRITE;
  } else {
    handshake_failed(error);
  }
}

void SSLIOStream::handshake_failed(int ssl_error) {
  const int saved_errno = errno;
  std::string message;
  std::exception_ptr reason;
  bool quiet = false;  // the peer just went away: not worth more than a debug line
  const unsigned long code = ERR_peek_last_error();
  const bool eof = ssl_error == SSL_ERROR_ZERO_RETURN || (ssl_error == SSL_ERROR_SYSCALL && saved_errno == 0) ||
                   (ssl_error == SSL_ERROR_SSL && ERR_GET_LIB(code) == ERR_LIB_SSL &&
                    ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING);
  if (eof) {
    // A port scanner, a health check, a client that gave up.
    ERR_clear_error();
    quiet = true;
    message = "connection closed during the TLS handshake";
    reason = std::make_exception_ptr(SSLError(message));
  } else if (ssl_error == SSL_ERROR_SSL) {
    const long verify = SSL_get_verify_result(ssl_.get());
    if (ERR_GET_LIB(code) == ERR_LIB_SSL && ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED &&
        verify != X509_V_OK) {
      message = fmt::format("certificate verify failed: {}", X509_verify_cert_error_string(verify));
      if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        message += fmt::format(", certificate is not valid for '{}'", server_hostname_);
      }
      ERR_clear_error();
      reason = std::make_exception_ptr(SSLError(message, verify));
    } else {
      message = take_ssl_errors();
      if (message.empty()) message = "TLS handshake failed";
      reason = std::make_exception_ptr(SSLError(message));
    }
  } else {
    ERR_clear_error();
    quiet = is_connreset(saved_errno) || saved_errno == ENOTCONN || saved_errno == EBADF;
    std::system_error error(saved_errno, std::system_category(), "TLS handshake");
    message = error.what();
    reason = std::make_exception_ptr(error);
  }
  if (ssl_error == SSL_ERROR_SSL && !plain_http_reply_.empty() && context_->server_side() && is_plain_http_request()) {
    reply_plain_http();
    return;
  }
  log(quiet ? LogLevel::debug : LogLevel::info, LogCategory::general, "TLS handshake with {} failed: {}", peer(),
      message);
  failed_ = true;
  close(reason);
}

// ---- plain HTTP on the TLS port -------------------------------------------------------------

bool SSLIOStream::is_plain_http_request() {
  // What OpenSSL read (usually a record header's 5 bytes), then what is still queued.
  char bytes[48];
  size_t length = bio_state_.head_length;
  std::memcpy(bytes, bio_state_.head, length);
  if (length == sizeof bio_state_.head) {
    // The BIO kept only the first bytes; OpenSSL may have read more: they are gone, and
    // the first 16 decide.
  } else {
    ssize_t n;
    do {
      n = ::recv(fd(), bytes + length, sizeof bytes - length, MSG_PEEK | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n > 0) length += static_cast<size_t>(n);
  }
  // A method token, then a space. A TLS record starts with a content type byte (20..23) or,
  // for an SSLv2-style hello, with a byte >= 0x80: never a tchar.
  size_t i = 0;
  while (i < length && is_tchar(bytes[i])) ++i;
  return i > 0 && i < length && bytes[i] == ' ';
}

void SSLIOStream::reply_plain_http() {
  ERR_clear_error();
  log(LogLevel::info, LogCategory::general, "Plain HTTP request from {} on a TLS port: answered 400", peer());
  failed_ = true;  // no close_notify: there is no TLS session
  lingering_ = true;
  ssize_t n;
  do {
    n = ::send(fd(), plain_http_reply_.data(), plain_http_reply_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  ::shutdown(fd(), SHUT_WR);  // the reply (a few hundred bytes) fits an empty socket buffer
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    close(std::make_exception_ptr(SSLError("plain HTTP request on a TLS port")));
    return;
  }
  io_loop().remove_timeout(handshake_timer_);
  // Removed by close_fd, so `this` is alive whenever it runs.
  handshake_timer_ = io_loop().call_later(kPlainHttpLinger, [this] {
    handshake_timer_ = {};
    close(std::make_exception_ptr(SSLError("plain HTTP request on a TLS port")));
  });
  handshake_interest_ = IOLoop::READ;
  linger_read();
}

void SSLIOStream::linger_read() {
  // Drops what the client still sends; its end (or an error) ends the linger. Bounded per
  // event so that a client streaming at full speed does not hold the loop.
  char sink[4096];
  for (int i = 0; i < 16; ++i) {
    ssize_t n = ::recv(fd(), sink, sizeof sink, MSG_DONTWAIT);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    close(std::make_exception_ptr(SSLError("plain HTTP request on a TLS port")));
    return;
  }
}

void SSLIOStream::handshake_timed_out() {
  handshake_timer_ = {};
  if (closed() || !handshaking_) return;
  log(LogLevel::debug, LogCategory::general, "TLS handshake with {} timed out", peer());
  failed_ = true;
  close(std::make_exception_ptr(TimeoutError("TLS handshake timed out")));
}

// ---- the transport seam -------------------------------------------------------------------

ssize_t SSLIOStream::read_from_fd(iovec* iov, int iovcnt) {
  if (!drive_handshake()) {
    errno = EAGAIN;
    return -1;
  }
  read_wants_write_ = false;
  size_t total = 0;
  // Fill the buffers record by record while OpenSSL holds bytes (decrypted, or read
  // ahead from the socket): the loop wakes IOStream only for the socket, so what OpenSSL
  // holds must not be left behind when there is room for it. Once it holds nothing, the
  // socket's readiness says whether more has come (no extra read to find out).
  for (int i = 0; i < iovcnt; ++i) {
    char* data = static_cast<char*>(iov[i].iov_base);
    size_t room = iov[i].iov_len;
    while (room > 0) {
      size_t got = 0;
      clear_stale_errors();
      const int rc = SSL_read_ex(ssl_.get(), data, room, &got);
      if (rc == 1) {
        data += got;
        room -= got;
        total += got;
        if (!SSL_has_pending(ssl_.get())) return static_cast<ssize_t>(total);
        continue;
      }
      const int error = SSL_get_error(ssl_.get(), rc);
      if (total > 0) {
        // Deliver what was read; an end or an error shows again on the next call.
        ERR_clear_error();
        return static_cast<ssize_t>(total);
      }
      switch (error) {
        case SSL_ERROR_WANT_WRITE:
          read_wants_write_ = true;
          [[fallthrough]];
        case SSL_ERROR_WANT_READ:
          errno = EAGAIN;
          return -1;
        case SSL_ERROR_ZERO_RETURN:
          return 0;  // close_notify, or a plain TCP close (SSL_OP_IGNORE_UNEXPECTED_EOF)
        case SSL_ERROR_SYSCALL:
          // IOStream closes with the errno, as for a plain socket; none is an EOF.
          return socket_failed() == 0 ? 0 : -1;
        default:
          // A record that does not decrypt, an alert from the peer.
          transport_failed("read");
          return -1;
      }
    }
  }
  return static_cast<ssize_t>(total);
}

ssize_t SSLIOStream::write_to_fd(const iovec* iov, int iovcnt) {
  if (!drive_handshake()) {
    errno = EAGAIN;
    return -1;
  }
  write_wants_read_ = false;
  const char* data;
  size_t length;
  if (iovcnt == 1 || iov[0].iov_len >= kRecordSize) {
    data = static_cast<const char*>(iov[0].iov_base);
    length = iov[0].iov_len;
  } else {
    // Gather small pieces into one record. A retry after WANT_WRITE gathers the same
    // leading bytes again (the queue only grows at its end), which is what OpenSSL needs
    // with SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER.
    // On the heap, not in the static TLS block (see SpareBuffers).
    thread_local const std::unique_ptr<char[]> gathered_block(new char[kRecordSize]);
    char* const gathered = gathered_block.get();
    length = 0;
    for (int i = 0; i < iovcnt && length < kRecordSize; ++i) {
      size_t take = std::min(iov[i].iov_len, kRecordSize - length);
      std::memcpy(gathered + length, iov[i].iov_base, take);
      length += take;
    }
    data = gathered;
  }
  size_t written = 0;
  clear_stale_errors();
  const int rc = SSL_write_ex(ssl_.get(), data, length, &written);
  if (rc == 1) return static_cast<ssize_t>(written);
  switch (SSL_get_error(ssl_.get(), rc)) {
    case SSL_ERROR_WANT_READ:
      write_wants_read_ = true;
      [[fallthrough]];
    case SSL_ERROR_WANT_WRITE:
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_SYSCALL:
      // IOStream closes with the errno (quietly for EPIPE / ECONNRESET).
      if (socket_failed() == 0) errno = EPIPE;
      return -1;
    default:
      transport_failed("write");
      return -1;
  }
}

int SSLIOStream::socket_failed() {
  const int saved_errno = errno;
  failed_ = true;
  ERR_clear_error();
  errno = saved_errno;
  return saved_errno;
}

void SSLIOStream::transport_failed(const char* what) {
  std::string message = take_ssl_errors();
  if (message.empty()) message = fmt::format("TLS {} failed", what);
  log(LogLevel::info, LogCategory::general, "TLS error on {}: {}", peer(), message);
  failed_ = true;
  close(std::make_exception_ptr(SSLError(message)));
}

void SSLIOStream::shutdown_write() {
  if (closed()) return;
  if (!handshaking_ && !failed_ && !(SSL_get_shutdown(ssl_.get()) & SSL_SENT_SHUTDOWN)) {
    clear_stale_errors();
    SSL_shutdown(ssl_.get());  // close_notify; the peer's is not waited for
    ERR_clear_error();
  }
  IOStream::shutdown_write();
}

void SSLIOStream::close_fd() {
  io_loop().remove_timeout(handshake_timer_);
  handshake_timer_ = {};
  if (!handshaking_ && !failed_ && !(SSL_get_shutdown(ssl_.get()) & SSL_SENT_SHUTDOWN)) {
    // close_notify, without waiting for the peer's: HTTP does not need it, and waiting
    // would keep the connection around.
    clear_stale_errors();
    SSL_shutdown(ssl_.get());
    ERR_clear_error();
  }
  IOStream::close_fd();
  if (handshake_future_) {
    Future<void> future = std::move(*handshake_future_);
    handshake_future_.reset();
    future.set_exception(std::make_exception_ptr(StreamClosedError(error())));
    future.mark_retrieved();  // the stream reports its own failures, as reads do
  }
}

// ---- events and interest ------------------------------------------------------------------

void SSLIOStream::handle_events(uint32_t events) {
  if (closed()) return;
  if (lingering_) {
    linger_read();
    if (!closed()) set_io_state(IOLoop::READ);
    return;
  }
  if (handshaking_ && !connecting() && !(events & IOLoop::ERROR)) {
    do_handshake();
    if (closed()) return;
    if (handshaking_) {
      set_io_state(handshake_interest_);
      return;
    }
    // Done: reads and writes that waited for it go now (the peer's first data may have
    // come with its last handshake message).
    events = IOLoop::READ | (writing() ? IOLoop::WRITE : 0);
  } else if (!handshaking_) {
    // OpenSSL may need the other direction first (a TLS 1.2 peer's handshake messages
    // mid-stream): the readiness it waited for drives the operation that wanted it.
    if (write_wants_read_ && (events & IOLoop::READ)) events |= IOLoop::WRITE;
    if (read_wants_write_ && (events & IOLoop::WRITE)) events |= IOLoop::READ;
  }
  IOStream::handle_events(events);
  update_interest();
}

void SSLIOStream::update_interest() {
  if (closed() || connecting()) return;
  if (handshaking_) {
    set_io_state(handshake_interest_);
    return;
  }
  uint32_t want = io_state();
  // Waiting for the readiness OpenSSL asked for, not the one IOStream would: a writable
  // socket would otherwise wake the loop over and over for a write that needs a read.
  if (write_wants_read_ && writing()) want = (want & ~IOLoop::WRITE) | IOLoop::READ;
  if (read_wants_write_) want = (want & ~IOLoop::READ) | IOLoop::WRITE;
  set_io_state(want);
}

// ---- after the handshake ------------------------------------------------------------------

std::string SSLIOStream::alpn_protocol() const {
  const unsigned char* data = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(ssl_.get(), &data, &length);
  return data ? std::string(reinterpret_cast<const char*>(data), length) : std::string();
}

std::string SSLIOStream::tls_version() const { return handshaking_ ? "" : SSL_get_version(ssl_.get()); }

std::string SSLIOStream::cipher() const {
  const char* name = SSL_get_cipher_name(ssl_.get());
  return handshaking_ || name == nullptr ? "" : name;
}

std::string SSLIOStream::server_name() const {
  const char* name = SSL_get_servername(ssl_.get(), TLSEXT_NAMETYPE_host_name);
  return name ? name : "";
}

std::string SSLIOStream::peer_certificate_subject() const {
  X509* cert = SSL_get1_peer_certificate(ssl_.get());
  if (cert == nullptr) return "";
  std::string out;
  if (BIO* mem = BIO_new(BIO_s_mem())) {
    X509_NAME_print_ex(mem, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    long length = BIO_get_mem_data(mem, &data);
    if (length > 0) out.assign(data, static_cast<size_t>(length));
    BIO_free(mem);
  }
  X509_free(cert);
  return out;
}

std::string SSLIOStream::peer() const {
  std::string text = peer_.to_string();
  return text.empty() ? fmt::format("fd {}", fd()) : text;
}

// ---- start_tls ----------------------------------------------------------------------------

namespace {

Task<std::unique_ptr<SSLIOStream>> handshake_then_hand_over(std::unique_ptr<SSLIOStream> stream) {
  Future<void> handshake = stream->wait_for_handshake();
  co_await handshake;
  co_return std::move(stream);
}

}  // namespace

Future<std::unique_ptr<SSLIOStream>> start_tls(std::unique_ptr<IOStream> stream,
                                               std::shared_ptr<const SSLContext> context,
                                               std::string server_hostname) {
  return handshake_then_hand_over(wrap_tls(std::move(stream), std::move(context), std::move(server_hostname))).future();
}

std::unique_ptr<SSLIOStream> wrap_tls(std::unique_ptr<IOStream> stream, std::shared_ptr<const SSLContext> context,
                                      std::string server_hostname) {
  if (!stream) throw std::invalid_argument("start_tls: no stream");
  IOLoop* loop = &stream->io_loop();
  IOStreamOptions options = stream->options();
  std::pair<int, Callback> released = stream->release_socket();  // throws unless idle
  stream.reset();
  // If the constructor throws, the IOStream base has taken the fd and closes it.
  auto tls = std::make_unique<SSLIOStream>(released.first, std::move(context), std::move(server_hostname), options,
                                           loop);
  if (released.second) tls->set_close_callback(std::move(released.second));
  return tls;
}

}  // namespace squall
