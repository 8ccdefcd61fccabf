// Tests for squall/netutil.h: listening sockets, the accept handler, addresses, resolver.
// Real sockets on the loopback interface only; ports are always chosen by the kernel.
#include "squall/netutil.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "squall/future.h"
#include "squall/ioloop.h"
#include "squall/task.h"
#include "open_fds.h"

namespace squall {
namespace {

using namespace std::chrono_literals;

bool ipv6_available() {
  // The kernel lists its IPv6 addresses here; no file (or no ::1) means no IPv6.
  std::ifstream in("/proc/net/if_inet6");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("00000000000000000000000000000001", 0) == 0) return true;
  }
  return false;
}

using testing_support::open_fd_count;

void close_all(const std::vector<int>& fds) {
  for (int fd : fds) ::close(fd);
}

// A non-blocking client socket connecting to address (the connect may still be in progress).
int start_connect(const SocketAddress& address) {
  int fd = ::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  if (::connect(fd, address.get(), address.length()) < 0 && errno != EINPROGRESS) {
    int error = errno;
    ::close(fd);
    throw std::system_error(error, std::generic_category(), "connect");
  }
  return fd;
}

// A blocking connect; returns the connected socket.
int blocking_connect(const SocketAddress& address) {
  int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  if (::connect(fd, address.get(), address.length()) < 0) {
    int error = errno;
    ::close(fd);
    throw std::system_error(error, std::generic_category(), "connect");
  }
  return fd;
}

int socket_option(int fd, int level, int name) {
  int value = 0;
  socklen_t length = sizeof value;
  EXPECT_EQ(getsockopt(fd, level, name, &value, &length), 0);
  return value;
}

// ---- bind_sockets -------------------------------------------------------------------------

TEST(netutil, BindSocketsPortZeroReportsTheKernelChosenPortOnANonBlockingCloexecListener) {
  std::vector<int> fds = bind_sockets(0, "127.0.0.1");
  ASSERT_EQ(fds.size(), 1u);
  int fd = fds[0];
  EXPECT_NE(socket_port(fd), 0);
  EXPECT_EQ(socket_address(fd).ip(), "127.0.0.1");
  EXPECT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  EXPECT_TRUE(fcntl(fd, F_GETFL) & O_NONBLOCK);
  EXPECT_EQ(socket_option(fd, SOL_SOCKET, SO_ACCEPTCONN), 1);
  EXPECT_EQ(socket_option(fd, SOL_SOCKET, SO_REUSEADDR), 1);
  // It really listens there.
  int client = blocking_connect(SocketAddress::from_ip("127.0.0.1", socket_port(fd)));
  ::close(client);
  close_all(fds);
}

TEST(netutil, BindSocketsIpv6LoopbackBindsAV6OnlyListenerThatAcceptsConnections) {
  if (!ipv6_available()) GTEST_SKIP() << "kernel has no IPv6 (no ::1 in /proc/net/if_inet6)";
  std::vector<int> fds = bind_sockets(0, "::1");
  ASSERT_EQ(fds.size(), 1u);
  SocketAddress local = socket_address(fds[0]);
  EXPECT_EQ(local.family(), AF_INET6);
  EXPECT_EQ(local.ip(), "::1");
  EXPECT_EQ(socket_option(fds[0], IPPROTO_IPV6, IPV6_V6ONLY), 1);
  int client = blocking_connect(local);
  int accepted = ::accept(fds[0], nullptr, nullptr);
  EXPECT_GE(accepted, 0);
  ::close(accepted);
  ::close(client);
  close_all(fds);
}

TEST(netutil, BindSocketsAllInterfacesGivesIpv4AndIpv6SocketsOnTheSamePort) {
  // Binds 0.0.0.0 and ::, but nothing is sent anywhere: the test only reads the names.
  std::vector<int> fds = bind_sockets(0, "");
  ASSERT_FALSE(fds.empty());
  EXPECT_EQ(socket_address(fds[0]).family(), AF_INET);  // IPv4 first, as Tornado sorts
  if (ipv6_available()) {
    ASSERT_EQ(fds.size(), 2u);
    EXPECT_EQ(socket_address(fds[1]).family(), AF_INET6);
    EXPECT_EQ(socket_port(fds[0]), socket_port(fds[1]));
  }
  close_all(fds);
}

TEST(netutil, BindSocketsLocalhostBindsOnlyLoopbackAddresses) {
  std::vector<int> fds = bind_sockets(0, "localhost");
  ASSERT_FALSE(fds.empty());
  uint16_t port = socket_port(fds[0]);
  for (int fd : fds) {
    EXPECT_TRUE(socket_address(fd).is_loopback()) << socket_address(fd).to_string();
    EXPECT_EQ(socket_port(fd), port);
  }
  close_all(fds);
}

TEST(netutil, BindSocketsFamilyRestrictsTheAddresses) {
  std::vector<int> fds = bind_sockets(0, "", AF_INET);
  ASSERT_EQ(fds.size(), 1u);
  EXPECT_EQ(socket_address(fds[0]).family(), AF_INET);
  close_all(fds);
}

TEST(netutil, BindSocketsReusePortLetsTwoListenersShareAPort) {
  std::vector<int> first = bind_sockets(0, "127.0.0.1", AF_UNSPEC, kDefaultBacklog, /*reuse_port=*/true);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(socket_option(first[0], SOL_SOCKET, SO_REUSEPORT), 1);
  std::vector<int> second = bind_sockets(socket_port(first[0]), "127.0.0.1", AF_UNSPEC, kDefaultBacklog, true);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(socket_port(second[0]), socket_port(first[0]));
  close_all(first);
  close_all(second);
}

TEST(netutil, BindSocketsPortInUseThrowsAddressInUseAndLeavesNoDescriptorOpen) {
  std::vector<int> first = bind_sockets(0, "127.0.0.1");
  int before = open_fd_count();
  try {
    bind_sockets(socket_port(first[0]), "127.0.0.1");
    ADD_FAILURE() << "binding a port in use succeeded";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EADDRINUSE) << e.what();
  }
  EXPECT_EQ(open_fd_count(), before);
  close_all(first);
}

TEST(netutil, BindSocketsUnresolvableAddressThrowsResolveError) {
  // An IPv4 literal restricted to IPv6 fails inside getaddrinfo without any lookup.
  EXPECT_THROW(bind_sockets(0, "127.0.0.1", AF_INET6), ResolveError);
}

// ---- SocketAddress and is_valid_ip ---------------------------------------------------------

TEST(netutil, SocketAddressFormatsEveryIpv4OctetAsInetNtopDoes) {
  // ip() writes the dotted quad itself: each octet's widths (1, 2, 3 digits), zero and
  // 255, in every position, against the C library's own formatting.
  for (uint32_t octet : {0u, 1u, 9u, 10u, 99u, 100u, 199u, 255u}) {
    for (int position = 0; position < 4; ++position) {
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_addr.s_addr = htonl((octet << (8 * position)) | (position == 0 ? 0x07000000u : 0x00000003u));
      char expected[INET_ADDRSTRLEN];
      ASSERT_NE(inet_ntop(AF_INET, &address.sin_addr, expected, sizeof expected), nullptr);
      SocketAddress formatted(reinterpret_cast<const sockaddr*>(&address), sizeof address);
      EXPECT_EQ(formatted.ip(), expected) << "octet " << octet << " at " << position;
    }
  }
  EXPECT_EQ(SocketAddress::from_ip("255.255.255.255", 1).ip(), "255.255.255.255");
  EXPECT_EQ(SocketAddress::from_ip("0.0.0.0", 1).ip(), "0.0.0.0");
}

TEST(netutil, SocketAddressFormatsIpv4AndBracketedIpv6WithPort) {
  SocketAddress v4 = SocketAddress::from_ip("127.0.0.1", 8080);
  EXPECT_EQ(v4.family(), AF_INET);
  EXPECT_EQ(v4.ip(), "127.0.0.1");
  EXPECT_EQ(v4.port(), 8080);
  EXPECT_EQ(v4.to_string(), "127.0.0.1:8080");
  EXPECT_TRUE(v4.is_loopback());

  SocketAddress v6 = SocketAddress::from_ip("::1", 8080);
  EXPECT_EQ(v6.family(), AF_INET6);
  EXPECT_EQ(v6.ip(), "::1");
  EXPECT_EQ(v6.to_string(), "[::1]:8080");
  EXPECT_TRUE(v6.is_loopback());

  EXPECT_FALSE(SocketAddress::from_ip("10.1.2.3", 1).is_loopback());
  EXPECT_EQ(SocketAddress::from_ip("10.1.2.3", 1), SocketAddress::from_ip("10.1.2.3", 1));
  EXPECT_FALSE(SocketAddress::from_ip("10.1.2.3", 1) == SocketAddress::from_ip("10.1.2.3", 2));
  EXPECT_TRUE(SocketAddress().empty());
  EXPECT_EQ(SocketAddress().to_string(), "");
  EXPECT_THROW(SocketAddress::from_ip("localhost", 1), std::invalid_argument);
}

TEST(netutil, IsValidIpAcceptsLiteralsAndRejectsNamesAndJunk) {
  for (const char* ip : {"127.0.0.1", "4.4.4.4", "::1", "2620:0:1cfe:face:b00c::3", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(is_valid_ip(ip)) << ip;
  }
  for (std::string ip : {std::string("www.google.com"), std::string("localhost"), std::string("4.4.4.4<"),
                         std::string(" 127.0.0.1"), std::string(""), std::string(" "), std::string("\n"),
                         std::string("\0", 1), std::string("127.0.0.1\0", 10), std::string(100, 'a')}) {
    EXPECT_FALSE(is_valid_ip(ip)) << "'" << ip << "'";
  }
}

// ---- add_accept_handler --------------------------------------------------------------------

// The listen backlog here is larger than the default so that all 300 connections are
// queued in the kernel before the loop runs (with a backlog of 128 the kernel would drop
// the surplus SYNs and the clients would retry only after a retransmission timeout of a
// second or more).
constexpr int kBurst = 300;
constexpr int kBurstBacklog = 512;

TEST(netutil, AcceptHandlerAcceptsThreeHundredQueuedConnectionsWithoutLosingAny) {
  IOLoop loop;
  std::vector<int> listeners = bind_sockets(0, "127.0.0.1", AF_INET, kBurstBacklog);
  SocketAddress target = socket_address(listeners[0]);

  std::vector<int> clients;
  std::set<uint16_t> client_ports;
  for (int i = 0; i < kBurst; ++i) {
    clients.push_back(start_connect(target));
    client_ports.insert(socket_port(clients.back()));
  }

  std::vector<int> accepted;
  std::set<uint16_t> peer_ports;
  Future<void> all_accepted;
  auto remove = add_accept_handler(listeners[0], [&](int fd, SocketAddress peer) {
    EXPECT_TRUE(fcntl(fd, F_GETFL) & O_NONBLOCK);
    EXPECT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    EXPECT_EQ(peer.ip(), "127.0.0.1");
    accepted.push_back(fd);
    peer_ports.insert(peer.port());
    if (accepted.size() == kBurst) all_accepted.set_result();
  });
  loop.run_sync([&] { return all_accepted; }, 20s);
  remove();

  EXPECT_EQ(accepted.size(), static_cast<size_t>(kBurst));
  EXPECT_EQ(peer_ports, client_ports);
  close_all(accepted);
  close_all(clients);
  close_all(listeners);
}

TEST(netutil, AcceptHandlerAcceptsOneConnectionPerReadinessEvent) {
  IOLoop loop;
  std::vector<int> listeners = bind_sockets(0, "127.0.0.1", AF_INET, kBurstBacklog);
  SocketAddress target = socket_address(listeners[0]);
  std::vector<int> clients;
  for (int i = 0; i < kBurst; ++i) clients.push_back(start_connect(target));
  std::this_thread::sleep_for(100ms);  // let every handshake complete

  std::vector<int> accepted;
  auto remove = add_accept_handler(listeners[0], [&](int fd, SocketAddress) { accepted.push_back(fd); });
  // A callback that re-queues itself runs once per loop iteration, between two polls:
  // it sees what each readiness event accepted.
  std::vector<size_t> per_iteration;
  Future<void> done;
  std::function<void()> observe = [&] {
    per_iteration.push_back(accepted.size());
    if (accepted.size() == kBurst || per_iteration.size() > 10000) {
      done.set_result();
    } else {
      loop.add_callback(observe);
    }
  };
  loop.run_sync([&] {
    observe();
    return done;
  }, 20s);
  remove();

  ASSERT_EQ(accepted.size(), static_cast<size_t>(kBurst));
  size_t previous = 0;
  std::vector<size_t> rounds;
  for (size_t total : per_iteration) {
    if (total != previous) rounds.push_back(total - previous);
    previous = total;
  }
  // 300 queued connections take 300 events, one each.
  EXPECT_EQ(rounds, std::vector<size_t>(kBurst, 1));
  close_all(accepted);
  close_all(clients);
  close_all(listeners);
}

TEST(netutil, AcceptHandlerRemoveStopsAcceptingAndLeavesConnectionsQueued) {
  IOLoop loop;
  std::vector<int> listeners = bind_sockets(0, "127.0.0.1");
  int calls = 0;
  auto remove = add_accept_handler(listeners[0], [&](int fd, SocketAddress) {
    ++calls;
    ::close(fd);
  });
  remove();
  remove();  // idempotent
  int client = blocking_connect(socket_address(listeners[0]));
  loop.run_sync([] { return sleep(100ms); });
  EXPECT_EQ(calls, 0);
  int queued = ::accept(listeners[0], nullptr, nullptr);  // still waiting in the kernel
  EXPECT_GE(queued, 0);
  ::close(queued);
  ::close(client);
  close_all(listeners);
}

TEST(netutil, AcceptHandlerCallbackExceptionIsLoggedAndTheRoundContinues) {
  IOLoop loop;
  std::vector<int> listeners = bind_sockets(0, "127.0.0.1");
  SocketAddress target = socket_address(listeners[0]);
  std::vector<int> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(blocking_connect(target));
  int calls = 0;
  Future<void> three;
  auto remove = add_accept_handler(listeners[0], [&](int fd, SocketAddress) {
    ::close(fd);
    if (++calls == 3) three.set_result();
    throw std::runtime_error("callback failure");
  });
  testing::internal::CaptureStderr();
  loop.run_sync([&] { return three; }, 5s);
  std::string log = testing::internal::GetCapturedStderr();
  EXPECT_EQ(calls, 3);
  EXPECT_NE(log.find("Error in connection callback"), std::string::npos) << log;
  EXPECT_NE(log.find("callback failure"), std::string::npos) << log;
  remove();
  close_all(clients);
  close_all(listeners);
}

// Exit codes of the EMFILE child process.
enum EmfileChildResult {
  kEmfileOk = 0,
  kEmfileSetupFailed = 10,
  kEmfileAcceptedWhileExhausted = 11,  // the descriptor table was not really full
  kEmfileSpun = 12,                    // too much CPU while exhausted: a busy loop
  kEmfileNotRecovered = 13,            // connections not accepted after fds were freed
  kEmfileLoopDied = 14,
};
constexpr int kEmfileClients = 5;

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Runs in a forked child: a server whose descriptor table is full for one second.
int run_emfile_child(int report_fd) {
  try {
    IOLoop loop;
    std::vector<int> listeners = bind_sockets(0, "127.0.0.1");
    int accepted = 0;
    Future<void> all_accepted;
    auto remove = add_accept_handler(listeners[0], [&](int fd, SocketAddress) {
      ::close(fd);
      if (++accepted == kEmfileClients) all_accepted.set_result();
    });

    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = 64;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) return kEmfileSetupFailed;

    // The table is filled from inside the running loop, after run_sync's own set-up:
    // UBSan's vptr check opens a pipe the first time it sees a type, so every type the
    // exhausted phase touches must have been seen before (a sanitizer artefact only).
    std::vector<int> fillers;
    double cpu_at_start = 0;
    int result = kEmfileOk;
    auto exhaust = [&] {
      for (;;) {
        int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0) break;
        fillers.push_back(fd);
      }
      if (errno != EMFILE) {
        result = kEmfileSetupFailed;
        loop.stop();
        return;
      }
      // Only now may the parent connect: its connections must meet a full table.
      uint16_t port = socket_port(listeners[0]);
      if (::write(report_fd, &port, sizeof port) != sizeof port) result = kEmfileSetupFailed;
      cpu_at_start = cpu_seconds();
      // One second exhausted: the parent's connections wait in the queue meanwhile.
      loop.call_later(1s, [&] {
        double used = cpu_seconds() - cpu_at_start;
        if (accepted != 0) result = kEmfileAcceptedWhileExhausted;
        // Re-trying every 100 ms costs next to nothing; a level-triggered spin burns the
        // whole second.
        if (used > 0.3) result = kEmfileSpun;
        for (int fd : fillers) ::close(fd);
      });
    };
    try {
      loop.run_sync([&] {
        loop.add_callback(exhaust);
        return all_accepted;
      }, 5s);
    } catch (const TimeoutError&) {
      if (result == kEmfileOk) result = kEmfileNotRecovered;
    }
    ::close(report_fd);
    remove();
    close_all(listeners);
    return result;
  } catch (...) {
    return kEmfileLoopDied;
  }
}

TEST(netutil, AcceptHandlerPausesWithoutSpinningWhenOutOfDescriptorsAndRecovers) {
  // The descriptor limit is lowered in a child process so that this one is unaffected.
  int report[2];
  ASSERT_EQ(pipe2(report, O_CLOEXEC), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(report[0]);
    _exit(run_emfile_child(report[1]));
  }
  ::close(report[1]);
  uint16_t port = 0;
  pollfd wait_report{report[0], POLLIN, 0};
  ASSERT_EQ(poll(&wait_report, 1, 10000), 1);
  ASSERT_EQ(::read(report[0], &port, sizeof port), static_cast<ssize_t>(sizeof port));
  ::close(report[0]);

  // The child reports its port once its descriptor table is full.
  std::vector<int> clients;
  for (int i = 0; i < kEmfileClients; ++i) clients.push_back(blocking_connect(SocketAddress::from_ip("127.0.0.1", port)));

  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + 15s;
  while (waitpid(child, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(child, SIGKILL);
      waitpid(child, &status, 0);
      FAIL() << "EMFILE child did not finish";
    }
    std::this_thread::sleep_for(10ms);
  }
  close_all(clients);
  ASSERT_TRUE(WIFEXITED(status)) << "child killed by signal " << WTERMSIG(status);
  switch (WEXITSTATUS(status)) {
    case kEmfileOk: break;
    case kEmfileSetupFailed: FAIL() << "could not exhaust the descriptor table"; break;
    case kEmfileAcceptedWhileExhausted: FAIL() << "connections were accepted while the table was full"; break;
    case kEmfileSpun: FAIL() << "the accept handler spun while out of descriptors"; break;
    case kEmfileNotRecovered: FAIL() << "connections were not accepted once descriptors were freed"; break;
    default: FAIL() << "child exited with " << WEXITSTATUS(status); break;
  }
}

// ---- Resolver -------------------------------------------------------------------------------

TEST(netutil, ResolverLocalhostResolvesToLoopbackAddressesWithThePort) {
  IOLoop loop;
  Resolver resolver;
  std::vector<SocketAddress> addresses =
      loop.run_sync([&] { return resolver.resolve("localhost", 8080); }, 10s);
  ASSERT_FALSE(addresses.empty());
  for (const SocketAddress& a : addresses) {
    EXPECT_TRUE(a.is_loopback()) << a.to_string();
    EXPECT_EQ(a.port(), 8080);
  }
}

TEST(netutil, ResolverIpLiteralResolvesAtOnceWithoutALookup) {
  IOLoop loop;
  Resolver resolver;
  Future<std::vector<SocketAddress>> result = resolver.resolve("::1", 443);
  ASSERT_TRUE(result.done());  // no executor round trip
  ASSERT_EQ(result.result().size(), 1u);
  EXPECT_EQ(result.result()[0].to_string(), "[::1]:443");
}

TEST(netutil, ResolverFailureIsAResolveErrorWithGaiText) {
  IOLoop loop;
  Resolver resolver;
  try {
    loop.run_sync([&] { return resolver.resolve("127.0.0.1", 80, AF_INET6); }, 10s);
    ADD_FAILURE() << "resolving an IPv4 literal as IPv6 succeeded";
  } catch (const ResolveError& e) {
    EXPECT_NE(e.gai_code(), 0);
    EXPECT_NE(std::string(e.what()).find(gai_strerror(e.gai_code())), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace squall
