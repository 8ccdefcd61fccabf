#!/usr/bin/python3
"""Runs the reference's Google Benchmark microbenchmarks and prints a Markdown table
(time per item, items/s, bytes/s).

    /usr/bin/python3 load/bench_table.py [--bench build/release/reference/squall-bench]
        [--filter REGEX] [--min-time 0.5] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def human(v, unit):
    if v is None:
        return "–"
    for p, s in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= p:
            return f"{v / p:.2f} {s}{unit}"
    return f"{v:.1f} {unit}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", default=os.path.join(REPO, "build", "release", "reference", "squall-bench"))
    ap.add_argument("--filter", default=".")
    ap.add_argument("--min-time", type=float, default=0.5)
    ap.add_argument("--json", help="also keep Google Benchmark's JSON here")
    args = ap.parse_args()
    p = subprocess.run([args.bench, f"--benchmark_filter={args.filter}",
                        f"--benchmark_min_time={args.min_time}", "--benchmark_format=json"],
                       capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        print(p.stderr, file=sys.stderr)
        return p.returncode
    data = json.loads(p.stdout)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)
    ctx = data["context"]
    print(f"{ctx.get('num_cpus')} CPUs @ {ctx.get('mhz_per_cpu')} MHz, load average "
          f"{', '.join(f'{x:.1f}' for x in ctx.get('load_avg', []))}; rates are per CPU second.\n")
    print("| benchmark | CPU time / iteration | items/s | bytes/s |")
    print("|---|---:|---:|---:|")
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate":
            continue
        cpu = b["cpu_time"]
        print(f"| {b['name']} | {cpu:,.0f} {b['time_unit']} | {human(b.get('items_per_second'), '/s')} "
              f"| {human(b.get('bytes_per_second'), 'B/s')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
