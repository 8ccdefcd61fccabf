// squall-loop-probe: the loop probe of the conformance contract (contracts.md §3).
//
//   squall-loop-probe <scenario>      runs one scenario on a fresh IOLoop, prints its trace
//   squall-loop-probe --list          prints the scenario names
//
// Each scenario schedules callbacks, timers, futures and coroutines and prints one line
// per observable event (names and values only: no times, no addresses), so that the
// trace can be compared with the one Tornado's loop produces for the same scenario
// (conformance/probes/tornado_loop_probe.py; the expected traces are in
// conformance/squall_conformance/cases/loop.py). Exit status 0 after the scenario, 2 for an unknown
// scenario, 1 if the scenario itself failed (an exception escaped it).
//
// Tornado's IOLoop.spawn_callback(f) runs f on the next iteration; its translation here
// is add_callback([] { spawn(f()); }) (squall's Task starts eagerly, as gen.coroutine).
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <cstdio>
#include <functional>
#include <initializer_list>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "squall/executor.h"
#include "squall/future.h"
#include "squall/ioloop.h"
#include "squall/log.h"
#include "squall/task.h"

namespace {

using namespace std::chrono_literals;
using squall::Future;
using squall::IOLoop;
using squall::Task;

void out(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

std::string error_text(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const squall::TimeoutError&) {
    return "timeout";
  } catch (const std::exception& e) {
    return e.what();
  }
}

// A scenario that runs as the main coroutine of run_sync.
using Main = Task<void> (*)(IOLoop&);

// ---- callbacks -----------------------------------------------------------------------

Task<void> callback_fifo(IOLoop& loop) {
  Future<void> finished;
  for (int i = 1; i <= 5; ++i) loop.add_callback([i] { out("cb " + std::to_string(i)); });
  loop.add_callback([finished]() mutable { finished.set_result(); });
  co_await finished;
}

Task<void> callback_from_callback(IOLoop& loop) {
  Future<void> finished;
  loop.add_callback([&loop] {
    out("a");
    loop.add_callback([] { out("a2"); });
  });
  loop.add_callback([&loop, finished] {
    out("b");
    loop.add_callback([finished]() mutable {
      out("b2");
      finished.set_result();
    });
  });
  co_await finished;
}

// A callback that re-queues itself does not starve a due timer.
Task<void> callback_requeue_vs_timer(IOLoop& loop) {
  Future<void> finished;
  auto spin = std::make_shared<std::function<void(int)>>();
  *spin = [&loop, finished, spin](int i) mutable {
    out("spin " + std::to_string(i));
    if (i == 4) {
      finished.set_result();
      *spin = nullptr;  // break the cycle
      return;
    }
    loop.add_callback([spin, i] { (*spin)(i + 1); });
  };
  loop.add_callback([spin] { (*spin)(0); });
  loop.call_later(0s, [] { out("timer"); });
  co_await finished;
}

Task<void> callback_exception_continues(IOLoop& loop) {
  Future<void> finished;
  loop.add_callback([] { throw std::runtime_error("boom"); });
  loop.add_callback([] { out("after"); });
  loop.call_later(10ms, [finished]() mutable {
    out("timer");
    finished.set_result();
  });
  co_await finished;
}

Task<void> timer_exception_continues(IOLoop& loop) {
  Future<void> finished;
  loop.call_later(0s, [] { throw std::runtime_error("boom"); });
  loop.call_later(10ms, [finished]() mutable {
    out("timer");
    finished.set_result();
  });
  co_await finished;
}

// ---- timers --------------------------------------------------------------------------

Task<void> timers_different_deadlines(IOLoop& loop) {
  Future<void> finished;
  loop.call_later(30ms, [finished]() mutable {
    out("timer 30");
    finished.set_result();
  });
  loop.call_later(10ms, [] { out("timer 10"); });
  loop.call_later(20ms, [] { out("timer 20"); });
  co_await finished;
}

Task<void> timers_equal_deadlines(IOLoop& loop) {
  Future<void> finished;
  auto deadline = loop.time() + 20ms;
  for (int i = 1; i <= 5; ++i) loop.call_at(deadline, [i] { out("timer " + std::to_string(i)); });
  loop.call_at(deadline + 10ms, [finished]() mutable { finished.set_result(); });
  co_await finished;
}

Task<void> timer_cancel_one(IOLoop& loop) {
  Future<void> finished;
  loop.call_later(10ms, [] { out("timer 1"); });
  auto t2 = loop.call_later(20ms, [] { out("timer 2"); });
  loop.call_later(30ms, [finished]() mutable {
    out("timer 3");
    finished.set_result();
  });
  loop.remove_timeout(t2);
  co_await finished;
}

Task<void> timer_cancel_many(IOLoop& loop) {
  Future<void> finished;
  auto base = loop.time() + 5ms;
  auto fired = std::make_shared<std::string>();
  auto count = std::make_shared<int>(0);
  std::vector<squall::TimeoutHandle> handles;
  for (int i = 0; i < 100; ++i) {
    handles.push_back(loop.call_at(base + i * 100us, [i, fired, count] {
      *fired += (fired->empty() ? "" : " ") + std::to_string(i);
      ++*count;
    }));
  }
  for (int i = 1; i < 100; i += 2) loop.remove_timeout(handles[i]);
  loop.call_at(base + 30ms, [finished, fired, count]() mutable {
    out("fired " + std::to_string(*count));
    out("order " + *fired);
    finished.set_result();
  });
  co_await finished;
}

// More than 512 cancelled entries making up more than half of the heap: compaction.
// Delays rather than deadlines, each later than the one before: the deadlines then rise
// whatever the clock does between the calls (Tornado's call_at turns a deadline into a
// delay with a clock read of its own, so deadlines 20 µs apart could swap places when
// the process stalled between two reads).
Task<void> timer_cancel_compaction(IOLoop& loop) {
  Future<void> finished;
  struct State {
    int count = 0;
    int last = -1;
    int first = -1;
    bool ordered = true;
  };
  auto state = std::make_shared<State>();
  std::vector<squall::TimeoutHandle> handles;
  for (int i = 0; i < 1200; ++i) {
    handles.push_back(loop.call_later(20ms + i * 20us, [i, state] {
      if (state->first < 0) state->first = i;
      if (i <= state->last) state->ordered = false;
      state->last = i;
      ++state->count;
    }));
  }
  out("scheduled 1200");
  int cancelled = 0;
  for (int i = 0; i < 1200; ++i) {
    if (i % 6 != 0) {
      loop.remove_timeout(handles[i]);
      ++cancelled;
    }
  }
  out("cancelled " + std::to_string(cancelled));
  loop.call_later(70ms, [finished, state]() mutable {
    out("fired " + std::to_string(state->count));
    out(std::string("in order ") + (state->ordered ? "yes" : "no"));
    out("first " + std::to_string(state->first));
    out("last " + std::to_string(state->last));
    out("late");
    finished.set_result();
  });
  co_await finished;
}

// Two timers due in the same iteration (a blocking timer before them lets both fall due);
// the first cancels the second, which then does not run.
Task<void> timer_cancel_from_timer(IOLoop& loop) {
  Future<void> finished;
  auto base = loop.time() + 10ms;
  auto t2 = std::make_shared<squall::TimeoutHandle>();
  loop.call_at(base - 5ms, [] {
    out("blocking timer");
    std::this_thread::sleep_for(15ms);
  });
  loop.call_at(base, [&loop, t2] {
    out("timer 1");
    loop.remove_timeout(*t2);
    out("cancelled 2");
  });
  *t2 = loop.call_at(base + 1ms, [] { out("timer 2"); });
  loop.call_at(base + 30ms, [finished]() mutable {
    out("timer 3");
    finished.set_result();
  });
  co_await finished;
}

Task<void> timer_remove_after_run(IOLoop& loop) {
  Future<void> finished;
  auto t1 = std::make_shared<squall::TimeoutHandle>();
  *t1 = loop.call_later(10ms, [] { out("timer 1"); });
  loop.call_later(20ms, [&loop, t1] {
    loop.remove_timeout(*t1);
    out("removed 1 again");
  });
  loop.call_later(30ms, [finished]() mutable {
    out("timer 3");
    finished.set_result();
  });
  co_await finished;
}

Task<void> call_later_zero_vs_add_callback(IOLoop& loop) {
  Future<void> finished;
  loop.add_callback([] { out("callback 1"); });
  loop.call_later(0s, [finished]() mutable {
    out("timer");
    finished.set_result();
  });
  loop.add_callback([] { out("callback 2"); });
  co_await finished;
}

Task<void> timer_schedules_zero_timer(IOLoop& loop) {
  Future<void> finished;
  loop.call_later(10ms, [&loop, finished] {
    out("timer 1");
    loop.call_later(0s, [finished]() mutable {
      out("timer 2");
      finished.set_result();
    });
    loop.add_callback([] { out("callback"); });
  });
  co_await finished;
}

// ---- I/O against callbacks and timers --------------------------------------------------

struct SocketPair {
  int fds[2] = {-1, -1};
  SocketPair() {
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) throw std::runtime_error("socketpair");
  }
  ~SocketPair() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
};

// A readable fd and one other event in the same iteration: `schedule` queues the other
// (a due timer, a callback), which prints `other` when it runs.
Task<void> io_vs(IOLoop& loop, const char* other, std::function<void(std::function<void()>)> schedule) {
  Future<void> finished;
  SocketPair pair;
  (void)!::write(pair.fds[1], "x", 1);
  auto seen = std::make_shared<int>(0);
  auto note = [seen, finished](const char* what) mutable {
    out(what);
    if (++*seen == 2) finished.set_result();
  };
  loop.add_handler(
      pair.fds[0],
      [&loop, note](int fd, uint32_t) mutable {
        char c;
        (void)!::read(fd, &c, 1);
        loop.remove_handler(fd);
        note("io");
      },
      IOLoop::READ);
  schedule([note, other]() mutable { note(other); });
  co_await finished;
}

Task<void> io_vs_timer(IOLoop& loop) {
  return io_vs(loop, "timer", [&loop](std::function<void()> fire) { loop.call_later(0s, std::move(fire)); });
}

Task<void> io_vs_callback(IOLoop& loop) {
  return io_vs(loop, "callback", [&loop](std::function<void()> fire) { loop.add_callback(std::move(fire)); });
}

Task<void> cross_thread_wake(IOLoop& loop) {
  Future<void> finished;
  auto loop_thread = std::this_thread::get_id();
  auto safety = loop.call_later(5s, [] { out("safety timer"); });
  std::thread worker([&loop, finished, loop_thread] {
    std::this_thread::sleep_for(50ms);
    loop.add_callback([finished, loop_thread]() mutable {
      out(std::string("from thread, on loop thread ") + (std::this_thread::get_id() == loop_thread ? "yes" : "no"));
      finished.set_result();
    });
  });
  out("waiting");
  co_await finished;
  worker.join();
  loop.remove_timeout(safety);
}

// ---- futures -------------------------------------------------------------------------

Task<void> future_callbacks_order(IOLoop&) {
  Future<int> f;
  Future<void> finished;
  f.add_done_callback([](Future<int>& d) { out("done 1 " + std::to_string(d.result())); });
  f.add_done_callback([](Future<int>& d) { out("done 2 " + std::to_string(d.result())); });
  f.add_done_callback([finished](Future<int>& d) mutable {
    out("done 3 " + std::to_string(d.result()));
    finished.set_result();
  });
  f.set_result(42);
  out("set");
  co_await finished;
}

Task<void> future_callback_on_done(IOLoop&) {
  Future<int> f;
  Future<void> finished;
  f.set_result(1);
  f.add_done_callback([finished](Future<int>& d) mutable {
    out("done " + std::to_string(d.result()));
    finished.set_result();
  });
  out("added");
  co_await finished;
}

Task<void> future_exception(IOLoop&) {
  Future<int> f;
  Future<void> finished;
  f.add_done_callback([finished](Future<int>& d) mutable {
    out("exception " + error_text(d.exception()));
    finished.set_result();
  });
  f.set_exception(std::runtime_error("boom"));
  co_await finished;
}

Task<void> future_callbacks_vs_add_callback(IOLoop& loop) {
  Future<int> f;
  Future<void> finished;
  f.add_done_callback([](Future<int>&) { out("done"); });
  loop.add_callback([] { out("callback 1"); });
  f.set_result(1);
  loop.add_callback([finished]() mutable {
    out("callback 2");
    finished.set_result();
  });
  co_await finished;
}

Task<void> done_callback_exception(IOLoop&) {
  Future<int> f;
  Future<void> finished;
  f.add_done_callback([](Future<int>&) { throw std::runtime_error("boom"); });
  f.add_done_callback([finished](Future<int>&) mutable {
    out("done 2");
    finished.set_result();
  });
  f.set_result(1);
  co_await finished;
}

// ---- coroutines ----------------------------------------------------------------------

Task<void> eager_coro() {
  out("coro start");
  co_await squall::moment();
  out("coro end");
}

Task<void> coroutine_eager_start(IOLoop&) {
  out("before call");
  Task<void> t = eager_coro();
  out("after call");
  co_await t;
  out("awaited");
}

Task<int> inner(bool suspend) {
  out("inner start");
  if (suspend) co_await squall::sleep(10ms);
  out("inner end");
  co_return 1;
}
Task<int> middle(bool suspend) {
  out("middle start");
  int x = co_await inner(suspend);
  out("middle got " + std::to_string(x));
  co_return x + 1;
}
Task<int> outer(bool suspend) {
  out("outer start");
  int x = co_await middle(suspend);
  out("outer got " + std::to_string(x));
  co_return x + 1;
}

Task<void> coroutine_chain(IOLoop&) {
  Task<int> t = outer(true);
  out("after call");
  int x = co_await t;
  out("result " + std::to_string(x));
}

Task<void> coroutine_chain_sync(IOLoop&) {
  Task<int> t = outer(false);
  out("after call");
  int x = co_await t;
  out("result " + std::to_string(x));
}

Task<int> failing_coro() {
  co_await squall::moment();
  throw std::runtime_error("boom");
}

Task<void> coroutine_exception(IOLoop&) {
  try {
    co_await failing_coro();
    out("no exception");
  } catch (const std::exception& e) {
    out(std::string("caught ") + e.what());
  }
}

Task<void> spinner(std::string name) {
  for (int i = 0; i < 3; ++i) {
    out(name + " " + std::to_string(i));
    co_await squall::moment();
  }
}

Task<void> moment_interleave(IOLoop&) {
  Task<void> a = spinner("a");
  Task<void> b = spinner("b");
  co_await a;
  co_await b;
}

Task<void> moment_coro() {
  out("coro 0");
  co_await squall::moment();
  out("coro 1");
}

Task<void> moment_vs_callback(IOLoop& loop) {
  loop.add_callback([] { out("callback"); });
  co_await moment_coro();
}

Task<void> sleeper(std::string name, squall::Duration d) {
  co_await squall::sleep(d);
  out(name);
}

Task<void> sleep_order(IOLoop&) {
  Task<void> a = sleeper("a 30", 30ms);
  Task<void> b = sleeper("b 10", 10ms);
  co_await a;
  co_await b;
}

Task<void> sleep_zero_coro() {
  out("sleep start");
  co_await squall::sleep(0s);
  out("sleep end");
}

Task<void> sleep_zero(IOLoop& loop) {
  loop.add_callback([&loop] {
    out("callback 1");
    loop.add_callback([&loop] {
      out("callback 2");
      loop.add_callback([] { out("callback 3"); });
    });
  });
  Task<void> t = sleep_zero_coro();
  co_await t;
  co_await squall::sleep(10ms);
}

Task<int> slow_value(squall::Duration d, int v) {
  co_await squall::sleep(d);
  co_return v;
}

Task<void> with_timeout_expires(IOLoop&) {
  try {
    int v = co_await squall::with_timeout(20ms, slow_value(200ms, 7));
    out("result " + std::to_string(v));
  } catch (const squall::TimeoutError&) {
    out("timeout");
  }
}

Task<void> with_timeout_in_time(IOLoop&) {
  try {
    int v = co_await squall::with_timeout(500ms, slow_value(10ms, 7));
    out("result " + std::to_string(v));
  } catch (const squall::TimeoutError&) {
    out("timeout");
  }
}

// A child of the when_all scenarios: after `delay` it returns its name or raises.
enum class Ending { returns, raises };
struct Child {
  squall::Duration delay;
  const char* name;
  Ending ending;
};

Task<std::string> run_child(Child child) {
  co_await squall::sleep(child.delay);
  if (child.ending == Ending::raises) throw std::runtime_error(std::string("boom ") + child.name);
  out(std::string("done ") + child.name);
  co_return child.name;
}

std::vector<Task<std::string>> start_children(std::initializer_list<Child> children) {
  std::vector<Task<std::string>> tasks;
  for (const Child& child : children) tasks.push_back(run_child(child));
  return tasks;
}

Task<void> when_all_order(IOLoop&) {
  std::vector<Task<std::string>> tasks =
      start_children({{30ms, "a", Ending::returns}, {10ms, "b", Ending::returns}, {20ms, "c", Ending::returns}});
  std::vector<std::string> results = co_await squall::when_all(tasks);
  std::string line = "results";
  for (auto& r : results) line += " " + r;
  out(line);
}

// What when_all reports when children fail, then what the others still print.
Task<void> report_when_all_failure(std::vector<Task<std::string>> tasks) {
  try {
    co_await squall::when_all(tasks);
    out("no error");
  } catch (const std::exception& e) {
    out(std::string("error ") + e.what());
  }
  co_await squall::sleep(50ms);
  out("end");
}

Task<void> when_all_failure(IOLoop&) {
  return report_when_all_failure(
      start_children({{30ms, "a", Ending::returns}, {10ms, "b", Ending::raises}, {20ms, "c", Ending::returns}}));
}

// Two failures: which one when_all reports (Tornado: the first in list order, once every
// child is done).
Task<void> when_all_two_failures(IOLoop&) {
  return report_when_all_failure(
      start_children({{20ms, "a", Ending::raises}, {10ms, "b", Ending::raises}, {30ms, "c", Ending::returns}}));
}

Task<void> spawned() {
  out("spawned start");
  co_await squall::moment();
  throw std::runtime_error("boom");
}

Task<void> spawn_exception(IOLoop& loop) {
  loop.add_callback([] { squall::spawn(spawned()); });  // IOLoop.spawn_callback
  out("after spawn");
  co_await squall::sleep(10ms);
  out("continued");
}

Task<void> executor_result(IOLoop&) {
  squall::ThreadPoolExecutor executor(2);
  auto loop_thread = std::this_thread::get_id();
  int v = co_await executor.submit([loop_thread] {
    out(std::string("worker on loop thread ") + (std::this_thread::get_id() == loop_thread ? "yes" : "no"));
    return 5;
  });
  out("result " + std::to_string(v) + ", on loop thread " + (std::this_thread::get_id() == loop_thread ? "yes" : "no"));
}

Task<void> executor_exception(IOLoop&) {
  squall::ThreadPoolExecutor executor(1);
  try {
    co_await executor.submit([]() -> int { throw std::runtime_error("boom"); });
    out("no error");
  } catch (const std::exception& e) {
    out(std::string("error ") + e.what());
  }
}

// ---- run_sync ------------------------------------------------------------------------

Task<int> value_after_moment(int v) {
  co_await squall::moment();
  co_return v;
}

void run_sync_result(IOLoop& loop) {
  out("result " + std::to_string(loop.run_sync([] { return value_after_moment(42); })));
  out("again " + std::to_string(loop.run_sync([] { return value_after_moment(43); })));
}

void run_sync_timeout(IOLoop& loop) {
  try {
    loop.run_sync([] { return slow_value(5s, 1); }, 50ms);
    out("no timeout");
  } catch (const squall::TimeoutError&) {
    out("timeout");
  }
}

Task<int> fail_after_moment() {
  co_await squall::moment();
  throw std::runtime_error("boom");
}

void run_sync_exception(IOLoop& loop) {
  try {
    loop.run_sync([] { return fail_after_moment(); });
    out("no error");
  } catch (const std::exception& e) {
    out(std::string("error ") + e.what());
  }
}

const std::map<std::string, Main>& main_scenarios() {
  static const std::map<std::string, Main> scenarios = {
      {"callback_fifo", callback_fifo},
      {"callback_from_callback", callback_from_callback},
      {"callback_requeue_vs_timer", callback_requeue_vs_timer},
      {"callback_exception_continues", callback_exception_continues},
      {"timer_exception_continues", timer_exception_continues},
      {"timers_different_deadlines", timers_different_deadlines},
      {"timers_equal_deadlines", timers_equal_deadlines},
      {"timer_cancel_one", timer_cancel_one},
      {"timer_cancel_many", timer_cancel_many},
      {"timer_cancel_compaction", timer_cancel_compaction},
      {"timer_cancel_from_timer", timer_cancel_from_timer},
      {"timer_remove_after_run", timer_remove_after_run},
      {"call_later_zero_vs_add_callback", call_later_zero_vs_add_callback},
      {"timer_schedules_zero_timer", timer_schedules_zero_timer},
      {"io_vs_timer", io_vs_timer},
      {"io_vs_callback", io_vs_callback},
      {"cross_thread_wake", cross_thread_wake},
      {"future_callbacks_order", future_callbacks_order},
      {"future_callback_on_done", future_callback_on_done},
      {"future_exception", future_exception},
      {"future_callbacks_vs_add_callback", future_callbacks_vs_add_callback},
      {"done_callback_exception", done_callback_exception},
      {"coroutine_eager_start", coroutine_eager_start},
      {"coroutine_chain", coroutine_chain},
      {"coroutine_chain_sync", coroutine_chain_sync},
      {"coroutine_exception", coroutine_exception},
      {"moment_interleave", moment_interleave},
      {"moment_vs_callback", moment_vs_callback},
      {"sleep_order", sleep_order},
      {"sleep_zero", sleep_zero},
      {"with_timeout_expires", with_timeout_expires},
      {"with_timeout_in_time", with_timeout_in_time},
      {"when_all_order", when_all_order},
      {"when_all_failure", when_all_failure},
      {"when_all_two_failures", when_all_two_failures},
      {"spawn_exception", spawn_exception},
      {"executor_result", executor_result},
      {"executor_exception", executor_exception},
  };
  return scenarios;
}

const std::map<std::string, void (*)(IOLoop&)>& direct_scenarios() {
  static const std::map<std::string, void (*)(IOLoop&)> scenarios = {
      {"run_sync_result", run_sync_result},
      {"run_sync_timeout", run_sync_timeout},
      {"run_sync_exception", run_sync_exception},
  };
  return scenarios;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <scenario> | --list\n", argv[0]);
    return 2;
  }
  std::string name = argv[1];
  if (name == "--list") {
    std::vector<std::string> names;
    for (auto& [n, _] : main_scenarios()) names.push_back(n);
    for (auto& [n, _] : direct_scenarios()) names.push_back(n);
    std::sort(names.begin(), names.end());
    for (auto& n : names) out(n);
    return 0;
  }
  auto m = main_scenarios().find(name);
  auto d = direct_scenarios().find(name);
  if (m == main_scenarios().end() && d == direct_scenarios().end()) {
    std::fprintf(stderr, "unknown scenario: %s\n", name.c_str());
    return 2;
  }
  try {
    IOLoop loop;
    if (m != main_scenarios().end()) {
      Main fn = m->second;
      loop.run_sync([fn, &loop] { return fn(loop); });
    } else {
      d->second(loop);
    }
    loop.close();
    return 0;
  } catch (...) {
    std::fprintf(stderr, "scenario %s failed: %s\n", name.c_str(), squall::describe_current_exception().c_str());
    return 1;
  }
}
