#!/usr/bin/python3
"""Tornado loop probe (CONTRACTS.md §3): the Tornado 6.2 peer of squall-loop-probe.

    tornado_loop_probe.py <scenario>     runs one scenario on a fresh IOLoop, prints its trace
    tornado_loop_probe.py --list         prints the scenario names

Each scenario is the same program as in reference/apps/loop_probe.cc, written with
tornado.ioloop, tornado.gen (gen.coroutine: eager start, like squall's Task) and
tornado.concurrent. One line per observable event, no times or addresses. Exit status 0
after the scenario, 2 for an unknown scenario, 1 if the scenario itself failed.
"""
import concurrent.futures
import datetime
import logging
import os
import socket
import sys
import threading
import time

from tornado import gen
from tornado.concurrent import Future
from tornado.ioloop import IOLoop
from tornado.util import TimeoutError

MS = 0.001


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def error_text(exc):
    if isinstance(exc, (TimeoutError, gen.TimeoutError)):
        return "timeout"
    return str(exc)


MAIN = {}
DIRECT = {}


def scenario(fn):
    MAIN[fn.__name__] = fn
    return fn


def direct(fn):
    DIRECT[fn.__name__] = fn
    return fn


# ---- callbacks -------------------------------------------------------------------------

@scenario
@gen.coroutine
def callback_fifo(loop):
    finished = Future()
    for i in range(1, 6):
        loop.add_callback(lambda i=i: out("cb %d" % i))
    loop.add_callback(lambda: finished.set_result(None))
    yield finished


@scenario
@gen.coroutine
def callback_from_callback(loop):
    finished = Future()

    def a():
        out("a")
        loop.add_callback(lambda: out("a2"))

    def b2():
        out("b2")
        finished.set_result(None)

    def b():
        out("b")
        loop.add_callback(b2)

    loop.add_callback(a)
    loop.add_callback(b)
    yield finished


@scenario
@gen.coroutine
def callback_requeue_vs_timer(loop):
    finished = Future()

    def spin(i):
        out("spin %d" % i)
        if i == 4:
            finished.set_result(None)
            return
        loop.add_callback(spin, i + 1)

    loop.add_callback(spin, 0)
    loop.call_later(0, lambda: out("timer"))
    yield finished


@scenario
@gen.coroutine
def callback_exception_continues(loop):
    finished = Future()

    def boom():
        raise ValueError("boom")

    def timer():
        out("timer")
        finished.set_result(None)

    loop.add_callback(boom)
    loop.add_callback(lambda: out("after"))
    loop.call_later(10 * MS, timer)
    yield finished


@scenario
@gen.coroutine
def timer_exception_continues(loop):
    finished = Future()

    def boom():
        raise ValueError("boom")

    def timer():
        out("timer")
        finished.set_result(None)

    loop.call_later(0, boom)
    loop.call_later(10 * MS, timer)
    yield finished


# ---- timers ----------------------------------------------------------------------------

def _then_finish(finished, line):
    def cb():
        out(line)
        finished.set_result(None)
    return cb


@scenario
@gen.coroutine
def timers_different_deadlines(loop):
    finished = Future()
    loop.call_later(30 * MS, _then_finish(finished, "timer 30"))
    loop.call_later(10 * MS, lambda: out("timer 10"))
    loop.call_later(20 * MS, lambda: out("timer 20"))
    yield finished


@scenario
@gen.coroutine
def timers_equal_deadlines(loop):
    finished = Future()
    deadline = loop.time() + 20 * MS
    for i in range(1, 6):
        loop.call_at(deadline, lambda i=i: out("timer %d" % i))
    loop.call_at(deadline + 10 * MS, lambda: finished.set_result(None))
    yield finished


@scenario
@gen.coroutine
def timer_cancel_one(loop):
    finished = Future()
    loop.call_later(10 * MS, lambda: out("timer 1"))
    t2 = loop.call_later(20 * MS, lambda: out("timer 2"))
    loop.call_later(30 * MS, _then_finish(finished, "timer 3"))
    loop.remove_timeout(t2)
    yield finished


@scenario
@gen.coroutine
def timer_cancel_many(loop):
    finished = Future()
    base = loop.time() + 5 * MS
    fired = []
    handles = [loop.call_at(base + i * 0.1 * MS, lambda i=i: fired.append(i)) for i in range(100)]
    for i in range(1, 100, 2):
        loop.remove_timeout(handles[i])

    def end():
        out("fired %d" % len(fired))
        out("order " + " ".join(map(str, fired)))
        finished.set_result(None)

    loop.call_at(base + 30 * MS, end)
    yield finished


@scenario
@gen.coroutine
def timer_cancel_compaction(loop):
    # Delays, each later than the one before, rather than deadlines: call_at turns a
    # deadline into a delay with a clock read of its own, so deadlines 20 us apart could
    # swap places when the process stalled between two reads (seen under CI's load).
    finished = Future()
    fired = []
    handles = [loop.call_later(20 * MS + i * 0.02 * MS, lambda i=i: fired.append(i)) for i in range(1200)]
    out("scheduled 1200")
    cancelled = 0
    for i in range(1200):
        if i % 6 != 0:
            loop.remove_timeout(handles[i])
            cancelled += 1
    out("cancelled %d" % cancelled)

    def end():
        out("fired %d" % len(fired))
        out("in order " + ("yes" if fired == sorted(fired) else "no"))
        out("first %d" % (fired[0] if fired else -1))
        out("last %d" % (fired[-1] if fired else -1))
        out("late")
        finished.set_result(None)

    loop.call_later(70 * MS, end)
    yield finished


@scenario
@gen.coroutine
def timer_cancel_from_timer(loop):
    # Two timers due in the same iteration (a blocking timer before them lets both fall
    # due); the first cancels the second, which then does not run.
    finished = Future()
    base = loop.time() + 10 * MS
    t2 = []

    def blocking():
        out("blocking timer")
        time.sleep(15 * MS)

    def t1():
        out("timer 1")
        loop.remove_timeout(t2[0])
        out("cancelled 2")

    loop.call_at(base - 5 * MS, blocking)
    loop.call_at(base, t1)
    t2.append(loop.call_at(base + 1 * MS, lambda: out("timer 2")))
    loop.call_at(base + 30 * MS, _then_finish(finished, "timer 3"))
    yield finished


@scenario
@gen.coroutine
def timer_remove_after_run(loop):
    finished = Future()
    t1 = loop.call_later(10 * MS, lambda: out("timer 1"))

    def again():
        loop.remove_timeout(t1)
        out("removed 1 again")

    loop.call_later(20 * MS, again)
    loop.call_later(30 * MS, _then_finish(finished, "timer 3"))
    yield finished


@scenario
@gen.coroutine
def call_later_zero_vs_add_callback(loop):
    finished = Future()
    loop.add_callback(lambda: out("callback 1"))
    loop.call_later(0, _then_finish(finished, "timer"))
    loop.add_callback(lambda: out("callback 2"))
    yield finished


@scenario
@gen.coroutine
def timer_schedules_zero_timer(loop):
    finished = Future()

    def t1():
        out("timer 1")
        loop.call_later(0, _then_finish(finished, "timer 2"))
        loop.add_callback(lambda: out("callback"))

    loop.call_later(10 * MS, t1)
    yield finished


# ---- I/O against callbacks and timers ----------------------------------------------------

def _io_pair(loop, finished, seen):
    a, b = socket.socketpair()
    b.send(b"x")

    def note(what):
        out(what)
        seen.append(what)
        if len(seen) == 2:
            finished.set_result(None)

    def handler(fd, events):
        a.recv(1)
        loop.remove_handler(a.fileno())
        note("io")

    loop.add_handler(a.fileno(), handler, IOLoop.READ)
    return a, b, note


@scenario
@gen.coroutine
def io_vs_timer(loop):
    finished, seen = Future(), []
    a, b, note = _io_pair(loop, finished, seen)
    loop.call_later(0, lambda: note("timer"))
    yield finished
    a.close()
    b.close()


@scenario
@gen.coroutine
def io_vs_callback(loop):
    finished, seen = Future(), []
    a, b, note = _io_pair(loop, finished, seen)
    loop.add_callback(lambda: note("callback"))
    yield finished
    a.close()
    b.close()


@scenario
@gen.coroutine
def cross_thread_wake(loop):
    finished = Future()
    loop_thread = threading.get_ident()
    safety = loop.call_later(5, lambda: out("safety timer"))

    def on_loop():
        out("from thread, on loop thread " + ("yes" if threading.get_ident() == loop_thread else "no"))
        finished.set_result(None)

    def worker():
        time.sleep(50 * MS)
        loop.add_callback(on_loop)

    t = threading.Thread(target=worker)
    t.start()
    out("waiting")
    yield finished
    t.join()
    loop.remove_timeout(safety)


# ---- futures ---------------------------------------------------------------------------

@scenario
@gen.coroutine
def future_callbacks_order(loop):
    f, finished = Future(), Future()
    f.add_done_callback(lambda d: out("done 1 %d" % d.result()))
    f.add_done_callback(lambda d: out("done 2 %d" % d.result()))

    def d3(d):
        out("done 3 %d" % d.result())
        finished.set_result(None)

    f.add_done_callback(d3)
    f.set_result(42)
    out("set")
    yield finished


@scenario
@gen.coroutine
def future_callback_on_done(loop):
    f, finished = Future(), Future()
    f.set_result(1)

    def d(fut):
        out("done %d" % fut.result())
        finished.set_result(None)

    f.add_done_callback(d)
    out("added")
    yield finished


@scenario
@gen.coroutine
def future_exception(loop):
    f, finished = Future(), Future()

    def d(fut):
        out("exception " + error_text(fut.exception()))
        finished.set_result(None)

    f.add_done_callback(d)
    f.set_exception(ValueError("boom"))
    yield finished


@scenario
@gen.coroutine
def future_callbacks_vs_add_callback(loop):
    f, finished = Future(), Future()
    f.add_done_callback(lambda d: out("done"))
    loop.add_callback(lambda: out("callback 1"))
    f.set_result(1)
    loop.add_callback(_then_finish(finished, "callback 2"))
    yield finished


@scenario
@gen.coroutine
def done_callback_exception(loop):
    f, finished = Future(), Future()

    def boom(d):
        raise ValueError("boom")

    def d2(d):
        out("done 2")
        finished.set_result(None)

    f.add_done_callback(boom)
    f.add_done_callback(d2)
    f.set_result(1)
    yield finished


# ---- coroutines ------------------------------------------------------------------------

@gen.coroutine
def eager_coro():
    out("coro start")
    yield gen.moment
    out("coro end")


@scenario
@gen.coroutine
def coroutine_eager_start(loop):
    out("before call")
    t = eager_coro()
    out("after call")
    yield t
    out("awaited")


@gen.coroutine
def inner(suspend):
    out("inner start")
    if suspend:
        yield gen.sleep(10 * MS)
    out("inner end")
    return 1


@gen.coroutine
def middle(suspend):
    out("middle start")
    x = yield inner(suspend)
    out("middle got %d" % x)
    return x + 1


@gen.coroutine
def outer(suspend):
    out("outer start")
    x = yield middle(suspend)
    out("outer got %d" % x)
    return x + 1


@scenario
@gen.coroutine
def coroutine_chain(loop):
    t = outer(True)
    out("after call")
    x = yield t
    out("result %d" % x)


@scenario
@gen.coroutine
def coroutine_chain_sync(loop):
    t = outer(False)
    out("after call")
    x = yield t
    out("result %d" % x)


@gen.coroutine
def failing_coro():
    yield gen.moment
    raise ValueError("boom")


@scenario
@gen.coroutine
def coroutine_exception(loop):
    try:
        yield failing_coro()
        out("no exception")
    except Exception as e:
        out("caught %s" % e)


@gen.coroutine
def spinner(name):
    for i in range(3):
        out("%s %d" % (name, i))
        yield gen.moment


@scenario
@gen.coroutine
def moment_interleave(loop):
    a = spinner("a")
    b = spinner("b")
    yield a
    yield b


@gen.coroutine
def moment_coro():
    out("coro 0")
    yield gen.moment
    out("coro 1")


@scenario
@gen.coroutine
def moment_vs_callback(loop):
    loop.add_callback(lambda: out("callback"))
    yield moment_coro()


@gen.coroutine
def sleeper(name, d):
    yield gen.sleep(d)
    out(name)


@scenario
@gen.coroutine
def sleep_order(loop):
    a = sleeper("a 30", 30 * MS)
    b = sleeper("b 10", 10 * MS)
    yield a
    yield b


@gen.coroutine
def sleep_zero_coro():
    out("sleep start")
    yield gen.sleep(0)
    out("sleep end")


@scenario
@gen.coroutine
def sleep_zero(loop):
    def cb3():
        out("callback 3")

    def cb2():
        out("callback 2")
        loop.add_callback(cb3)

    def cb1():
        out("callback 1")
        loop.add_callback(cb2)

    loop.add_callback(cb1)
    t = sleep_zero_coro()
    yield t
    yield gen.sleep(10 * MS)


@gen.coroutine
def slow_value(d, v):
    yield gen.sleep(d)
    return v


@scenario
@gen.coroutine
def with_timeout_expires(loop):
    try:
        v = yield gen.with_timeout(datetime.timedelta(milliseconds=20), slow_value(200 * MS, 7))
        out("result %d" % v)
    except gen.TimeoutError:
        out("timeout")


@scenario
@gen.coroutine
def with_timeout_in_time(loop):
    try:
        v = yield gen.with_timeout(datetime.timedelta(milliseconds=500), slow_value(10 * MS, 7))
        out("result %d" % v)
    except gen.TimeoutError:
        out("timeout")


@gen.coroutine
def named_after(d, name, fail):
    yield gen.sleep(d)
    if fail:
        raise ValueError("boom " + name)
    out("done " + name)
    return name


@scenario
@gen.coroutine
def when_all_order(loop):
    tasks = [named_after(30 * MS, "a", False), named_after(10 * MS, "b", False),
             named_after(20 * MS, "c", False)]
    results = yield gen.multi(tasks)
    out("results " + " ".join(results))


@scenario
@gen.coroutine
def when_all_failure(loop):
    tasks = [named_after(30 * MS, "a", False), named_after(10 * MS, "b", True),
             named_after(20 * MS, "c", False)]
    try:
        yield gen.multi(tasks)
        out("no error")
    except Exception as e:
        out("error %s" % e)
    yield gen.sleep(50 * MS)
    out("end")


@scenario
@gen.coroutine
def when_all_two_failures(loop):
    # Which failure gen.multi reports: the first in list order, once every child is done.
    tasks = [named_after(20 * MS, "a", True), named_after(10 * MS, "b", True),
             named_after(30 * MS, "c", False)]
    try:
        yield gen.multi(tasks)
        out("no error")
    except Exception as e:
        out("error %s" % e)
    yield gen.sleep(50 * MS)
    out("end")


@gen.coroutine
def spawned():
    out("spawned start")
    yield gen.moment
    raise ValueError("boom")


@scenario
@gen.coroutine
def spawn_exception(loop):
    loop.spawn_callback(spawned)
    out("after spawn")
    yield gen.sleep(10 * MS)
    out("continued")


@scenario
@gen.coroutine
def executor_result(loop):
    loop_thread = threading.get_ident()

    def work():
        out("worker on loop thread " + ("yes" if threading.get_ident() == loop_thread else "no"))
        return 5

    with concurrent.futures.ThreadPoolExecutor(2) as executor:
        v = yield loop.run_in_executor(executor, work)
    out("result %d, on loop thread %s" % (v, "yes" if threading.get_ident() == loop_thread else "no"))


@scenario
@gen.coroutine
def executor_exception(loop):
    def work():
        raise ValueError("boom")

    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        try:
            yield loop.run_in_executor(executor, work)
            out("no error")
        except Exception as e:
            out("error %s" % e)


# ---- run_sync --------------------------------------------------------------------------

@gen.coroutine
def value_after_moment(v):
    yield gen.moment
    return v


@direct
def run_sync_result(loop):
    out("result %d" % loop.run_sync(lambda: value_after_moment(42)))
    out("again %d" % loop.run_sync(lambda: value_after_moment(43)))


@direct
def run_sync_timeout(loop):
    try:
        loop.run_sync(lambda: slow_value(5, 1), timeout=50 * MS)
        out("no timeout")
    except TimeoutError:
        out("timeout")


@gen.coroutine
def fail_after_moment():
    yield gen.moment
    raise ValueError("boom")


@direct
def run_sync_exception(loop):
    try:
        loop.run_sync(fail_after_moment)
        out("no error")
    except Exception as e:
        out("error %s" % e)


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: tornado_loop_probe.py <scenario> | --list\n")
        return 2
    name = argv[1]
    if name == "--list":
        for n in sorted(list(MAIN) + list(DIRECT)):
            out(n)
        return 0
    if name not in MAIN and name not in DIRECT:
        sys.stderr.write("unknown scenario: %s\n" % name)
        return 2
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    loop = IOLoop()
    try:
        if name in MAIN:
            loop.run_sync(lambda: MAIN[name](loop))
        else:
            DIRECT[name](loop)
    except Exception as e:
        sys.stderr.write("scenario %s failed: %r\n" % (name, e))
        return 1
    finally:
        loop.close(all_fds=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
