// squall-echo-server: a line echo server on TCPServer + IOStream::read_until.
//
//   squall-echo-server --port N [--address 127.0.0.1] [--processes 1] [--max-line 65536]
//                      [--log-level info]
//
// Echoes every "\n"-terminated line back to the client. Logs "listening on ADDRESS:PORT"
// (info) for each listening socket; with --port 0 the kernel picks the port and
// "port=NNNNN" is printed on stdout for scripts. SIGTERM or SIGINT stops it cleanly
// (exit status 0): the signal is taken through a signalfd registered on the loop. With
// --processes N != 1 the sockets are shared by N pre-forked workers (0: one per CPU); the
// supervisor forwards SIGTERM/SIGINT to them and exits 0 once they are gone.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "squall/stop_signals.h"
#include "squall/ioloop.h"
#include "squall/iostream.h"
#include "squall/log.h"
#include "squall/netutil.h"
#include "squall/process.h"
#include "squall/task.h"
#include "squall/tcpserver.h"

namespace {

using squall::LogCategory;
using squall::LogLevel;

class EchoServer : public squall::TCPServer {
 public:
  explicit EchoServer(size_t max_line) : max_line_(max_line) {}

  squall::Task<void> handle_stream(std::unique_ptr<squall::IOStream> stream, squall::SocketAddress address) override {
    size_t max_line = max_line_;  // not `this`: the server may be gone before the client
    squall::log(LogLevel::debug, LogCategory::general, "connection from {}", address.to_string());
    try {
      for (;;) {
        std::string line = co_await stream->read_until("\n", max_line);
        co_await stream->write(std::move(line));
      }
    } catch (const squall::StreamClosedError&) {
      // The client went away (or sent a line longer than --max-line).
    } catch (const squall::UnsatisfiableReadError&) {
    }
    squall::log(LogLevel::debug, LogCategory::general, "connection from {} closed", address.to_string());
  }

 private:
  size_t max_line_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Squall TCP line echo server"};
  int port = -1;
  std::string address = "127.0.0.1";
  int processes = 1;
  size_t max_line = 64 * 1024;
  std::string log_level = "info";
  app.add_option("--port", port, "TCP port (0: let the kernel choose, printed as port=N)")
      ->required()
      ->check(CLI::Range(0, 65535));
  app.add_option("--address", address, "address to listen on (\"\": all interfaces)")->capture_default_str();
  app.add_option("--processes", processes, "worker processes (1: no fork, 0: one per CPU)")->capture_default_str();
  app.add_option("--max-line", max_line, "longest line accepted, in bytes")->capture_default_str();
  app.add_option("--log-level", log_level, "debug, info, warning, error or none")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    squall::set_log_level(squall::parse_log_level(log_level));

    squall::block_stop_signals();  // before fork_processes: workers inherit the mask

    std::vector<int> sockets = squall::bind_sockets(static_cast<uint16_t>(port), address);
    for (int fd : sockets) {
      squall::log(LogLevel::info, LogCategory::general, "listening on {}", squall::socket_address(fd).to_string());
    }
    if (port == 0) {
      std::printf("port=%u\n", static_cast<unsigned>(squall::socket_port(sockets[0])));
      std::fflush(stdout);
    }
    if (processes != 1) squall::fork_processes(processes);  // returns in the workers only

    squall::IOLoop loop;
    EchoServer server(max_line);  // after the loop: destroyed before it
    server.add_sockets(std::move(sockets));

    squall::serve_until_stop_signal(loop, server);
    return 0;
  } catch (...) {
    return squall::log_program_failure("echo server");
  }
}
