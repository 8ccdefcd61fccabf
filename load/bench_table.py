#!/usr/bin/python3
"""Runs the reference's Google Benchmark microbenchmarks and prints a Markdown table
(time per item, items/s, bytes/s).

    /usr/bin/python3 load/bench_table.py [--bench build/release/reference/squall-bench]
        [--filter REGEX] [--min-time 0.5] [--repetitions N] [--json out.json]
    /usr/bin/python3 load/bench_table.py --compare libuv --repetitions 3

With --repetitions N > 1 each benchmark runs N times and the table shows the medians.
--compare libuv shows the loop benchmarks beside their libuv counterparts
(reference/bench/libuv_bench.cc: BM_Libuv_X is the counterpart of BM_X) with the ratio
of Squall's items per CPU second to libuv's; squall-bench must have been built with
libuv (Debian's libuv1-dev).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# --compare PEER: the prefix PEER's counterparts carry (BM_<prefix>X pairs with BM_X).
COMPARE_PREFIX = {"libuv": "Libuv_"}


def human(v, unit):
    if v is None:
        return "–"
    for p, s in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= p:
            return f"{v / p:.2f} {s}{unit}"
    return f"{v:.1f} {unit}"


def run_bench(args) -> dict:
    cmd = [args.bench, f"--benchmark_filter={args.filter}", f"--benchmark_min_time={args.min_time}",
           "--benchmark_format=json"]
    if args.repetitions > 1:
        cmd += [f"--benchmark_repetitions={args.repetitions}", "--benchmark_report_aggregates_only=true"]
    print("running: " + " ".join(cmd), file=sys.stderr)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900 * max(1, args.repetitions))
    if p.returncode != 0:
        print(p.stderr, file=sys.stderr)
        raise SystemExit(p.returncode)
    return json.loads(p.stdout)


def results(data: dict, repetitions: int) -> dict:
    """Benchmark name -> its result: the single run, or the median of the repetitions."""
    out = {}
    for b in data["benchmarks"]:
        if repetitions > 1:
            if b.get("aggregate_name") == "median":
                out[b["run_name"]] = b
        elif b.get("run_type") != "aggregate":
            out[b["name"]] = b
    return out


def per_item_ns(b: dict) -> float | None:
    ips = b.get("items_per_second")
    return 1e9 / ips if ips else None


def print_compare(rows: dict, peer: str) -> None:
    prefix = "BM_" + COMPARE_PREFIX[peer]
    pairs = [(name, "BM_" + name[len(prefix):]) for name in rows if name.startswith(prefix)]
    print(f"| operation | squall CPU ns / item | {peer} CPU ns / item | squall items/s | {peer} items/s "
          f"| squall ÷ {peer} |")
    print("|---|---:|---:|---:|---:|---:|")
    for peer_name, squall_name in pairs:
        p, s = rows[peer_name], rows.get(squall_name)
        if s is None:
            print(f"| {squall_name} | (not run) | | | {human(p.get('items_per_second'), '/s')} | |")
            continue
        sp, pp = s.get("items_per_second"), p.get("items_per_second")
        ratio = f"×{sp / pp:.2f}" if sp and pp else "–"
        print(f"| {squall_name[3:]} | {per_item_ns(s):.1f} | {per_item_ns(p):.1f} | {human(sp, '/s')} "
              f"| {human(pp, '/s')} | {ratio} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", default=os.path.join(REPO, "build", "release", "reference", "squall-bench"))
    ap.add_argument("--filter", help="benchmark regex (default: all; with --compare, the compared ones)")
    ap.add_argument("--min-time", type=float, default=0.5)
    ap.add_argument("--repetitions", type=int, default=1, help="runs per benchmark; >1 reports medians")
    ap.add_argument("--compare", choices=sorted(COMPARE_PREFIX), help="pair benchmarks with a peer's")
    ap.add_argument("--json", help="also keep Google Benchmark's JSON here")
    args = ap.parse_args()
    if args.filter is None:
        args.filter = "CallbacksPerIteration|TimerScheduleCancel|TimersFiring|CoroutineResumeThroughLoop" \
            if args.compare else "."
    data = run_bench(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)
    ctx = data["context"]
    stat = f"median of {args.repetitions} runs" if args.repetitions > 1 else "one run"
    print(f"{ctx.get('num_cpus')} CPUs @ {ctx.get('mhz_per_cpu')} MHz, load average "
          f"{', '.join(f'{x:.1f}' for x in ctx.get('load_avg', []))}; {stat} per benchmark; "
          "rates are per CPU second.\n")
    rows = results(data, args.repetitions)
    if args.compare:
        print_compare(rows, args.compare)
        return 0
    print("| benchmark | CPU time / iteration | items/s | bytes/s |")
    print("|---|---:|---:|---:|")
    for name, b in rows.items():
        cpu = b["cpu_time"]
        print(f"| {name} | {cpu:,.0f} {b['time_unit']} | {human(b.get('items_per_second'), '/s')} "
              f"| {human(b.get('bytes_per_second'), 'B/s')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
