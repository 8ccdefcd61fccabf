// squall-client-bench: AsyncHTTPClient throughput — C concurrent keep-alive fetch loops
// on one client against one URL, for load/client_bench.py (which compares it with wrk
// and Tornado's client on the same server).
//
//   squall-client-bench --url http://127.0.0.1:PORT/plaintext [--concurrency 64]
//                       [--duration 5] [--requests N]
//
// C coroutines each loop `co_await client.fetch(url)` until the duration has passed or N
// requests have been started in all (whichever is first; N = 0, the default, means no
// count limit); each finishes the fetch it has in flight. The client has max_clients = C
// and keeps up to C idle connections per host, so all C fetches are in flight at once and
// each loop reuses a pooled keep-alive connection. One JSON line on stdout:
//   {"requests": ok responses, "seconds": wall time, "req_per_s": requests / seconds,
//    "errors": failed fetches (transport errors and non-200), "cpu_seconds": user + system
//    CPU of this process over the run, "connections_opened": n, "first_error": "..."|null}
// Exit status 0 when every fetch succeeded, 1 otherwise.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "squall/httpclient.h"
#include "squall/ioloop.h"
#include "squall/log.h"
#include "squall/task.h"
#include "squall/web.h"

namespace {

using squall::Clock;

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

struct Run {
  std::string url;
  squall::TimePoint deadline;
  int64_t max_requests = 0;  // 0 = no limit
  int64_t started = 0;
  int64_t ok = 0;
  int64_t errors = 0;
  std::optional<std::string> first_error;

  bool more() const { return Clock::now() < deadline && (max_requests == 0 || started < max_requests); }
  void fail(std::string why) {
    ++errors;
    if (!first_error) first_error = std::move(why);
  }
};

squall::Task<void> fetch_loop(squall::AsyncHTTPClient& client, Run& run) {
  while (run.more()) {
    ++run.started;
    try {
      squall::HTTPResponse response = co_await client.fetch(run.url);
      if (response.code == 200) {
        ++run.ok;
      } else {
        run.fail("HTTP " + std::to_string(response.code));
      }
    } catch (const std::exception& e) {
      run.fail(e.what());
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"AsyncHTTPClient throughput: concurrent keep-alive fetch loops", "squall-client-bench"};
  std::string url;
  size_t concurrency = 64;
  double duration = 5;
  int64_t requests = 0;
  app.add_option("--url", url, "http:// URL to fetch")->required();
  app.add_option("--concurrency,-c", concurrency, "concurrent fetch loops (default 64)")->check(CLI::PositiveNumber);
  app.add_option("--duration,-d", duration, "seconds (default 5)")->check(CLI::PositiveNumber);
  app.add_option("--requests,-n", requests, "stop after starting this many fetches (default 0: no limit)")
      ->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);
  squall::set_log_level(squall::LogLevel::error);

  squall::IOLoop loop;
  squall::ClientOptions options;
  options.max_clients = concurrency;
  options.max_idle_per_host = concurrency;
  squall::AsyncHTTPClient client(options);
  Run run;
  run.url = url;
  run.max_requests = requests;
  auto length = std::chrono::duration_cast<squall::Duration>(std::chrono::duration<double>(duration));

  double cpu0 = cpu_seconds();
  auto t0 = Clock::now();
  run.deadline = t0 + length;
  try {
    // Bounded: the loops stop starting fetches at the deadline; a fetch in flight then
    // ends within its request_timeout (20 s), so this never waits much beyond that.
    loop.run_sync(
        [&] {
          std::vector<squall::Task<void>> loops;
          for (size_t i = 0; i < concurrency; ++i) loops.push_back(fetch_loop(client, run));
          return squall::when_all(loops);
        },
        length + std::chrono::seconds(30));
  } catch (const std::exception& e) {
    run.fail(std::string("run: ") + e.what());
  }
  double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  double cpu = cpu_seconds() - cpu0;
  size_t opened = client.connections_opened();
  client.close();

  std::printf(
      "{\"requests\": %lld, \"seconds\": %.4f, \"req_per_s\": %.1f, \"errors\": %lld, \"cpu_seconds\": %.4f, "
      "\"connections_opened\": %zu, \"concurrency\": %zu, \"first_error\": %s}\n",
      static_cast<long long>(run.ok), seconds, seconds > 0 ? static_cast<double>(run.ok) / seconds : 0.0,
      static_cast<long long>(run.errors), cpu, opened, concurrency,
      run.first_error ? squall::json_quote(*run.first_error).c_str() : "null");
  return run.errors == 0 ? 0 : 1;
}
