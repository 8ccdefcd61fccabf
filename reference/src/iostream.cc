#include "squall/iostream.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <re2/re2.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <system_error>
#include <vector>

#include "squall/detail/hot_path.h"
#include "squall/detail/small_pool.h"
#include "squall/log.h"
#include "squall/task.h"

namespace squall {

namespace {

#ifdef IOV_MAX
constexpr size_t kMaxIov = IOV_MAX < 1024 ? IOV_MAX : 1024;
#else
constexpr size_t kMaxIov = 1024;
#endif

std::string describe(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown error";
  }
}

// Errors that mean "the peer went away": closed quietly, the error kept on the stream.
bool is_connreset(int err) { return err == ECONNRESET || err == ECONNABORTED || err == EPIPE || err == ETIMEDOUT; }

std::exception_ptr errno_error(int err, const char* what) {
  return std::make_exception_ptr(std::system_error(err, std::system_category(), what));
}

// Python's repr() of a bytes object, for error messages that read like Tornado's.
std::string bytes_repr(std::string_view data) {
  char quote = (data.find('\'') != std::string_view::npos && data.find('"') == std::string_view::npos) ? '"' : '\'';
  std::string out = "b";
  out += quote;
  for (unsigned char c : data) {
    if (c == static_cast<unsigned char>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c >= 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  out += quote;
  return out;
}

// Overflow space for reads into a buffer with little room left (per thread, shared by
// every stream of the loop): idle streams keep buffers the size of their data, not of
// read_chunk_size.
char* scratch_buffer(size_t size) {
  thread_local std::unique_ptr<char[]> data;
  thread_local size_t capacity = 0;
  if (capacity < size) {
    data = std::make_unique_for_overwrite<char[]>(size);
    capacity = size;
  }
  return data.get();
}

// Compiled patterns of read_until_regex(string_view), most recently used last.
std::shared_ptr<const re2::RE2> cached_bytes_regex(std::string_view pattern) {
  constexpr size_t kCacheSize = 16;
  thread_local std::vector<std::pair<std::string, std::shared_ptr<const re2::RE2>>> cache;
  for (size_t i = cache.size(); i-- > 0;) {
    if (cache[i].first == pattern) {
      auto hit = std::move(cache[i]);
      cache.erase(cache.begin() + static_cast<std::ptrdiff_t>(i));
      cache.push_back(std::move(hit));
      return cache.back().second;
    }
  }
  auto compiled = compile_bytes_regex(pattern);
  if (cache.size() == kCacheSize) cache.erase(cache.begin());
  cache.emplace_back(std::string(pattern), compiled);
  return compiled;
}

// From the per-thread pool, as every other future state: a read and a write per request
// each make one.
template <typename T>
Future<T> future_on(IOLoop* loop) {
  return Future<T>(
      std::allocate_shared<detail::FutureState<T>>(detail::PoolAllocator<detail::FutureState<T>>{}, loop));
}

}  // namespace

// ---- errors -------------------------------------------------------------------------------

StreamClosedError::StreamClosedError(std::exception_ptr real_error)
    : StreamError(real_error ? "Stream is closed: " + describe(real_error) : std::string("Stream is closed")),
      real_error_(std::move(real_error)) {}

std::shared_ptr<const re2::RE2> compile_bytes_regex(std::string_view pattern) {
  re2::RE2::Options options;
  options.set_encoding(re2::RE2::Options::EncodingLatin1);
  options.set_log_errors(false);
  auto compiled = std::make_shared<const re2::RE2>(re2::StringPiece(pattern.data(), pattern.size()), options);
  if (!compiled->ok()) {
    throw std::invalid_argument("invalid regular expression " + bytes_repr(pattern) + ": " + compiled->error());
  }
  return compiled;
}

// ---- life cycle ---------------------------------------------------------------------------

namespace {

// Read buffers of streams gone, for the streams made next on this thread: a connection
// per request made and freed one each (a malloc and a free of the first read's size).
// Up to 256 of up to 2 KiB (512 KiB at most): as many as the connections accepted in one
// loop iteration may take before the ones that closed in the last give theirs back.
struct ReadBuffer;
using SpareReadBuffer = detail::SpareString<ReadBuffer, 2048, 256>;

// As Tornado: a read never takes in more than half the buffer limit at once, so a peer
// sending ahead cannot overflow the buffer while the pending read could still complete.
IOStreamOptions bounded_chunk(IOStreamOptions options) {
  options.read_chunk_size = std::max<size_t>(1, std::min(options.read_chunk_size, options.max_buffer_size / 2));
  return options;
}

}  // namespace

IOStream::IOStream(int fd, IOStreamOptions options, IOLoop* loop)
    : IOStream(fd, options, loop, NonBlockingSocket{}) {
  // Flags are only set when missing (a caller that knows they are set says so with
  // NonBlockingSocket and saves these two F_GET calls as well).
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ((flags & O_NONBLOCK) == 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)) {
    // The delegated constructor has completed, so the destructor runs and closes fd.
    throw std::system_error(errno, std::system_category(), "IOStream: fcntl(O_NONBLOCK)");
  }
  int fd_flags = ::fcntl(fd, F_GETFD);
  if (fd_flags >= 0 && (fd_flags & FD_CLOEXEC) == 0) ::fcntl(fd, F_SETFD, fd_flags | FD_CLOEXEC);
}

SQUALL_HOT
IOStream::IOStream(int fd, IOStreamOptions options, IOLoop* loop, NonBlockingSocket socket)
    : fd_(fd),
      loop_(loop ? loop : &IOLoop::current()),
      edge_triggered_(socket.edge_triggered),
      // Not registered yet: registering edge-triggered reports bytes already there.
      maybe_readable_(!socket.edge_triggered),
      storage_(SpareReadBuffer::take()),
      options_(bounded_chunk(options)) {}

IOStream::IOStream(int fd, IOStreamOptions options, IOLoop& loop, TakeRegistration taken)
    : fd_(fd),
      io_state_(loop.registered_interest(fd)),
      loop_(&loop),
      registered_(true),
      edge_triggered_(true),
      fin_received_(taken.fin_received),
      storage_(SpareReadBuffer::take()),
      options_(bounded_chunk(options)) {
  loop.replace_handler(fd, *this);
}

SQUALL_HOT
IOStream::~IOStream() {
  close();
  if (self_) *self_ = nullptr;
  SpareReadBuffer::give(std::move(storage_));
}

SQUALL_HOT
void IOStream::set_close_callback(Callback callback) {
  // A server clears it after every request: with none set, there is nothing to write
  // (and no need to touch the callback's cache lines).
  if (!callback && !close_callback_) return;
  close_callback_ = std::move(callback);
  maybe_add_error_listener();
}

SQUALL_HOT
void IOStream::close(std::exception_ptr error) {
  if (!closed_) {
    if (error) error_ = std::move(error);
    if (read_kind_ == ReadKind::until_close) {
      finish_read(read_buffer_size());
    } else if (reading()) {
      // Resolve a pending read the buffer can satisfy.
      try {
        size_t pos = find_read_pos();
        if (pos != npos) finish_read(pos);
      } catch (const UnsatisfiableReadError& e) {
        fail_read(std::make_exception_ptr(e));
      }
    }
    if (registered_) {
      // An edge-triggered stream's socket is a server's accept4'ed one, close-on-exec and
      // never duplicated (see NonBlockingSocket): closing it leaves the epoll set.
      if (edge_triggered_) {
        loop_->remove_handler_before_close(fd_);
      } else {
        loop_->remove_handler(fd_);
      }
      registered_ = false;
      io_state_ = 0;
    }
    close_fd();
    fd_ = -1;
    closed_ = true;
  }
  signal_closed();
}

SQUALL_HOT
void IOStream::signal_closed() {
  // close() runs again for a stream already closed (its owners close it, then destroy it),
  // usually with nothing left to tell: say so in one test.
  if (!read_future_ && !read_waiter_ && write_futures_.empty() && drain_waiters_.empty() && !connect_future_ &&
      !close_callback_ && write_queue_.empty()) {
    connecting_ = false;
    return;
  }
  std::exception_ptr closed_error;
  auto closed_exception = [&] {
    if (!closed_error) closed_error = std::make_exception_ptr(StreamClosedError(error_));
    return closed_error;
  };
  if (read_future_ || read_waiter_) fail_read(closed_exception());
  for (auto& [index, future] : write_futures_) {
    if (!future.done()) future.set_exception(closed_exception());
    future.mark_retrieved();
  }
  write_futures_.clear();
  for (auto& [index, future] : drain_waiters_) {
    if (!future.done()) future.set_exception(closed_exception());
    future.mark_retrieved();
  }
  drain_waiters_.clear();
  if (connect_future_) {
    Future<void> future = std::move(*connect_future_);
    connect_future_.reset();
    future.set_exception(closed_exception());
    future.mark_retrieved();
  }
  connecting_ = false;
  if (close_callback_) {
    Callback callback = std::move(close_callback_);
    close_callback_ = nullptr;
    loop_->add_callback(std::move(callback));
  }
  write_queue_.clear();
  write_front_offset_ = 0;
  write_buffered_ = 0;
}

std::pair<int, Callback> IOStream::release_socket() {
  if (closed_ || connecting_ || reading() || writing() || !write_futures_.empty() || !drain_waiters_.empty() ||
      read_buffer_size() != 0) {
    throw std::logic_error("IOStream is not idle; cannot hand over its socket");
  }
  if (registered_) {
    loop_->remove_handler(fd_);
    registered_ = false;
    io_state_ = 0;
  }
  std::pair<int, Callback> released{fd_, std::move(close_callback_)};
  close_callback_ = nullptr;
  fd_ = -1;
  closed_ = true;
  return released;
}

bool IOStream::can_hand_over() const {
  return !closed_ && !connecting_ && !writing() && write_futures_.empty() && drain_waiters_.empty() &&
         read_buffer_size() == 0 && registered_ && edge_triggered_ && !maybe_readable_;
}

int IOStream::hand_over_socket(IOLoop::FdHandler& next) {
  if (!can_hand_over()) {
    throw std::logic_error(
        "IOStream holds data, waits to write, may have unread bytes or is level-triggered; cannot hand over its "
        "socket");
  }
  loop_->replace_handler(fd_, next);
  registered_ = false;
  io_state_ = 0;
  close_callback_ = nullptr;
  const int fd = fd_;
  fd_ = -1;
  closed_ = true;
  signal_closed();  // fails the pending read
  return fd;
}

void IOStream::schedule_close() {
  if (!self_) self_ = std::allocate_shared<IOStream*>(detail::PoolAllocator<IOStream*>{}, this);
  loop_->add_callback([self = self_] {
    if (IOStream* stream = *self) stream->close();
  });
}

void IOStream::shutdown_write() {
  if (!closed_) ::shutdown(fd_, SHUT_WR);
}

SQUALL_HOT
void IOStream::set_nodelay(bool value) {
  if (closed_) return;
  int on = value ? 1 : 0;
  if (on == nodelay_) return;
  nodelay_ = static_cast<int8_t>(on);
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);  // fails harmlessly on non-TCP sockets
}

// ---- event dispatch -----------------------------------------------------------------------

SQUALL_HOT
void IOStream::add_io_state(uint32_t events) {
  if (closed_) return;
  if (!registered_) {
    if (edge_triggered_) events |= IOLoop::READ | IOLoop::PEER_CLOSED;  // for good (see edge_triggered_)
    loop_->add_handler(fd_, static_cast<IOLoop::FdHandler&>(*this), edge_triggered_ ? events | IOLoop::EDGE : events);
    registered_ = true;
    io_state_ = events;
  } else if ((io_state_ & events) != events) {
    // Edge-triggered, only WRITE can be missing: added when a write first has to wait.
    io_state_ |= events;
    loop_->update_handler(fd_, edge_triggered_ ? io_state_ | IOLoop::EDGE : io_state_);
  }
}

void IOStream::set_io_state(uint32_t events) {
  if (closed_) return;
  // Edge-triggered interest only grows (see edge_triggered_).
  if (!registered_ || edge_triggered_) {
    if (events != 0) add_io_state(events);
    return;
  }
  if (events != io_state_) {
    io_state_ = events;
    loop_->update_handler(fd_, io_state_);
  }
}

bool IOStream::listening_for_close() const {
  return !closed_ && !read_eof_ && !reading() && read_buffer_size() == 0 && close_callback_;
}

SQUALL_HOT
void IOStream::maybe_add_error_listener() {
  if (io_state_ == 0 && listening_for_close()) add_io_state(IOLoop::READ);
}

SQUALL_HOT
void IOStream::handle_events(uint32_t events) {
  if (closed_) return;
  try {
    if (connecting_ && (events & (IOLoop::WRITE | IOLoop::ERROR))) {
      handle_connect();
      if (closed_) return;
    }
    bool keep_reading = false;
    if (events & IOLoop::PEER_CLOSED) fin_received_ = true;
    if (events & IOLoop::READ) {
      maybe_readable_ = true;
      keep_reading = handle_read();
      if (closed_) return;
    }
    // Edge-triggered, WRITE comes with every event while the socket has room.
    if ((events & IOLoop::WRITE) && (!edge_triggered_ || writing())) {
      handle_write();
      if (closed_) return;
    }
    if (events & IOLoop::ERROR) {
      // Close on the next iteration, as Tornado does, so that what this event completed is
      // seen first; keep the bytes the peer sent before it went away.
      int err = 0;
      socklen_t length = sizeof err;
      if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &length) == 0 && err != 0) error_ = errno_error(err, "socket");
      drain_on_error();
      set_io_state(0);
      schedule_close();
      return;
    }
    uint32_t want = 0;
    // A read just completed: the next one usually follows at once, so keep listening
    // rather than dropping and re-adding the interest (an event with no read pending
    // drops it).
    if (reading() || listening_for_close() || (keep_reading && !read_eof_)) want |= IOLoop::READ;
    if (writing() || connecting_) want |= IOLoop::WRITE;
    set_io_state(want);
  } catch (const UnsatisfiableReadError& e) {
    unsatisfiable(e);
  }
}

void IOStream::handle_connect() {
  int err = 0;
  socklen_t length = sizeof err;
  if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &length) < 0) err = errno == ENOPROTOOPT ? 0 : errno;
  if (err != 0) {
    close(errno_error(err, "connect"));
    return;
  }
  connecting_ = false;
  if (connect_future_) {
    Future<void> future = std::move(*connect_future_);
    connect_future_.reset();
    future.set_result();
  }
}

Future<void> IOStream::connect(const sockaddr* address, socklen_t length) {
  if (closed_) throw StreamClosedError(error_);
  if (connecting_) throw std::logic_error("Already connecting");
  Future<void> future = future_on<void>(loop_);
  connect_future_ = future;
  connecting_ = true;
  if (::connect(fd_, address, length) == 0) {
    handle_connect();
    if (!closed_) {
      handle_write();
      if (!closed_ && writing()) add_io_state(IOLoop::WRITE);
      maybe_add_error_listener();
    }
    return future;
  }
  int err = errno;
  if (err == EINPROGRESS || err == EINTR) {
    add_io_state(IOLoop::WRITE);
  } else {
    close(errno_error(err, "connect"));
  }
  return future;
}

// ---- reading ------------------------------------------------------------------------------

Future<std::string> IOStream::start_read(ReadKind kind) {
  if (reading()) throw std::logic_error("Already reading");
  read_kind_ = kind;
  read_future_ = future_on<std::string>(loop_);
  return *read_future_;
}

Future<std::string> IOStream::read_bytes(size_t num_bytes, bool partial, ReadStart start) {
  Future<std::string> future = start_read(ReadKind::bytes);
  read_bytes_ = num_bytes;
  read_partial_ = partial;
  try_inline_read(start);
  return future;
}

SQUALL_HOT
void IOStream::read_some_to(ReadWaiter& waiter, size_t max_bytes, ReadStart start) {
  if (reading()) throw std::logic_error("Already reading");
  read_kind_ = ReadKind::bytes;
  read_waiter_ = &waiter;
  read_bytes_ = max_bytes;
  read_partial_ = true;
  try_inline_read(start);
}

void IOStream::cancel_read(const ReadWaiter& waiter) noexcept {
  if (read_waiter_ == &waiter) clear_read_state();
}

Future<std::string> IOStream::read_until(std::string delimiter, std::optional<size_t> max_bytes) {
  Future<std::string> future = start_read(ReadKind::until);
  read_delimiter_ = std::move(delimiter);
  read_max_bytes_ = max_bytes;
  delimiter_scan_from_ = 0;
  try_inline_read();
  return future;
}

Future<std::string> IOStream::read_until_regex(std::shared_ptr<const re2::RE2> pattern,
                                               std::optional<size_t> max_bytes) {
  if (!pattern) throw std::invalid_argument("read_until_regex: null pattern");
  Future<std::string> future = start_read(ReadKind::regex);
  read_regex_ = std::move(pattern);
  read_max_bytes_ = max_bytes;
  try_inline_read();
  return future;
}

Future<std::string> IOStream::read_until_regex(std::string_view pattern, std::optional<size_t> max_bytes) {
  return read_until_regex(cached_bytes_regex(pattern), max_bytes);
}

Future<std::string> IOStream::read_until_close() {
  Future<std::string> future = start_read(ReadKind::until_close);
  try_inline_read();
  return future;
}

SQUALL_HOT
void IOStream::try_inline_read(ReadStart start) {
  const bool try_socket = reads_socket_at_once(start);
  try {
    size_t pos = find_read_pos();
    if (pos != npos) {
      finish_read(pos);
      maybe_add_error_listener();
      return;
    }
    if (closed_ || read_eof_) {
      if (read_kind_ == ReadKind::until_close) {
        finish_read(read_buffer_size());
        return;
      }
      // Nothing more will arrive: fail now, as Tornado's _check_closed does.
      clear_read_state();
      throw StreamClosedError(error_);
    }
    if (!connecting_ && try_socket) {
      const WaiterRead direct = read_for_waiter();
      if (direct == WaiterRead::lent) {
        maybe_add_error_listener();
        return;
      }
      pos = direct == WaiterRead::not_tried ? read_to_buffer_loop() : npos;
      if (pos != npos) {
        finish_read(pos);
        maybe_add_error_listener();
        return;
      }
      if (!reading()) return;  // settled by close() (peer closed, error, buffer full)
      if (read_eof_) {
        finish_read_at_eof();
        return;
      }
    }
    add_io_state(IOLoop::READ);
  } catch (const UnsatisfiableReadError& e) {
    unsatisfiable(e);
  }
}

// True when the READ interest should stay: a read completed, or bytes arrived while only
// watching for close (a keep-alive peer's next request, usually read at once: dropping
// and re-adding the interest would cost two epoll_ctl per request). An event that finds
// no read pending and bytes already buffered reads nothing, and the interest is dropped.
SQUALL_HOT
bool IOStream::handle_read() {
  if (!reading() && !listening_for_close()) return false;  // stale interest: dropped by the caller
  const bool watching = !reading();
  const WaiterRead direct = read_for_waiter();
  if (direct == WaiterRead::lent) return true;
  size_t pos = direct == WaiterRead::not_tried ? read_to_buffer_loop() : npos;
  if (pos != npos) {
    finish_read(pos);
    return true;
  }
  if (reading() && read_eof_) {
    finish_read_at_eof();
    return true;
  }
  return watching && read_buffer_size() > 0;
}

size_t IOStream::read_to_buffer_loop() {
  // Stop reading once the pending read is known to be satisfiable (or, with max_bytes,
  // unsatisfiable); with no read pending (watching for close), read one chunk at most.
  size_t target;
  switch (read_kind_) {
    case ReadKind::bytes:
      target = read_bytes_;
      break;
    case ReadKind::until:
    case ReadKind::regex:
      target = read_max_bytes_ ? *read_max_bytes_ : npos;
      break;
    case ReadKind::until_close:
      target = npos;
      break;
    default:
      target = 0;
  }
  size_t next_find_pos = 0;
  while (!closed_ && !read_eof_) {
    if (read_to_buffer() == 0) break;
    size_t size = read_buffer_size();
    if (target != npos && size >= target) break;
    // The delimiter search resumes where it stopped, so it is cheap after every chunk; a
    // regex is searched again from the start, so only when the buffer has doubled.
    if (read_kind_ == ReadKind::until || size >= next_find_pos) {
      size_t pos = find_read_pos();
      if (pos != npos) return pos;
      next_find_pos = size * 2;
    }
  }
  return find_read_pos();
}

size_t IOStream::read_to_buffer() {
  if (closed_) return 0;
  const size_t chunk = options_.read_chunk_size;
  const size_t live = read_buffer_size();
  if (live == 0) buf_head_ = buf_tail_ = 0;
  // Data is piling up: read straight into the (growing) buffer. Otherwise use the room
  // the buffer has and let the rest spill into the shared scratch buffer.
  if (live >= chunk / 4) reserve_tail(chunk);
  size_t room = std::min(storage_.size() - buf_tail_, chunk);
  iovec iov[2];
  int iovcnt = 0;
  if (room > 0) iov[iovcnt++] = {storage_.data() + buf_tail_, room};
  char* spill = nullptr;
  if (room < chunk) {
    spill = scratch_buffer(chunk);
    iov[iovcnt++] = {spill, chunk - room};
  }
  ssize_t n = read_from_fd(iov, iovcnt);
  if (!took_bytes(n, chunk)) return 0;
  size_t got = static_cast<size_t>(n);
  if (got <= room) {
    buf_tail_ += got;
  } else {
    buf_tail_ += room;
    size_t extra = got - room;
    reserve_tail(extra);
    std::memcpy(storage_.data() + buf_tail_, spill, extra);
    buf_tail_ += extra;
  }
  if (read_buffer_size() > options_.max_buffer_size) {
    buffer_full();
    return 0;
  }
  return got;
}

// What a read of up to `asked` bytes returned: true when it brought bytes. Otherwise
// nothing came (EAGAIN), the peer finished (closed, or read_eof_ with allow_half_close), or
// the read failed (closed with the error).
SQUALL_HOT
bool IOStream::took_bytes(ssize_t n, size_t asked) {
  // A stream socket's read returns less than asked only when it took all there was;
  // what arrives later raises a new event. The peer's FIN does not if it came with the
  // bytes: then the next read finds the end.
  maybe_readable_ = n == static_cast<ssize_t>(asked) || fin_received_;
  if (n > 0) return true;
  if (n < 0) {
    if (!closed_ && errno != EAGAIN && errno != EWOULDBLOCK) socket_error(errno, "read", false);
    return false;
  }
  if (options_.allow_half_close) {
    read_eof_ = true;
  } else {
    close();
  }
  return false;
}

// A waiter's read when the stream holds nothing — the wait for a keep-alive connection's
// next request: one read into the thread's scratch buffer, lent to the waiter from there.
// The stream's own buffer stays untouched: with many connections it is memory gone cold,
// a cache miss for the kernel's copy into it and another for the waiter's copy out
// (issue 18). Bytes past what the waiter takes are kept in the buffer, as any read's. One
// read is enough only where a short read means the socket is drained: a transport that
// may hold bytes of its own (TLS) reads on until it has none, as for any read.
SQUALL_HOT
IOStream::WaiterRead IOStream::read_for_waiter() {
  if (read_waiter_ == nullptr || read_buffer_size() != 0 || closed_ || read_eof_ || !socket_shows_unread_bytes()) {
    return WaiterRead::not_tried;
  }
  const size_t chunk = options_.read_chunk_size;
  char* scratch = scratch_buffer(chunk);
  iovec iov{scratch, chunk};
  const ssize_t n = read_from_fd(&iov, 1);
  if (!took_bytes(n, chunk)) return WaiterRead::nothing;
  const size_t got = static_cast<size_t>(n);
  const size_t lent = std::min(got, read_bytes_);
  if (got > lent) {  // (no more than read_chunk_size: within max_buffer_size, which is twice that)
    buf_head_ = buf_tail_ = 0;
    reserve_tail(got - lent);
    std::memcpy(storage_.data(), scratch + lent, got - lent);
    buf_tail_ = got - lent;
  }
  ReadWaiter* waiter = read_waiter_;
  clear_read_state();
  waiter->read_done(std::string_view(scratch, lent));  // copied before anything reads again
  return WaiterRead::lent;
}

void IOStream::drain_on_error() {
  const size_t chunk = options_.read_chunk_size;
  while (!closed_ && !read_eof_ && read_buffer_size() <= options_.max_buffer_size) {
    reserve_tail(chunk);
    iovec iov{storage_.data() + buf_tail_, chunk};
    ssize_t n = read_from_fd(&iov, 1);
    if (closed_) break;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && !error_) error_ = errno_error(errno, "read");
    if (n <= 0) break;
    buf_tail_ += static_cast<size_t>(n);
  }
}

SQUALL_HOT
size_t IOStream::find_read_pos() {
  const size_t size = read_buffer_size();
  switch (read_kind_) {
    case ReadKind::bytes:
      if (size >= read_bytes_ || (read_partial_ && size > 0)) return std::min(read_bytes_, size);
      return npos;
    case ReadKind::until: {
      if (size == 0) return npos;
      std::string_view data = buffered();
      size_t loc = data.find(read_delimiter_, std::min(delimiter_scan_from_, size));
      if (loc != std::string_view::npos) {
        size_t end = loc + read_delimiter_.size();
        check_max_bytes(end);
        return end;
      }
      // A later match cannot start before the last delimiter-length-minus-one bytes.
      delimiter_scan_from_ = size >= read_delimiter_.size() ? size - read_delimiter_.size() + 1 : 0;
      check_max_bytes(size);
      return npos;
    }
    case ReadKind::regex: {
      if (size == 0) return npos;
      re2::StringPiece text(storage_.data() + buf_head_, size);
      re2::StringPiece match;
      if (read_regex_->Match(text, 0, size, re2::RE2::UNANCHORED, &match, 1)) {
        size_t end = static_cast<size_t>(match.data() - text.data()) + match.size();
        check_max_bytes(end);
        return end;
      }
      check_max_bytes(size);
      return npos;
    }
    default:
      return npos;
  }
}

void IOStream::check_max_bytes(size_t size) const {
  if (!read_max_bytes_ || size <= *read_max_bytes_) return;
  std::string what = read_kind_ == ReadKind::regex ? "re.compile(" + bytes_repr(read_regex_->pattern()) + ")"
                                                   : bytes_repr(read_delimiter_);
  throw UnsatisfiableReadError(fmt::format("delimiter {} not found within {} bytes", what, *read_max_bytes_));
}

void IOStream::finish_read(size_t size) {
  if (read_waiter_) {
    lend_to_waiter(size);
    return;
  }
  std::string result = take_from_buffer(size);
  Future<std::string> future = std::move(*read_future_);
  clear_read_state();
  future.set_result(std::move(result));
}

void IOStream::finish_read_at_eof() {
  if (read_kind_ == ReadKind::until_close) {
    finish_read(read_buffer_size());
  } else {
    fail_read(std::make_exception_ptr(StreamClosedError()));
  }
}

void IOStream::fail_read(std::exception_ptr error) {
  if (read_waiter_) {
    ReadWaiter* waiter = read_waiter_;
    clear_read_state();
    waiter->read_failed(error);
    return;
  }
  if (!read_future_) return;
  Future<std::string> future = std::move(*read_future_);
  clear_read_state();
  future.set_exception(std::move(error));
  future.mark_retrieved();  // the stream reports its own failures, as Tornado's _signal_closed
}

void IOStream::clear_read_state() {
  // Only delimiter and regex reads set the fields after read_bytes_: the reads of a
  // request (read_bytes) leave their cache line alone.
  const bool searched = read_kind_ == ReadKind::until || read_kind_ == ReadKind::regex;
  read_kind_ = ReadKind::none;
  read_future_.reset();
  read_waiter_ = nullptr;
  read_bytes_ = 0;
  read_partial_ = false;
  if (searched) {
    read_delimiter_.clear();
    read_regex_.reset();
    read_max_bytes_.reset();
    delimiter_scan_from_ = 0;
  }
}

void IOStream::unsatisfiable(const UnsatisfiableReadError& error) {
  log(LogLevel::info, LogCategory::general, "Unsatisfiable read, closing connection: {}", error.what());
  std::exception_ptr e = std::make_exception_ptr(error);
  fail_read(e);
  close(e);
}

void IOStream::buffer_full() {
  log(LogLevel::error, LogCategory::general, "Reached maximum read buffer size");
  std::exception_ptr e = std::make_exception_ptr(StreamBufferFullError("Reached maximum read buffer size"));
  fail_read(e);
  close(e);
}

void IOStream::socket_error(int err, const char* what, bool is_write) {
  if (!is_connreset(err)) {
    log(LogLevel::warning, LogCategory::general, "{} error on fd {}: {}", is_write ? "Write" : "Read", fd_,
        std::strerror(err));
  }
  close(errno_error(err, what));
}

// ---- the transport: plain socket I/O ----------------------------------------------------

// One piece of memory goes by recv(2) and send(2), several by recvmsg and sendmsg: the
// kernel copies and checks an iovec array only for those. The socket calls, not read(2) and
// readv: those pass through the file layer's permission and notification hooks first
// (measured on a loopback TCP socket with nothing to read: recv 1,130 ns against read's
// 1,196, recvmsg 1,212 against readv's 1,264; medians of 5).
ssize_t IOStream::read_from_fd(iovec* iov, int iovcnt) {
  ssize_t n;
  if (iovcnt == 1) {
    do {
      n = ::recv(fd_, iov[0].iov_base, iov[0].iov_len, 0);
    } while (n < 0 && errno == EINTR);
    return n;
  }
  msghdr message{};
  message.msg_iov = iov;
  message.msg_iovlen = static_cast<size_t>(iovcnt);
  do {
    n = ::recvmsg(fd_, &message, 0);
  } while (n < 0 && errno == EINTR);
  return n;
}

ssize_t IOStream::write_to_fd(const iovec* iov, int iovcnt) {
  ssize_t n;
  if (iovcnt == 1) {
    do {
      n = ::send(fd_, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n;
  }
  msghdr message{};
  message.msg_iov = const_cast<iovec*>(iov);
  message.msg_iovlen = static_cast<size_t>(iovcnt);
  do {
    n = ::sendmsg(fd_, &message, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n;
}

void IOStream::close_fd() { ::close(fd_); }

// ---- read buffer --------------------------------------------------------------------------

void IOStream::reserve_tail(size_t n) {
  if (storage_.size() - buf_tail_ >= n) return;
  const size_t live = buf_tail_ - buf_head_;
  if (buf_head_ > 0) {
    // Moving the live bytes down costs no more than the bytes already consumed when the
    // dead prefix is the larger part; otherwise the buffer grows (doubling) below anyway.
    std::memmove(storage_.data(), storage_.data() + buf_head_, live);
    buf_head_ = 0;
    buf_tail_ = live;
    if (storage_.size() - buf_tail_ >= n) return;
  }
  storage_.resize(std::max(storage_.size() * 2, live + n));
}

namespace {

// What IOStream::recycle keeps for the next reads' results on this thread: up to 256
// strings of up to 1 KiB (256 KiB at most), one per read of a loop iteration's batch. With
// one, every read of a batch but the first allocated (~1 malloc and free per request at
// 64 connections).
constexpr size_t kMaxRecycled = 1024;
constexpr size_t kMaxRecycledCount = 256;
struct ReadResult;
using SpareResult = detail::SpareString<ReadResult, kMaxRecycled, kMaxRecycledCount>;

}  // namespace

SQUALL_HOT
void IOStream::recycle(std::string&& spent) { SpareResult::give(std::move(spent)); }

SQUALL_HOT
std::string IOStream::take_recycled() { return SpareResult::take(); }

std::string IOStream::take_from_buffer(size_t n) {
  if (n == 0) return {};
  const size_t live = buf_tail_ - buf_head_;
  if (n == live && buf_head_ == 0 && n >= options_.read_chunk_size && n * 2 >= storage_.size()) {
    // A large read of the whole buffer: hand the storage over instead of copying it.
    storage_.resize(n);
    std::string result = std::move(storage_);
    storage_ = std::string();
    buf_head_ = buf_tail_ = 0;
    return result;
  }
  std::string result = n <= kMaxRecycled ? SpareResult::take() : std::string();
  result.assign(storage_.data() + buf_head_, n);
  consumed(n);
  return result;
}

void IOStream::consumed(size_t n) {
  buf_head_ += n;
  if (buf_head_ == buf_tail_) {
    buf_head_ = buf_tail_ = 0;
    // Do not keep a big buffer around for an idle connection.
    if (storage_.size() > 4 * options_.read_chunk_size) storage_ = std::string();
  }
}

// The bytes stay where they are until the waiter, which may not call the stream, has
// copied them.
void IOStream::lend_to_waiter(size_t n) {
  ReadWaiter* waiter = read_waiter_;
  const std::string_view bytes(storage_.data() + buf_head_, n);
  clear_read_state();
  waiter->read_done(bytes);
  consumed(n);
}

// ---- writing ------------------------------------------------------------------------------

// Most responses fit in the socket buffer: with nothing queued, the bytes go to the
// kernel straight from the caller's memory and only what it did not take is copied into
// the queue (saving an allocation and a copy per response; a whole body for downloads).
SQUALL_HOT
Future<void> IOStream::write(std::string_view data) {
  if (closed_) throw StreamClosedError(error_);
  if (data.empty() || connecting_ || writing()) return write(std::string(data));
  if (options_.max_write_buffer_size != 0 && data.size() > options_.max_write_buffer_size) {
    throw StreamBufferFullError("Reached maximum write buffer size");
  }
  iovec iov{const_cast<char*>(data.data()), data.size()};
  ssize_t n = write_to_fd(&iov, 1);
  if (n < 0) {
    if (closed_) {
      // The transport closed the stream (a failed TLS handshake): a failed future, as
      // the queued path reports it.
      Future<void> failed = future_on<void>(loop_);
      failed.set_exception(StreamClosedError(error_));
      failed.mark_retrieved();
      return failed;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) return write(std::string(data));  // reports the error
    n = 0;
  }
  const size_t sent = static_cast<size_t>(n);
  total_write_index_ += sent;
  total_write_done_index_ += sent;
  if (sent < data.size()) return write(std::string(data.substr(sent)));
  maybe_add_error_listener();
  // All taken at once (a keep-alive response, usually): the thread's shared done future,
  // when it is this stream's loop's, rather than one made per write — a future was made
  // per response only to be freed, its lines gone cold, when the next request began.
  if (IOLoop::current_or_null() == loop_) return detail::completed_future();
  Future<void> future = future_on<void>(loop_);
  future.mark_retrieved();
  future.set_result();
  return future;
}

Future<void> IOStream::write(std::string data) {
  if (closed_) throw StreamClosedError(error_);
  // If data was already waiting for the socket to drain, sending more now would only
  // hit EAGAIN: leave it to the WRITE event.
  const bool socket_full = writing() && (io_state_ & IOLoop::WRITE);
  if (!data.empty()) {
    if (options_.max_write_buffer_size != 0 && write_buffered_ + data.size() > options_.max_write_buffer_size) {
      throw StreamBufferFullError("Reached maximum write buffer size");
    }
    write_buffered_ += data.size();
    total_write_index_ += data.size();
    write_queue_.push_back(std::move(data));
  }
  Future<void> future = future_on<void>(loop_);
  future.mark_retrieved();  // as Tornado: a failed write is reported by the stream closing
  write_futures_.emplace_back(total_write_index_, future);
  if (!connecting_ && !socket_full) {
    handle_write();
    if (!closed_) {
      if (writing()) add_io_state(IOLoop::WRITE);
      maybe_add_error_listener();
    }
  }
  return future;
}

void IOStream::handle_write() {
  while (!write_queue_.empty()) {
    iovec iov[kMaxIov];
    size_t count = 0;
    for (auto it = write_queue_.begin(); it != write_queue_.end() && count < kMaxIov; ++it, ++count) {
      size_t skip = count == 0 ? write_front_offset_ : 0;
      iov[count] = {it->data() + skip, it->size() - skip};
    }
    ssize_t n = write_to_fd(iov, static_cast<int>(count));
    if (n < 0) {
      if (closed_) return;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      socket_error(errno, "write", true);
      return;
    }
    if (n == 0) break;
    size_t sent = static_cast<size_t>(n);
    write_buffered_ -= sent;
    total_write_done_index_ += sent;
    while (sent > 0) {
      size_t remaining = write_queue_.front().size() - write_front_offset_;
      if (sent >= remaining) {
        sent -= remaining;
        write_queue_.pop_front();
        write_front_offset_ = 0;
      } else {
        write_front_offset_ += sent;
        sent = 0;
      }
    }
  }
  while (!write_futures_.empty() && write_futures_.front().first <= total_write_done_index_) {
    Future<void> future = std::move(write_futures_.front().second);
    write_futures_.pop_front();
    future.set_result();
  }
  if (!drain_waiters_.empty()) {
    std::erase_if(drain_waiters_, [this](std::pair<uint64_t, Future<void>>& waiter) {
      if (waiter.first > total_write_done_index_) return false;
      waiter.second.set_result();
      return true;
    });
  }
}

Future<void> IOStream::drained(size_t max_queued) {
  if (closed_) throw StreamClosedError(error_);
  Future<void> future = future_on<void>(loop_);
  future.mark_retrieved();  // as write(): a failure is reported by the stream closing
  if (write_buffered_ <= max_queued) {
    future.set_result();
  } else {
    drain_waiters_.emplace_back(total_write_index_ - max_queued, future);
  }
  return future;
}

}  // namespace squall
