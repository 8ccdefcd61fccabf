// A chain of coroutines on one loop: blocking work handed to a ThreadPoolExecutor, each
// step bounded by with_timeout — Tornado's run_in_executor and gen.with_timeout.
//
//   example-coroutine-chain N
//
// Step 1 sums the squares of 1..N on a worker thread (the loop stays free meanwhile) and
// prints "sum of squares 1..N = S". Step 2 asks a worker for an answer that takes 500 ms
// but waits only 50 ms: with_timeout fails it with TimeoutError, the chain goes on and
// prints "slow step: timed out after 50 ms". Exit status 0 when both steps behaved so.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <thread>

#include "squall/executor.h"
#include "squall/ioloop.h"
#include "squall/task.h"

namespace {

using namespace std::chrono_literals;

squall::Task<uint64_t> sum_of_squares(squall::ThreadPoolExecutor& executor, uint64_t n) {
  // The lambda runs on a worker; co_await resumes this coroutine on the loop thread.
  co_return co_await executor.submit([n] {
    uint64_t sum = 0;
    for (uint64_t i = 1; i <= n; ++i) sum += i * i;
    return sum;
  });
}

squall::Task<int> slow_answer(squall::ThreadPoolExecutor& executor) {
  co_return co_await executor.submit([] {
    std::this_thread::sleep_for(500ms);  // stands for a slow disk or a slow service
    return 42;
  });
}

squall::Task<bool> chain(squall::ThreadPoolExecutor& executor, uint64_t n) {
  uint64_t sum = co_await squall::with_timeout(5s, sum_of_squares(executor, n));
  std::printf("sum of squares 1..%llu = %llu\n", static_cast<unsigned long long>(n),
              static_cast<unsigned long long>(sum));
  try {
    int answer = co_await squall::with_timeout(50ms, slow_answer(executor));
    std::printf("slow step: answered %d in time (it should not have)\n", answer);
    co_return false;
  } catch (const squall::TimeoutError&) {
    std::printf("slow step: timed out after 50 ms\n");
  }
  co_return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s N\n", argv[0]);
    return 2;
  }
  uint64_t n = std::stoull(argv[1]);
  squall::IOLoop loop;
  // Declared after the loop, so destroyed first: its destructor waits for the slow job,
  // whose late answer is then dropped with the loop's queue.
  squall::ThreadPoolExecutor executor(2);
  try {
    bool ok = loop.run_sync([&] { return chain(executor, n); });
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
