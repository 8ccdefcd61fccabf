// Network utilities: listening sockets, the accept handler and the resolver — Tornado's
// tornado.netutil.
//
// bind_sockets() creates the listening sockets for a port (one per address the host name
// maps to, usually one IPv4 and one IPv6 socket); add_accept_handler() registers a
// listening socket with the loop and hands every accepted connection to a callback;
// Resolver turns a host name into addresses without blocking the loop (getaddrinfo runs
// on default_executor()). Everything here deals in raw file descriptors: a listening
// socket belongs to whoever called bind_sockets() (TCPServer closes its own), an accepted
// connection belongs to the accept callback.
#pragma once

#include <netdb.h>
#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "squall/future.h"
#include "squall/ioloop.h"

namespace squall {

// Tornado's _DEFAULT_BACKLOG: the listen() backlog, and the most connections one
// readiness event of a listening socket accepts before the loop moves on.
inline constexpr int kDefaultBacklog = 128;

// How long an accept handler stops watching its socket after accept() ran out of file
// descriptors (EMFILE/ENFILE/ENOBUFS/ENOMEM). A level-triggered listening socket with a
// pending connection that can't be accepted would otherwise wake the loop forever.
inline constexpr Duration kAcceptPauseOnFdExhaustion = std::chrono::milliseconds(100);

// An IPv4 or IPv6 socket address (sockaddr_storage + length), a copyable value.
class SocketAddress {
 public:
  SocketAddress() = default;  // empty: family() == AF_UNSPEC
  SocketAddress(const sockaddr* address, socklen_t length);
  // Parses a numeric IPv4/IPv6 address ("127.0.0.1", "::1", "fe80::1%lo");
  // throws std::invalid_argument if ip is not one.
  static SocketAddress from_ip(std::string_view ip, uint16_t port);

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t length() const { return length_; }
  int family() const { return length_ == 0 ? AF_UNSPEC : storage_.ss_family; }
  bool empty() const { return length_ == 0; }
  uint16_t port() const;
  // The numeric host: "127.0.0.1", "::1" (with "%scope" for scoped IPv6 addresses).
  std::string ip() const;
  // "127.0.0.1:8080", "[::1]:8080"; "" for an empty address, and "unix:…" style
  // descriptions are not produced (only AF_INET/AF_INET6 are supported).
  std::string to_string() const;
  // True for 127.0.0.0/8, ::1 and IPv4-mapped loopback.
  bool is_loopback() const;

  friend bool operator==(const SocketAddress& a, const SocketAddress& b);

 private:
  sockaddr_storage storage_{};
  socklen_t length_ = 0;
};

// Creates listening sockets bound to port on address: one per distinct address
// getaddrinfo(address, AI_PASSIVE | AI_ADDRCONFIG) returns, IPv4 first (AI_ADDRCONFIG is
// left out for IP literals, so "::1" binds on a host whose only IPv6 address is the
// loopback one, and dropped on a retry when a name resolves to nothing with it, as
// "localhost" does in a network namespace that has only lo). address "" means
// all interfaces (0.0.0.0 and ::); an IP literal binds exactly that address; a host name
// ("localhost") binds every address it resolves to. family restricts to AF_INET or
// AF_INET6. Every socket is SOCK_NONBLOCK | SOCK_CLOEXEC with SO_REUSEADDR (and
// SO_REUSEPORT if reuse_port); IPv6 sockets are IPV6_V6ONLY so that the IPv4 socket can
// share the port. With port 0 the kernel picks a port for the first socket and the
// others reuse it. As in Tornado, an EADDRNOTAVAIL on ::1 for "localhost" (IPv6 half
// disabled, common in containers) skips that address instead of failing.
// The caller owns the returned descriptors. On failure nothing stays open and
// std::system_error (socket calls) or ResolveError (getaddrinfo) is thrown.
std::vector<int> bind_sockets(uint16_t port, std::string address = "", int family = AF_UNSPEC,
                              int backlog = kDefaultBacklog, bool reuse_port = false);

// The local port a socket is bound to (getsockname); throws std::system_error.
uint16_t socket_port(int fd);
// The local address of a socket (getsockname); throws std::system_error.
SocketAddress socket_address(int fd);

// Called with each accepted connection: a non-blocking, close-on-exec socket the
// callback now owns, and the peer's address.
using AcceptCallback = std::function<void(int connection_fd, SocketAddress address)>;

// Starts accepting connections on the listening socket sock (Tornado's
// add_accept_handler). Each time sock is readable, one connection is accepted (accept4,
// SOCK_NONBLOCK | SOCK_CLOEXEC) and handed to callback, then the loop moves on and reports
// sock again on its next poll while more are queued (nginx's default; Tornado accepts up to
// its backlog per event: see on_listener_ready for why not); ECONNABORTED and the network
// errors Linux passes up from a pending connection are skipped (up to kDefaultBacklog of
// them per event), EAGAIN ends the attempt. When the process or system runs out of file
// descriptors (EMFILE, ENFILE) or socket memory (ENOBUFS, ENOMEM), the handler logs an
// error (category general, once per streak) and stops watching sock for
// kAcceptPauseOnFdExhaustion, then tries again — the connection waits in the kernel's
// queue meanwhile instead of the loop spinning on it. Any other accept error (say, sock
// is not listening) is logged and paused on the same way. An exception thrown by callback is
// logged (application); the next connection is accepted on the next event all the same.
//
// Returns a function that removes the handler (idempotent; also cancels a pending
// pause). It must be called before sock is closed and while loop is alive. loop defaults
// to IOLoop::current(). The caller keeps owning sock.
std::function<void()> add_accept_handler(int sock, AcceptCallback callback, IOLoop* loop = nullptr);

// True if ip is a well-formed IPv4 or IPv6 address (Tornado's is_valid_ip): no name
// lookup, "" and strings with NUL bytes are not addresses.
bool is_valid_ip(std::string_view ip);

// A failed name lookup: what() carries gai_strerror's text (or strerror's for
// EAI_SYSTEM); gai_code() is the EAI_* value.
class ResolveError : public std::runtime_error {
 public:
  ResolveError(int gai_code, const std::string& what) : std::runtime_error(what), gai_code_(gai_code) {}
  int gai_code() const { return gai_code_; }

 private:
  int gai_code_;
};

// Resolves host names to socket addresses without blocking the loop (Tornado's
// DefaultExecutorResolver). Subclass and override resolve() to substitute another
// mechanism (a fixed table, a test double).
class Resolver {
 public:
  Resolver() = default;
  virtual ~Resolver() = default;
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // The stream-socket addresses of host:port, in getaddrinfo's order with duplicates
  // removed. IP literals are converted on the spot; names are looked up with getaddrinfo
  // on default_executor(). Fails with ResolveError. The future belongs to the current loop.
  virtual Future<std::vector<SocketAddress>> resolve(std::string host, uint16_t port, int family = AF_UNSPEC);
};

}  // namespace squall
