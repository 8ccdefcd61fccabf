// squall-stream-probe: the stream probe of the conformance contract (contracts.md §2).
//
//   squall-stream-probe --port N [--max-buffer-size B] [--log-level warning]
//
// Listens on 127.0.0.1 (prints "port=N" once listening; --port 0 lets the kernel choose).
// For each connection: reads one command line ending in "\n", performs exactly one
// IOStream operation, writes the outcome, and reads the next command:
//
//   bytes N                     read_bytes(N)                 -> ok <len>\n<bytes>
//   partial N                   read_bytes(N, partial)        -> ok <len>\n<bytes>
//   until <hex-delim> <max>     read_until(delim, max)        -> ok ... | err unsatisfiable\n + close
//   regex <hex-pattern> <max>   read_until_regex(pattern, max) (bytes, Latin-1) -> as until
//   close                       read_until_close()            -> ok <len>\n<bytes>
//
// <max> may be "-" for no limit. Beyond the contract, for the suite's diagnostics: a read
// that fails because the stream closed answers "err closed\n", a full read buffer
// "err buffer-full\n", a malformed command "err command\n"; each then closes.
//
// The streams use IOStreamOptions::allow_half_close, so that `close` is answered after the
// peer half-closed. Unsatisfiable reads close the stream (as Tornado's do); the reply then
// goes through a dup() of the socket taken when the connection arrived.
// SIGTERM / SIGINT stop it cleanly (exit status 0).
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "squall/stop_signals.h"
#include "squall/ioloop.h"
#include "squall/iostream.h"
#include "squall/log.h"
#include "squall/netutil.h"
#include "squall/task.h"
#include "squall/tcpserver.h"

namespace {

using squall::IOStream;
using squall::LogCategory;
using squall::LogLevel;
using squall::Task;

std::optional<std::string> unhex(const std::string& hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    unsigned value = 0;
    auto [ptr, ec] = std::from_chars(hex.data() + i, hex.data() + i + 2, value, 16);
    if (ec != std::errc() || ptr != hex.data() + i + 2) return std::nullopt;
    out.push_back(static_cast<char>(value));
  }
  return out;
}

std::optional<size_t> parse_size(const std::string& text) {
  size_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

// The outcome of one command: a reply, and whether the connection ends after it.
struct Outcome {
  std::string reply;
  bool close_after = false;
};

// What a failed read answers: the error behind a StreamClosedError decides.
Outcome failure(std::exception_ptr error) {
  for (int depth = 0; error && depth < 4; ++depth) {
    try {
      std::rethrow_exception(error);
    } catch (const squall::UnsatisfiableReadError&) {
      return {"err unsatisfiable\n", true};
    } catch (const squall::StreamBufferFullError&) {
      return {"err buffer-full\n", true};
    } catch (const squall::StreamClosedError& e) {
      error = e.real_error();
      continue;
    } catch (...) {
      break;
    }
  }
  return {"err closed\n", true};
}

class StreamProbe : public squall::TCPServer {
 public:
  using TCPServer::TCPServer;

  Task<void> handle_stream(std::unique_ptr<IOStream> stream, squall::SocketAddress) override {
    // Kept for replies after the stream closed itself (unsatisfiable read, buffer full).
    int spare_fd = ::dup(stream->fd());
    squall::IOStreamOptions options = stream->options();
    try {
      for (;;) {
        std::string line;
        try {
          line = co_await stream->read_until("\n", 4096);
        } catch (...) {
          break;  // the client is done (or sent garbage)
        }
        line.pop_back();
        std::istringstream words(line);
        std::string verb, arg1, arg2, extra;
        words >> verb >> arg1 >> arg2 >> extra;
        Outcome outcome;
        try {
          std::string data;
          bool known = true;
          if ((verb == "bytes" || verb == "partial") && arg2.empty()) {
            auto n = parse_size(arg1);
            if (!n) known = false;
            else data = co_await stream->read_bytes(*n, verb == "partial");
          } else if ((verb == "until" || verb == "regex") && extra.empty() && !arg2.empty()) {
            auto pattern = unhex(arg1);
            std::optional<size_t> max;
            if (arg2 != "-") max = parse_size(arg2);
            if (!pattern || (arg2 != "-" && !max)) {
              known = false;
            } else if (verb == "until") {
              data = co_await stream->read_until(*pattern, max);
            } else {
              data = co_await stream->read_until_regex(std::string_view(*pattern), max);
            }
          } else if (verb == "close" && arg1.empty()) {
            data = co_await stream->read_until_close();
          } else {
            known = false;
          }
          if (known) {
            outcome.reply = "ok " + std::to_string(data.size()) + "\n" + data;
            outcome.close_after = verb == "close";
          } else {
            outcome = {"err command\n", true};
          }
        } catch (...) {
          outcome = failure(std::current_exception());
        }
        if (!stream->closed()) {
          co_await stream->write(std::move(outcome.reply));
        } else if (spare_fd >= 0) {
          IOStream spare(spare_fd, options);
          spare_fd = -1;
          co_await spare.write(std::move(outcome.reply));
        }
        if (outcome.close_after) break;
      }
    } catch (...) {
      // A write failed: the client went away.
    }
    if (spare_fd >= 0) ::close(spare_fd);
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Squall stream probe (conformance contract 2)"};
  int port = -1;
  size_t max_buffer_size = squall::IOStreamOptions{}.max_buffer_size;
  std::string log_level = "warning";
  app.add_option("--port", port, "TCP port on 127.0.0.1 (0: let the kernel choose)")->required()->check(CLI::Range(0, 65535));
  app.add_option("--max-buffer-size", max_buffer_size, "IOStream max_buffer_size")->capture_default_str();
  app.add_option("--log-level", log_level, "debug, info, warning, error or none")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    squall::set_log_level(squall::parse_log_level(log_level));
    squall::block_stop_signals();

    squall::IOLoop loop;
    squall::IOStreamOptions options;
    options.max_buffer_size = max_buffer_size;
    options.allow_half_close = true;
    StreamProbe server(options);
    server.listen(static_cast<uint16_t>(port), "127.0.0.1");
    std::printf("port=%u\n", static_cast<unsigned>(server.ports().at(0)));
    std::fflush(stdout);

    squall::serve_until_stop_signal(loop, server);
    return 0;
  } catch (...) {
    return squall::log_program_failure("stream probe");
  }
}
