#!/usr/bin/python3
"""Is squall-load the bottleneck? wrk and squall-load in closed loop on the same scenario,
the same core and the same server, interleaved run by run (wrk, squall-load, wrk, ...),
so that the machine's noise falls on both alike; medians and their ratio.

    /usr/bin/python3 -m squall_load.engines.compare --squall-bin build/ld/reference
    /usr/bin/python3 -m squall_load.engines.compare --impl nginx --scenario plaintext --duration 5 --repeat 5

The server (a description, started as load/run.py does) is pinned to --server-cpu, both
clients to --client-cpu. Two figures per engine: requests/s (what the brief asks: within
10 % of wrk's) and the client's CPU time per request (wait4's rusage / requests), which
says how much of its core each engine needed for that rate, independently of the server.
The server's CPU per request is printed too: it should not depend on the client.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

from squall_conformance import paths

from .. import impls, procstat
from ..scenarios import BY_NAME
from . import squall_load, wrk


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--impl", default="reference")
    ap.add_argument("--scenario", default="plaintext")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--server-cpu", default="0")
    ap.add_argument("--client-cpu", default="1")
    ap.add_argument("--squall-bin", default=paths.default_squall_bin())
    args = ap.parse_args(argv)
    squall_bin = os.path.abspath(args.squall_bin)
    why = squall_load.available(squall_bin)
    if why:
        ap.error(why)
    sc = BY_NAME[args.scenario]
    server_cpus = procstat.parse_cpu_list(args.server_cpu)
    client_cpus = procstat.parse_cpu_list(args.client_cpu)
    desc = impls.resolve(args.impl)
    server = impls.start(desc, squall_bin=squall_bin)
    runs = {"wrk": [], "squall-load": []}
    try:
        url = f"http://{server.host}:{server.port}"
        procstat.pin(server.pid, server_cpus)
        wrk.run(url, sc, 2, args.connections, 1, client_cpus, 5)   # warm-up, not counted
        for i in range(args.repeat):
            for name in ("wrk", "squall-load"):
                procstat.pin(server.pid, server_cpus)
                cpu0 = procstat.cpu_seconds(server.pid)
                if name == "wrk":
                    r = wrk.run(url, sc, args.duration, args.connections, 1, client_cpus, 5)
                else:
                    r = squall_load.run(url, sc, args.duration, args.connections, client_cpus, 5, squall_bin=squall_bin)
                r["server_cpu_s"] = procstat.cpu_seconds(server.pid) - cpu0
                errors = sum(r["errors"].values())
                runs[name].append(r)
                print(f"run {i + 1} {name:<11} {r['rps']:>10,.0f} req/s  client {r['client_cpu_s'] / max(1, r['requests']) * 1e6:5.2f} "
                      f"µs CPU/req ({r['client_cpu_util']:.0%} of its core)  server "
                      f"{r['server_cpu_s'] / max(1, r['requests']) * 1e6:5.2f} µs CPU/req"
                      + (f"  ERRORS {r['errors']}" if errors else ""), file=sys.stderr, flush=True)
    finally:
        server.stop()

    def med(name, f):
        return statistics.median(f(r) for r in runs[name])

    rps = {n: med(n, lambda r: r["rps"]) for n in runs}
    cpu = {n: med(n, lambda r: r["client_cpu_s"] / max(1, r["requests"]) * 1e6) for n in runs}
    srv = {n: med(n, lambda r: r["server_cpu_s"] / max(1, r["requests"]) * 1e6) for n in runs}
    print(f"{args.impl} {args.scenario}, {args.connections} connections, closed loop, {args.duration} s runs, "
          f"median of {args.repeat} interleaved; server on CPU {args.server_cpu}, client on CPU {args.client_cpu}; "
          f"{wrk.version()}, {squall_load.version(squall_bin)}")
    print()
    print("| engine | req/s (median) | runs | client CPU µs/request | server CPU µs/request |")
    print("|---|---:|---|---:|---:|")
    for n in runs:
        each = ", ".join(f"{r['rps']:,.0f}" for r in runs[n])
        print(f"| {n} | {rps[n]:,.0f} | {each} | {cpu[n]:.2f} | {srv[n]:.2f} |")
    print()
    print(f"squall-load / wrk: requests/s ×{rps['squall-load'] / rps['wrk']:.3f}, client CPU per request "
          f"×{cpu['squall-load'] / cpu['wrk']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
