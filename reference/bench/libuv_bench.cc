// libuv counterparts of ioloop_bench.cc: the same operations, counts and shapes on a
// uv_loop_t, so squall-bench reports the two loops side by side (load/bench_table.py
// --compare libuv pairs BM_Libuv_X with BM_X). Built only when pkg-config finds libuv
// (Debian's libuv1-dev; see reference/CMakeLists.txt).
//
// libuv handles are caller-owned and reused: each benchmark initialises its handles once,
// outside the timed region, and the timed region only starts/stops them, as a libuv
// program would. libuv polls once per loop iteration (epoll_wait with a zero timeout when
// there is nothing to wait for), which Squall skips when a callback stopped the loop; that
// is part of what a libuv iteration costs and is measured here.
#include <benchmark/benchmark.h>
#include <uv.h>

#include <cstdint>
#include <cstdlib>
#include <vector>

namespace {

void check(int rc) {
  if (rc != 0) std::abort();  // a libuv call failed: the numbers would mean nothing
}

// A loop with N handles of type H, each initialised with `init`; closed (handles first)
// when the benchmark ends.
template <typename H>
struct LoopWithHandles {
  uv_loop_t loop;
  std::vector<H> handles;

  LoopWithHandles(size_t n, int (*init)(uv_loop_t*, H*), void* data) : handles(n) {
    check(uv_loop_init(&loop));
    for (H& h : handles) {
      check(init(&loop, &h));
      h.data = data;
    }
  }
  ~LoopWithHandles() {
    for (H& h : handles) uv_close(reinterpret_cast<uv_handle_t*>(&h), nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);  // runs the close callbacks
    check(uv_loop_close(&loop));
  }
};

// ---- callbacks ------------------------------------------------------------------------
//
// Squall's add_callback(f) queues f to run on the next iteration. libuv has no callback
// queue; its primitive for "run this on the next iteration" is an idle handle
// (uv_idle_start: the callback runs in the next iteration's idle phase, and keeps the poll
// from blocking). One handle per pending callback, stopped by its own callback, is the
// honest equivalent: the same one-shot "queue a callback" operation done with libuv's own
// mechanism and nothing of ours on top. (A uv_prepare/uv_check handle behaves the same,
// only in a different phase. uv_async_send is not equivalent: it is the cross-thread
// wake-up, and sends coalesce — 1,000 sends before the loop runs give one callback.)
// Differences that remain: libuv runs started idle handles newest first (Squall: FIFO),
// and it is single-threaded (Squall's add_callback takes a lock to be thread-safe).

void on_idle_once(uv_idle_t* h) {
  ++*static_cast<int64_t*>(h->data);
  uv_idle_stop(h);
}

void BM_Libuv_CallbacksPerIteration(benchmark::State& state) {
  int64_t ran = 0;
  LoopWithHandles<uv_idle_t> l(static_cast<size_t>(state.range(0)), uv_idle_init, &ran);
  for (auto _ : state) {
    for (uv_idle_t& h : l.handles) check(uv_idle_start(&h, on_idle_once));
    // Returns when nothing is active: after the one iteration that ran the batch.
    uv_run(&l.loop, UV_RUN_DEFAULT);
  }
  state.SetItemsProcessed(ran);
}
BENCHMARK(BM_Libuv_CallbacksPerIteration)->Arg(1000);

// ---- timers ---------------------------------------------------------------------------

void on_timer(uv_timer_t* h) { ++*static_cast<int64_t*>(h->data); }

// uv_timer_start + uv_timer_stop: scheduling and cancelling timers that never fire (an
// hour away, as Squall's call_later(1h) + remove_timeout). libuv removes a stopped timer
// from its heap at once; the iteration Squall runs to drop cancelled entries is kept
// (UV_RUN_NOWAIT), though with nothing active libuv returns from it straight away.
void BM_Libuv_TimerScheduleCancel(benchmark::State& state) {
  int64_t unused = 0;
  LoopWithHandles<uv_timer_t> l(static_cast<size_t>(state.range(0)), uv_timer_init, &unused);
  int64_t n = 0;
  for (auto _ : state) {
    for (uv_timer_t& h : l.handles) check(uv_timer_start(&h, on_timer, 3600 * 1000, 0));
    for (uv_timer_t& h : l.handles) check(uv_timer_stop(&h));
    n += static_cast<int64_t>(l.handles.size());
    uv_run(&l.loop, UV_RUN_NOWAIT);
  }
  state.SetItemsProcessed(n);
}
BENCHMARK(BM_Libuv_TimerScheduleCancel)->Arg(1000);

// Timers that fire: N one-shot timers due now (timeout 0, as Squall's call_at(now)) run by
// one uv_run, which returns once they have fired (a fired one-shot timer is inactive).
void BM_Libuv_TimersFiring(benchmark::State& state) {
  int64_t ran = 0;
  LoopWithHandles<uv_timer_t> l(static_cast<size_t>(state.range(0)), uv_timer_init, &ran);
  for (auto _ : state) {
    for (uv_timer_t& h : l.handles) check(uv_timer_start(&h, on_timer, 0, 0));
    uv_run(&l.loop, UV_RUN_DEFAULT);
  }
  state.SetItemsProcessed(ran);
}
BENCHMARK(BM_Libuv_TimersFiring)->Arg(1000);

// ---- a round trip through the loop ---------------------------------------------------
//
// Squall's BM_CoroutineResumeThroughLoop: a coroutine awaits a future that a queued
// callback completes, N times in a row. That is two hops through the loop per round: the
// queued callback runs and sets the result, which queues the future's done-callbacks (as
// Tornado's futures do); they run on the next iteration and resume the coroutine, which
// queues the next callback. libuv has no futures or coroutines, so the counterpart is the
// same control flow in continuation-passing style with the same two hops: a "complete"
// callback queues a "resume" callback, which queues the next round's "complete" — each a
// one-shot idle handle as above. What the future and coroutine machinery add on top of
// plain callbacks shows as the difference.

struct RoundTrip {
  uv_idle_t* complete = nullptr;
  uv_idle_t* resume = nullptr;
  int64_t remaining = 0;
  int64_t rounds = 0;
};

void on_resume(uv_idle_t* h);

void on_complete(uv_idle_t* h) {
  auto* r = static_cast<RoundTrip*>(h->data);
  uv_idle_stop(h);
  check(uv_idle_start(r->resume, on_resume));
}

void on_resume(uv_idle_t* h) {
  auto* r = static_cast<RoundTrip*>(h->data);
  uv_idle_stop(h);
  ++r->rounds;
  if (--r->remaining > 0) check(uv_idle_start(r->complete, on_complete));
}

void BM_Libuv_CoroutineResumeThroughLoop(benchmark::State& state) {
  RoundTrip r;
  LoopWithHandles<uv_idle_t> l(2, uv_idle_init, &r);
  r.complete = &l.handles[0];
  r.resume = &l.handles[1];
  for (auto _ : state) {
    r.remaining = state.range(0);
    check(uv_idle_start(r.complete, on_complete));
    uv_run(&l.loop, UV_RUN_DEFAULT);  // 2 × N iterations
  }
  state.SetItemsProcessed(r.rounds);
}
BENCHMARK(BM_Libuv_CoroutineResumeThroughLoop)->Arg(1000);

}  // namespace
