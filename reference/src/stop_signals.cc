#include "squall/stop_signals.h"

#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <system_error>

#include "squall/log.h"

namespace squall {

namespace {

sigset_t stop_signal_set() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

void block_stop_signals() {
  sigset_t set = stop_signal_set();
  if (pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) {
    throw std::system_error(errno, std::generic_category(), "pthread_sigmask");
  }
}

StopSignalWatcher::StopSignalWatcher(IOLoop& loop, std::function<void()> on_stop)
    : loop_(loop), on_stop_(std::move(on_stop)) {
  sigset_t set = stop_signal_set();
  fd_ = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "signalfd");
  loop_.add_handler(
      fd_,
      [this](int fd, uint32_t) {
        signalfd_siginfo info{};
        if (::read(fd, &info, sizeof info) != static_cast<ssize_t>(sizeof info)) return;
        ++received_;
        log(LogLevel::info, LogCategory::general, "received {}, {}", strsignal(static_cast<int>(info.ssi_signo)),
            received_ == 1 ? "shutting down" : "stopping now");
        if (on_stop_) on_stop_();
      },
      IOLoop::READ);
}

StopSignalWatcher::~StopSignalWatcher() {
  loop_.remove_handler(fd_);
  ::close(fd_);
}

namespace {

// Not a member: the frame may outlive the GracefulStop (a second signal stops the loop and
// main() returns); the loop outlives every frame it runs.
Task<void> stop_after(std::function<Task<void>()> graceful, IOLoop* loop) {
  try {
    co_await graceful();
  } catch (...) {
    log(LogLevel::error, LogCategory::general, "Graceful shutdown failed: {}", describe_current_exception());
  }
  loop->stop();
}

}  // namespace

GracefulStop::GracefulStop(IOLoop& loop, std::function<Task<void>()> graceful)
    : loop_(loop), graceful_(std::move(graceful)), watcher_(loop, [this] { on_signal(); }) {}

void GracefulStop::on_signal() {
  if (watcher_.signals_received() == 1) {
    spawn(stop_after(graceful_, &loop_));
  } else {
    loop_.stop();
  }
}

}  // namespace squall
