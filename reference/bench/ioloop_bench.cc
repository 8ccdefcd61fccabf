// Loop microbenchmarks: callbacks per second, timer schedule/cancel, future round trips.
#include <benchmark/benchmark.h>

#include <array>
#include <memory>

#include "squall/future.h"
#include "squall/ioloop.h"
#include "squall/task.h"

using namespace squall;
using namespace std::chrono_literals;

// add_callback + one iteration running them: the cost of a queued callback.
static void BM_CallbacksPerIteration(benchmark::State& state) {
  IOLoop loop;
  const int64_t batch = state.range(0);
  int64_t ran = 0;
  for (auto _ : state) {
    for (int64_t i = 0; i < batch; ++i) loop.add_callback([&ran] { ++ran; });
    loop.add_callback([&loop] { loop.stop(); });
    loop.start();
  }
  state.SetItemsProcessed(ran);
}
BENCHMARK(BM_CallbacksPerIteration)->Arg(1000);

// The same with a capture that owns something (a shared_ptr, as a Future is): still
// stored inside the Callback, but moved and destroyed through its type's functions.
static void BM_CallbacksCapturingSharedPtr(benchmark::State& state) {
  IOLoop loop;
  const int64_t batch = state.range(0);
  auto counter = std::make_shared<int64_t>(0);
  for (auto _ : state) {
    for (int64_t i = 0; i < batch; ++i) loop.add_callback([counter] { ++*counter; });
    loop.add_callback([&loop] { loop.stop(); });
    loop.start();
  }
  state.SetItemsProcessed(*counter);
}
BENCHMARK(BM_CallbacksCapturingSharedPtr)->Arg(1000);

// Captures too big for the inline buffer: the heap path (one allocation per callback).
static void BM_CallbacksWithHeapCapture(benchmark::State& state) {
  IOLoop loop;
  const int64_t batch = state.range(0);
  int64_t ran = 0;
  std::array<char, Callback::kInlineSize> padding{};
  for (auto _ : state) {
    for (int64_t i = 0; i < batch; ++i) loop.add_callback([&ran, padding] { ran += 1 + padding[0]; });
    loop.add_callback([&loop] { loop.stop(); });
    loop.start();
  }
  state.SetItemsProcessed(ran);
}
BENCHMARK(BM_CallbacksWithHeapCapture)->Arg(1000);

// call_later + remove_timeout: scheduling and cancelling timers that never fire.
static void BM_TimerScheduleCancel(benchmark::State& state) {
  IOLoop loop;
  std::vector<TimeoutHandle> handles(static_cast<size_t>(state.range(0)));
  int64_t n = 0;
  for (auto _ : state) {
    for (auto& h : handles) h = loop.call_later(1h, [] {});
    for (auto& h : handles) loop.remove_timeout(h);
    n += static_cast<int64_t>(handles.size());
    // One iteration lets the loop drop (and compact) the cancelled entries.
    loop.add_callback([&loop] { loop.stop(); });
    loop.start();
  }
  state.SetItemsProcessed(n);
}
BENCHMARK(BM_TimerScheduleCancel)->Arg(1000);

// Timers that fire: schedule N due timers and run them.
static void BM_TimersFiring(benchmark::State& state) {
  IOLoop loop;
  const int64_t batch = state.range(0);
  int64_t ran = 0;
  for (auto _ : state) {
    auto now = loop.time();
    for (int64_t i = 0; i < batch; ++i) loop.call_at(now, [&ran] { ++ran; });
    loop.call_at(now, [&loop] { loop.stop(); });
    loop.start();
  }
  state.SetItemsProcessed(ran);
}
BENCHMARK(BM_TimersFiring)->Arg(1000);

// A coroutine awaiting a future completed by a callback: one resume through the loop.
static void BM_CoroutineResumeThroughLoop(benchmark::State& state) {
  IOLoop loop;
  const int64_t rounds = state.range(0);
  for (auto _ : state) {
    loop.run_sync([&]() -> Task<void> {
      for (int64_t i = 0; i < rounds; ++i) {
        Future<int> f;
        loop.add_callback([f]() mutable { f.set_result(1); });
        co_await f;
      }
    });
  }
  state.SetItemsProcessed(state.iterations() * rounds);
}
BENCHMARK(BM_CoroutineResumeThroughLoop)->Arg(1000);
