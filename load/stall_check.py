#!/usr/bin/python3
"""Does the load generator measure the truth? A server that stalls for a known time at a
known moment (load/tests/stall_server.py: the whole server stops for S seconds once, T
seconds into the run), squall-load against it at a constant rate R, and the latency
distribution those numbers imply, computed before the run; wrk (closed loop) against a
second, identical server for contrast.

    /usr/bin/python3 -m squall_load.stall_check --squall-bin build/ld/reference
    /usr/bin/python3 -m squall_load.stall_check --rate 1000 --stall 1 --stall-at 4 --duration 10 --out stall.json

The expected distribution (open loop, constant rate R, D seconds, one stall of S): the
R×S requests scheduled during the stall all complete when it ends, so the one scheduled
u seconds into it waits S - u: their latencies are spread evenly over (0, S] (on average
S/2), and every other request takes the server's ordinary time b. Among N = R×D requests
a latency above x (b < x <= S) therefore has the share (S - x) / D, so

    p(q) = S - (1 - q) × D   where that is > 0:  p99 = S - 0.01 D, p99.9 = S - 0.001 D, ...
    max = S;  mean = b + S² / (2 D);  requests slower than S/2: R × S / 2.

A finite server capacity μ stretches the tail a little (the backlog of R×S requests takes
R×S/μ to clear after the stall: p(q) = S - (1 - q) D (1 - R/μ)); the tolerance covers it
for μ >= 5 R. squall-load must match every figure within the tolerance (exit status 1 if
not).

For contrast, against fresh, identical servers: squall-load in closed loop (--rate 0,
what wrk does and nothing more: it stops sending while the server stalls, so only its 64
requests in flight see the stall: its percentiles stay at b, only its max shows S), and
wrk 4.1 itself. wrk is closed loop too, but before its done() hook it corrects its
histogram (stats_correct in wrk.c): for every sample longer than twice the mean interval
between a connection's requests (connections / its own throughput) it adds synthetic
samples at that interval, as if it had kept sending at its own rate. For one stall on a
fast server that correction reproduces the open-loop tail of a client running at wrk's
throughput, so wrk's p99 and p99.9 land near the expectation; what it cannot give is a
latency at a chosen rate (its rate is whatever the server sustains), per-response latency
when pipelining, p99.99 (its done() line stops at p99.9), or the tail of a backlog that
takes time to clear.

Pinned like load/run.py: the server on --server-cpu, the client on --client-cpu. Every
program is stopped by PID and bounded in time.
"""
from __future__ import annotations

import argparse
import json
import os
import selectors
import subprocess
import sys
import time

from squall_conformance import launch, paths

from .engines import hdr
from .engines import squall_load as squall_load_engine
from .engines import wrk as wrk_engine
from .scenarios import BY_NAME

HERE = os.path.dirname(os.path.abspath(__file__))

PY = "/usr/bin/python3"
STALL_SERVER = os.path.join(HERE, "tests", "stall_server.py")


def expected(rate: float, duration: float, stall: float, base_ms: float = 0.5) -> dict:
    """The latency distribution (ms) of an open-loop client at `rate` for `duration` s
    against a server that stalls once for `stall` s (infinitely fast otherwise, b = base_ms)."""
    s_ms, d_ms = stall * 1000, duration * 1000
    out = {}
    for name, q in (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p99.9", 0.999), ("p99.99", 0.9999)):
        x = s_ms - (1 - q) * d_ms
        out[name] = max(x, 0.0) if x > base_ms else None   # None: the ordinary latency b
    out["max"] = s_ms
    out["mean"] = stall * stall / (2 * duration) * 1000
    out["requests"] = round(rate * duration)
    out["slower_than_half_stall"] = round(rate * stall / 2)
    return out


def start_server(stall_at: float, stall: float, cpus: str) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(["taskset", "-c", cpus, PY, STALL_SERVER, "--stall-at", str(stall_at),
                             "--stall", str(stall)], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            start_new_session=True, text=True)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 15
    line = ""
    while time.monotonic() < deadline and not line.endswith("\n"):
        if sel.select(timeout=0.2):
            line = proc.stdout.readline()
            break
    sel.close()
    if not line.startswith("port="):
        stop(proc)
        raise RuntimeError(f"stall_server.py printed {line!r}")
    return proc, int(line[5:])


def stop(proc: subprocess.Popen) -> str:
    """SIGTERM by PID (SIGKILL after 5 s); what it printed after its port line."""
    launch.stop_process(proc, grace=5.0)
    rest = proc.stdout.read() if proc.stdout else ""
    if proc.stdout:
        proc.stdout.close()
    return rest


def stall_interval(text: str) -> tuple[float, float] | None:
    for line in text.splitlines():
        if line.startswith("stall start="):
            a, b = line.split()[1:3]
            return float(a.split("=")[1]), float(b.split("=")[1])
    return None


def run_squall_load(args, rate: float) -> dict:
    """squall-load at `rate` (0: closed loop) against a fresh stall server."""
    proc, port = start_server(args.stall_at, args.stall, args.server_cpu)
    try:
        r = squall_load_engine.run(f"http://127.0.0.1:{port}", BY_NAME["plaintext"], args.duration,
                                   args.connections, {int(c) for c in args.client_cpu.split(",")},
                                   args.stall + 10, squall_bin=args.squall_bin, rate=rate, warmup=0)
    finally:
        printed = stop(proc)
    r["stall"] = stall_interval(printed)
    return r


def run_wrk(args) -> dict:
    proc, port = start_server(args.stall_at, args.stall, args.server_cpu)
    try:
        r = wrk_engine.run(f"http://127.0.0.1:{port}", BY_NAME["plaintext"], args.duration, args.connections, 1,
                           {int(c) for c in args.client_cpu.split(",")}, args.stall + 10)
    finally:
        printed = stop(proc)
    r["stall"] = stall_interval(printed)
    return r


def table(args, exp: dict, sl: dict, closed: dict | None, wrk: dict | None, tol_ms: float) -> tuple[str, bool]:
    """The Markdown table and whether squall-load matched every expected figure."""
    lat = sl["latency_us"] or {}
    base_ms = lat.get("p50", 0) / 1000
    h = hdr.Histogram.parse(sl["histogram"])
    slow = h.count_above(int(args.stall * 1e9 / 2))
    rows, ok = [], True

    def ms(v):
        return "–" if v is None else f"{v:,.1f}"

    def check(name, expect, got, tol):
        nonlocal ok
        if expect is None:   # the ordinary latency: it must stay well below the stall
            good = got is not None and got < min(args.stall * 1000 / 10, 50)
            exp_text = f"ordinary (< {min(args.stall * 1000 / 10, 50):g})"
        else:
            good = got is not None and abs(got - expect) <= tol
            exp_text = f"{ms(expect)} ± {tol:g}"
        ok = ok and good
        return exp_text, "yes" if good else "**NO**"

    wl = (wrk or {}).get("latency_us") or {}
    cl = (closed or {}).get("latency_us") or {}

    def contrast(lat_map, name, engine):
        if engine is None:
            return "–"
        v = lat_map.get(name)
        return ms(v / 1000) if v is not None else "not reported"

    for name in ("p50", "p90", "p99", "p99.9", "p99.99", "max", "mean"):
        if name == "p90" and exp[name] is None and args.stall / args.duration >= 0.09:
            # q = 1 - S/D sits on the edge between ordinary and stalled: no stable expectation.
            e_text, good = "on the edge (q = 1 − S/D): either", "–"
        else:
            tol = tol_ms + (base_ms if name == "mean" else 0)
            expect = exp[name] + (base_ms if name == "mean" else 0) if exp[name] is not None else None
            e_text, good = check(name, expect, lat.get(name, 0) / 1000 if name in lat else None,
                                 tol if name != "mean" else max(tol_ms / 5, 5))
        rows.append(f"| {name} (ms) | {e_text} | {ms(lat.get(name, 0) / 1000 if name in lat else None)} | {good} "
                    f"| {contrast(cl, name, closed)} | {contrast(wl, name, wrk)} |")
    n_tol = max(1, round(exp["requests"] * 0.01))
    good_n = abs(sl["requests"] - exp["requests"]) <= n_tol
    ok = ok and good_n
    rows.append(f"| requests | {exp['requests']:,} ± {n_tol} | {sl['requests']:,} | {'yes' if good_n else '**NO**'} "
                f"| {closed['requests']:,} | {wrk['requests']:,} |" if wrk and closed else
                f"| requests | {exp['requests']:,} ± {n_tol} | {sl['requests']:,} | {'yes' if good_n else '**NO**'} "
                f"| – | – |")
    s_tol = max(5, round(exp["slower_than_half_stall"] * 0.15))
    good_s = abs(slow - exp["slower_than_half_stall"]) <= s_tol
    ok = ok and good_s
    closed_slow = (hdr.Histogram.parse(closed["histogram"]).count_above(int(args.stall * 1e9 / 2))
                   if closed else None)
    rows.append(f"| requests slower than {args.stall * 500:g} ms | {exp['slower_than_half_stall']:,} ± {s_tol} | "
                f"{slow:,} | {'yes' if good_s else '**NO**'} | {'–' if closed_slow is None else f'{closed_slow:,}'} "
                f"| not reported |")
    rows.append(f"| requests/s | {args.rate:g} (offered) | {sl['rps']:,.0f} | | "
                f"{closed['rps']:,.0f} | {wrk['rps']:,.0f} |" if wrk and closed else
                f"| requests/s | {args.rate:g} (offered) | {sl['rps']:,.0f} | | – | – |")
    errs = sum(sl["errors"].values())
    ok = ok and errs == 0
    rows.append(f"| errors | 0 | {errs} | {'yes' if errs == 0 else '**NO**'} | "
                f"{sum(closed['errors'].values()) if closed else '–'} | {sum(wrk['errors'].values()) if wrk else '–'} |")
    head = [f"Stall check: the server stops for S = {args.stall:g} s once, {args.stall_at:g} s into the run; "
            f"squall-load at R = {args.rate:g} req/s (open loop, {args.connections} connections) for "
            f"D = {args.duration:g} s; for contrast squall-load --rate 0 and wrk -c{args.connections} (both closed "
            f"loop; wrk adds its stats_correct samples) for the same time, each against a fresh server. Expected: "
            f"p(q) = S − (1 − q)·D, max = S, mean = b + S²/2D, R·S/2 requests slower than S/2 "
            f"(b = the ordinary latency, squall-load's p50 here: {base_ms:.2f} ms). Tolerance ±{tol_ms:g} ms.",
            "",
            "| figure | expected (open loop) | squall-load, open loop | matches | squall-load, closed loop "
            "| wrk 4.1 (closed loop + stats_correct) |",
            "|---|---:|---:|---|---:|---:|"]
    return "\n".join(head + rows), ok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="squall-load and wrk against a server with one known stall")
    ap.add_argument("--squall-bin", default=paths.default_squall_bin())
    ap.add_argument("--rate", type=float, default=1000, help="squall-load's constant rate (default 1000 req/s)")
    ap.add_argument("--duration", type=float, default=10, help="seconds (default 10)")
    ap.add_argument("--stall", type=float, default=1.0, help="seconds the server stops (default 1)")
    ap.add_argument("--stall-at", type=float, default=4.0, help="seconds after the first request (default 4)")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--tolerance-ms", type=float, default=None,
                    help="allowed difference on p99/p99.9/p99.99/max (default 5%% of the stall)")
    ap.add_argument("--server-cpu", default="0")
    ap.add_argument("--client-cpu", default="1")
    ap.add_argument("--no-contrast", action="store_true", help="only squall-load's open-loop run (no closed-loop "
                    "squall-load, no wrk)")
    ap.add_argument("--out", help="also write the figures as JSON here")
    args = ap.parse_args(argv)
    args.squall_bin = os.path.abspath(args.squall_bin)
    if not 0 < args.stall_at < args.duration - args.stall:
        ap.error("the stall must fall inside the run: 0 < --stall-at < --duration - --stall")
    why = squall_load_engine.available(args.squall_bin)
    if why:
        ap.error(why)
    tol = args.tolerance_ms if args.tolerance_ms is not None else args.stall * 1000 * 0.05
    exp = expected(args.rate, args.duration, args.stall)
    print(f"expected (computed before the run): {json.dumps(exp)}", file=sys.stderr)
    sl = run_squall_load(args, args.rate)
    closed = None if args.no_contrast else run_squall_load(args, 0)
    wrk = None if args.no_contrast else run_wrk(args)
    text, ok = table(args, exp, sl, closed, wrk, tol)
    print(text)
    if sl.get("stall"):
        a, b = sl["stall"]
        others = [(n, r) for n, r in (("the closed-loop run", closed), ("wrk's", wrk)) if r and r.get("stall")]
        print(f"\nThe server stalled for {b - a:.3f} s during squall-load's open-loop run"
              + "".join(f", {r['stall'][1] - r['stall'][0]:.3f} s during {n}" for n, r in others) + ".")
    print("\nsquall-load " + ("matches the expected distribution." if ok else "DOES NOT match the expected distribution."))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "expected_ms": exp, "tolerance_ms": tol, "squall_load": sl,
                       "squall_load_closed_loop": closed, "wrk": wrk,
                       "matches": ok, "table": text}, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
