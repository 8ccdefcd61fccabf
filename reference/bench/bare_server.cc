// squall-bare-server: the floor of the load comparison (load/run.py --impl bare).
//
// "A bare epoll loop writing canned replies, no parsing": what a single thread on one
// core can answer when the server does nothing but move bytes. No Squall code, only libc
// (and the C++ language). Per connection a fixed 16 KiB read buffer; on readable it
// reads, counts the complete requests in the buffer by their "\r\n\r\n" terminators
// (requests in the scenarios it serves have no bodies; a partial request's bytes are
// carried over to the next read) and writes one canned response per request, all the
// responses of a read in ONE write. Any method and path gets the same reply:
//
//   HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n
//   Server: bare\r\nDate: <cached, rebuilt once per second>\r\n\r\nHello, World!
//
// A request with a "Connection: close" header line (case-insensitive) gets the same reply
// with "Connection: close" added, and the connection is closed once it is written
// (requests after it on the same read are ignored).
// EOF or an error closes the connection. Unwritten reply bytes (a partial write) are kept
// per connection and written on EPOLLOUT; meanwhile the connection is not read (so a
// client that pipelines without reading cannot make it buffer without bound).
//
//   squall-bare-server [--host 127.0.0.1] [--port 0]
//
// Prints "port=N" on stdout once listening (as squall-contract-app does; --port 0 picks a
// free port). SIGTERM / SIGINT: exit status 0. Linux only (epoll, accept4).
//
// Edge-triggered epoll, every connection registered with EPOLLIN | EPOLLRDHUP | EPOLLET,
// and EPOLLOUT added by the first partial write and kept (as nginx does): no epoll_ctl
// per partial write to turn EPOLLOUT interest on and off, no report of room to write
// that nobody waits for, and no repeated reports for a socket we already know about.
// The price is that every readiness must be consumed (accept and read until EAGAIN),
// with one shortcut: a read that returns less than the space offered has emptied the
// socket -- the next byte to arrive raises a new edge -- so the read that would only say
// EAGAIN is skipped (unless the peer's FIN was reported with the event: then we read on
// to see the EOF, which raises no further edge). That saves one syscall per request in
// the keep-alive scenarios.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace {

constexpr size_t kReadBuffer = 16 * 1024;
constexpr int kBacklog = 4096;
constexpr int kMaxEvents = 512;

// ---------------------------------------------------------------------- canned replies

constexpr char kHead[] =
    "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n"
    "Server: bare\r\nDate: ";
constexpr char kTail[] = "\r\n\r\nHello, World!";
constexpr size_t kHeadLen = sizeof kHead - 1;
constexpr size_t kDateLen = 29;  // "Wed, 25 Nov 2026 06:39:29 GMT"
constexpr size_t kTailLen = sizeof kTail - 1;
constexpr size_t kReplyLen = kHeadLen + kDateLen + kTailLen;

// kCopies replies back to back, so that n <= kCopies replies are one contiguous write.
// More than kCopies (pipelined 16 KiB of short requests) is a writev of a few slices of it.
constexpr size_t kCopies = 256;
char g_replies[kCopies * kReplyLen];
// The reply to a "Connection: close" request says so: an HTTP/1.1 client (wrk) otherwise
// takes the connection as kept alive and counts the close as a read error.
constexpr char kCloseHeader[] = "Connection: close\r\n";
constexpr size_t kCloseHeaderLen = sizeof kCloseHeader - 1;
constexpr size_t kCloseReplyLen = kReplyLen + kCloseHeaderLen;
constexpr size_t kStatusLen = sizeof "HTTP/1.1 200 OK\r\n" - 1;
char g_close_reply[kCloseReplyLen];
time_t g_date_second = -1;

void build_replies() {
  for (size_t i = 0; i < kCopies; ++i) {
    char* r = g_replies + i * kReplyLen;
    std::memcpy(r, kHead, kHeadLen);
    std::memcpy(r + kHeadLen + kDateLen, kTail, kTailLen);
  }
  std::memcpy(g_close_reply, kHead, kStatusLen);
  std::memcpy(g_close_reply + kStatusLen, kCloseHeader, kCloseHeaderLen);
  std::memcpy(g_close_reply + kStatusLen + kCloseHeaderLen, kHead + kStatusLen, kHeadLen - kStatusLen);
  std::memcpy(g_close_reply + kCloseHeaderLen + kHeadLen + kDateLen, kTail, kTailLen);
}

// Called once per epoll_wait return: CLOCK_REALTIME_COARSE is a vDSO read, no syscall.
void refresh_date() {
  timespec now;
  clock_gettime(CLOCK_REALTIME_COARSE, &now);
  if (now.tv_sec == g_date_second) return;
  g_date_second = now.tv_sec;
  tm t;
  gmtime_r(&now.tv_sec, &t);
  char date[kDateLen + 1];
  if (strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &t) != kDateLen) return;
  for (size_t i = 0; i < kCopies; ++i) std::memcpy(g_replies + i * kReplyLen + kHeadLen, date, kDateLen);
  std::memcpy(g_close_reply + kCloseHeaderLen + kHeadLen, date, kDateLen);
}

// ---------------------------------------------------------------------- connections

struct Conn {                 // calloc'ed: all members start at zero
  size_t in_len;             // bytes in `in` (a partial request carried over)
  char* out;                 // unwritten reply bytes after a partial write
  size_t out_len, out_off, out_cap;
  bool close_after;          // a request said Connection: close
  bool open;
  bool watching_out;         // registered for EPOLLOUT (since a partial write)
  char in[kReadBuffer];
};

// Indexed by fd; a Conn is allocated the first time its fd is seen and reused after.
Conn** g_conns = nullptr;
size_t g_nconns = 0;
int g_epoll = -1;

Conn* conn_for(int fd) {
  if (static_cast<size_t>(fd) >= g_nconns) {
    size_t n = g_nconns ? g_nconns : 1024;
    while (n <= static_cast<size_t>(fd)) n *= 2;
    auto* grown = static_cast<Conn**>(std::realloc(g_conns, n * sizeof(Conn*)));
    if (!grown) return nullptr;
    std::memset(grown + g_nconns, 0, (n - g_nconns) * sizeof(Conn*));
    g_conns = grown;
    g_nconns = n;
  }
  if (!g_conns[fd]) g_conns[fd] = static_cast<Conn*>(std::calloc(1, sizeof(Conn)));  // all-zero = fresh
  return g_conns[fd];
}

void close_conn(int fd, Conn* c) {
  close(fd);  // also removes it from the epoll set (no dup'ed descriptors here)
  c->open = false;
  c->in_len = c->out_len = c->out_off = 0;
  c->close_after = false;
}

// Keeps what a write left of iov[0..k) (`written` bytes went out) in c->out. Called only
// with nothing pending (a connection is not read while a reply is pending).
bool keep_unwritten(Conn* c, const iovec* iov, int k, size_t written) {
  size_t total = 0;
  for (int i = 0; i < k; ++i) total += iov[i].iov_len;
  size_t need = total - written;
  if (need > c->out_cap) {
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < need) cap *= 2;
    char* buf = static_cast<char*>(std::realloc(c->out, cap));
    if (!buf) return false;
    c->out = buf;
    c->out_cap = cap;
  }
  c->out_len = c->out_off = 0;
  for (int i = 0; i < k; ++i) {
    size_t skip = written < iov[i].iov_len ? written : iov[i].iov_len;
    written -= skip;
    std::memcpy(c->out + c->out_len, static_cast<const char*>(iov[i].iov_base) + skip, iov[i].iov_len - skip);
    c->out_len += iov[i].iov_len - skip;
  }
  return true;
}

// Writes what is pending; true if nothing is left (false: EAGAIN, wait for EPOLLOUT).
// Sets *dead on an error.
bool flush_out(int fd, Conn* c, bool* dead) {
  while (c->out_off < c->out_len) {
    ssize_t n = write(fd, c->out + c->out_off, c->out_len - c->out_off);
    if (n > 0) {
      c->out_off += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      return false;
    } else {
      *dead = true;
      return false;
    }
  }
  c->out_len = c->out_off = 0;
  return true;
}

// `count` replies in one write (of g_replies, or a writev of slices of it and, with
// `then_close`, the Connection: close reply last); what the write leaves is kept.
// Returns false if the connection is to be closed (write error, out of memory).
bool send_replies(int fd, Conn* c, size_t count, bool then_close) {
  // Every terminator counts, so a read holds at most kReadBuffer / 4 requests.
  static_assert(kReadBuffer / 4 <= 16 * kCopies, "a read's replies fit in 16 slices");
  iovec iov[17];
  int k = 0;
  size_t total = 0;
  for (size_t left = then_close ? count - 1 : count; left; ++k) {
    size_t m = left < kCopies ? left : kCopies;
    iov[k] = {g_replies, m * kReplyLen};
    total += m * kReplyLen;
    left -= m;
  }
  if (then_close) {
    iov[k++] = {g_close_reply, kCloseReplyLen};
    total += kCloseReplyLen;
  }
  ssize_t n = k == 1 ? write(fd, iov[0].iov_base, iov[0].iov_len) : writev(fd, iov, k);
  size_t written = 0;
  if (n >= 0) {
    written = static_cast<size_t>(n);
  } else if (errno != EAGAIN && errno != EINTR) {
    return false;
  }
  if (written == total) return true;
  if (!keep_unwritten(c, iov, k, written)) return false;
  if (!c->watching_out) {
    // Modifying the interest reports room that came meanwhile: no edge is lost.
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.fd = fd;
    if (epoll_ctl(g_epoll, EPOLL_CTL_MOD, fd, &ev) < 0) return false;
    c->watching_out = true;
  }
  return true;
}

// True if the block has a header line starting "Connection: close" (case-insensitive).
bool says_close(const char* p, size_t len) {
  static constexpr char kWant[] = "connection: close";
  constexpr size_t kWantLen = sizeof kWant - 1;
  const char* end = p + len;
  for (const char* line = p; line < end;) {
    const char* nl = static_cast<const char*>(std::memchr(line, '\n', static_cast<size_t>(end - line)));
    const char* next = nl ? nl + 1 : end;
    if (next < end && static_cast<size_t>(end - next) >= kWantLen) {
      size_t i = 0;
      while (i < kWantLen && (next[i] | 0x20) == kWant[i]) ++i;  // ' ' and ':' survive | 0x20
      if (i == kWantLen) return true;
    }
    line = next;
  }
  return false;
}

// Counts the complete requests in c->in, replies to them, carries the partial tail over.
// Returns false if the connection is to be closed now.
bool serve_buffer(int fd, Conn* c) {
  size_t pos = 0, count = 0;
  while (pos < c->in_len) {
    const void* hit = memmem(c->in + pos, c->in_len - pos, "\r\n\r\n", 4);
    if (!hit) break;
    size_t end = static_cast<size_t>(static_cast<const char*>(hit) - c->in) + 4;
    ++count;
    if (says_close(c->in + pos, end - pos)) {
      c->close_after = true;
      pos = c->in_len;  // nothing after a Connection: close request is answered
      break;
    }
    pos = end;
  }
  if (pos == c->in_len) {
    c->in_len = 0;
  } else if (pos) {
    std::memmove(c->in, c->in + pos, c->in_len - pos);
    c->in_len -= pos;
  }
  if (count && !send_replies(fd, c, count, c->close_after)) return false;
  if (c->close_after && c->out_len == c->out_off) return false;  // all written: close
  return true;
}

void on_readable(int fd, Conn* c, uint32_t events) {
  for (;;) {
    if (c->out_len != c->out_off || c->close_after) return;  // resumed on EPOLLOUT
    size_t space = kReadBuffer - c->in_len;
    if (space == 0) {  // a 16 KiB request head: not what this server is for
      close_conn(fd, c);
      return;
    }
    ssize_t n = read(fd, c->in + c->in_len, space);
    if (n > 0) {
      c->in_len += static_cast<size_t>(n);
      if (!serve_buffer(fd, c)) {
        close_conn(fd, c);
        return;
      }
      // A short read emptied the socket: the next data raises a new edge (see the top).
      if (static_cast<size_t>(n) < space && !(events & (EPOLLRDHUP | EPOLLHUP))) return;
    } else if (n == 0) {
      close_conn(fd, c);
      return;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN) {
      return;
    } else {
      close_conn(fd, c);
      return;
    }
  }
}

void on_event(int fd, uint32_t events) {
  Conn* c = g_conns[fd];
  if (!c || !c->open) return;
  if (events & EPOLLERR) {
    close_conn(fd, c);
    return;
  }
  if (c->out_len != c->out_off) {
    if (!(events & EPOLLOUT)) return;
    bool dead = false;
    if (!flush_out(fd, c, &dead)) {
      if (dead) close_conn(fd, c);
      return;
    }
    if (c->close_after) {
      close_conn(fd, c);
      return;
    }
    // Reading stopped while the reply was pending: data may be waiting with no edge left.
    on_readable(fd, c, events | EPOLLIN);
    return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) on_readable(fd, c, events);
}

void on_accept(int lfd) {
  for (;;) {
    int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN) std::perror("bare: accept4");  // EMFILE and the like
      return;
    }
    Conn* c = conn_for(fd);
    if (!c) {
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->open = true;
    c->in_len = c->out_len = c->out_off = 0;
    c->close_after = false;
    c->watching_out = false;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    ev.data.fd = fd;
    if (epoll_ctl(g_epoll, EPOLL_CTL_ADD, fd, &ev) < 0) close_conn(fd, c);
  }
}

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

int usage(const char* argv0, int status) {
  std::fprintf(status ? stderr : stdout,
               "usage: %s [--host ADDR] [--port N]\n"
               "A bare epoll loop answering every request with a canned 13-byte text/plain reply\n"
               "(the floor of load/run.py). Prints port=N once listening; --port 0 (default)\n"
               "picks a free port; --host defaults to 127.0.0.1 (IPv4).\n",
               argv0);
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  const char* host = "127.0.0.1";
  long port = 0;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) return usage(argv[0], 0);
    if (i + 1 < argc && !std::strcmp(argv[i], "--host")) {
      host = argv[++i];
    } else if (i + 1 < argc && !std::strcmp(argv[i], "--port")) {
      char* end = nullptr;
      port = std::strtol(argv[++i], &end, 10);
      if (*end || port < 0 || port > 65535) return usage(argv[0], 2);
    } else {
      return usage(argv[0], 2);
    }
  }

  // SIGTERM / SIGINT are blocked except inside epoll_pwait: no lost wake-up between
  // checking g_stop and waiting.
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a write to a reset connection is an EPIPE, not a death
  sigset_t block, wait_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  sigprocmask(SIG_BLOCK, &block, &wait_mask);
  sigdelset(&wait_mask, SIGTERM);
  sigdelset(&wait_mask, SIGINT);

  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
    std::fprintf(stderr, "bare: --host %s is not an IPv4 address\n", host);
    return 2;
  }
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 || listen(lfd, kBacklog) < 0) {
    std::perror("bare: listen");
    return 1;
  }
  socklen_t len = sizeof addr;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);

  g_epoll = epoll_create1(EPOLL_CLOEXEC);
  epoll_event lev{};
  lev.events = EPOLLIN | EPOLLET;
  lev.data.fd = lfd;
  if (g_epoll < 0 || epoll_ctl(g_epoll, EPOLL_CTL_ADD, lfd, &lev) < 0) {
    std::perror("bare: epoll");
    return 1;
  }
  build_replies();
  refresh_date();
  std::printf("port=%u\n", static_cast<unsigned>(ntohs(addr.sin_port)));
  std::fflush(stdout);

  epoll_event events[kMaxEvents];
  while (!g_stop) {
    int n = epoll_pwait(g_epoll, events, kMaxEvents, -1, &wait_mask);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::perror("bare: epoll_pwait");
      return 1;
    }
    refresh_date();
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == lfd) {
        on_accept(lfd);
      } else {
        on_event(fd, events[i].events);
      }
    }
  }
  return 0;
}
