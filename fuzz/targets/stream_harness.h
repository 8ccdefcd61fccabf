// StreamHarness: a fresh IOLoop and a local AF_UNIX socketpair per fuzz input, with a
// scripted peer that writes the input to the stream in fuzzer-chosen pieces (one piece
// per loop iteration, so each piece is a separate recv()), then shuts its write side
// down (EOF), and drains whatever the stream side writes back.
//
// Why a socketpair: IOStream reads with recv() on an fd and there is no in-memory
// transport seam. A socketpair is local, needs no network and no clock, and with one
// piece per iteration the sequence of reads is deterministic. No timers are used, so a
// hang shows up as a libFuzzer timeout (or a CTest timeout in replay).
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_input.h"
#include "squall/ioloop.h"
#include "squall/iostream.h"
#include "squall/log.h"

namespace squall_fuzz {

class StreamHarness {
 public:
  StreamHarness() {
    squall::set_log_level(squall::LogLevel::none);
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) fail(__FILE__, __LINE__, "socketpair");
    stream_fd_ = sv[0];
    peer_fd_ = sv[1];
    ::fcntl(peer_fd_, F_SETFL, ::fcntl(peer_fd_, F_GETFL) | O_NONBLOCK);
  }
  ~StreamHarness() {
    stop_peer();
    if (!stream_fd_taken_) ::close(stream_fd_);
    ::close(peer_fd_);
    loop_.close();
  }
  StreamHarness(const StreamHarness&) = delete;
  StreamHarness& operator=(const StreamHarness&) = delete;

  squall::IOLoop& loop() { return loop_; }
  // The stream's fd; the caller hands it to an IOStream (which then owns it).
  int take_stream_fd() {
    stream_fd_taken_ = true;
    return stream_fd_;
  }
  std::unique_ptr<squall::IOStream> make_stream(squall::IOStreamOptions options = {}) {
    return std::make_unique<squall::IOStream>(take_stream_fd(), options, &loop_);
  }

  // Starts the peer: pieces are written one per iteration, then EOF (if shutdown_at_end).
  void feed(std::vector<std::string_view> pieces, bool shutdown_at_end = true) {
    pieces_ = std::move(pieces);
    shutdown_at_end_ = shutdown_at_end;
    loop_.add_handler(
        peer_fd_, [this](int, uint32_t) { drain(); }, squall::IOLoop::READ);
    watching_ = true;
    loop_.add_callback([this] { step(); });
  }
  // Bytes the stream side wrote to the peer so far.
  const std::string& received() const { return received_; }
  bool fed_everything() const { return next_ >= pieces_.size(); }
  void stop_peer() {
    if (watching_) loop_.remove_handler(peer_fd_);
    watching_ = false;
    stopped_ = true;
  }

 private:
  void step() {
    if (stopped_) return;
    if (next_ < pieces_.size()) {
      std::string_view piece = pieces_[next_].substr(offset_);
      ssize_t n = ::send(peer_fd_, piece.data(), piece.size(), MSG_NOSIGNAL);
      if (n >= 0) {
        offset_ += static_cast<size_t>(n);
        if (offset_ == pieces_[next_].size()) {
          ++next_;
          offset_ = 0;
        }
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        next_ = pieces_.size();  // the stream side closed: nothing more to send
      }
      loop_.add_callback([this] { step(); });
      return;
    }
    if (shutdown_at_end_ && !shut_) {
      ::shutdown(peer_fd_, SHUT_WR);
      shut_ = true;
    }
  }
  void drain() {
    char buf[4096];
    for (;;) {
      ssize_t n = ::recv(peer_fd_, buf, sizeof buf, 0);
      if (n > 0) {
        if (received_.size() < (1u << 20)) received_.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        // The stream side closed: stop watching (level-triggered EOF would spin).
        if (watching_) loop_.remove_handler(peer_fd_);
        watching_ = false;
      }
      return;
    }
  }

  squall::IOLoop loop_;
  int stream_fd_ = -1;
  int peer_fd_ = -1;
  bool stream_fd_taken_ = false;
  std::vector<std::string_view> pieces_;
  size_t next_ = 0;
  size_t offset_ = 0;
  bool shutdown_at_end_ = true;
  bool shut_ = false;
  bool watching_ = false;
  bool stopped_ = false;
  std::string received_;
};

}  // namespace squall_fuzz
