#include "squall/process.h"

#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <system_error>

#include "squall/ioloop.h"
#include "squall/log.h"

namespace squall {

namespace {

int current_task_id = -1;

// Threads of this process, from /proc/self/task; 0 if it can't be read.
int thread_count() {
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return 0;
  int n = 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n;
}

std::string describe_status(int status) {
  if (WIFSIGNALED(status)) return fmt::format("killed by signal {}", WTERMSIG(status));
  return fmt::format("exited with status {}", WEXITSTATUS(status));
}

}  // namespace

int task_id() { return current_task_id; }

int cpu_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  if (online > 0) return static_cast<int>(online);
  log(LogLevel::error, LogCategory::general, "Could not detect number of processors; assuming 1");
  return 1;
}

int fork_processes(int num_processes, int max_restarts, std::chrono::milliseconds shutdown_grace) {
  if (current_task_id != -1) throw std::logic_error("fork_processes: this process is already a forked worker");
  if (IOLoop::current_or_null() != nullptr) {
    throw std::logic_error("fork_processes must be called before any IOLoop is created");
  }
  if (int threads = thread_count(); threads > 1) {
    log(LogLevel::warning, LogCategory::general,
        "fork_processes called with {} threads running; only the calling thread survives in the workers", threads);
  }
  if (num_processes <= 0) num_processes = cpu_count();
  log(LogLevel::info, LogCategory::general, "Starting {} processes", num_processes);

  // SIGCHLD, SIGTERM and SIGINT are taken synchronously with sigtimedwait: block them
  // (they stay pending until we look), and restore the caller's mask in each child.
  sigset_t watched;
  sigemptyset(&watched);
  sigaddset(&watched, SIGCHLD);
  sigaddset(&watched, SIGTERM);
  sigaddset(&watched, SIGINT);
  sigset_t caller_mask;
  pthread_sigmask(SIG_BLOCK, &watched, &caller_mask);
  // An inherited SIG_IGN for SIGCHLD would reap the children behind our back.
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  struct sigaction caller_sigchld {};
  sigaction(SIGCHLD, &default_action, &caller_sigchld);

  const pid_t supervisor = getpid();
  std::map<pid_t, int> children;  // pid -> task id

  auto restore_caller_state = [&] {
    sigaction(SIGCHLD, &caller_sigchld, nullptr);
    pthread_sigmask(SIG_SETMASK, &caller_mask, nullptr);
  };
  // Returns true in the new child.
  auto start_child = [&](int id) {
    std::fflush(nullptr);  // or buffered output would be written once per process
    pid_t pid = fork();
    if (pid < 0) {
      int error = errno;
      restore_caller_state();
      throw std::system_error(error, std::generic_category(), "fork");
    }
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != supervisor) _exit(1);  // the supervisor died before prctl took effect
      restore_caller_state();
      current_task_id = id;
      return true;
    }
    children.emplace(pid, id);
    return false;
  };

  for (int id = 0; id < num_processes; ++id) {
    if (start_child(id)) return id;
  }

  int restarts = 0;
  bool shutting_down = false;
  TimePoint kill_deadline = TimePoint::max();
  while (!children.empty()) {
    timespec wait_time{0, 200'000'000};  // also polls for the shutdown deadline
    siginfo_t info{};
    int signal_number = sigtimedwait(&watched, &info, &wait_time);
    if (signal_number == SIGTERM || signal_number == SIGINT) {
      if (!shutting_down) {
        log(LogLevel::info, LogCategory::general, "Received signal {}, stopping {} child processes", signal_number,
            children.size());
        shutting_down = true;
        kill_deadline = Clock::now() + shutdown_grace;
      }
      for (const auto& [pid, id] : children) kill(pid, signal_number);
    }

    for (;;) {
      int status = 0;
      pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      auto it = children.find(pid);
      if (it == children.end()) continue;
      int id = it->second;
      children.erase(it);
      if (shutting_down) {
        log(LogLevel::info, LogCategory::general, "child {} (pid {}) {}", id, pid, describe_status(status));
        continue;
      }
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        log(LogLevel::info, LogCategory::general, "child {} (pid {}) exited normally", id, pid);
        continue;
      }
      log(LogLevel::warning, LogCategory::general, "child {} (pid {}) {}, restarting", id, pid,
          describe_status(status));
      if (++restarts > max_restarts) {
        restore_caller_state();
        throw std::runtime_error("Too many child restarts, giving up");
      }
      if (start_child(id)) return id;
    }

    if (shutting_down && Clock::now() >= kill_deadline) {
      log(LogLevel::warning, LogCategory::general, "{} child processes still running after {} s, killing them",
          children.size(), std::chrono::duration<double>(shutdown_grace).count());
      for (const auto& [pid, id] : children) kill(pid, SIGKILL);
      kill_deadline = TimePoint::max();
    }
  }
  // Every child is gone: exit rather than return into code that would start serving
  // in the supervisor.
  std::exit(0);
}

}  // namespace squall
