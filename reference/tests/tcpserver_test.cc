// Tests for squall/tcpserver.h (and process.h's pre-forking, and the squall-echo-server
// binary). Loopback sockets only; every port is chosen by the kernel.
#include "squall/tcpserver.h"

#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "open_fds.h"
#include "squall/process.h"
#include "squall/tcpclient.h"

extern char** environ;

namespace squall {
namespace {

using namespace std::chrono_literals;

// Echoes lines; counts connections.
class EchoServer : public TCPServer {
 public:
  using TCPServer::TCPServer;
  Task<void> handle_stream(std::unique_ptr<IOStream> stream, SocketAddress address) override {
    ++connections;
    peers.push_back(address);
    try {
      for (;;) {
        std::string line = co_await stream->read_until("\n", 1024);
        co_await stream->write(std::move(line));
      }
    } catch (const StreamClosedError&) {
    }
    ++ended;
  }
  int connections = 0;
  int ended = 0;  // handle_stream returned (the stream is destroyed with the frame)
  std::vector<SocketAddress> peers;
};

// Connects, sends each line, and returns what came back for each.
Task<std::vector<std::string>> echo_lines(uint16_t port, std::vector<std::string> lines) {
  TCPClient client;
  std::unique_ptr<IOStream> stream = co_await client.connect("127.0.0.1", port, 5s);
  std::vector<std::string> replies;
  for (const std::string& line : lines) {
    co_await stream->write(line + "\n");
    replies.push_back(co_await stream->read_until("\n"));
  }
  co_return replies;
}

Task<std::unique_ptr<IOStream>> open_stream(uint16_t port) {
  TCPClient client;
  co_return co_await client.connect("127.0.0.1", port, 5s);
}

Task<std::string> round_trip(IOStream& stream, std::string line) {
  co_await stream.write(line);
  co_return co_await stream.read_until("\n");
}

// Waits up to `limit` for pid to exit; SIGKILLs it after that. Returns its wait status,
// or nullopt if it had to be killed.
std::optional<int> wait_bounded(pid_t pid, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  for (;;) {
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) return status;
    if (done < 0) return std::nullopt;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return std::nullopt;
    }
    std::this_thread::sleep_for(10ms);
  }
}

// Reads from fd until `done(text)` or the time limit; returns what was read.
std::string read_until_match(int fd, const std::function<bool(const std::string&)>& done,
                             std::chrono::milliseconds limit) {
  std::string text;
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done(text)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buffer[4096];
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n <= 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  return text;
}

int blocking_connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) < 0) {
    int error = errno;
    ::close(fd);
    throw std::system_error(error, std::generic_category(), "connect");
  }
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  return fd;
}

// ---- single process ---------------------------------------------------------------------

TEST(tcpserver, EchoesLinesForSeveralConcurrentClients) {
  IOLoop loop;
  EchoServer server;
  server.listen(0, "127.0.0.1");
  ASSERT_EQ(server.ports().size(), 1u);
  uint16_t port = server.ports()[0];
  ASSERT_NE(port, 0);

  constexpr int kClients = 8;
  std::vector<Task<std::vector<std::string>>> clients;
  auto results = loop.run_sync([&] {
    for (int i = 0; i < kClients; ++i) {
      clients.push_back(echo_lines(port, {"client " + std::to_string(i), "second line", std::string(500, 'x')}));
    }
    return when_all(clients);
  }, 10s);
  ASSERT_EQ(results.size(), static_cast<size_t>(kClients));
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(results[i],
              (std::vector<std::string>{"client " + std::to_string(i) + "\n", "second line\n",
                                        std::string(500, 'x') + "\n"}));
  }
  EXPECT_EQ(server.connections, kClients);
}

// Every accepted connection's descriptor is closed once it is over: after clients that
// exchanged a line and left, and clients that left without a word, the process holds the
// descriptors it held before.
TEST(tcpserver, ConnectionsThatCameAndWentLeaveNoDescriptorOpen) {
  IOLoop loop;
  EchoServer server;
  server.listen(0, "127.0.0.1");
  const uint16_t port = server.ports()[0];
  const int before = testing_support::open_fd_count();
  constexpr int kTalkers = 100;
  constexpr int kSilent = 20;
  loop.run_sync([&]() -> Task<void> {
    for (int i = 0; i < kTalkers; ++i) {
      std::vector<std::string> lines(1, "line " + std::to_string(i));  // named: GCC 12 and co_await
      std::vector<std::string> replies = co_await echo_lines(port, lines);
      EXPECT_EQ(replies.size(), 1u);
      EXPECT_EQ(replies.at(0), lines[0] + "\n");
    }
    for (int i = 0; i < kSilent; ++i) co_await open_stream(port);  // closed at once
    for (int i = 0; i < 2000 && server.ended < kTalkers + kSilent; ++i) co_await sleep(1ms);
  }, 10s);
  EXPECT_EQ(server.connections, kTalkers + kSilent);
  EXPECT_EQ(server.ended, kTalkers + kSilent);
  EXPECT_EQ(testing_support::open_fd_count(), before);
}

TEST(tcpserver, HandleStreamGetsThePeerAddress) {
  IOLoop loop;
  EchoServer server;
  server.listen(0, "127.0.0.1");
  uint16_t client_port = loop.run_sync([&]() -> Task<uint16_t> {
    std::unique_ptr<IOStream> stream = co_await open_stream(server.ports()[0]);
    co_await round_trip(*stream, "hi\n");
    co_return socket_port(stream->fd());
  }, 10s);
  ASSERT_EQ(server.peers.size(), 1u);
  EXPECT_EQ(server.peers[0].ip(), "127.0.0.1");
  EXPECT_EQ(server.peers[0].port(), client_port);
}

TEST(tcpserver, StreamClosesWhenHandleStreamReturns) {
  // handle_stream owns the stream: returning from it closes the connection.
  class GreetAndLeave : public TCPServer {
    Task<void> handle_stream(std::unique_ptr<IOStream> stream, SocketAddress) override {
      co_await stream->write("bye\n");
    }
  };
  IOLoop loop;
  GreetAndLeave server;
  server.listen(0, "127.0.0.1");
  std::string everything = loop.run_sync([&]() -> Task<std::string> {
    std::unique_ptr<IOStream> stream = co_await open_stream(server.ports()[0]);
    co_return co_await stream->read_until_close();
  }, 10s);
  EXPECT_EQ(everything, "bye\n");
}

TEST(tcpserver, StopRefusesNewConnectionsButExistingOnesContinue) {
  IOLoop loop;
  EchoServer server;
  server.listen(0, "127.0.0.1");
  uint16_t port = server.ports()[0];
  // Keep the connection in a holder that outlives the coroutines.
  std::unique_ptr<IOStream> kept;
  loop.run_sync([&]() -> Task<void> {
    kept = co_await open_stream(port);
    EXPECT_EQ(co_await round_trip(*kept, "before\n"), "before\n");
  }, 10s);

  server.stop();
  EXPECT_TRUE(server.ports().empty());
  Future<std::unique_ptr<IOStream>> refused;
  std::string after = loop.run_sync([&]() -> Task<std::string> {
    TCPClient client;
    refused = client.connect("127.0.0.1", port, 5s);
    try {
      co_await refused;
    } catch (const StreamClosedError&) {
    }
    co_return co_await round_trip(*kept, "after stop\n");
  }, 10s);
  EXPECT_THROW(refused.result(), StreamClosedError);
  EXPECT_EQ(after, "after stop\n");
  server.stop();  // idempotent
}

TEST(tcpserver, HandleStreamExceptionIsLoggedAndTheServerKeepsServing) {
  class Fragile : public TCPServer {
    Task<void> handle_stream(std::unique_ptr<IOStream> stream, SocketAddress) override {
      std::string line = co_await stream->read_until("\n");
      if (line == "boom\n") throw std::runtime_error("handler exploded");
      co_await stream->write(line);
    }
  };
  IOLoop loop;
  Fragile server;
  server.listen(0, "127.0.0.1");
  uint16_t port = server.ports()[0];
  testing::internal::CaptureStderr();
  std::string reply = loop.run_sync([&]() -> Task<std::string> {
    std::unique_ptr<IOStream> first = co_await open_stream(port);
    co_await first->write("boom\n");
    std::string rest = co_await first->read_until_close();  // the handler failed: closed
    EXPECT_EQ(rest, "");
    std::unique_ptr<IOStream> second = co_await open_stream(port);
    co_return co_await round_trip(*second, "fine\n");
  }, 10s);
  std::string log = testing::internal::GetCapturedStderr();
  EXPECT_EQ(reply, "fine\n");
  EXPECT_NE(log.find("handler exploded"), std::string::npos) << log;
  EXPECT_NE(log.find("application"), std::string::npos) << log;
}

TEST(tcpserver, BindThenStartServesInThisProcess) {
  IOLoop loop;
  EchoServer server;
  server.bind(0, "127.0.0.1");
  ASSERT_EQ(server.ports().size(), 1u);  // bound, not yet accepting
  server.start(1);
  EXPECT_THROW(server.start(1), std::logic_error);
  auto replies = loop.run_sync([&] { return echo_lines(server.ports()[0], {"started"}); }, 10s);
  EXPECT_EQ(replies, std::vector<std::string>{"started\n"});
}

TEST(tcpserver, AddSocketsServesOnSocketsBoundByTheCaller) {
  IOLoop loop;
  EchoServer server;
  std::vector<int> sockets = bind_sockets(0, "127.0.0.1");
  uint16_t port = socket_port(sockets[0]);
  server.add_sockets(sockets);
  auto replies = loop.run_sync([&] { return echo_lines(port, {"added"}); }, 10s);
  EXPECT_EQ(replies, std::vector<std::string>{"added\n"});
}

TEST(tcpserver, DestructorClosesTheListeningSockets) {
  IOLoop loop;
  uint16_t port;
  {
    EchoServer server;
    server.listen(0, "127.0.0.1");
    port = server.ports()[0];
  }
  EXPECT_THROW(::close(blocking_connect(port)), std::system_error);
}

TEST(tcpserver, StreamOptionsApplyToAcceptedStreams) {
  class OptionsProbe : public TCPServer {
   public:
    using TCPServer::TCPServer;
    Task<void> handle_stream(std::unique_ptr<IOStream> stream, SocketAddress) override {
      seen = stream->options().max_buffer_size;
      co_await stream->write("ok\n");
    }
    size_t seen = 0;
  };
  IOLoop loop;
  IOStreamOptions options;
  options.max_buffer_size = 4321;
  OptionsProbe server(options);
  server.listen(0, "127.0.0.1");
  auto replies = loop.run_sync([&]() -> Task<std::string> {
    std::unique_ptr<IOStream> stream = co_await open_stream(server.ports()[0]);
    co_return co_await stream->read_until("\n");
  }, 10s);
  EXPECT_EQ(replies, "ok\n");
  EXPECT_EQ(server.seen, 4321u);
}

// ---- pre-forked workers -------------------------------------------------------------------

// Replies with its pid, then keeps its worker busy for a moment so that the next
// connection goes to the other worker.
class PidServer : public TCPServer {
  Task<void> handle_stream(std::unique_ptr<IOStream> stream, SocketAddress) override {
    co_await stream->write(std::to_string(getpid()) + " " + std::to_string(task_id()) + "\n");
    std::this_thread::sleep_for(200ms);  // blocks this worker's loop on purpose
  }
};

TEST(tcpserver, StartWithTwoProcessesServesFromTwoWorkersAndStopsOnSigterm) {
  int report[2];
  ASSERT_EQ(pipe2(report, O_CLOEXEC), 0);
  pid_t supervisor = fork();
  ASSERT_GE(supervisor, 0);
  if (supervisor == 0) {
    // The supervisor-to-be: no IOLoop exists in this process yet.
    ::close(report[0]);
    try {
      PidServer server;
      server.bind(0, "127.0.0.1");
      uint16_t port = server.ports()[0];
      if (::write(report[1], &port, sizeof port) != sizeof port) _exit(2);
      ::close(report[1]);
      server.start(2);  // the supervisor stays inside; each worker returns
      IOLoop::current().start();
    } catch (...) {
      _exit(3);
    }
    _exit(4);
  }
  ::close(report[1]);
  uint16_t port = 0;
  pollfd wait_report{report[0], POLLIN, 0};
  ASSERT_EQ(poll(&wait_report, 1, 10000), 1);
  ASSERT_EQ(::read(report[0], &port, sizeof port), static_cast<ssize_t>(sizeof port));
  ::close(report[0]);

  std::set<pid_t> workers;
  std::set<int> task_ids;
  for (int attempt = 0; attempt < 40 && workers.size() < 2; ++attempt) {
    int fd = blocking_connect(port);
    std::string reply = read_until_match(fd, [](const std::string& s) { return s.find('\n') != std::string::npos; },
                                         5000ms);
    ::close(fd);
    pid_t pid = 0;
    int id = -1;
    ASSERT_EQ(sscanf(reply.c_str(), "%d %d", &pid, &id), 2) << reply;
    workers.insert(pid);
    task_ids.insert(id);
  }
  EXPECT_EQ(workers.size(), 2u);
  EXPECT_EQ(task_ids, (std::set<int>{0, 1}));
  EXPECT_EQ(workers.count(supervisor), 0u);
  EXPECT_EQ(workers.count(getpid()), 0u);

  ASSERT_EQ(kill(supervisor, SIGTERM), 0);
  std::optional<int> status = wait_bounded(supervisor, 15000ms);
  ASSERT_TRUE(status) << "the supervisor did not exit after SIGTERM";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "wait status " << *status;
  for (pid_t worker : workers) {
    EXPECT_EQ(kill(worker, 0), -1) << "worker " << worker << " still running";
    EXPECT_EQ(errno, ESRCH);
  }
}

// ---- fork_processes -----------------------------------------------------------------------

TEST(tcpserver, ProcessTaskIdIsMinusOneAndCpuCountPositiveWithoutForking) {
  EXPECT_EQ(task_id(), -1);
  EXPECT_GE(cpu_count(), 1);
}

TEST(tcpserver, ForkProcessesRefusesToRunOnceAnIOLoopExists) {
  IOLoop loop;  // a shared epoll descriptor would make the workers steal each other's events
  EXPECT_THROW(fork_processes(2), std::logic_error);
  EXPECT_EQ(task_id(), -1);
}

// Runs fn in a forked child that exits with fn's return value (127 if it throws).
pid_t fork_running(const std::function<int()>& fn) {
  pid_t pid = fork();
  if (pid == 0) {
    int code = 127;
    try {
      code = fn();
    } catch (...) {
    }
    _exit(code);
  }
  return pid;
}

// The "task pid" lines workers wrote to a pipe.
std::vector<std::pair<int, pid_t>> read_worker_lines(int fd) {
  std::string text = read_until_match(fd, [](const std::string&) { return false; }, 100ms);
  std::vector<std::pair<int, pid_t>> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) break;
    int id = -1;
    pid_t pid = 0;
    if (sscanf(text.c_str() + start, "%d %d", &id, &pid) == 2) lines.emplace_back(id, pid);
    start = end + 1;
  }
  return lines;
}

TEST(tcpserver, ForkProcessesRestartsAFailedWorkerWithItsIdAndExitsZeroWhenAllFinishCleanly) {
  int lines[2];
  ASSERT_EQ(pipe2(lines, O_CLOEXEC), 0);
  char dir_template[] = "/tmp/squall-fork-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  std::string marker = std::string(dir_template) + "/failed-once";
  pid_t supervisor = fork_running([&] {
    ::close(lines[0]);
    int id = fork_processes(2, /*max_restarts=*/5);
    std::string line = std::to_string(id) + " " + std::to_string(getpid()) + "\n";
    if (::write(lines[1], line.data(), line.size()) < 0) return 2;
    // Worker 0 fails the first time it runs; every other run succeeds.
    if (id == 0 && ::access(marker.c_str(), F_OK) != 0) {
      ::close(::open(marker.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
      return 1;
    }
    return 0;
  });
  ASSERT_GT(supervisor, 0);
  ::close(lines[1]);
  std::optional<int> status = wait_bounded(supervisor, 10000ms);
  auto runs = read_worker_lines(lines[0]);
  ::close(lines[0]);
  ::unlink(marker.c_str());
  ::rmdir(dir_template);
  ASSERT_TRUE(status) << "the supervisor did not exit";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "wait status " << *status;
  std::multiset<int> ids;
  std::set<pid_t> pids;
  for (auto [id, pid] : runs) {
    ids.insert(id);
    pids.insert(pid);
  }
  EXPECT_EQ(ids, (std::multiset<int>{0, 0, 1}));  // worker 0 ran twice, under the same id
  EXPECT_EQ(pids.size(), 3u);
}

TEST(tcpserver, ForkProcessesGivesUpAfterMaxRestarts) {
  int lines[2];
  ASSERT_EQ(pipe2(lines, O_CLOEXEC), 0);
  pid_t supervisor = fork_running([&] {
    ::close(lines[0]);
    try {
      int id = fork_processes(1, /*max_restarts=*/2);
      std::string line = std::to_string(id) + " " + std::to_string(getpid()) + "\n";
      if (::write(lines[1], line.data(), line.size()) < 0) return 2;
      return 1;  // every run of the worker fails
    } catch (const std::runtime_error&) {
      return 42;  // the supervisor gave up
    }
  });
  ASSERT_GT(supervisor, 0);
  ::close(lines[1]);
  std::optional<int> status = wait_bounded(supervisor, 10000ms);
  auto runs = read_worker_lines(lines[0]);
  ::close(lines[0]);
  ASSERT_TRUE(status) << "the supervisor did not exit";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 42) << "wait status " << *status;
  EXPECT_EQ(runs.size(), 3u);  // the first run and two restarts
}

// ---- the squall-echo-server binary ----------------------------------------------------------

std::filesystem::path echo_server_binary() {
  // Tests and apps are built side by side in build/reference/.
  return std::filesystem::read_symlink("/proc/self/exe").parent_path() / "squall-echo-server";
}

struct Child {
  pid_t pid = -1;
  int out = -1;
  int err = -1;
};

Child spawn_echo_server(std::vector<std::string> args) {
  std::filesystem::path binary = echo_server_binary();
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category());
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
  std::vector<std::string> argv_storage{binary.string()};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  Child child;
  int rc = posix_spawn(&child.pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  ::close(err[1]);
  if (rc != 0) {
    ::close(out[0]);
    ::close(err[0]);
    throw std::system_error(rc, std::generic_category(), "posix_spawn " + binary.string());
  }
  child.out = out[0];
  child.err = err[0];
  return child;
}

uint16_t read_port_line(int fd) {
  std::string text = read_until_match(fd, [](const std::string& s) { return s.find('\n') != std::string::npos; },
                                      10000ms);
  unsigned port = 0;
  if (sscanf(text.c_str(), "port=%u", &port) != 1) return 0;
  return static_cast<uint16_t>(port);
}

std::string echo_through(uint16_t port, const std::string& request, size_t expected_size) {
  int fd = blocking_connect(port);
  EXPECT_EQ(::write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  std::string reply = read_until_match(fd, [&](const std::string& s) { return s.size() >= expected_size; }, 5000ms);
  ::close(fd);
  return reply;
}

TEST(tcpserver, EchoServerBinaryEchoesLinesAndExitsZeroOnSigterm) {
  ASSERT_TRUE(std::filesystem::exists(echo_server_binary())) << echo_server_binary();
  Child child = spawn_echo_server({"--port", "0", "--address", "127.0.0.1"});
  uint16_t port = read_port_line(child.out);
  if (port == 0) {
    kill(child.pid, SIGKILL);
    waitpid(child.pid, nullptr, 0);
    FAIL() << "no port= line on stdout";
  }

  EXPECT_EQ(echo_through(port, "hello\nworld\n", 12), "hello\nworld\n");
  // A line split across writes comes back whole.
  int fd = blocking_connect(port);
  ASSERT_EQ(::write(fd, "spl", 3), 3);
  std::this_thread::sleep_for(50ms);
  ASSERT_EQ(::write(fd, "it\n", 3), 3);
  EXPECT_EQ(read_until_match(fd, [](const std::string& s) { return s.size() >= 6; }, 5000ms), "split\n");
  ::close(fd);

  ASSERT_EQ(kill(child.pid, SIGTERM), 0);
  std::optional<int> status = wait_bounded(child.pid, 10000ms);
  std::string log = read_until_match(child.err, [](const std::string&) { return false; }, 1000ms);
  ::close(child.out);
  ::close(child.err);
  ASSERT_TRUE(status) << "echo server did not exit after SIGTERM";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "wait status " << *status << "\n" << log;
  EXPECT_NE(log.find("listening on 127.0.0.1:" + std::to_string(port)), std::string::npos) << log;
}

TEST(tcpserver, EchoServerBinaryPreforkedEchoServerExitsZeroOnSigint) {
  ASSERT_TRUE(std::filesystem::exists(echo_server_binary())) << echo_server_binary();
  Child child = spawn_echo_server({"--port", "0", "--processes", "2"});
  uint16_t port = read_port_line(child.out);
  if (port == 0) {
    kill(child.pid, SIGKILL);
    waitpid(child.pid, nullptr, 0);
    FAIL() << "no port= line on stdout";
  }
  for (int i = 0; i < 4; ++i) EXPECT_EQ(echo_through(port, "ping\n", 5), "ping\n");
  ASSERT_EQ(kill(child.pid, SIGINT), 0);
  std::optional<int> status = wait_bounded(child.pid, 15000ms);
  std::string log = read_until_match(child.err, [](const std::string&) { return false; }, 1000ms);
  ::close(child.out);
  ::close(child.err);
  ASSERT_TRUE(status) << "pre-forked echo server did not exit after SIGINT";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "wait status " << *status << "\n" << log;
  EXPECT_NE(log.find("Starting 2 processes"), std::string::npos) << log;
}

TEST(tcpserver, EchoServerBinaryRejectsAMissingPort) {
  ASSERT_TRUE(std::filesystem::exists(echo_server_binary())) << echo_server_binary();
  Child child = spawn_echo_server({});
  std::optional<int> status = wait_bounded(child.pid, 10000ms);
  ::close(child.out);
  ::close(child.err);
  ASSERT_TRUE(status);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) != 0);
}

}  // namespace
}  // namespace squall
