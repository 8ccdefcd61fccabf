"""Loop layer (contracts.md §3): one probe scenario per case, and the expected trace.

The expected traces are those of Tornado 6.2's loop (asyncio-based IOLoop, gen.coroutine,
asyncio futures), as printed by conformance/probes/tornado_loop_probe.py; the reference
prints its own with squall-loop-probe. A case whose expectation the reference does not meet
for a documented reason is SHOULD, with the reason in its note.
"""

from ..bounded import run_bounded
from ..core import TORNADO, case, error, fail, mismatch, na, ok

SOURCE = TORNADO
TIMEOUT = 20.0

# scenario -> (title, level, expected lines, compare, note); compare is "exact" or "unordered".
SCENARIOS = {
    "callback_fifo": ("add_callback runs callbacks in FIFO order", "MUST",
                      ["cb 1", "cb 2", "cb 3", "cb 4", "cb 5"]),
    "callback_from_callback": ("callbacks queued by a callback run after those queued before it", "MUST",
                               ["a", "b", "a2", "b2"]),
    "callback_requeue_vs_timer": ("a self re-queuing callback does not starve a due timer", "MUST",
                                  ["spin 0", "timer", "spin 1", "spin 2", "spin 3", "spin 4"]),
    "callback_exception_continues": ("an exception in a callback is logged; the loop goes on", "MUST",
                                     ["after", "timer"]),
    "timer_exception_continues": ("an exception in a timer callback is logged; the loop goes on", "MUST",
                                  ["timer"]),
    "timers_different_deadlines": ("timers run in deadline order, not scheduling order", "MUST",
                                   ["timer 10", "timer 20", "timer 30"]),
    "timers_equal_deadlines": ("timers with equal deadlines all run (any order)", "MUST",
                               ["timer 1", "timer 2", "timer 3", "timer 4", "timer 5"], "unordered"),
    "timer_cancel_one": ("remove_timeout cancels one timer", "MUST", ["timer 1", "timer 3"]),
    "timer_cancel_many": ("cancelling every other of 100 timers", "MUST",
                          ["fired 50", "order " + " ".join(str(i) for i in range(0, 100, 2))]),
    "timer_cancel_compaction": ("cancelling 1000 of 1200 timers (past the compaction threshold)", "MUST",
                                ["scheduled 1200", "cancelled 1000", "fired 200", "in order yes", "first 0",
                                 "last 1194", "late"]),
    "timer_cancel_from_timer": ("a due timer cancelled by an earlier timer of the same iteration does not run",
                                "MUST", ["blocking timer", "timer 1", "cancelled 2", "timer 3"]),
    "timer_remove_after_run": ("removing a timer that already ran is harmless", "MUST",
                               ["timer 1", "removed 1 again", "timer 3"]),
    "call_later_zero_vs_add_callback": ("call_later(0) runs after callbacks queued around it", "MUST",
                                        ["callback 1", "callback 2", "timer"]),
    "timer_schedules_zero_timer": ("a timer's call_later(0) runs after its add_callback", "MUST",
                                   ["timer 1", "callback", "timer 2"]),
    "io_vs_timer": ("a readable fd and a call_later(0) timer registered together: I/O first", "MUST",
                    ["io", "timer"]),
    "io_vs_callback": ("a readable fd and a callback registered together: callback first", "SHOULD",
                       ["callback", "io"], "exact",
                       "reference prints io, callback: its iteration runs callbacks, then due timers, then "
                       "polls (PollIOLoop order), so an fd registered by a callback is polled at the end of "
                       "that same iteration and its handler runs before callbacks queued meanwhile; asyncio "
                       "polls at the start of the next iteration and appends I/O handlers after the callbacks "
                       "already in its ready queue"),
    "cross_thread_wake": ("add_callback from another thread wakes an idle loop", "MUST",
                          ["waiting", "from thread, on loop thread yes"]),
    "future_callbacks_order": ("done-callbacks run in registration order, after set_result returns", "MUST",
                               ["set", "done 1 42", "done 2 42", "done 3 42"]),
    "future_callback_on_done": ("a done-callback added to a done future runs on a later iteration", "MUST",
                                ["added", "done 1"]),
    "future_exception": ("done-callbacks see the exception", "MUST", ["exception boom"]),
    "future_callbacks_vs_add_callback": ("done-callbacks are queued at set_result, FIFO with add_callback", "MUST",
                                         ["callback 1", "done", "callback 2"]),
    "done_callback_exception": ("an exception in a done-callback does not stop the others", "MUST", ["done 2"]),
    "coroutine_eager_start": ("a coroutine runs up to its first suspension when called", "MUST",
                              ["before call", "coro start", "after call", "coro end", "awaited"]),
    "coroutine_chain": ("await a coroutine awaiting a coroutine (suspending)", "MUST",
                        ["outer start", "middle start", "inner start", "after call", "inner end",
                         "middle got 1", "outer got 2", "result 3"]),
    "coroutine_chain_sync": ("a chain that never suspends completes within the call", "MUST",
                             ["outer start", "middle start", "inner start", "inner end", "middle got 1",
                              "outer got 2", "after call", "result 3"]),
    "coroutine_exception": ("an exception propagates to the awaiting coroutine", "MUST", ["caught boom"]),
    "moment_interleave": ("moment interleaves two coroutines", "MUST",
                          ["a 0", "b 0", "a 1", "b 1", "a 2", "b 2"]),
    "moment_vs_callback": ("moment resumes after callbacks queued before it", "MUST",
                           ["coro 0", "callback", "coro 1"]),
    "sleep_order": ("sleep: the shorter sleeper wakes first", "MUST", ["b 10", "a 30"]),
    "sleep_zero": ("sleep(0) resumes two iterations later (timer, then done-callback)", "MUST",
                   ["sleep start", "callback 1", "callback 2", "sleep end", "callback 3"]),
    "with_timeout_expires": ("with_timeout raises TimeoutError when the inner future is late", "MUST",
                             ["timeout"]),
    "with_timeout_in_time": ("with_timeout passes the result through when in time", "MUST", ["result 7"]),
    "when_all_order": ("when_all (gen.multi) gives results in input order", "MUST",
                       ["done b", "done c", "done a", "results a b c"]),
    "when_all_failure": ("when_all (gen.multi) with a failure: fails after every child is done", "SHOULD",
                         ["done c", "done a", "error boom b", "end"], "exact",
                         "reference prints error boom b, done c, done a, end: squall::when_all fails as soon "
                         "as one child fails (like asyncio.gather); Tornado's gen.multi waits for every child "
                         "and only then raises"),
    "when_all_two_failures": ("when_all (gen.multi) with two failures: the first in list order is raised",
                              "SHOULD", ["done c", "error boom a", "end"], "exact",
                              "reference prints error boom b, done c, end: squall::when_all raises the first "
                              "failure in time order, at once; gen.multi raises the first in list order once "
                              "every child is done (later ones are logged)"),
    "spawn_exception": ("spawn_callback: runs next iteration; its exception is logged, the loop goes on",
                        "MUST", ["after spawn", "spawned start", "continued"]),
    "executor_result": ("executor work runs off the loop; the result is delivered on the loop", "MUST",
                        ["worker on loop thread no", "result 5, on loop thread yes"]),
    "executor_exception": ("an exception in executor work reaches the awaiting coroutine", "MUST",
                           ["error boom"]),
    "run_sync_result": ("run_sync returns the result, and can run again on the same loop", "MUST",
                        ["result 42", "again 43"]),
    "run_sync_timeout": ("run_sync with a timeout raises TimeoutError", "MUST", ["timeout"]),
    "run_sync_exception": ("run_sync re-raises the coroutine's exception", "MUST", ["error boom"]),
}

# Cases beyond Tornado: same scenario, stricter expectation.
EXTRA = {
    "timers_equal_deadlines_fifo": (
        "timers_equal_deadlines", "timers with equal deadlines run in scheduling order", "MAY",
        ["timer 1", "timer 2", "timer 3", "timer 4", "timer 5"], "exact",
        "beyond Tornado: Tornado 6.2's call_at converts the deadline to a delay for asyncio's call_later "
        "and asyncio's timer heap is not stable, so equal deadlines run in an arbitrary (often reversed) "
        "order; the reference breaks ties by insertion order"),
}



def run_scenario(cmd, scenario):
    """(exit status, trace lines, stderr), or (None, None, why) for a probe that hung, printed
    without end or could not run (bounded.run_bounded)."""
    cmd = cmd + [scenario]
    p = run_bounded(cmd, TIMEOUT)
    if p.problem:
        return None, None, f"{p.problem}: {' '.join(cmd)}"
    return p.returncode, p.stdout.decode("utf-8", "replace").splitlines(), p.stderr.decode("utf-8", "replace")


def loop_case(case_id, scenario, title, source, level, expected, compare="exact", note=""):
    @case(f"loop-{case_id}", "loop", title, source, level, note=note)
    def run(ctx):
        cmd = ctx.target.command("loop")
        rc, lines, err = run_scenario(cmd, scenario)
        if rc is None:
            return error(err)
        ctx.log(f"$ {' '.join(cmd)} {scenario}\n(exit {rc})\n" + "\n".join(lines) +
                "\n--- expected ---\n" + "\n".join(expected) +
                ("\n--- stderr ---\n" + err[-1500:] if err.strip() else ""))
        if rc == 2:
            return na(f"{ctx.target.name}'s probe does not know scenario {scenario}")
        if rc != 0:
            return fail(f"probe exited with status {rc}: {err.strip()[-200:]}")
        got, want = (sorted(lines), sorted(expected)) if compare == "unordered" else (lines, expected)
        if got == want:
            return ok("trace as expected" + (" (order not compared)" if compare == "unordered" else ""))
        return mismatch(level, f"trace {' | '.join(lines)!s:.200} != expected {' | '.join(expected)!s:.200}")
    return run


for _sid, _spec in SCENARIOS.items():
    loop_case(_sid, _sid, _spec[0], SOURCE, _spec[1], _spec[2], *_spec[3:])
for _cid, (_sid, _title, _level, _expected, _compare, _note) in EXTRA.items():
    loop_case(_cid, _sid, _title, "contracts.md §3", _level, _expected, _compare, _note)
