#!/usr/bin/python3
"""Client throughput: Squall's AsyncHTTPClient beside wrk and Tornado's client, each
driving the same reference server with C concurrent requests (keep-alive where the
client does it) on GET /plaintext.

    /usr/bin/python3 -m squall_load.client_bench [--build-dir build/release/reference]
        [--duration 5] [--repeat 3] [--concurrency 64] [--clients wrk,squall,tornado]
        [--server-cpu 0] [--client-cpu 1] [--out client_bench.json]

The server is squall-contract-app (the reference's description, started through
load/impls.py as load/run.py does), pinned to --server-cpu. Each client runs in turn on
--client-cpu (taskset) for --duration seconds, --repeat rounds; the run with the median
requests/s stands for each client:

- wrk: `wrk -t1 -c C` with load/scenarios/plaintext.lua (keep-alive);
- squall: squall-client-bench --concurrency C (C fetch loops on one AsyncHTTPClient with
  max_clients = C and a keep-alive pool of C);
- tornado: load/tornado_client_bench.py (C fetch loops on one SimpleAsyncHTTPClient with
  max_clients = C; Tornado's simple client opens a connection per request).

Client CPU-s is the client's user + system time over its run (wrk: its whole process,
from wait4; the others measure themselves over the timed part). Prints a Markdown table
(req/s, client CPU-s, requests per client CPU-second, server CPU-s, ratios of req/s to wrk
and to Tornado) and the issue's two targets; --out writes everything as JSON. Progress
goes to stderr. Exit status 1 if a client had errors.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys

from squall_conformance import paths

from . import impls  # the registry's descriptions, started by its launcher
from . import procstat
from . import run as load_run  # run_wrk, preflight, log
from .scenarios import BY_NAME

HERE = os.path.dirname(os.path.abspath(__file__))

PLAINTEXT = BY_NAME["plaintext"]
ALL_CLIENTS = ["wrk", "squall", "tornado"]
log = load_run.log


def run_program(cmd: list[str], client_cpus: set[int], limit_s: float) -> dict:
    """Runs a client program pinned with taskset, killed after limit_s; returns the JSON
    object it prints last on stdout, plus its exit status."""
    full = ["taskset", "-c", ",".join(map(str, sorted(client_cpus)))] + cmd
    try:
        p = subprocess.run(full, capture_output=True, text=True, timeout=limit_s)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{cmd[0]} did not finish within {limit_s:.0f}s (killed)")
    lines = [line for line in p.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{cmd[0]} exited {p.returncode} without a JSON line: "
                           f"{(p.stderr or p.stdout).strip()[-300:]}")
    result = json.loads(lines[-1])
    result["exit_status"] = p.returncode
    return result


def run_client(client: str, url: str, args) -> dict:
    """One run of one client: requests, seconds, rps, client_cpu_s, errors."""
    c, d = args.concurrency, args.duration
    if client == "wrk":
        r = load_run.run_wrk(url, PLAINTEXT, d, c, 1, args.client_cpus, args.timeout)
        errors = sum(r["errors"].values())
        seconds = r["duration_us"] / 1e6
        return {"requests": r["requests"], "seconds": seconds, "client_cpu_s": r["wrk_cpu_s"],
                "errors": errors, "first_error": f"wrk errors {r['errors']}" if errors else None}
    if client == "squall":
        cmd = [args.squall_client, "--url", url + PLAINTEXT.path, "--concurrency", str(c),
               "--duration", f"{d:g}"]
    else:
        cmd = ["/usr/bin/python3", os.path.join(HERE, "tornado_client_bench.py"), "--url", url + PLAINTEXT.path,
               "--concurrency", str(c), "--duration", f"{d:g}"]
    r = run_program(cmd, args.client_cpus, d + 60)
    out = {"requests": r["requests"], "seconds": r["seconds"], "client_cpu_s": r["cpu_seconds"],
           "errors": r["errors"], "first_error": r.get("first_error")}
    if "connections_opened" in r:
        out["connections_opened"] = r["connections_opened"]
    return out


def measure(client: str, server, args) -> dict:
    url = f"http://{server.host}:{server.port}"
    procstat.pin(server.pid, args.server_cpus)  # again before each run
    cpus = args.server_cpus | args.client_cpus
    cpu0, busy0 = procstat.cpu_seconds(server.pid), procstat.cpu_busy_seconds(cpus)
    r = run_client(client, url, args)
    r["server_cpu_s"] = round(procstat.cpu_seconds(server.pid) - cpu0, 3)
    busy = procstat.cpu_busy_seconds(cpus) - busy0
    # CPU other processes took on the two cores, as a share of them (a noisy machine).
    r["foreign_cpu_share"] = round(max(0.0, busy - r["server_cpu_s"] - r["client_cpu_s"])
                                   / max(r["seconds"], 1e-9) / len(cpus), 3)
    r["rps"] = round(r["requests"] / r["seconds"], 1) if r["seconds"] else 0.0
    r["req_per_client_cpu_s"] = round(r["requests"] / r["client_cpu_s"], 1) if r["client_cpu_s"] else None
    return r


def ratio(a, b) -> str:
    return f"×{a / b:.2f}" if a and b else "–"


def table(summary: dict) -> str:
    wrk = summary.get("wrk", {}).get("rps")
    tornado = summary.get("tornado", {}).get("rps")
    lines = ["| client | req/s | client CPU-s | req / client CPU-s | server CPU-s | ÷ wrk | ÷ Tornado |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for client, m in summary.items():
        per_cpu = f"{m['req_per_client_cpu_s']:,.0f}" if m.get("req_per_client_cpu_s") else "–"
        lines.append(f"| {client} | {m['rps']:,.0f} | {m['client_cpu_s']:.2f} | {per_cpu} "
                     f"| {m['server_cpu_s']:.2f} | {ratio(m['rps'], wrk)} | {ratio(m['rps'], tornado)} |")
    return "\n".join(lines)


def targets(summary: dict) -> list[str]:
    """The performance issue's two client targets, where the runs allow checking them."""
    out = []
    s, w, t = (summary.get(k, {}).get("rps") for k in ("squall", "wrk", "tornado"))
    if s and w:
        out.append(f"squall ≥ 0.7 × wrk: {'met' if s >= 0.7 * w else 'NOT met'} (×{s / w:.2f})")
    if s and t:
        out.append(f"squall ≥ 20 × Tornado: {'met' if s >= 20 * t else 'NOT met'} (×{s / t:.1f})")
    if w and t:
        # The server, on one core, caps every client: what wrk reaches bounds the ratios.
        out.append(f"for scale: wrk reaches ×{w / t:.1f} Tornado's req/s on this server")
    per_cpu = {k: summary.get(k, {}).get("req_per_client_cpu_s") for k in ("squall", "wrk", "tornado")}
    if per_cpu["squall"] and (per_cpu["wrk"] or per_cpu["tornado"]):
        parts = [f"×{per_cpu['squall'] / per_cpu[k]:.2f} {k}" for k in ("wrk", "tornado") if per_cpu[k]]
        out.append("requests per client CPU-second: squall " + ", ".join(parts))
    return out


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", default=paths.default_squall_bin(),
                    help="where squall-contract-app and squall-client-bench are")
    ap.add_argument("--clients", default=",".join(ALL_CLIENTS), help="from " + ",".join(ALL_CLIENTS))
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per run (whole seconds for wrk)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per client; the median req/s is reported")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--server-cpu", default="0")
    ap.add_argument("--client-cpu", default="1")
    ap.add_argument("--warmup", type=float, default=2, help="seconds of wrk before measuring (0: none)")
    ap.add_argument("--timeout", type=float, default=5, help="wrk's per-request timeout, seconds")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args(argv)
    args.clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    unknown = [c for c in args.clients if c not in ALL_CLIENTS]
    if unknown:
        ap.error(f"unknown client(s) {unknown}")
    args.server_cpus = procstat.parse_cpu_list(args.server_cpu)
    args.client_cpus = procstat.parse_cpu_list(args.client_cpu)
    args.server_bin = os.path.join(os.path.abspath(args.build_dir), "squall-contract-app")
    args.squall_client = os.path.join(os.path.abspath(args.build_dir), "squall-client-bench")
    for b in [args.server_bin] + ([args.squall_client] if "squall" in args.clients else []):
        if not os.access(b, os.X_OK):
            ap.error(f"{b} not found (build it: ninja -C {args.build_dir}/.. {os.path.basename(b)})")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    started = dt.datetime.now().isoformat(timespec="seconds")
    # The reference's description ({squall_bin}/squall-contract-app), from --build-dir.
    server = impls.start(impls.resolve("reference"), squall_bin=os.path.abspath(args.build_dir))
    runs: dict[str, list[dict]] = {c: [] for c in args.clients}
    try:
        log(f"server: {args.server_bin} on {server.host}:{server.port}, pid {server.pid}, "
            f"CPU {args.server_cpu}; clients on CPU {args.client_cpu}")
        procstat.pin(server.pid, args.server_cpus)
        why = load_run.preflight(server.host, server.port, PLAINTEXT)
        if why:
            log(f"server does not serve {PLAINTEXT.path}: {why}")
            return 1
        if args.warmup > 0:
            log(f"warm-up: wrk {args.warmup:g}s")
            load_run.run_wrk(f"http://{server.host}:{server.port}", PLAINTEXT, args.warmup,
                             args.concurrency, 1, args.client_cpus, args.timeout)
        # Rounds interleave the clients, so slow drift in machine load hits all alike.
        for i in range(args.repeat):
            for client in args.clients:
                r = measure(client, server, args)
                runs[client].append(r)
                log(f"  {client:<8} run {i + 1}/{args.repeat}: {r['rps']:>10,.0f} req/s  "
                    f"client cpu {r['client_cpu_s']:.2f}s  server cpu {r['server_cpu_s']:.2f}s  "
                    f"other load {r['foreign_cpu_share']:.0%}"
                    + (f"  ERRORS {r['errors']} ({r['first_error']})" if r["errors"] else ""))
    finally:
        server.stop()

    summary = {c: sorted(rs, key=lambda r: r["rps"])[len(rs) // 2] for c, rs in runs.items()}
    la = os.getloadavg()
    print(f"{procstat.cpu_model()}, {os.cpu_count()} CPUs, load average {la[0]:.1f}; server "
          f"(squall-contract-app) on CPU {args.server_cpu}, client on CPU {args.client_cpu}; "
          f"{args.concurrency} concurrent requests; {args.duration:g} s per run, median of {args.repeat}.\n")
    print(table(summary))
    print()
    for line in targets(summary):
        print(f"- {line}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"started": started, "machine": {"cpu": procstat.cpu_model(), "cpus": os.cpu_count(),
                                                        "kernel": platform.release(), "loadavg_end": la},
                       "args": {k: v for k, v in vars(args).items() if k not in ("server_cpus", "client_cpus")},
                       "summary": summary, "runs": runs, "targets": targets(summary)}, f, indent=1)
        log(f"wrote {args.out}")
    return 1 if any(r["errors"] for rs in runs.values() for r in rs) else 0


if __name__ == "__main__":
    sys.exit(main())
