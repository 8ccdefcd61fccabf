// Graceful shutdown on SIGTERM and SIGINT for programs built on the loop.
//
// Signal handlers may do almost nothing safely, so Squall's programs never install one:
// they block the two stop signals first thing in main() — before fork_processes() and
// before any thread exists, so every worker and thread inherits the mask — and read them
// on the loop from a signalfd, where the shutdown code is ordinary code. (The pre-fork
// supervisor in process.h relies on the same mask to forward the signals to workers.)
#pragma once

#include <functional>

#include "squall/ioloop.h"

namespace squall {

// Blocks SIGTERM and SIGINT in the calling thread (inherited across fork and by threads
// created afterwards).
void block_stop_signals();

// While alive, a SIGTERM or SIGINT sent to the process is logged ("received Terminated,
// shutting down") and runs on_stop on the loop. Call block_stop_signals() first.
class StopSignalWatcher {
 public:
  StopSignalWatcher(IOLoop& loop, std::function<void()> on_stop);
  ~StopSignalWatcher();
  StopSignalWatcher(const StopSignalWatcher&) = delete;
  StopSignalWatcher& operator=(const StopSignalWatcher&) = delete;

 private:
  IOLoop& loop_;
  int fd_;
  std::function<void()> on_stop_;
};

}  // namespace squall
