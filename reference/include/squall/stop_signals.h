// Graceful shutdown on SIGTERM and SIGINT for programs built on the loop.
//
// Signal handlers may do almost nothing safely, so Squall's programs never install one:
// they block the two stop signals first thing in main() — before fork_processes() and
// before any thread exists, so every worker and thread inherits the mask — and read them
// on the loop from a signalfd, where the shutdown code is ordinary code. (The pre-fork
// supervisor in process.h relies on the same mask to forward the signals to workers.)
//
// The usual end of a server's main():
//
//   squall::block_stop_signals();          // first thing
//   ...
//   squall::GracefulStop stop(loop, [&] { return server.shutdown(std::chrono::seconds(10)); });
//   loop.start();                          // returns once the shutdown has completed
//   return 0;
#pragma once

#include <functional>

#include "squall/ioloop.h"
#include "squall/task.h"

namespace squall {

// Blocks SIGTERM and SIGINT in the calling thread (inherited across fork and by threads
// created afterwards).
void block_stop_signals();

// While alive, every SIGTERM or SIGINT sent to the process is logged ("received
// Terminated, shutting down") and runs on_stop on the loop; signals_received() counts
// them (1 while on_stop runs for the first). Call block_stop_signals() first.
class StopSignalWatcher {
 public:
  StopSignalWatcher(IOLoop& loop, std::function<void()> on_stop);
  ~StopSignalWatcher();
  StopSignalWatcher(const StopSignalWatcher&) = delete;
  StopSignalWatcher& operator=(const StopSignalWatcher&) = delete;

  int signals_received() const { return received_; }

 private:
  IOLoop& loop_;
  int fd_;
  int received_ = 0;
  std::function<void()> on_stop_;
};

// The end of a TCP program's main() (squall-echo-server, squall-stream-probe): runs the
// loop until the first SIGTERM or SIGINT, then stops `server` accepting (Server::stop)
// and returns; connections still open close with the loop. HTTP servers drain theirs
// with GracefulStop (below). Call block_stop_signals() first.
template <class Server>
void serve_until_stop_signal(IOLoop& loop, Server& server) {
  StopSignalWatcher stop_signals(loop, [&] {
    server.stop();
    loop.stop();
  });
  loop.start();
}

// Two-step stop, as nginx's SIGQUIT then SIGTERM: the first SIGTERM/SIGINT starts
// `graceful` (e.g. an HTTPServer::shutdown) and stops the loop when the task completes
// (also if it fails: the failure is logged); a second signal stops the loop at once.
// Call block_stop_signals() first.
class GracefulStop {
 public:
  GracefulStop(IOLoop& loop, std::function<Task<void>()> graceful);
  // True once a second signal cut the graceful part short.
  bool forced() const { return watcher_.signals_received() > 1; }
  bool stopping() const { return watcher_.signals_received() > 0; }

 private:
  void on_signal();

  IOLoop& loop_;
  std::function<Task<void>()> graceful_;
  StopSignalWatcher watcher_;
};

}  // namespace squall
