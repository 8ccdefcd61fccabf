#!/usr/bin/python3
"""Squall load runner: starts implementations of the server contract (descriptions read by
the conformance registry) and measures servers the user started (--url), runs the load
scenarios against each with a load engine (wrk by default; squall-load, open or closed
loop; Locust, scale-out), and writes JSON, a Markdown table (ratios to a baseline) and PNG
plots into load/results/<date>/.

    squall-loadrun ...                          (installed; from a clone: python3 -m squall_load ...)
    /usr/bin/python3 -m squall_load --impl reference,tornado,aiohttp,nginx,h2o
    /usr/bin/python3 -m squall_load --impl reference,nginx,path/to/mine.toml --scenario plaintext
    /usr/bin/python3 -m squall_load --impl reference --url mine=http://127.0.0.1:8888 --server-pid mine=1234
    /usr/bin/python3 -m squall_load --impl reference,nginx --scenario tls --duration 3
    /usr/bin/python3 -m squall_load --impl reference,nginx --scenario plaintext,connection_close --repeat 5   # interleaved
    /usr/bin/python3 -m squall_load --impl reference,nginx --engine squall-load --rate 5000
    /usr/bin/python3 -m squall_load --impl reference,nginx --engine squall-load --curve --duration 3
    /usr/bin/python3 -m squall_load --impl reference --engine locust --locust-workers 2 --scenario plaintext

See load/README.md. Every figure is read from the engine's own machine-readable output
(wrk's done() hook, squall-load's JSON, Locust's CSV statistics; engines/) and from /proc;
nothing is scraped from human-readable text. A figure that could not be measured is None
in the JSON and "n/a" in the tables, with the reason beside it ("unmeasured").
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import platform
import signal
import ssl
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass

if __name__ == "__main__" and not __package__:  # `python3 load/run.py` from the clone's root (older command lines)
    if os.path.realpath("squall_load") != os.path.dirname(os.path.realpath(__file__)):
        sys.exit("load/run.py: run it from the clone's root, or use python3 -m squall_load")
    os.execv(sys.executable, [sys.executable, "-m", "squall_load", *sys.argv[1:]])

from squall_conformance import helpformat, launch, paths, registry

from . import impls, interleave, procstat, report
from .engines import locust as locust_engine
from .engines import squall_load as squall_load_engine
from .engines import wrk as wrk_engine
from .scenarios import BY_NAME, SCENARIOS, TLS_SCENARIOS, Scenario

HERE = os.path.dirname(os.path.abspath(__file__))

WRK = wrk_engine.WRK
DEFAULT_IMPLS = "reference,tornado"
ENGINES = ("wrk", "squall-load", "locust")
DEFAULT_CURVE_STEPS = "10,25,50,75,90,100,110"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- pre-flight

def preflight(host: str, port: int, sc: Scenario, tls: ssl.SSLContext | None = None) -> str | None:
    """One request the scenario's way; None if it is served as the contract says, else
    why not (the scenario is then reported "n/a" for this implementation). With tls, over
    HTTPS, validating the server's certificate."""
    try:
        if tls is not None:
            conn = http.client.HTTPSConnection(host, port, timeout=5, context=tls)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=5)
        headers = {"Content-Type": "application/octet-stream"} if sc.body is not None else {}
        conn.request(sc.method, sc.path, body=sc.body, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        chunked = (resp.getheader("Transfer-Encoding") or "").lower() == "chunked"
        conn.close()
    except (OSError, http.client.HTTPException) as e:
        return f"{sc.method} {sc.path}: {e.__class__.__name__}: {e}"
    if resp.status != 200:
        return f"{sc.method} {sc.path} -> {resp.status}"
    if sc.expect_body is not None and body != sc.expect_body:
        return f"{sc.method} {sc.path}: body is not the contract's ({len(body)} bytes)"
    if sc.expect_chunked and not chunked:
        return f"{sc.method} {sc.path}: not chunked"
    if len(body) < sc.min_body:
        return f"{sc.method} {sc.path}: body {len(body)} < {sc.min_body} bytes"
    return None


# --------------------------------------------------------------------------- engines

def run_wrk(url: str, sc: Scenario, duration: float, connections: int, threads: int,
            client_cpus: set[int], timeout_s: float) -> dict:
    """Runs wrk once, pinned with taskset; returns the done() JSON plus wrk's own CPU use
    (engines/wrk.py; kept here for client_bench.py)."""
    return wrk_engine.run(url, sc, duration, connections, threads, client_cpus, timeout_s)


def engine_module(name: str):
    return {"wrk": wrk_engine, "squall-load": squall_load_engine, "locust": locust_engine}[name]


def engine_unsupported(engine: str, sc: Scenario) -> str | None:
    """Why the engine cannot run the scenario as the others do (the row is then n/a)."""
    if engine == "locust":
        return locust_engine.unsupported(sc)
    return None


def run_engine(target, sc: Scenario, args, duration: float, connections: int, *, engine: str | None = None,
               rate: float | None = None, warmup: float = 0) -> dict:
    """One run of the chosen engine against the target: the result dict of engines/common.py."""
    engine = engine or args.engine
    if engine == "wrk":
        return wrk_engine.run(target.url, sc, duration, connections, args.threads, args.client_cpus, args.timeout)
    if engine == "squall-load":
        return squall_load_engine.run(target.url, sc, duration, connections, args.client_cpus, args.timeout,
                                      squall_bin=args.squall_bin, rate=args.rate if rate is None else rate,
                                      warmup=warmup, ca_file=target.ca)
    return locust_engine.run(target.url, sc, duration, connections, args.client_cpus, args.timeout,
                             workers=args.locust_workers, remote_workers=args.locust_remote_workers,
                             bind=args.locust_bind, port=args.locust_port, warmup=max(1.0, warmup),
                             log=lambda m: log(f"  {m}"))


def per_request_us(seconds: float | None, requests: int) -> float | None:
    """Microseconds per request of a CPU time (None when unmeasured or nothing completed)."""
    if seconds is None or not requests:
        return None
    return round(seconds / requests * 1e6, 3)


# --------------------------------------------------------------------------- memory

def run_memory(host: str, port: int, server_pid: int | None, connections: int,
               client_cpus: set[int], timeout_s: float) -> dict:
    """Holds N idle keep-alive connections; the server's RSS growth per connection."""
    if server_pid is None:
        raise RuntimeError("the memory scenario needs the server's PID (--server-pid)")
    before = procstat.rss_kb(server_pid)
    cmd = ["taskset", "-c", ",".join(map(str, sorted(client_cpus))), sys.executable,
           os.path.join(HERE, "idle_connections.py"), "--host", host, "--port", str(port),
           "--connections", str(connections), "--timeout", str(timeout_s),
           "--hold", str(timeout_s)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        opened = json.loads(line) if line else {"opened": 0, "failed": connections, "seconds": 0}
        time.sleep(0.5)  # let the server settle
        held = procstat.rss_kb(server_pid)
        peak = procstat.peak_rss_kb(server_pid)
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    n = max(1, opened["opened"])
    return {
        "connections": connections, "opened": opened["opened"], "failed": opened["failed"],
        "open_seconds": opened["seconds"], "rss_before_kb": before, "rss_held_kb": held,
        "peak_rss_kb": peak, "rss_per_connection_kb": round((held - before) / n, 2),
    }


# --------------------------------------------------------------------------- targets

@dataclass
class Target:
    """One server being measured: an instance the harness started from a description, or a
    server the user started (--url)."""
    name: str
    desc: object                      # registry.Description
    host: str | None
    port: int | None
    scheme: str = "http"
    pid: int | None = None            # root of the process tree measured and pinned
    ca: str | None = None             # validate its certificate against this (None: do not)
    started: bool = False             # by the harness; False: --url
    no_pid_reason: str = ""           # why there is no PID (then nothing is pinned or read from /proc)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def tls_context(self):
        if self.scheme != "https":
            return None
        return ssl.create_default_context(cafile=self.ca) if self.ca else launch.client_context(None)


def pin(target: Target, args) -> dict | None:
    """Pin the target's process tree to the server CPUs; what was pinned (None: no PID)."""
    if not target.pid:
        return None
    p = procstat.pin(target.pid, args.server_cpus)
    if p["failed"]:
        log(f"  {target.name}: could not pin {', '.join(f'{k} ({v})' for k, v in p['failed'].items())}")
    return p


def pin_text(p: dict | None, why: str) -> str:
    if p is None:
        return f"not pinned ({why})"
    return (f"CPU {','.join(map(str, p['cpus']))}: pids {', '.join(map(str, p['pids'])) or 'none'}"
            + (f"; NOT pinned: {', '.join(p['failed'])}" if p["failed"] else ""))


def base_row(target: Target, sc: Scenario) -> dict:
    return {"impl": target.name, "scenario": sc.name, "description": sc.description}


def not_measured_row(target: Target, sc: Scenario, why: str) -> dict:
    return {**base_row(target, sc), "status": "n/a", "reason": why}


# --------------------------------------------------------------------------- one scenario

def elsewhere(target: Target, sc: Scenario) -> str | None:
    """Why a --url server is not measured on the scenario (it is measured at its URL only:
    its scheme decides which group it is in); None for a server the harness started."""
    if target.started:
        return None
    if sc.tls and target.scheme != "https":
        return ("a --url server is measured at its URL only (http://): "
                "give a description file with [server] tls for a TLS instance")
    if not sc.tls and target.scheme == "https":
        return ("a --url server is measured at its URL only (https://): "
                "plain-HTTP scenarios need an http:// URL")
    return None


def measure(target: Target, sc: Scenario, args) -> dict:
    why = impls.unserved(target.desc, sc) or elsewhere(target, sc)
    if why:
        return not_measured_row(target, sc, why)
    if target.started and sc.tls:
        return measure_tls(target, sc, args)
    if target.started and sc.name == "memory":
        return measure_memory(target, sc, args)
    return measure_on(target, sc, args)


def measure_memory(target: Target, sc: Scenario, args) -> dict:
    """The memory scenario, against an instance started for it: RSS growth is only the idle
    connections' cost on a server that has not served other scenarios before (what those
    left cached can be given back meanwhile — a server that trims after a burst then shows
    less than nothing)."""
    server = impls.start(target.desc, workers=args.workers, squall_bin=args.squall_bin)
    try:
        t = Target(target.name, target.desc, server.host, server.port, "http", server.pid, None, True)
        log(f"  {t.name:<10} {sc.name:<17} fresh instance on {server.host}:{server.port}, pid {server.pid}")
        pin(t, args)
        prime(t, sc)
        row = measure_on(t, sc, args)
        row["instance"] = f"fresh instance, pid {server.pid}"
        return row
    finally:
        server.stop()


def prime(target: Target, sc: Scenario, requests: int = 20) -> None:
    """A few requests before a fresh server's memory is read: the code and data a first
    request touches are not an idle connection's cost. (What goes wrong is reported by the
    scenario itself.)"""
    for _ in range(requests):
        if preflight(target.host, target.port, sc):
            return


def measure_tls(target: Target, sc: Scenario, args) -> dict:
    """A TLS scenario: against a TLS instance of the implementation, started for it with
    conformance's test certificates (validated against their CA)."""
    tls = impls.test_tls()
    server = impls.start(target.desc, workers=args.workers, squall_bin=args.squall_bin, tls=tls)
    try:
        t = Target(target.name, target.desc, server.host, server.port, "https", server.pid, tls.cafile, True)
        log(f"  {t.name:<10} {sc.name:<17} TLS instance on {server.host}:{server.port}, pid {server.pid}")
        pin(t, args)
        warm_up(t, BY_NAME["tls_plaintext"], args)
        row = measure_on(t, sc, args)
        row["instance"] = f"TLS instance, pid {server.pid}"
        return row
    finally:
        server.stop()


def warm_up(target: Target, sc: Scenario, args) -> None:
    if args.warmup <= 0:
        return
    why = impls.unserved(target.desc, sc) or preflight(target.host, target.port, sc, target.tls_context())
    if why:
        log(f"  {target.name:<10} warm-up skipped: {why}")
        return
    # Warm-up needs no figures: squall-load warms with itself, wrk and Locust with wrk
    # (Locust's start-up alone takes seconds, and its spawn phase warms the server again).
    engine = "squall-load" if args.engine == "squall-load" else "wrk"
    log(f"  {target.name:<10} warm-up {args.warmup:g}s ({sc.name}, {engine})")
    try:
        run_engine(target, sc, args, args.warmup, args.connections, engine=engine, rate=0)
    except Exception as e:  # the scenarios will say what is wrong
        log(f"  {target.name:<10} warm-up failed: {e}")


def not_ready(target: Target, sc: Scenario, args) -> str | None:
    """Why the scenario is not measured on this server after all (the row is then n/a): its
    pre-flight request was not answered the contract's way, or the engine cannot run it."""
    why = preflight(target.host, target.port, sc, target.tls_context())
    if why:
        return why
    unsupported = engine_unsupported(args.engine, sc)
    return f"{args.engine}: {unsupported}" if unsupported else None


def measure_on(target: Target, sc: Scenario, args) -> dict:
    row = base_row(target, sc)
    if sc.name == "memory":
        why = preflight(target.host, target.port, sc, target.tls_context())
        if why:
            row.update(status="n/a", reason=why)
            return row
        return memory_row(target, row, args)
    why = not_ready(target, sc, args)
    if why:
        row.update(status="n/a", reason=why)
        return row
    connections = sc.connections or args.connections
    runs, pinned = [], None
    for i in range(args.repeat):
        r, pinned = one_run(target, sc, args, connections, f"run {i + 1}/{args.repeat}")
        runs.append(r)
    summarize(row, target, args, runs, connections, pinned)
    if args.curve and row["status"] == "ok" and row["rps"] > 0:
        row["curve"] = sweep(target, sc, args, row["rps"], connections)
    return row


def memory_row(target: Target, row: dict, args) -> dict:
    """The memory scenario where the server is: N idle connections held once."""
    pid = target.pid
    if not pid:
        no_pid = target.no_pid_reason or "no server PID"
        row.update(status="n/a", reason=f"the memory scenario reads the server's RSS from /proc: {no_pid}")
        return row
    pinned = pin(target, args)
    n = args.idle_connections
    # Measured once, whatever --repeat says: allocators keep memory that was freed, so a
    # second run against the same server finds it already held and reports ~0 growth.
    # A server the runner started gets a fresh instance for it (measure_memory).
    m = run_memory(target.host, target.port, pid, n, args.client_cpus, max(60.0, n / 100))
    log(f"  {target.name:<10} memory      run 1/1 (not repeated): {m['opened']}/{n} held, "
        f"{m['rss_per_connection_kb']} KiB/connection")
    row.update(m, status="ok" if m["failed"] == 0 else "FAILED", engine="idle_connections.py + /proc",
               value=m["rss_per_connection_kb"], unit="KiB/conn", runs=[m["rss_per_connection_kb"]],
               pinned=pinned, server_pids=procstat.tree(pid))
    if m["failed"]:
        row["reason"] = f"{m['failed']} of {n} connections failed"
    return row


def one_run(target: Target, sc: Scenario, args, connections: int, label: str) -> tuple[dict, dict | None]:
    """One run of the scenario against the server, with its CPU time and peak RSS from /proc
    where its PID is known; logs one line, labelled (e.g. "run 2/5"). Returns the engine's
    result with those figures added, and what was pinned."""
    pid, pinned = target.pid, None
    cpus = args.server_cpus | args.client_cpus
    if pid:
        pinned = pin(target, args)  # again: catches workers started late
        procstat.reset_peak_rss(pid)
        times0 = procstat.cpu_times(pid)
    busy0 = procstat.cpu_busy_seconds(cpus)
    r = run_engine(target, sc, args, args.duration, connections, warmup=args.engine_warmup)
    if r["requests"] == 0 and not any(r["errors"].values()):
        # Nothing completed and nothing failed: on a saturated machine a short window
        # (CI's 1 s runs, a TLS handshake per request) can pass before the first answer.
        # One longer run tells a starved client from a server that does not answer.
        log(f"  {target.name:<10} {sc.name:<17} {label}: no request completed in "
            f"{args.duration:g}s and no error: running it once more for {args.duration * 3:g}s")
        if pid:
            times0 = procstat.cpu_times(pid)
        busy0 = procstat.cpu_busy_seconds(cpus)
        r = run_engine(target, sc, args, args.duration * 3, connections, warmup=args.engine_warmup)
    busy = procstat.cpu_busy_seconds(cpus) - busy0
    if pid:
        times = procstat.cpu_times(pid)
        r["server_user_s"] = round(times[0] - times0[0], 3)
        r["server_kernel_s"] = round(times[1] - times0[1], 3)
        r["server_cpu_s"] = round(r["server_user_s"] + r["server_kernel_s"], 3)
        r["peak_rss_kb"] = procstat.peak_rss_kb(pid)
        # CPU time other processes took on the server's and wrk's cores during the
        # run, as a share of those cores' capacity: > ~0.1 means the machine was not quiet.
        r["foreign_cpu_share"] = round(max(0.0, busy - r["server_cpu_s"] - r["client_cpu_s"])
                                       / r["client_wall_s"] / len(cpus), 3)
    secs = r["duration_us"] / 1e6
    r["transfer_bytes_per_s"] = r["bytes"] / secs if secs and r.get("bytes") is not None else None
    r["socket_errors"] = sum(v for k, v in r["errors"].items() if k != "status")
    r["non_2xx"] = r["errors"]["status"]
    log_run(target, sc, label, r)
    return r, pinned


def p99_us(result: dict) -> float | None:
    """A run's p99 latency in µs; None where its engine gave no percentiles (wrk pipelined)."""
    return (result.get("latency_us") or {}).get("p99")


def log_run(target: Target, sc: Scenario, label: str, r: dict) -> None:
    no_pid = target.no_pid_reason or "no server PID"
    p99 = p99_us(r)
    log(f"  {target.name:<10} {sc.name:<17} {label}: {r['rps']:>10,.0f} req/s"
        + (f" (offered {r['offered_rate']:,.0f})" if r.get("offered_rate") else "")
        + (f"  p99 {p99 / 1000:.2f} ms" if p99 is not None else "")
        + (f"  server cpu {r['server_cpu_s']:.2f}s" if "server_cpu_s" in r else f"  server cpu n/a ({no_pid})")
        + f"  {r['engine']} cpu {r['client_cpu_util']:.0%}"
        + (f"  other load {r['foreign_cpu_share']:.0%}" if "foreign_cpu_share" in r else "")
        + (f"  ERRORS {r['errors']}" if r["socket_errors"] or r["non_2xx"] else ""))


def unmeasured_figures(target: Target, med: dict) -> dict:
    """The figures of the median run that are None, and why."""
    no_pid = target.no_pid_reason or "no server PID"
    unmeasured = {}
    if not target.pid:
        for k in ("server_cpu_s", "rps_per_server_cpu_s", "peak_rss_kb", "foreign_cpu_share"):
            unmeasured[k] = f"{no_pid}: nothing read from /proc"
    elif not med.get("server_cpu_s"):
        unmeasured["rps_per_server_cpu_s"] = "the server's CPU time was below /proc's resolution (0.01 s)"
    if med.get("latency_us") is None:
        unmeasured["latency_us"] = (f"{med['engine']}: " + (
            "wrk records one latency sample per pipelined batch: no percentiles" if med["engine"] == "wrk"
            else med.get("latency_note", "no latency")))
    if med.get("transfer_bytes_per_s") is None:
        unmeasured["transfer_bytes_per_s"] = f"{med['engine']} does not count response bytes"
    return unmeasured


def summarize(row: dict, target: Target, args, runs: list[dict], connections: int, pinned: dict | None) -> None:
    """Fills the row from its runs (one_run's results): the median run (by requests/s)
    stands for the scenario; errors in any run fail it."""
    pid = target.pid
    med = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
    failed = [r for r in runs if r["socket_errors"] or r["non_2xx"] or r["requests"] == 0]
    server_cpu = med.get("server_cpu_s")
    row.update(
        status="FAILED" if failed else "ok",
        engine=med["engine"],
        connections=connections,
        requests=med["requests"], duration_s=round(med["duration_us"] / 1e6, 3),
        rps=round(med["rps"], 1), value=round(med["rps"], 1), unit="req/s",
        transfer_bytes_per_s=None if med.get("transfer_bytes_per_s") is None else round(med["transfer_bytes_per_s"]),
        latency_us=med.get("latency_us"),
        errors=med["errors"], socket_errors=med["socket_errors"], non_2xx=med["non_2xx"],
        server_cpu_s=server_cpu, peak_rss_kb=med.get("peak_rss_kb"),
        rps_per_server_cpu_s=round(med["requests"] / server_cpu, 1) if server_cpu else None,
        # Where the server's time per request went: its own code, or the kernel's (system
        # calls, TCP, the loopback's delivery), from /proc's utime and stime.
        server_user_us_per_request=per_request_us(med.get("server_user_s"), med["requests"]),
        server_kernel_us_per_request=per_request_us(med.get("server_kernel_s"), med["requests"]),
        client_cpu_util=med["client_cpu_util"],
        client_bound=med["client_cpu_util"] >= args.client_bound_threshold,
        foreign_cpu_share=med.get("foreign_cpu_share"),
        pinned=pinned, server_pids=procstat.tree(pid) if pid else None,
        unmeasured=unmeasured_figures(target, med),
        runs=[{"rps": round(r["rps"], 1), "errors": r["errors"],
               "server_cpu_s": r.get("server_cpu_s"), "client_cpu_util": r["client_cpu_util"],
               "foreign_cpu_share": r.get("foreign_cpu_share"),
               "p99_us": p99_us(r)}
              for r in runs],
    )
    # What only some engines say: squall-load's mode, schedule lag and histogram, Locust's workers.
    for key in ("mode", "offered_rate", "latency_from", "send_lag_us", "histogram", "statuses", "first_errors",
                "locust_workers", "locust_remote_workers", "locust_users", "latency_note"):
        if med.get(key) is not None and med.get(key) != {}:
            row[key] = med[key]
    if not pid:
        row["not_pinned"] = target.no_pid_reason or "no server PID"
    if failed:
        row["reason"] = "; ".join(f"run {runs.index(r) + 1}: errors {r['errors']}" for r in failed)


def sweep(target: Target, sc: Scenario, args, max_rps: float, connections: int) -> dict:
    """Latency against throughput: squall-load open loop at each --curve-steps percentage
    of the closed-loop maximum just measured, --repeat runs each (--duration, after
    --open-loop-warmup seconds at the same rate); the run with the median p99 stands for
    the step (a failed run or one with errors counts as the worst), all runs are kept."""
    points = []
    for pct in args.curve_steps:
        rate = max_rps * pct / 100
        point = {"percent": pct, "offered_rate": round(rate, 1)}
        runs = []
        for i in range(args.repeat):
            run = {}
            try:
                cpus = args.server_cpus | args.client_cpus
                if target.pid:
                    pin(target, args)
                    cpu0 = procstat.cpu_seconds(target.pid)
                busy0 = procstat.cpu_busy_seconds(cpus)
                r = run_engine(target, sc, args, args.duration, connections, engine="squall-load", rate=rate,
                               warmup=args.curve_warmup)
                busy = procstat.cpu_busy_seconds(cpus) - busy0
                run.update(achieved_rate=round(r["rps"], 1), requests=r["requests"], errors=r["errors"],
                           latency_us=r["latency_us"], send_lag_us=r.get("send_lag_us"),
                           timer_lateness_us=r.get("timer_lateness_us"),
                           client_cpu_util=r["client_cpu_util"], histogram=r.get("histogram"))
                if target.pid:
                    run["server_cpu_s"] = round(procstat.cpu_seconds(target.pid) - cpu0, 3)
                    # Other processes' share of the two cores during the step (warm-up included).
                    run["foreign_cpu_share"] = round(max(0.0, busy - run["server_cpu_s"] - r["client_cpu_s"])
                                                     / r["client_wall_s"] / len(cpus), 3)
                lat = r["latency_us"] or {}
                log(f"  {target.name:<10} {sc.name:<17} curve {pct:>3g}% run {i + 1}/{args.repeat}: offered "
                    f"{rate:>9,.0f} achieved {r['rps']:>9,.0f} req/s  p50 {lat.get('p50', 0) / 1000:.2f} "
                    f"p99 {lat.get('p99', 0) / 1000:.2f} p99.9 {lat.get('p99.9', 0) / 1000:.2f} ms"
                    + (f"  other load {run['foreign_cpu_share']:.0%}" if "foreign_cpu_share" in run else "")
                    + (f"  ERRORS {r['errors']}" if any(r["errors"].values()) else ""))
            except Exception as e:
                run["failed"] = f"{e.__class__.__name__}: {e}"
                log(f"  {target.name:<10} {sc.name:<17} curve {pct:g}% run {i + 1}: *** FAILED ***: {run['failed']}")
            runs.append(run)

        def badness(run):
            if run.get("failed") or not run.get("latency_us") or any(run["errors"].values()):
                return float("inf")
            return run["latency_us"]["p99"]
        chosen = sorted(runs, key=badness)[len(runs) // 2]
        point.update(chosen)
        point["runs"] = [{k: v for k, v in run.items() if k != "histogram"} for run in runs]
        points.append(point)
    return {"engine": "squall-load", "max_engine": args.engine, "max_rps": max_rps, "repeat": args.repeat,
            "points": points}


# --------------------------------------------------------------------------- arguments

@dataclass
class Spec:
    """An implementation named on the command line: a description to start, or a URL."""
    name: str
    desc: object
    url: str | None = None
    pid: int | None = None
    pid_note: str = ""


def _named(text: str):
    """"NAME=VALUE" -> (NAME, VALUE); "VALUE" -> (None, VALUE). A URL's own '=' (in a query)
    is not taken for the separator."""
    name, sep, value = text.partition("=")
    if sep and name and not any(c in name for c in ":/?"):
        return name, value
    return None, text


def parser():
    ap = helpformat.parser("squall-loadrun", "Squall load runner: implementations under load, scenario by scenario "
                           "(see load/README.md)")
    ap.add_argument("--impl", help="comma-separated descriptions: built-in names ("
                    + ", ".join(impls.builtin_names()) + ") or paths to description files "
                    f"(default {DEFAULT_IMPLS}, unless --url is given)")
    ap.add_argument("--url", action="append", default=[], metavar="[NAME=]URL",
                    help="also measure a server you started (http://127.0.0.1:PORT); repeatable")
    ap.add_argument("--server-pid", action="append", default=[], metavar="[NAME=]PID",
                    help="the PID of a --url server, for CPU/RSS and pinning (NAME= may be left out "
                    "with a single --url); its CPU affinity is restored after the run")
    ap.add_argument("--name", default="url", help="the name of a --url given without NAME= (default url)")
    ap.add_argument("--squall-bin", default=paths.default_squall_bin(),
                    help="where Squall's programs are ({squall_bin} in descriptions; $SQUALL_BIN, else the clone's "
                    "build/release/reference, else the folder on PATH holding squall-contract-app)")
    ap.add_argument("--scenario",
                    help="comma-separated, from " + ",".join(s.name for s in SCENARIOS + TLS_SCENARIOS)
                    + "; 'all' = every non-TLS scenario, 'tls' = the TLS ones (default all; plaintext with --curve)")
    ap.add_argument("--engine", choices=ENGINES,
                    help="the load engine (default wrk; squall-load with --rate or --curve): wrk (closed loop), "
                    "squall-load (open loop at --rate, or closed loop; a latency per response), "
                    "locust (a master and --locust-workers workers)")
    ap.add_argument("--rate", type=float, default=0,
                    help="squall-load: requests/s at fixed intended times, latency from the intended start "
                    "(open loop); 0 = closed loop (default)")
    ap.add_argument("--open-loop-warmup", type=float, default=1,
                    help="squall-load open loop: seconds at the rate before recording (default 1)")
    ap.add_argument("--curve", action="store_true",
                    help="latency against throughput: per implementation and scenario, the closed-loop maximum "
                    "(squall-load), then open-loop runs at --curve-steps percent of it")
    ap.add_argument("--curve-steps", default=DEFAULT_CURVE_STEPS,
                    help=f"percentages of the closed-loop maximum (default {DEFAULT_CURVE_STEPS})")
    ap.add_argument("--p99-threshold-ms", type=float, default=10,
                    help="the curve table says at which rate p99 crosses this (default 10)")
    ap.add_argument("--locust-workers", type=int, default=2,
                    help="locust: worker processes started here (default 2; --workers stays the server's)")
    ap.add_argument("--locust-remote-workers", type=int, default=0,
                    help="locust: workers started on other machines against this master (README)")
    ap.add_argument("--locust-bind", default="127.0.0.1",
                    help="locust: address the master listens on for workers (default 127.0.0.1)")
    ap.add_argument("--locust-port", type=int, default=0,
                    help="locust: the master's port (default 0: a free one, printed in the log; remote workers "
                    "need a fixed one)")
    ap.add_argument("--duration", type=int, default=5, help="seconds per run (default 5)")
    ap.add_argument("--connections", type=int, default=64,
                    help="wrk connections for scenarios without a fixed count (default 64)")
    ap.add_argument("--many-connections", type=int, default=1000,
                    help="connections of the many_connections scenario (default 1000)")
    ap.add_argument("--idle-connections", type=int, default=10000,
                    help="connections the memory scenario holds (default 10000)")
    ap.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    ap.add_argument("--workers", type=int, default=1,
                    help="server workers, for descriptions with [server] workers (default 1)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per scenario; the median is kept")
    ap.add_argument("--interleave", action=argparse.BooleanOptionalAction,
                    help="start every implementation first, then run each scenario in rounds: one run of "
                    "each implementation per round, in rotating order; the report adds the median of the "
                    "per-round ratios to the baseline (default: on with --repeat > 1, off with --curve)")
    ap.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per impl (0: none)")
    ap.add_argument("--timeout", type=int, default=5, help="wrk's per-request timeout, seconds")
    ap.add_argument("--baseline", help="impl the ratios are relative to (default: the first)")
    ap.add_argument("--server-cpu", default="0", help="CPUs for the server (default 0)")
    ap.add_argument("--client-cpu", default="1", help="CPUs for wrk (default 1)")
    ap.add_argument("--client-bound-threshold", type=float, default=0.9,
                    help="wrk CPU time / wall time at which a run is marked client-bound")
    ap.add_argument("--out", help="output directory (default: load/results/<date> in a clone, "
                    "./squall-load-results/<date> when installed)")
    ap.add_argument("--no-plots", action="store_true", help="no throughput.png and latency.png")
    return ap


def parse_args(argv=None):
    ap = parser()
    args = ap.parse_args(argv)
    for opt in ("duration", "repeat", "threads", "workers", "connections", "timeout"):
        if getattr(args, opt) < 1:
            ap.error(f"--{opt} must be at least 1")
    if args.engine is None:
        args.engine = "squall-load" if args.curve or args.rate > 0 else "wrk"
    if args.rate < 0:
        ap.error("--rate must be >= 0")
    if args.rate > 0 and args.engine != "squall-load":
        ap.error(f"--rate is squall-load's open loop: --engine {args.engine} is closed loop")
    if args.curve and args.engine != "squall-load":
        ap.error("--curve sweeps open-loop rates with squall-load: --engine squall-load")
    if args.curve and args.rate > 0:
        ap.error("--curve measures the closed-loop maximum first: leave --rate out")
    try:
        args.curve_steps = [float(x) for x in args.curve_steps.split(",") if x.strip()]
    except ValueError:
        ap.error(f"--curve-steps {args.curve_steps!r}: comma-separated percentages")
    if args.curve and (not args.curve_steps or min(args.curve_steps) <= 0):
        ap.error("--curve-steps: positive percentages")
    if args.locust_workers < 0 or args.locust_remote_workers < 0 or (
            args.engine == "locust" and args.locust_workers + args.locust_remote_workers < 1):
        ap.error("--locust-workers: Locust needs at least one worker")
    args.interleave_note = None
    if args.interleave and args.curve:
        args.interleave_note = ("--interleave does not apply to --curve (its sweep follows each implementation's "
                                "own maximum): implementation by implementation")
    if args.interleave is None or args.curve:
        # Interleaving changes only the order of the runs (and warms up per scenario), never
        # what a run measures; one round is no median, so --repeat 1 keeps the old order.
        args.interleave = args.repeat > 1 and not args.curve
    args.curve_warmup = args.open_loop_warmup
    args.engine_warmup = args.open_loop_warmup if args.engine == "squall-load" and args.rate > 0 else 0
    if args.scenario is None:
        args.scenario = "plaintext" if args.curve else "all"
    args.squall_bin = os.path.abspath(args.squall_bin)
    if args.engine == "squall-load" and squall_load_engine.available(args.squall_bin):
        ap.error(f"--engine squall-load: {squall_load_engine.available(args.squall_bin)} (--squall-bin)")
    if args.engine == "locust" and locust_engine.available():
        ap.error(f"--engine locust: {locust_engine.available()}")
    try:
        args.server_cpus = procstat.parse_cpu_list(args.server_cpu)
        args.client_cpus = procstat.parse_cpu_list(args.client_cpu)
    except ValueError as e:
        ap.error(f"CPU list: {e}")
    groups = {"all": SCENARIOS, "tls": TLS_SCENARIOS}
    names = [s.strip() for s in args.scenario.split(",") if s.strip()]
    unknown = [s for s in names if s not in BY_NAME and s not in groups]
    if unknown:
        ap.error(f"unknown scenario(s) {unknown}")
    args.scenarios = []
    for n in names:
        for sc in groups.get(n, [BY_NAME.get(n)]):
            if sc not in args.scenarios:
                args.scenarios.append(sc)
    for sc in args.scenarios:
        if sc.name == "many_connections":
            sc.connections = args.many_connections

    specs: list[Spec] = []
    impl_list = args.impl if args.impl is not None else ("" if args.url else DEFAULT_IMPLS)
    for item in (i.strip() for i in impl_list.split(",")):
        if item:
            try:
                desc = impls.resolve(item)
            except registry.DescriptionError as e:
                ap.error(str(e))
            specs.append(Spec(desc.name, desc))
    for text in args.url:
        name, url = _named(text)
        name = name or args.name
        u = urllib.parse.urlsplit(url)
        try:
            port = u.port
        except ValueError:
            port = None
        if u.scheme not in ("http", "https") or not u.hostname or not port or u.path not in ("", "/"):
            ap.error(f"--url {text}: give the server's root URL, http://HOST:PORT or https://HOST:PORT")
        try:
            desc = registry.from_url(name, f"{u.scheme}://{u.hostname}:{port}")
        except registry.DescriptionError as e:
            ap.error(str(e))
        specs.append(Spec(name, desc, url=f"{u.scheme}://{u.hostname}:{port}"))
    if not specs:
        ap.error("nothing to measure: give --impl and/or --url")
    seen = set()
    for s in specs:
        if s.name in seen:
            ap.error(f"two implementations are named {s.name!r}: the report needs distinct names "
                     "(--url OTHERNAME=URL)")
        seen.add(s.name)
    urls = [s for s in specs if s.url]
    for text in args.server_pid:
        name, value = _named(text)
        if name is None:
            if len(urls) != 1:
                ap.error(f"--server-pid {text}: say which --url it is (--server-pid NAME=PID)")
            name = urls[0].name
        spec = next((s for s in specs if s.name == name), None)
        if spec is None or not spec.url:
            ap.error(f"--server-pid {text}: {name!r} is not a --url server "
                     "(the harness knows the PIDs of what it starts)")
        if not value.isdigit() or int(value) <= 0 or not os.path.exists(f"/proc/{value}"):
            ap.error(f"--server-pid {text}: no process {value!r}")
        spec.pid = int(value)
        port = urllib.parse.urlsplit(spec.url).port
        ports = procstat.listening_ports(spec.pid)
        if ports is None:
            spec.pid_note = f"not checked that pid {spec.pid} listens on port {port} (its fds are unreadable)"
        elif port not in ports:
            ap.error(f"--server-pid {text}: process {spec.pid} and its children do not listen on port {port} "
                     f"(they listen on {', '.join(map(str, sorted(ports))) or 'no TCP port'})")
    args.specs = specs
    args.impls = [s.name for s in specs]
    args.baseline = args.baseline or args.impls[0]
    if args.baseline not in args.impls:
        ap.error(f"--baseline {args.baseline} is not among {args.impls}")
    return args


def wrk_version() -> str:
    p = subprocess.run([WRK, "-v"], capture_output=True, text=True)
    return (p.stdout + p.stderr).splitlines()[0].strip() if (p.stdout + p.stderr) else "?"


# --------------------------------------------------------------------------- one implementation

def implementation_info(spec: Spec, args) -> dict:
    """What the reports say about an implementation before it is measured."""
    d = spec.desc
    info = {"name": spec.name, "title": d.title, "description": d.source,
            "version": impls.version(d, args.squall_bin), "kind": "url" if spec.url else "started"}
    if spec.url:
        info.update(url=spec.url, pid=spec.pid, workers=None,
                    workers_note="not started by the harness: its own setting")
        if spec.pid_note:
            info["pid_note"] = spec.pid_note
    else:
        used = impls.workers_used(d, args.workers)
        info.update(workers=used, workers_note=(f"--workers {args.workers}" if d.server.workers is not None
                                                else f"one process: no [server] workers in {d.source}"))
    return info


@contextlib.contextmanager
def opened(spec: Spec, args, info: dict):
    """Start (or attach to) one implementation and pin it; yields its Target. On the way out
    (also on errors and Ctrl-C) a started server is stopped by PID and a --url server's CPU
    affinity is put back as it was."""
    name = spec.name
    server, saved = None, None
    try:
        if spec.url:
            u = urllib.parse.urlsplit(spec.url)
            target = Target(name, spec.desc, u.hostname, u.port, u.scheme, spec.pid, None, False,
                            "" if spec.pid else "a --url server without --server-pid")
            if spec.pid:
                saved = procstat.affinity(spec.pid)
                info["affinity_before"] = sorted(saved.get(spec.pid, set()))
        elif all(sc.tls for sc in args.scenarios):
            # TLS scenarios start their own TLS instance: no plain one needed.
            target = Target(name, spec.desc, None, None, started=True)
        else:
            log(f"{name}: starting ({info['workers']} worker(s): {info['workers_note']})")
            server = impls.start(spec.desc, workers=args.workers, squall_bin=args.squall_bin)
            target = Target(name, spec.desc, server.host, server.port, pid=server.pid, started=True)
            info.update(url=server.url, pid=server.pid, argv=server.argv)
            log(f"{name}: listening on {server.host}:{server.port}, pid {server.pid}")
        if target.host:
            p = pin(target, args)
            info["pinned"] = p
            if p is None:
                info["not_pinned"] = target.no_pid_reason
            info["server_pids"] = procstat.tree(target.pid) if target.pid else None
            log(f"{name}: {pin_text(p, target.no_pid_reason)}")
            warm_up(target, BY_NAME["plaintext"] if target.scheme == "http" else BY_NAME["tls_plaintext"], args)
        yield target
    finally:
        if server is not None:
            server.stop()
        if saved is not None:
            r = procstat.restore_affinity(spec.pid, saved)
            info["affinity_restored"] = not r["failed"]
            info["affinity_after"] = (sorted(os.sched_getaffinity(spec.pid))
                                      if os.path.exists(f"/proc/{spec.pid}") else None)
            log(f"{name}: CPU affinity of pid {spec.pid} restored to {info['affinity_after']}"
                + (f" (failed for threads {sorted(r['failed'])})" if r["failed"] else ""))


def log_row(row: dict) -> dict:
    """Says in the progress log why a row has no figures (n/a) or FAILED; returns the row."""
    if row["status"] == "n/a":
        log(f"  {row['impl']:<10} {row['scenario']:<17} n/a: {row['reason']}")
    elif row["status"] == "FAILED":
        log(f"  {row['impl']:<10} {row['scenario']:<17} *** FAILED ***: {row.get('reason')}")
    return row


def failed_row(target: Target, sc: Scenario, e: Exception) -> dict:
    return {**base_row(target, sc), "status": "FAILED", "reason": f"{e.__class__.__name__}: {e}"}


def measure_logged(target: Target, sc: Scenario, args) -> dict:
    """measure(), an exception turned into a FAILED row; logged."""
    try:
        return log_row(measure(target, sc, args))
    except Exception as e:
        return log_row(failed_row(target, sc, e))


def fail_the_rest(name: str, args, rows: list, e: Exception) -> None:
    """An implementation that could not be started or run: FAILED on every scenario it has no row for."""
    log(f"{name}: *** FAILED to start or run ***: {e.__class__.__name__}: {e}")
    for sc in args.scenarios:
        if not any(r["impl"] == name and r["scenario"] == sc.name for r in rows):
            rows.append({"impl": name, "scenario": sc.name, "description": sc.description,
                         "status": "FAILED", "reason": f"{e.__class__.__name__}: {e}"})


def run_implementation(spec: Spec, args, info: dict, rows: list) -> None:
    """Start (or attach to) one implementation, measure every scenario, stop it."""
    try:
        with opened(spec, args, info) as target:
            for sc in args.scenarios:
                rows.append(measure_logged(target, sc, args))
    except KeyboardInterrupt:
        raise
    except Exception as e:
        fail_the_rest(spec.name, args, rows, e)


# --------------------------------------------------------------------------- main

def main(argv=None) -> int:
    # SIGTERM (timeout(1), CI) ends the run as Ctrl-C does: servers stopped by PID, --url
    # affinities put back, what was measured written. Here, not under __main__: the runner
    # is started as python3 -m squall_load or the squall-loadrun entry point.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    args = parse_args(argv)
    nofile = procstat.raise_nofile(max(args.idle_connections, args.many_connections) * 2 + 256)
    out_dir = args.out or os.path.join(os.path.join(HERE, "results") if paths.REPO else "squall-load-results",
                                       dt.date.today().isoformat())
    os.makedirs(out_dir, exist_ok=True)
    wrk = wrk_version()
    engines = {}
    if args.engine == "wrk" or (args.engine == "locust" and args.warmup > 0):
        engines["wrk"] = (f"{wrk}: requests/s, transfer/s, latency, errors (scenarios/*.lua's done() line)"
                          + (", closed loop" if args.engine == "wrk" else ": warm-up only"))
    if args.engine == "squall-load":
        mode = f"open loop at {args.rate:g} req/s" if args.rate > 0 else "closed loop"
        engines["squall-load"] = (f"{squall_load_engine.version(args.squall_bin)}: requests/s, latency per "
                                  f"response (HDR histogram), errors; {mode}"
                                  + ("; curves: open loop at each step's rate" if args.curve else ""))
    if args.engine == "locust":
        engines["locust"] = (f"{locust_engine.version()}: requests/s, latency (ms, rounded), failures; "
                             f"{args.locust_workers} local worker(s)"
                             + (f" + {args.locust_remote_workers} remote" if args.locust_remote_workers else "")
                             + ", closed loop")
    engines["/proc"] = "server CPU time, peak RSS (VmHWM) and RSS of the server's process tree"
    engines["idle_connections.py + /proc"] = "memory: idle connections held, server RSS growth per connection"
    meta = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "cpu_model": procstat.cpu_model(), "cpus": os.cpu_count(),
        "kernel": platform.release(), "wrk": wrk, "python": platform.python_version(),
        "engine": args.engine, "rate": args.rate or None,
        "curve": {"steps_percent": args.curve_steps, "p99_threshold_ms": args.p99_threshold_ms,
                  "warmup_s": args.curve_warmup} if args.curve else None,
        "locust": {"workers": args.locust_workers, "remote_workers": args.locust_remote_workers,
                   "bind": args.locust_bind, "port": args.locust_port or None} if args.engine == "locust" else None,
        "engines": engines,
        "server_cpus": sorted(args.server_cpus), "client_cpus": sorted(args.client_cpus),
        "duration_s": args.duration, "connections": args.connections,
        "many_connections": args.many_connections, "idle_connections": args.idle_connections,
        "threads": args.threads, "workers": args.workers, "repeat": args.repeat, "interleave": args.interleave,
        "baseline": args.baseline, "impls": args.impls, "nofile_limit": nofile,
        "squall_bin": os.path.relpath(args.squall_bin, paths.REPO)
        if paths.REPO and not os.path.relpath(args.squall_bin, paths.REPO).startswith("..") else args.squall_bin,
        "scenarios": {s.name: s.description for s in args.scenarios},
        "loadavg_start": os.getloadavg(),
        "command": " ".join([os.path.relpath(sys.argv[0])] + (argv or sys.argv[1:])),
    }
    meta["implementations"] = {s.name: implementation_info(s, args) for s in args.specs}
    log(f"cpu: {meta['cpu_model']} ({meta['cpus']} cpus); servers pinned to cpu {args.server_cpu} when "
        f"their PID is known, {args.engine} to cpu {args.client_cpu}; {len(args.impls)} impl(s) x "
        f"{len(args.scenarios)} scenario(s) x {args.repeat} run(s) of {args.duration:g}s"
        + (", interleaved in rounds" if args.interleave else ", implementation by implementation")
        + f" -> {out_dir}")
    if args.interleave_note:
        log(args.interleave_note)
    for s in args.specs:
        i = meta["implementations"][s.name]
        log(f"{s.name}: {i['version']} ({i['description']})")
    rows, ratios = [], []
    interrupted = False
    try:
        if args.interleave:
            interleave.run_all(args, meta["implementations"], rows, ratios)
        else:
            for spec in args.specs:
                run_implementation(spec, args, meta["implementations"][spec.name], rows)
    except KeyboardInterrupt:
        interrupted = True

    meta["loadavg_end"] = os.getloadavg()
    data = {"meta": meta, "results": rows}
    if args.interleave:
        data["interleaved_ratios"] = ratios
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(data, f, indent=1, allow_nan=False)
    md = report.markdown(data)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(md)
    if not args.no_plots:
        report.plots(data, out_dir)
    print(md)
    failed = [r for r in rows if r["status"] == "FAILED"]
    if failed:
        bar = "!" * 72
        log(bar)
        for r in failed:
            log(f"FAILED: {r['impl']} / {r['scenario']}: {r.get('reason')}")
        log(bar)
    log(f"wrote {out_dir}/results.json, results.md" + ("" if args.no_plots else ", *.png"))

    return 130 if interrupted else (1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
