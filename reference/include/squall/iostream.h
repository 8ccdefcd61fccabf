// IOStream: a buffered, non-blocking byte stream over a socket — Tornado's iostream.IOStream.
//
// Reads are futures: read_bytes, read_until (a delimiter), read_until_regex (a pattern over
// bytes, Latin-1) and read_until_close. A read is served from the read buffer first; one
// the buffer can satisfy completes at once (co_await of it does not suspend). Otherwise the
// stream reads the socket in read_chunk_size pieces while the read is pending, and stops
// as soon as the read can be satisfied. Only one read may be pending at a time.
//
// Writes are queued and flushed with scatter-gather sends (MSG_NOSIGNAL: a peer that went
// away yields EPIPE, which closes the stream, never SIGPIPE); write()'s future completes
// once everything written up to and including that call has reached the kernel, and
// drained(n)'s once at most n of those bytes are still queued — the flow control a writer
// uses to keep what it queued for a slow reader bounded (write a piece, await drained).
//
// Every read is bounded: max_buffer_size caps the read buffer (StreamBufferFullError, the
// stream closes), max_bytes caps a delimiter search (UnsatisfiableReadError, the stream
// closes). close() — explicit, on peer EOF, on a socket error — fails the pending futures
// with StreamClosedError (carrying the underlying error, if any) and runs the close
// callback on the loop. Bytes that arrived before the peer closed are still delivered to
// reads the buffer can satisfy.
//
// With IOStreamOptions::allow_half_close, EOF from the peer only ends the read side: reads
// the buffer cannot satisfy fail with StreamClosedError, read_until_close completes, and
// writes keep working until close() or a write error.
//
// The raw I/O of the socket is a protected virtual seam (read_from_fd, write_to_fd,
// close_fd, handle_events), as in Tornado's BaseIOStream: SSLIOStream (ssl_iostream.h)
// puts TLS there and reuses the buffering and read machinery unchanged.
//
// A stream belongs to one loop and is used on its thread; destroy it before its loop.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "squall/detail/fifo.h"
#include "squall/detail/hot_path.h"
#include "squall/detail/small_pool.h"
#include "squall/future.h"
#include "squall/ioloop.h"

namespace re2 {
class RE2;
}

namespace squall {

// Base of the stream errors.
class StreamError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The stream is closed. real_error() is what closed it (a std::system_error for socket
// errors, UnsatisfiableReadError, …), or null for an orderly close.
class StreamClosedError : public StreamError {
 public:
  // Message: "Stream is closed", plus ": <what() of real_error>" when there is one.
  explicit StreamClosedError(std::exception_ptr real_error = nullptr);
  std::exception_ptr real_error() const { return real_error_; }

 private:
  std::exception_ptr real_error_;
};

// A read_until / read_until_regex whose delimiter was not found within max_bytes.
class UnsatisfiableReadError : public StreamError {
 public:
  using StreamError::StreamError;
};

// The read buffer exceeded max_buffer_size, or a write would exceed max_write_buffer_size.
class StreamBufferFullError : public StreamError {
 public:
  using StreamError::StreamError;
};

// The read buffer's default bound: Tornado's max_buffer_size (100 MiB), the same size as
// the largest body an HTTP connection takes by default (kDefaultMaxBodySize, http_parse.h).
inline constexpr size_t kDefaultMaxStreamBufferSize = 100 * 1024 * 1024;

struct IOStreamOptions {
  size_t max_buffer_size = kDefaultMaxStreamBufferSize;
  size_t read_chunk_size = 64 * 1024;  // capped at max_buffer_size / 2, as in Tornado
  size_t max_write_buffer_size = 0;  // 0 = unlimited; exceeding it makes write() throw StreamBufferFullError
  bool allow_half_close = false;     // peer EOF ends only the read side (see above)
};

// Compiles a pattern that matches bytes as Python's re does on bytes (RE2, Latin-1
// encoding: each byte is one character). Throws std::invalid_argument on a bad pattern.
std::shared_ptr<const re2::RE2> compile_bytes_regex(std::string_view pattern);

// Its memory comes from the per-thread block pool (a connection's objects were a dozen
// malloc/free pairs, ~1.5k instructions of a connection-per-request exchange).
class IOStream : private IOLoop::FdHandler, public detail::PoolAllocated {
 public:
  // Takes ownership of a socket fd (connected, or unconnected for connect()); makes it
  // non-blocking (and close-on-exec). loop = IOLoop::current() if null.
  explicit IOStream(int fd, IOStreamOptions options = {}, IOLoop* loop = nullptr);
  // Takes ownership of a socket that is already non-blocking and close-on-exec (accept4
  // with SOCK_NONBLOCK | SOCK_CLOEXEC, as add_accept_handler makes them): no fcntl (two of
  // the six system calls of a connection-per-request exchange). edge_triggered: register
  // the socket edge-triggered (a server's accepted plain sockets; see edge_triggered_);
  // such a socket must be the only descriptor of its socket (close() then leaves the
  // loop's epoll set by itself: IOLoop::remove_handler_before_close), and a read that
  // may wait (ReadStart::wait_readable) registers it and waits for its first bytes.
  struct NonBlockingSocket {
    bool edge_triggered = false;
  };
  IOStream(int fd, IOStreamOptions options, IOLoop* loop, NonBlockingSocket socket);
  // Takes over a non-blocking socket that some other FdHandler keeps registered with loop
  // edge-triggered, as an edge_triggered stream registered it (hand_over_socket's
  // counterpart): the stream becomes its handler (IOLoop::replace_handler), with no
  // system call, and learns the registered interest from the loop. fin_received: the
  // event that made the taker want the socket reported the peer's FIN (PEER_CLOSED).
  struct TakeRegistration {
    bool fin_received = false;
  };
  IOStream(int fd, IOStreamOptions options, IOLoop& loop, TakeRegistration taken);
  // close()s: pending futures fail with StreamClosedError, fd closed, handler removed.
  virtual ~IOStream();
  IOStream(const IOStream&) = delete;
  IOStream& operator=(const IOStream&) = delete;

  // The socket; -1 once closed.
  int fd() const { return fd_; }
  IOLoop& io_loop() const { return *loop_; }

  // ---- reads (one at a time; starting a second throws std::logic_error "Already reading").
  // On a closed stream (or after EOF with allow_half_close) a read the buffer cannot
  // satisfy throws StreamClosedError, as Tornado's does.

  // How a read the buffer cannot satisfy begins. try_socket reads the socket at once
  // (Tornado's _try_inline_read). wait_readable waits for the loop's readability event
  // first, saving a read that would find nothing when the peer is known to be quiet
  // (a keep-alive server between requests): level-triggered, bytes already in the
  // socket are reported on the loop's next turn; edge-triggered (NonBlockingSocket), the
  // socket is read at once unless the last read found it empty. It applies only where
  // the socket shows every unread byte (socket_shows_unread_bytes): a transport such as
  // TLS may hold bytes it no longer shows, and keeps reading first. Buffered bytes are
  // served at once either way.
  enum class ReadStart : uint8_t { try_socket, wait_readable };

  // Exactly num_bytes; with partial, as soon as any bytes are available (at most num_bytes).
  Future<std::string> read_bytes(size_t num_bytes, bool partial = false, ReadStart start = ReadStart::try_socket);

  // A partial read (as read_bytes(max_bytes, true, start)) whose outcome goes to a waiter
  // object instead of a future: no future state, no loop callback, and the bytes are
  // lent as a view of the stream's buffer, for the waiter to copy into its own (one copy,
  // not two). For a consumer with its own buffer that waits between messages: a server
  // connection's wait for its next request. The waiter is called within read_some_to or
  // inside the stream's event handler, so it may only take the bytes and note the outcome
  // (and queue its continuation, e.g. IOLoop::add_callback_after_handler), never call the
  // stream. Throws StreamClosedError as read_bytes does; a waiter that goes away while
  // its read is pending calls cancel_read.
  class ReadWaiter {
   public:
    virtual void read_done(std::string_view bytes) = 0;
    virtual void read_failed(const std::exception_ptr& error) = 0;

   protected:
    ~ReadWaiter() = default;
  };
  void read_some_to(ReadWaiter& waiter, size_t max_bytes, ReadStart start);
  void cancel_read(const ReadWaiter& waiter) noexcept;
  // Through the first occurrence of delimiter (included in the result). If it does not
  // end within max_bytes, the read fails with UnsatisfiableReadError and the stream closes.
  Future<std::string> read_until(std::string delimiter, std::optional<size_t> max_bytes = std::nullopt);
  // Through the end of the first (leftmost) match of pattern, searching from the start of
  // the buffer; max_bytes as for read_until.
  Future<std::string> read_until_regex(std::shared_ptr<const re2::RE2> pattern,
                                       std::optional<size_t> max_bytes = std::nullopt);
  // Compiles the pattern (Latin-1; a small per-thread cache avoids recompiling the
  // patterns used over and over). Throws std::invalid_argument on a bad pattern.
  Future<std::string> read_until_regex(std::string_view pattern, std::optional<size_t> max_bytes = std::nullopt);
  // Everything until the peer closes (with allow_half_close: until EOF). On a stream that
  // is already closed, completes at once with what is buffered.
  Future<std::string> read_until_close();
  // Hands back a string a read returned, its bytes no longer needed: the next read on
  // this thread (any stream) fills it instead of allocating its result, so a reader that
  // consumes each result whole (HTTP1Connection) reads without an allocation per read.
  // Up to 256 are kept per thread (the reads of one loop iteration), and only small ones
  // (at most 1 KiB of capacity), so that a reader's buffer does not grow from another's.
  // A stream's own read buffer is handed on the same way: a stream destroyed gives it to
  // the next one made on this thread.
  static void recycle(std::string&& spent);
  // One of those strings (empty; with no capacity when none is kept): the buffer of a
  // reader that takes its bytes from read_some_to, which makes no result string.
  static std::string take_recycled();

  // ---- writes ----------------------------------------------------------------------------
  // Queues data and sends what the socket takes now. The future completes when every byte
  // written so far (this call included) has been sent; it fails with StreamClosedError if
  // the stream closes first (such failures are marked retrieved: nobody has to look).
  // Throws StreamClosedError on a closed stream, StreamBufferFullError past
  // max_write_buffer_size. An empty write completes once prior data is flushed.
  Future<void> write(std::string data);
  Future<void> write(std::string_view data);  // copies what the socket does not take at once
  Future<void> write(const char* data) { return write(std::string_view(data)); }
  // Completes once at most max_queued of the bytes written so far are still queued (at
  // once if that holds now; drained(0) = everything written has been sent). Later writes
  // do not delay it. Fails with StreamClosedError (marked retrieved) if the stream closes
  // first; throws StreamClosedError on a closed stream.
  Future<void> drained(size_t max_queued = 0);

  // Non-blocking connect of the (unconnected) socket. Writes issued meanwhile are queued
  // and flushed once connected. On failure the stream closes and the future fails with
  // StreamClosedError whose real_error() is a std::system_error.
  Future<void> connect(const sockaddr* address, socklen_t length);

  // Runs once on the loop after the stream closes. While a callback is set and the stream
  // is idle with an empty buffer, the stream watches the socket to notice the peer closing.
  void set_close_callback(Callback callback);
  // Idempotent. Records error (if given and none recorded yet); completes a pending
  // read_until_close with the buffer, or a pending read the buffer can satisfy; fails the
  // other pending futures; closes the fd; schedules the close callback.
  void close(std::exception_ptr error = nullptr);

  bool closed() const { return closed_; }
  bool connecting() const { return connecting_; }
  bool reading() const { return read_kind_ != ReadKind::none; }
  bool writing() const { return !write_queue_.empty(); }
  // Whether a read started now with `start` would call the socket before waiting for the
  // loop to report bytes (and so could find the peer's end of input at once).
  bool reads_socket_at_once(ReadStart start) const {
    // Edge-triggered, no event will tell of bytes that were there before the last one.
    return start == ReadStart::try_socket || (edge_triggered_ ? maybe_readable_ : !socket_shows_unread_bytes());
  }
  // What closed the stream (null for an orderly close or while open).
  std::exception_ptr error() const { return error_; }
  // TCP_NODELAY; errors (non-TCP sockets, closed stream) are ignored.
  void set_nodelay(bool value);
  // Half-close: no more bytes will be written (FIN; over TLS close_notify first). Call it
  // once what was written has gone out (its future completed); reads keep working, so a
  // server can drain what the peer still sends before it closes (RFC 9112 §9.6).
  virtual void shutdown_write();
  // Bytes received but not yet consumed by a read.
  size_t read_buffer_size() const { return buf_tail_ - buf_head_; }
  // Bytes queued but not yet sent.
  size_t write_buffer_size() const { return write_buffered_; }
  // Bytes handed to the socket since the stream was made (progress of a slow reader).
  uint64_t bytes_written() const { return total_write_done_index_; }
  const IOStreamOptions& options() const { return options_; }

  // Hands the socket over for a transport upgrade (start_tls, ssl_iostream.h): returns
  // the fd and the close callback, and leaves this stream closed without closing the fd
  // or running the callback. Throws std::logic_error unless the stream is idle — open,
  // not connecting, no read pending, nothing buffered or queued — because bytes already
  // read or queued here would be lost to the new transport.
  std::pair<int, Callback> release_socket();
  // Hands the socket, still registered with the loop (edge-triggered), to
  // `next` (a server compacting an idle connection; see IOLoop::replace_handler), and
  // leaves this stream closed without closing the fd: the pending read, if any, fails
  // with StreamClosedError and the close callback is dropped without running. Returns the
  // fd. Throws std::logic_error unless the stream is edge-triggered and holds nothing —
  // open, not connecting, nothing buffered, queued or awaited for writes, and its last
  // read found the socket empty (else bytes may wait there that no event will report).
  int hand_over_socket(IOLoop::FdHandler& next);
  // Whether hand_over_socket would take the socket now.
  bool can_hand_over() const;

 protected:
  // ---- the transport seam (Tornado's read_from_fd / write_to_fd / close_fd) -------------
  // Reads into iov: > 0 bytes read, 0 at end of stream, -1 with errno set (EAGAIN: nothing
  // now). An override may instead close() the stream with the error it hit and return -1.
  virtual ssize_t read_from_fd(iovec* iov, int iovcnt);
  // Whether every byte read_from_fd could still return is unread in the socket, so that
  // the loop's readability event tells of it (ReadStart::wait_readable). A transport that
  // buffers what it took from the socket (TLS records) answers false.
  virtual bool socket_shows_unread_bytes() const { return true; }
  // Writes from iov: > 0 bytes written, or -1 with errno set (EAGAIN: try on the next
  // WRITE event); may close() the stream instead, as above.
  virtual ssize_t write_to_fd(const iovec* iov, int iovcnt);
  // Closes the descriptor; called once, from close(), after the loop stopped watching it
  // and before the pending futures fail.
  virtual void close_fd();
  // The loop's ready events for the socket (IOLoop::READ / WRITE / ERROR bits).
  virtual void handle_events(uint32_t events);
  // The READ / WRITE interest registered with the loop.
  uint32_t io_state() const { return io_state_; }
  void add_io_state(uint32_t events);
  void set_io_state(uint32_t events);

 private:
  enum class ReadKind : uint8_t { none, bytes, until, regex, until_close };
  static constexpr size_t npos = static_cast<size_t>(-1);

  SQUALL_HOT void on_fd_events(int, uint32_t events) override { handle_events(events); }

  Future<std::string> start_read(ReadKind kind);
  void try_inline_read(ReadStart start = ReadStart::try_socket);
  bool handle_read();  // true if it completed a read
  void handle_write();
  void handle_connect();
  size_t read_to_buffer_loop();
  size_t read_to_buffer();
  bool took_bytes(ssize_t n, size_t asked);
  enum class WaiterRead : uint8_t { not_tried, lent, nothing };
  WaiterRead read_for_waiter();
  size_t find_read_pos();
  void check_max_bytes(size_t size) const;
  void finish_read(size_t size);
  void finish_read_at_eof();
  void fail_read(std::exception_ptr error);
  void clear_read_state();
  void unsatisfiable(const UnsatisfiableReadError& error);
  void buffer_full();
  void socket_error(int err, const char* what, bool is_write);
  void drain_on_error();
  void signal_closed();
  bool listening_for_close() const;
  void maybe_add_error_listener();
  void schedule_close();

  // Read buffer: live bytes are storage_[buf_head_, buf_tail_).
  void reserve_tail(size_t n);
  std::string take_from_buffer(size_t n);
  void consumed(size_t n);  // drops the first n live bytes
  void lend_to_waiter(size_t n);
  std::string_view buffered() const { return {storage_.data() + buf_head_, buf_tail_ - buf_head_}; }

  // Fields are ordered by use (issue 18): a keep-alive request's read and write touch the
  // first cache lines — socket, flags, read buffer, pending read, write queue and
  // counters, the options they consult — and what only some streams or rare paths use
  // (delimiter and regex reads, drained(), connect(), errors) follows.
  int fd_;
  uint32_t io_state_ = 0;     // READ/WRITE interest registered with the loop
  IOLoop* loop_;
  bool closed_ = false;
  bool read_eof_ = false;     // allow_half_close: the peer finished sending
  bool connecting_ = false;
  bool registered_ = false;   // the handler is on the loop
  ReadKind read_kind_ = ReadKind::none;
  bool read_partial_ = false;
  int8_t nodelay_ = -1;       // TCP_NODELAY as last set (-1: never set): no repeated syscalls
  // Registered edge-triggered for READ once, and for WRITE too from the first write that
  // has to wait (as nginx does), never taken off: the loop reports readiness when it
  // arises, so the stream keeps track of it — maybe_readable_ until a read finds the
  // socket empty (a short read or EAGAIN), a write's EAGAIN until the next WRITE event.
  // Level-triggered epoll polls every socket it reported again at the next epoll_wait
  // (+0.3 µs of kernel time per request at 1,000 connections, measured), and changing
  // the interest costs an epoll_ctl. WRITE from the start cost 1 µs of kernel time per
  // connection (measured, a connection per request): a new socket is reported writable
  // at once, so a connection whose request had not arrived came back from epoll_wait
  // for nothing (1.54 epoll_wait per connection, 1.07 without).
  bool edge_triggered_ = false;
  bool maybe_readable_ = true;
  // Edge-triggered, the loop reported the peer's FIN (IOLoop::PEER_CLOSED): a read will
  // find the end, however short the read before it.
  bool fin_received_ = false;

  std::string storage_;  // the read buffer (see buffered())
  size_t buf_head_ = 0;
  size_t buf_tail_ = 0;
  IOStreamOptions options_;

  std::optional<Future<std::string>> read_future_;
  ReadWaiter* read_waiter_ = nullptr;  // read_some_to's, instead of read_future_
  size_t read_bytes_ = 0;

  Fifo<std::string> write_queue_;
  size_t write_buffered_ = 0;
  uint64_t total_write_index_ = 0;
  uint64_t total_write_done_index_ = 0;
  // Tested on every request (set_close_callback, listening_for_close): placed so that the
  // part telling whether one is set ends the front lines.
  Callback close_callback_;
  size_t write_front_offset_ = 0;  // bytes of write_queue_.front() already sent
  Fifo<std::pair<uint64_t, Future<void>>> write_futures_;

  std::exception_ptr error_;
  // Guards callbacks this stream queues on the loop against its destruction; made by the
  // first such callback (rare: an error event), not by every stream.
  std::shared_ptr<IOStream*> self_;

  // read_until / read_until_regex only (clear_read_state leaves them alone otherwise).
  std::string read_delimiter_;
  std::shared_ptr<const re2::RE2> read_regex_;
  std::optional<size_t> read_max_bytes_;
  size_t delimiter_scan_from_ = 0;  // buffer offset before which the delimiter cannot start

  // drained() futures, each with the total_write_done_index_ that completes it (not
  // ordered: a caller may ask for different amounts; there are rarely more than one).
  std::vector<std::pair<uint64_t, Future<void>>> drain_waiters_;
  std::optional<Future<void>> connect_future_;
};

}  // namespace squall
