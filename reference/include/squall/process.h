// Pre-forked worker processes — Tornado's tornado.process (fork_processes, task_id,
// cpu_count).
//
// The usual multi-process server: bind the listening sockets, fork_processes(n), then in
// each child create the IOLoop, add the sockets and run (TCPServer::start does the
// middle part). The parent stays behind as a supervisor: it never returns from
// fork_processes.
#pragma once

#include <chrono>

namespace squall {

// How long the supervisor waits by default for its children after forwarding
// SIGTERM/SIGINT before it sends them SIGKILL.
inline constexpr std::chrono::seconds kWorkerShutdownGrace{10};

// Starts num_processes worker processes (num_processes <= 0: one per CPU, cpu_count())
// and returns, in each child, its task id (0 .. num_processes-1).
//
// Call it before any IOLoop exists (throws std::logic_error otherwise: an epoll
// descriptor must not be shared between processes) and before any thread is started
// (a warning is logged otherwise: only the calling thread survives a fork — so do not
// resolve names before forking, default_executor() starts threads).
//
// The parent never returns. It waits for its children; a child that exits abnormally
// (killed by a signal or a non-zero exit status) is restarted with the same task id, up
// to max_restarts restarts in total (then std::runtime_error("Too many child restarts,
// giving up") is thrown in the parent, as Tornado does; the children left keep running).
// When every child has exited cleanly, the parent calls std::exit(0).
//
// Squall additions: SIGTERM and SIGINT sent to the parent are forwarded to every child;
// the parent then restarts nobody, waits for all children (sending SIGKILL to those still
// alive after shutdown_grace) and calls std::exit(0) — so a pre-forked server exits
// cleanly on SIGTERM. A second signal is forwarded too (a worker using GracefulStop,
// stop_signals.h, then stops at once). Give a grace a little longer than the workers' own
// shutdown deadline. Each child is started with PR_SET_PDEATHSIG = SIGTERM, so workers
// do not outlive a parent that was killed outright. Children get the signal mask the
// caller had.
int fork_processes(int num_processes, int max_restarts = 100,
                   std::chrono::milliseconds shutdown_grace = kWorkerShutdownGrace);

// The task id of this process if it was started by fork_processes, else -1.
int task_id();

// The number of CPUs this process may run on (its affinity mask; falls back to the
// online CPU count, then to 1 with an error logged).
int cpu_count();

}  // namespace squall
