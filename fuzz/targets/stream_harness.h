// StreamHarness: a fresh IOLoop per fuzz input and an IOStream whose transport is memory.
// The stream reads the input in fuzzer-chosen pieces, ONE piece per loop iteration (then
// "would block" until the loop reports the stream ready again), and then end of stream;
// what the stream writes is collected. So the reads, coroutine resumptions and callbacks
// interleave as they do over a socket that receives one segment per poll, without a
// socket: no network, no clock, and about one syscall (epoll_wait) per piece.
//
// How: IOStream's transport is a virtual seam (read_from_fd / write_to_fd / close_fd, as
// in Tornado's BaseIOStream). MemoryStream overrides it. The loop still needs a pollable
// descriptor to report readiness: every MemoryStream registers the same eventfd, whose
// counter is set once and never read, so it is always readable and writable; the
// stream's own reads never touch it. No timers are used, so a hang shows up as a
// libFuzzer timeout (or a CTest timeout in replay).
#pragma once

#include <sys/eventfd.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_input.h"
#include "squall/ioloop.h"
#include "squall/iostream.h"
#include "squall/log.h"

namespace squall_fuzz {

// The bytes a MemoryStream reads and the bytes it wrote; owned by the harness so they
// outlive the stream.
struct MemoryPeer {
  std::vector<std::string_view> pieces;
  size_t next = 0;        // index of the piece being read
  size_t offset = 0;      // bytes of pieces[next] already read
  bool paused = false;    // a piece was just delivered: "would block" until the next event
  std::string received;   // what the stream wrote (capped at 1 MiB)
};

class MemoryStream : public squall::IOStream {
 public:
  MemoryStream(int ready_fd, MemoryPeer& peer, squall::IOStreamOptions options, squall::IOLoop* loop)
      : IOStream(ready_fd, options, loop), peer_(peer) {}
  ~MemoryStream() override { close(); }  // while the overrides are still this class's

 protected:
  ssize_t read_from_fd(iovec* iov, int iovcnt) override {
    if (peer_.paused) {
      peer_.paused = false;
      errno = EAGAIN;
      return -1;
    }
    if (peer_.next >= peer_.pieces.size()) return 0;  // the peer shut its side down
    std::string_view piece = peer_.pieces[peer_.next].substr(peer_.offset);
    size_t n = 0;
    for (int i = 0; i < iovcnt && n < piece.size(); ++i) {
      size_t take = std::min(iov[i].iov_len, piece.size() - n);
      std::memcpy(iov[i].iov_base, piece.data() + n, take);
      n += take;
    }
    peer_.offset += n;
    if (peer_.offset == peer_.pieces[peer_.next].size()) {
      ++peer_.next;
      peer_.offset = 0;
      peer_.paused = true;
    }
    if (n == 0) {  // an empty piece: nothing this time
      errno = EAGAIN;
      return -1;
    }
    return static_cast<ssize_t>(n);
  }
  ssize_t write_to_fd(const iovec* iov, int iovcnt) override {
    size_t n = 0;
    for (int i = 0; i < iovcnt; ++i) {
      if (peer_.received.size() < (1u << 20)) {
        peer_.received.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
      }
      n += iov[i].iov_len;
    }
    return static_cast<ssize_t>(n);
  }
  void close_fd() override {}  // the ready fd is shared and stays open

 private:
  MemoryPeer& peer_;
};

class StreamHarness {
 public:
  StreamHarness() { squall::set_log_level(squall::LogLevel::none); }
  ~StreamHarness() { loop_.close(); }
  StreamHarness(const StreamHarness&) = delete;
  StreamHarness& operator=(const StreamHarness&) = delete;

  squall::IOLoop& loop() { return loop_; }
  std::unique_ptr<squall::IOStream> make_stream(squall::IOStreamOptions options = {}) {
    return std::make_unique<MemoryStream>(ready_fd(), peer_, options, &loop_);
  }
  // The pieces the stream will read, one per loop iteration, then end of stream.
  void feed(std::vector<std::string_view> pieces) { peer_.pieces = std::move(pieces); }
  // Bytes the stream wrote so far.
  const std::string& received() const { return peer_.received; }

 private:
  // Created once per process; a non-zero counter keeps it readable, and it is never
  // written past that, so it stays writable.
  static int ready_fd() {
    static const int fd = [] {
      int e = ::eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
      if (e < 0) fail(__FILE__, __LINE__, "eventfd");
      return e;
    }();
    return fd;
  }

  squall::IOLoop loop_;
  MemoryPeer peer_;
};

}  // namespace squall_fuzz
