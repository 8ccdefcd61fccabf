#include "squall/netutil.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <system_error>

#include "squall/detail/hot_path.h"
#include "squall/executor.h"
#include "squall/log.h"

namespace squall {

namespace {

[[noreturn]] void throw_errno(int error, const std::string& what) {
  throw std::system_error(error, std::generic_category(), what);
}

std::string gai_error_text(int code, int saved_errno) {
  if (code == EAI_SYSTEM) return std::strerror(saved_errno);
  return gai_strerror(code);
}

// Owns the addrinfo list getaddrinfo returned.
struct AddrInfoDeleter {
  void operator()(addrinfo* list) const { freeaddrinfo(list); }
};
using AddrInfoList = std::unique_ptr<addrinfo, AddrInfoDeleter>;

// getaddrinfo for stream sockets; throws ResolveError.
AddrInfoList lookup(const char* host, uint16_t port, int family, int flags, std::string_view shown_host) {
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = flags | AI_NUMERICSERV;
  std::string service = std::to_string(port);
  addrinfo* result = nullptr;
  errno = 0;
  int rc = getaddrinfo(host, service.c_str(), &hints, &result);
  if (rc != 0) {
    int saved_errno = errno;
    throw ResolveError(rc, fmt::format("cannot resolve '{}': {}", shown_host, gai_error_text(rc, saved_errno)));
  }
  return AddrInfoList(result);
}

std::vector<SocketAddress> to_addresses(const addrinfo* list) {
  std::vector<SocketAddress> addresses;
  for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    SocketAddress address(ai->ai_addr, ai->ai_addrlen);
    if (std::find(addresses.begin(), addresses.end(), address) == addresses.end()) addresses.push_back(address);
  }
  return addresses;
}

void set_port(sockaddr* address, uint16_t port) {
  if (address->sa_family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(address)->sin_port = htons(port);
  } else if (address->sa_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(address)->sin6_port = htons(port);
  }
}

void close_all(const std::vector<int>& fds) {
  for (int fd : fds) ::close(fd);
}

}  // namespace

// ---- SocketAddress ----------------------------------------------------------------------

SocketAddress::SocketAddress(const sockaddr* address, socklen_t length) {
  if (length > sizeof storage_) throw std::invalid_argument("SocketAddress: address too long");
  std::memcpy(&storage_, address, length);
  length_ = length;
}

SocketAddress SocketAddress::from_ip(std::string_view ip, uint16_t port) {
  if (!is_valid_ip(ip)) throw std::invalid_argument(fmt::format("not an IP address: '{}'", ip));
  std::string host(ip);
  AddrInfoList list = lookup(host.c_str(), port, AF_UNSPEC, AI_NUMERICHOST, host);
  return SocketAddress(list->ai_addr, list->ai_addrlen);
}

uint16_t SocketAddress::port() const {
  switch (family()) {
    case AF_INET: return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
    case AF_INET6: return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
    default: return 0;
  }
}

SQUALL_HOT
std::string SocketAddress::ip() const {
  if (family() == AF_INET) {
    // Dotted quad by hand: getnameinfo goes through inet_ntop's sprintf, ~1.9k
    // instructions, paid by every accepted connection (HTTPRequestContext's remote_ip).
    uint32_t host = ntohl(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr.s_addr);
    char text[16];  // "255.255.255.255" at most
    size_t n = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
      unsigned octet = (host >> shift) & 0xff;
      if (octet >= 100) text[n++] = static_cast<char>('0' + octet / 100);
      if (octet >= 10) text[n++] = static_cast<char>('0' + octet / 10 % 10);
      text[n++] = static_cast<char>('0' + octet % 10);
      if (shift != 0) text[n++] = '.';
    }
    return std::string(text, n);
  }
  if (family() != AF_INET6) return "";
  char host[NI_MAXHOST];
  if (getnameinfo(get(), length_, host, sizeof host, nullptr, 0, NI_NUMERICHOST) != 0) return "";
  return host;
}

std::string SocketAddress::to_string() const {
  switch (family()) {
    case AF_INET: return fmt::format("{}:{}", ip(), port());
    case AF_INET6: return fmt::format("[{}]:{}", ip(), port());
    default: return "";
  }
}

bool SocketAddress::is_loopback() const {
  if (family() == AF_INET) {
    uint32_t host = ntohl(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr.s_addr);
    return (host >> 24) == 127;
  }
  if (family() == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(&a)) return true;
    return IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127;
  }
  return false;
}

bool operator==(const SocketAddress& a, const SocketAddress& b) {
  return a.length_ == b.length_ && std::memcmp(&a.storage_, &b.storage_, a.length_) == 0;
}

// ---- listening sockets ------------------------------------------------------------------

std::vector<int> bind_sockets(uint16_t port, std::string address, int family, int backlog, bool reuse_port) {
  const bool literal = is_valid_ip(address);
  const char* host = address.empty() ? nullptr : address.c_str();
  std::string shown = address.empty() ? "<all interfaces>" : address;
  AddrInfoList list;
  if (literal) {
    list = lookup(host, port, family, AI_PASSIVE | AI_NUMERICHOST, shown);
  } else {
    try {
      list = lookup(host, port, family, AI_PASSIVE | AI_ADDRCONFIG, shown);
    } catch (const ResolveError&) {
      // AI_ADDRCONFIG ignores loopback interfaces: on a host (or network namespace) with
      // nothing but lo, "localhost" would resolve to nothing. Ask again without it.
      list = lookup(host, port, family, AI_PASSIVE, shown);
    }
  }

  // IPv4 first (AF_INET < AF_INET6), as Tornado sorts by family; stable within one.
  std::vector<const addrinfo*> candidates;
  for (const addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    candidates.push_back(ai);
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const addrinfo* a, const addrinfo* b) { return a->ai_family < b->ai_family; });

  std::vector<int> sockets;
  std::vector<SocketAddress> seen;
  uint16_t bound_port = 0;
  try {
    for (const addrinfo* ai : candidates) {
      SocketAddress target(ai->ai_addr, ai->ai_addrlen);
      if (std::find(seen.begin(), seen.end(), target) != seen.end()) continue;
      seen.push_back(target);

      int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
      if (fd < 0) {
        if (errno == EAFNOSUPPORT) continue;  // this kernel lacks the family
        throw_errno(errno, "socket");
      }
      sockets.push_back(fd);
      int one = 1;
      if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) throw_errno(errno, "setsockopt(SO_REUSEADDR)");
      if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
        throw_errno(errno, "setsockopt(SO_REUSEPORT)");
      }
      if (ai->ai_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) {
        throw_errno(errno, "setsockopt(IPV6_V6ONLY)");
      }

      // Port 0: every socket gets the port the kernel chose for the first one.
      sockaddr_storage bind_address{};
      std::memcpy(&bind_address, ai->ai_addr, ai->ai_addrlen);
      if (port == 0 && bound_port != 0) set_port(reinterpret_cast<sockaddr*>(&bind_address), bound_port);

      if (::bind(fd, reinterpret_cast<sockaddr*>(&bind_address), ai->ai_addrlen) < 0) {
        int error = errno;
        if (error == EADDRNOTAVAIL && address == "localhost" && ai->ai_family == AF_INET6) {
          // IPv6 half-disabled (::1 resolves but can't be bound): skip it, as Tornado does.
          ::close(fd);
          sockets.pop_back();
          continue;
        }
        throw_errno(error, fmt::format("bind({})", SocketAddress(reinterpret_cast<sockaddr*>(&bind_address),
                                                                 ai->ai_addrlen)
                                                       .to_string()));
      }
      bound_port = socket_port(fd);
      if (::listen(fd, backlog) < 0) throw_errno(errno, "listen");
    }
  } catch (...) {
    close_all(sockets);
    throw;
  }
  if (sockets.empty()) {
    throw std::system_error(EADDRNOTAVAIL, std::generic_category(),
                            fmt::format("bind_sockets: no usable address for '{}'", address));
  }
  return sockets;
}

SocketAddress socket_address(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) < 0) throw_errno(errno, "getsockname");
  return SocketAddress(reinterpret_cast<sockaddr*>(&storage), length);
}

uint16_t socket_port(int fd) { return socket_address(fd).port(); }

// ---- accept handler -----------------------------------------------------------------------

namespace {

struct AcceptState {
  int sock;
  AcceptCallback callback;
  IOLoop* loop;
  bool removed = false;
  bool registered = false;   // READ interest currently registered with the loop
  bool exhausted = false;    // in a streak of fd exhaustion (logged once per streak)
  TimeoutHandle resume_timer;
};

// Errors accept4 reports for a connection that died in the queue, or network trouble
// Linux passes up from it (accept(2), "Error handling"): skip and go on.
bool skippable_accept_error(int error) {
  switch (error) {
    case ECONNABORTED:
    case EINTR:
    case EPROTO:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
    case ENETDOWN:
    case EPERM:  // firewall rules
      return true;
    default:
      return false;
  }
}

bool exhaustion_error(int error) { return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM; }

void register_accept(const std::shared_ptr<AcceptState>& state);

void pause_accepting(const std::shared_ptr<AcceptState>& state, int error) {
  // Exhaustion tends to last: log it once per streak, not every pause.
  bool exhaustion = exhaustion_error(error);
  bool first = !exhaustion || !state->exhausted;
  if (exhaustion) state->exhausted = true;
  log(first ? LogLevel::error : LogLevel::debug, LogCategory::general,
      "accept() on fd {} failed: {}; pausing accepts for {} ms", state->sock, std::strerror(error),
      std::chrono::duration_cast<std::chrono::milliseconds>(kAcceptPauseOnFdExhaustion).count());
  state->loop->remove_handler(state->sock);
  state->registered = false;
  state->resume_timer = state->loop->call_later(kAcceptPauseOnFdExhaustion, [state] {
    state->resume_timer = {};
    if (!state->removed) register_accept(state);
  });
}

SQUALL_HOT
void on_listener_ready(const std::shared_ptr<AcceptState>& state) {
  // One connection per readiness event (nginx's default, multi_accept off): the listener
  // is level-triggered, so the loop reports it again on its next poll while more wait.
  // The connections in the server's hands stay few — the rest wait in the kernel's queue
  // — so their objects stay in cache: a connection per request (wrk, 64 at a time) cost
  // 81 simulated L1 read misses per connection accepting a backlog's worth per event,
  // 6 this way (nginx: 4). And no accept4 that finds the queue empty. Connections that
  // died in the queue are skipped, at most a backlog's worth per event.
  for (int attempt = 0; attempt < kDefaultBacklog; ++attempt) {
    if (state->removed || !state->registered) return;  // removed or paused by a callback
    sockaddr_storage peer{};
    socklen_t length = sizeof peer;
    int fd = ::accept4(state->sock, reinterpret_cast<sockaddr*>(&peer), &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int error = errno;
      if (error == EAGAIN || error == EWOULDBLOCK) return;  // another loop took it, or it died
      if (skippable_accept_error(error)) continue;
      // Out of descriptors or memory — or an error we don't expect, such as a socket
      // that isn't listening: either way retrying at once would spin the loop.
      pause_accepting(state, error);
      return;
    }
    if (state->exhausted) {
      state->exhausted = false;
      log(LogLevel::info, LogCategory::general, "accept() on fd {} works again", state->sock);
    }
    try {
      state->callback(fd, SocketAddress(reinterpret_cast<sockaddr*>(&peer), length));
    } catch (...) {
      log(LogLevel::error, LogCategory::application, "Error in connection callback: {}",
          describe_current_exception());
    }
    return;
  }
}

void register_accept(const std::shared_ptr<AcceptState>& state) {
  // The handler holds the state; the state holds no handler: no cycle.
  state->loop->add_handler(
      state->sock, [state](int, uint32_t) { on_listener_ready(state); }, IOLoop::READ);
  state->registered = true;
}

}  // namespace

std::function<void()> add_accept_handler(int sock, AcceptCallback callback, IOLoop* loop) {
  auto state = std::make_shared<AcceptState>();
  state->sock = sock;
  state->callback = std::move(callback);
  state->loop = loop != nullptr ? loop : &IOLoop::current();
  register_accept(state);
  return [state] {
    if (state->removed) return;
    state->removed = true;
    // Only unregister what we registered: while paused, sock's slot in the loop is not
    // ours (and after a close the number may belong to someone else).
    if (state->registered) state->loop->remove_handler(state->sock);
    state->registered = false;
    state->loop->remove_timeout(state->resume_timer);
    state->resume_timer = {};
  };
}

// ---- addresses and names ----------------------------------------------------------------

bool is_valid_ip(std::string_view ip) {
  if (ip.empty() || ip.find('\0') != std::string_view::npos) return false;
  std::string host(ip);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST;
  addrinfo* result = nullptr;
  if (getaddrinfo(host.c_str(), "0", &hints, &result) != 0) return false;
  freeaddrinfo(result);
  return true;
}

Future<std::vector<SocketAddress>> Resolver::resolve(std::string host, uint16_t port, int family) {
  if (is_valid_ip(host)) {
    // A literal needs no lookup: convert it here rather than occupy a worker thread.
    Future<std::vector<SocketAddress>> result;
    try {
      AddrInfoList list = lookup(host.c_str(), port, family, AI_NUMERICHOST, host);
      result.set_result(to_addresses(list.get()));
    } catch (...) {
      result.set_exception(std::current_exception());
    }
    return result;
  }
  return default_executor().submit([host = std::move(host), port, family] {
    AddrInfoList list = lookup(host.c_str(), port, family, 0, host);
    std::vector<SocketAddress> addresses = to_addresses(list.get());
    if (addresses.empty()) throw ResolveError(EAI_NONAME, fmt::format("cannot resolve '{}': no IP addresses", host));
    return addresses;
  });
}

}  // namespace squall
