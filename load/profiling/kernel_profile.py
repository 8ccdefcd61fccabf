#!/usr/bin/python3
"""Where a server's CPU time per request goes, kernel functions included, side by side.

For each implementation the load runner runs one scenario (server and wrk pinned apart, as
in a full run) while `perf record -e cpu-clock` samples the server's CPU. cpu-clock is a
software event: it works where a VM has no hardware counters (`perf stat -e cycles` says
"not supported"), and its samples carry their time, so a function's share is nanoseconds,
not a count. Only the server's processes are counted (the runner reports their PIDs);
softirq work done on that CPU for other processes is not. Each function's time is divided
by the requests answered during the sampling window (the run's rate × the window).

    python3 load/profiling/kernel_profile.py --impl reference,nginx,bare \\
        --scenario connection_close [--squall-bin build/rv/reference] [--out DIR]

Needs perf (Debian's linux-perf) and the rights to sample a CPU (root, or
kernel.perf_event_paranoid ≤ 0); wrk and the servers as the load runner does. Prints a
Markdown table (also written to DIR/kernel_profile.md): the program's own code, its
libraries, the kernel in total, then the kernel functions that cost most; and a second
one of the system calls the server made per request (the raw_syscalls:sys_enter
tracepoint, recorded for a second right after the sampling, not during it: recording every
call costs the server kernel time), with the ready descriptors its epoll waits returned on
average (raw_syscalls:sys_exit): on a server the client cannot saturate, a server that
gathers fewer requests per wake-up makes more waits, sleeps and wake-ups per request. A
tracer such as strace slows the server so much that the client is always ahead of it and
it never reads too early: it counts other calls.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import defaultdict

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE_HZ = 4000
SYSCALL_WINDOW = 1  # seconds of system calls recorded, after the sampling

# One line of `perf report -F period,pid,dso,sym`: "  250000  1234:nginx  [kernel.kallsyms]  [k] tcp_poll"
REPORT_LINE = re.compile(r"^\s*(\d+)\s+(\d+):(\S.*?)\s+(\S+)\s+\[([k.])\]\s+(.+?)\s*$")
# One line of `perf script -F pid,event,trace` for raw_syscalls:sys_enter: "1234 raw_syscalls:sys_enter: NR 232 (...)"
SYSCALL_LINE = re.compile(r"^\s*(\d+)\s+raw_syscalls:sys_enter:\s+NR\s+(\d+)\b")
# The same for raw_syscalls:sys_exit, with the call's result: "1234 raw_syscalls:sys_exit: NR 232 = 3"
SYSCALL_EXIT_LINE = re.compile(r"^\s*(\d+)\s+raw_syscalls:sys_exit:\s+NR\s+(\d+)\s+=\s+(-?\d+)")
# The calls that wait for readiness and return how many descriptors are ready.
READINESS_WAITS = ("epoll_wait", "epoll_pwait", "epoll_pwait2")
SYSCALL_NUMBERS = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"


def syscall_names(header=SYSCALL_NUMBERS):
    """{number: name} from the kernel's header (linux-libc-dev); empty if it is missing."""
    names = {}
    try:
        with open(header) as f:
            for line in f:
                m = re.match(r"#define __NR_(\w+)\s+(\d+)", line)
                if m:
                    names[int(m.group(2))] = m.group(1)
    except OSError:
        pass
    return names


def count_syscalls(text, pids, names):
    """{system call name: count} of the sys_enter lines whose PID is in pids."""
    counts = defaultdict(int)
    for line in text.splitlines():
        m = SYSCALL_LINE.match(line)
        if m and int(m.group(1)) in pids:
            number = int(m.group(2))
            counts[names.get(number, f"#{number}")] += 1
    return dict(counts)


def events_per_wait(text, pids, names):
    """The mean number of ready descriptors an epoll wait of pids returned (its sys_exit
    results; errors left out), or None without one: about how many requests a server
    handles per wake-up. On a server that is not saturated, fewer per wait means more
    waits, and more sleeps and wake-ups, per request, which is kernel time."""
    results = []
    for line in text.splitlines():
        m = SYSCALL_EXIT_LINE.match(line)
        if not m or int(m.group(1)) not in pids or names.get(int(m.group(2))) not in READINESS_WAITS:
            continue
        if int(m.group(3)) >= 0:
            results.append(int(m.group(3)))
    return sum(results) / len(results) if results else None


def parse_report(text, pids):
    """{(kind, dso or symbol): nanoseconds} of the lines whose PID is in pids; kind is
    'kernel' for kernel symbols and 'user' for a user-space object (its functions summed)."""
    spent = defaultdict(int)
    for line in text.splitlines():
        m = REPORT_LINE.match(line)
        if not m or int(m.group(2)) not in pids:
            continue
        period, dso, space, symbol = int(m.group(1)), m.group(4), m.group(5), m.group(6)
        if space == "k":
            spent[("kernel", symbol)] += period
        else:
            spent[("user", os.path.basename(dso.strip("[]")) if dso.startswith("[") else os.path.basename(dso))] += period
    return dict(spent)


def per_request(spent, requests):
    return {key: ns / requests for key, ns in spent.items()} if requests > 0 else {}


def table(columns, top):
    """Markdown rows: user code by object, kernel total, the `top` costliest kernel
    functions (by their largest cost in any column), the rest of the kernel."""
    names = list(columns)
    def row(label, values):
        return f"| {label} | " + " | ".join(f"{v:,.0f}" for v in values) + " |"
    out = ["| ns per request | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    users = sorted({k for c in columns.values() for k in c if k[0] == "user"},
                   key=lambda k: -max(c.get(k, 0) for c in columns.values()))
    for key in users:
        values = [c.get(key, 0) for c in columns.values()]
        if max(values) >= 5:
            out.append(row(f"user: {key[1]}", values))
    kernel_total = [sum(v for k, v in c.items() if k[0] == "kernel") for c in columns.values()]
    out.append(row("**kernel, all**", kernel_total))
    kernel = sorted({k for c in columns.values() for k in c if k[0] == "kernel"},
                    key=lambda k: -max(c.get(k, 0) for c in columns.values()))
    shown = kernel[:top]
    for key in shown:
        out.append(row(f"kernel: {key[1]}", [c.get(key, 0) for c in columns.values()]))
    rest = [total - sum(c.get(k, 0) for k in shown) for total, c in zip(kernel_total, columns.values())]
    out.append(row("kernel: the rest", rest))
    return "\n".join(out)


def syscall_table(columns, waits=None):
    """Markdown rows: each system call's count per request, the most frequent first; with
    `waits` ({column: events per epoll wait or None}), a last row of those."""
    names = list(columns)
    calls = sorted({c for col in columns.values() for c in col}, key=lambda c: -max(col.get(c, 0) for col in columns.values()))
    out = ["| system calls per request | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for call in calls:
        values = [col.get(call, 0) for col in columns.values()]
        if max(values) >= 0.01:
            out.append(f"| {call} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
    out.append("| **all** | " + " | ".join(f"{sum(col.values()):.2f}" for col in columns.values()) + " |")
    if waits:
        out.append("| ready descriptors per epoll wait | "
                   + " | ".join("n/a" if waits.get(name) is None else f"{waits[name]:.2f}" for name in names) + " |")
    return "\n".join(out)


def descendants(root):
    """PIDs of root's descendants (from /proc's parent links), with their command names."""
    parents, names = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        close = stat.rfind(")")
        names[int(entry)] = stat[stat.find("(") + 1:close]
        parents[int(entry)] = int(stat[close + 2:].split()[1])
    found, frontier = {}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = names[pid]
                frontier.append(pid)
    return found


def wait_for_load(runner, seconds):
    """Waits until the runner has started wrk (the load is on), up to `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and runner.poll() is None:
        if "wrk" in descendants(runner.pid).values():
            return True
        time.sleep(0.1)
    return False


def profile_one(args, impl, out_dir):
    """Runs the scenario for impl with perf sampling the server's CPU; returns
    ({key: ns per request}, {system call: count per request}, ready descriptors per epoll
    wait (None without one), the run's result record)."""
    name = os.path.splitext(os.path.basename(impl))[0]
    run_out = os.path.join(out_dir, name)
    data = os.path.join(out_dir, f"{name}.perf.data")
    calls_data = os.path.join(out_dir, f"{name}.syscalls.data")
    runner = subprocess.Popen(
        [sys.executable, "-m", "squall_load", "--impl", impl, "--scenario", args.scenario, "--repeat", "1",
         "--duration", str(args.duration), "--warmup", str(args.warmup), "--server-cpu", str(args.server_cpu),
         "--client-cpu", str(args.client_cpu), "--no-plots", "--out", run_out]
        + (["--squall-bin", args.squall_bin] if args.squall_bin else []),
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # The server starts and warms up (wrk too), then wrk runs `duration` seconds:
        # sample inside that run, start_after seconds into it.
        if not wait_for_load(runner, 120):
            raise RuntimeError(f"{impl}: the load runner did not start wrk")
        time.sleep(args.warmup + args.start_after)
        for events, output, seconds in ((["cpu-clock", "-F", str(SAMPLE_HZ)], data, args.window),
                                        (["raw_syscalls:sys_enter,raw_syscalls:sys_exit", "-c", "1"], calls_data,
                                         SYSCALL_WINDOW)):
            subprocess.run(["perf", "record", "-q", "-e", *events, "-C", str(args.server_cpu), "-o", output, "--",
                            "sleep", str(seconds)],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=seconds + 60)
        _, err = runner.communicate(timeout=args.duration + 300)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    if runner.returncode != 0:
        raise RuntimeError(f"the load runner failed for {impl}: {err.strip()[-500:]}")
    with open(os.path.join(run_out, "results.json")) as f:
        result = json.load(f)["results"][0]
    if result.get("status") != "ok" or not result.get("server_pids"):
        raise RuntimeError(f"{impl}: the run did not measure a server ({result.get('status')})")
    pids = set(result["server_pids"])
    requests = result["rps"] * args.window
    report = subprocess.run(["perf", "report", "-i", data, "--no-children", "-g", "none",
                             "--sort", "pid,dso,sym", "-F", "period,pid,dso,sym", "-q", "--stdio"],
                            check=True, capture_output=True, text=True, timeout=300).stdout
    script = subprocess.run(["perf", "script", "-i", calls_data, "-F", "pid,event,trace"],
                            check=True, capture_output=True, text=True, timeout=300).stdout
    names = syscall_names()
    calls = count_syscalls(script, pids, names)
    return (per_request(parse_report(report, pids), requests), per_request(calls, result["rps"] * SYSCALL_WINDOW),
            events_per_wait(script, pids, names), result)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--impl", required=True, help="comma-separated, as the load runner takes them")
    p.add_argument("--scenario", default="connection_close", help="one of the load runner's scenarios")
    p.add_argument("--squall-bin", help="passed to the load runner")
    p.add_argument("--duration", type=float, default=8, help="seconds of load per implementation")
    p.add_argument("--warmup", type=float, default=1, help="the load runner's warm-up, seconds")
    p.add_argument("--start-after", type=float, default=2, help="seconds into the load before sampling starts")
    p.add_argument("--window", type=float, default=3, help="seconds sampled")
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1)
    p.add_argument("--top", type=int, default=25, help="kernel functions shown")
    p.add_argument("--out", default=os.path.join("/tmp", f"kernel-profile-{os.getpid()}"))
    args = p.parse_args(argv)
    if args.start_after + args.window + SYSCALL_WINDOW > args.duration - 1:
        p.error(f"--start-after + --window + {SYSCALL_WINDOW} s of system calls must end a second before --duration")
    os.makedirs(args.out, exist_ok=True)
    columns, syscalls, waits, lines = {}, {}, {}, []
    impls = [i for i in args.impl.split(",") if i]
    for n, impl in enumerate(impls, 1):
        print(f"[{n}/{len(impls)}] {impl}: {args.scenario}, sampling {args.window:g} s of {args.duration:g}",
              file=sys.stderr, flush=True)
        costs, calls, events, result = profile_one(args, impl, args.out)
        columns[result["impl"]] = costs
        syscalls[result["impl"]] = calls
        waits[result["impl"]] = events
        lines.append(f"- {result['impl']}: {result['rps']:,.0f} requests/s; /proc: "
                     f"{result['server_user_us_per_request']:.2f} µs user + "
                     f"{result['server_kernel_us_per_request']:.2f} µs kernel per request")
    text = (f"## {args.scenario}: server CPU time per request, by function (perf cpu-clock)\n\n"
            + "\n".join(lines) + "\n\n" + table(columns, args.top) + "\n\n" + syscall_table(syscalls, waits) + "\n")
    with open(os.path.join(args.out, "kernel_profile.md"), "w") as f:
        f.write(text)
    print(text)
    print(f"(written to {args.out}/kernel_profile.md)", file=sys.stderr)


if __name__ == "__main__":
    main()
