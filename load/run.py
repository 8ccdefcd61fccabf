#!/usr/bin/python3
"""Squall load runner: starts implementations of the server contract, runs the wrk
scenarios against each, and writes JSON, a Markdown table (ratios to a baseline) and
PNG plots into load/results/<date>/.

    /usr/bin/python3 load/run.py --impl reference,tornado,aiohttp,nginx,h2o
    /usr/bin/python3 load/run.py --url http://127.0.0.1:8888 --server-pid 1234
    /usr/bin/python3 load/run.py --impl reference,tornado --scenario plaintext,json \
        --duration 5 --repeat 3 --baseline tornado
    /usr/bin/python3 load/run.py --impl reference,nginx --scenario tls --duration 3

See load/README.md. Every figure is read from wrk's done() hook (one JSON line) and
from /proc; nothing is scraped from wrk's text output.
"""
from __future__ import annotations

import argparse
import atexit
import datetime as dt
import http.client
import json
import os
import platform
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import procstat  # noqa: E402
import report  # noqa: E402
from scenarios import BY_NAME, SCENARIOS, TLS_SCENARIOS, Scenario  # noqa: E402

WRK = "/usr/bin/wrk"
ALL_IMPLS = ["reference", "tornado", "aiohttp", "nginx", "h2o", "bare"]
MAKE_CERTS = os.path.join(os.path.dirname(HERE), "reference", "tests", "tls", "make_certs.sh")
_certs_dir = None


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- pre-flight

def certs_dir() -> str:
    """The TLS scenarios' certificates (a CA, and a server certificate for 127.0.0.1 and
    localhost), generated with openssl on first use by make_certs.sh; removed at exit."""
    global _certs_dir
    if _certs_dir is None:
        path = tempfile.mkdtemp(prefix="squall-load-certs-")
        atexit.register(shutil.rmtree, path, True)
        subprocess.run(["/bin/sh", MAKE_CERTS, path], check=True, stdout=subprocess.DEVNULL)
        # nginx's master reads them before dropping privileges; be readable anyway.
        os.chmod(path, 0o755)
        for name in os.listdir(path):
            os.chmod(os.path.join(path, name), 0o644)
        _certs_dir = path
    return _certs_dir


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


# --------------------------------------------------------------------------- wrk

def run_wrk(url: str, sc: Scenario, duration: float, connections: int, threads: int,
            client_cpus: set[int], timeout_s: float) -> dict:
    """Runs wrk once, pinned with taskset; returns the done() JSON plus wrk's own CPU use."""
    threads = max(1, min(threads, connections))
    duration = max(1, round(duration))  # wrk takes whole seconds only
    cmd = ["taskset", "-c", ",".join(map(str, sorted(client_cpus))), WRK,
           "-t", str(threads), "-c", str(connections), "-d", f"{duration:g}s",
           "--timeout", f"{max(1, round(timeout_s))}s", "-s", os.path.join(HERE, "scenarios", sc.script),
           url]
    env = dict(os.environ, SQUALL_LUA_DIR=os.path.join(HERE, "scenarios"),
               SQUALL_SCENARIO=sc.name, **sc.env)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        limit = start + duration + timeout_s + 20  # every run is bounded in time
        rusage = None
        while True:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > limit:
                proc.kill()
                _, status, rusage = os.wait4(proc.pid, 0)
                proc.returncode = -9
                break
            time.sleep(0.05)
        wall = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    result = None
    for line in stdout.splitlines():
        if line.startswith("SQUALL_RESULT "):
            result = json.loads(line[len("SQUALL_RESULT "):])
    if result is None:
        raise RuntimeError(f"wrk exited {proc.returncode} without a result line: "
                           f"{(stderr or stdout).strip()[-300:]}")
    cpu = rusage.ru_utime + rusage.ru_stime
    result["wrk_cpu_s"] = round(cpu, 3)
    result["wrk_wall_s"] = round(wall, 3)
    # wrk's threads can use at most min(threads, client cores) cores.
    result["client_cpu_util"] = round(cpu / wall / min(threads, len(client_cpus)), 3)
    return result


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


# --------------------------------------------------------------------------- one scenario

def measure(target: dict, sc: Scenario, args, repeat: int) -> dict:
    if not args.url:
        import impls  # noqa: E402
        why = impls.unserved(target["name"], sc.name)
        if why:
            return {"impl": target["name"], "scenario": sc.name, "description": sc.description,
                    "status": "n/a", "reason": why}
    if sc.tls:
        return measure_tls(target, sc, args, repeat)
    return measure_on(target, sc, args, repeat)


def measure_tls(target: dict, sc: Scenario, args, repeat: int) -> dict:
    """A TLS scenario: against a TLS instance of the implementation, started for it."""
    name = target["name"]
    row = {"impl": name, "scenario": sc.name, "description": sc.description}
    if args.url:
        row.update(status="n/a", reason="TLS scenarios need a server the harness starts (not --url)")
        return row
    import impls  # noqa: E402
    try:
        server = impls.start_tls(name, certs_dir(), workers=args.workers)
    except impls.NoTLS as e:
        row.update(status="n/a", reason=str(e))
        return row
    try:
        tls_target = {"name": name, "host": server.host, "port": server.port, "pid": server.pid,
                      "scheme": "https", "ca": os.path.join(certs_dir(), "ca.pem")}
        log(f"  {name:<10} {sc.name:<17} TLS instance on {server.host}:{server.port}, pid {server.pid}")
        if server.pid:
            procstat.pin(server.pid, args.server_cpus)
        if args.warmup > 0:
            try:
                run_wrk(f"https://{server.host}:{server.port}", BY_NAME["tls_plaintext"], args.warmup,
                        args.connections, args.threads, args.client_cpus, args.timeout)
            except Exception as e:  # the measurement will say what is wrong
                log(f"  {name:<10} {sc.name:<17} warm-up failed: {e}")
        return measure_on(tls_target, sc, args, repeat)
    finally:
        server.stop()


def measure_on(target: dict, sc: Scenario, args, repeat: int) -> dict:
    host, port, pid = target["host"], target["port"], target.get("pid")
    scheme = target.get("scheme", "http")
    row = {"impl": target["name"], "scenario": sc.name, "description": sc.description}
    tls = ssl.create_default_context(cafile=target["ca"]) if scheme == "https" else None
    why = preflight(host, port, sc, tls)
    if why:
        row.update(status="n/a", reason=why)
        return row
    if sc.name == "memory":
        n = args.idle_connections
        if pid:
            procstat.pin(pid, args.server_cpus)
        # Measured once, whatever --repeat says: allocators keep memory that was freed, so a
        # second run against the same server finds it already held and reports ~0 growth.
        # Only the first run measures what an idle connection costs (the server has served
        # the other scenarios before, at most 1,000 connections: below this one's 10,000).
        m = run_memory(host, port, pid, n, args.client_cpus, max(60.0, n / 100))
        log(f"  {target['name']:<10} memory      run 1/1 (not repeated): {m['opened']}/{n} held, "
            f"{m['rss_per_connection_kb']} KiB/connection")
        row.update(m, status="ok" if m["failed"] == 0 else "FAILED",
                   value=m["rss_per_connection_kb"], unit="KiB/conn",
                   runs=[m["rss_per_connection_kb"]])
        if m["failed"]:
            row["reason"] = f"{m['failed']} of {n} connections failed"
        return row

    connections = sc.connections or args.connections
    runs = []
    for i in range(repeat):
        if pid:
            procstat.pin(pid, args.server_cpus)  # again: catches workers started late
            procstat.reset_peak_rss(pid)
            cpu0 = procstat.cpu_seconds(pid)
        busy0 = procstat.cpu_busy_seconds(args.server_cpus | args.client_cpus)
        r = run_wrk(f"{scheme}://{host}:{port}", sc, args.duration, connections, args.threads,
                    args.client_cpus, args.timeout)
        if r["requests"] == 0 and not any(r["errors"].values()):
            # Nothing completed and nothing failed: on a saturated machine a short window
            # (CI's 1 s runs, a TLS handshake per request) can pass before the first answer.
            # One longer run tells a starved client from a server that does not answer.
            log(f"  {target['name']:<10} {sc.name:<17} run {i + 1}/{repeat}: no request completed in "
                f"{args.duration:g}s and no error: running it once more for {args.duration * 3:g}s")
            if pid:
                cpu0 = procstat.cpu_seconds(pid)
            busy0 = procstat.cpu_busy_seconds(args.server_cpus | args.client_cpus)
            r = run_wrk(f"{scheme}://{host}:{port}", sc, args.duration * 3, connections, args.threads,
                        args.client_cpus, args.timeout)
        busy = procstat.cpu_busy_seconds(args.server_cpus | args.client_cpus) - busy0
        if pid:
            r["server_cpu_s"] = round(procstat.cpu_seconds(pid) - cpu0, 3)
            r["peak_rss_kb"] = procstat.peak_rss_kb(pid)
            # CPU time other processes took on the server's and wrk's cores during the
            # run, as a share of those cores' capacity: > ~0.1 means the machine was not quiet.
            r["foreign_cpu_share"] = round(max(0.0, busy - r["server_cpu_s"] - r["wrk_cpu_s"])
                                           / r["wrk_wall_s"] / len(args.server_cpus | args.client_cpus), 3)
        secs = r["duration_us"] / 1e6
        r["rps"] = r["requests"] / secs if secs else 0.0
        r["transfer_bytes_per_s"] = r["bytes"] / secs if secs else 0.0
        r["socket_errors"] = sum(v for k, v in r["errors"].items() if k != "status")
        r["non_2xx"] = r["errors"]["status"]
        runs.append(r)
        log(f"  {target['name']:<10} {sc.name:<17} run {i + 1}/{repeat}: {r['rps']:>10,.0f} req/s"
            f"  server cpu {r.get('server_cpu_s', float('nan')):.2f}s"
            f"  wrk cpu {r['client_cpu_util']:.0%}"
            + (f"  other load {r['foreign_cpu_share']:.0%}" if "foreign_cpu_share" in r else "")
            + (f"  ERRORS {r['errors']}" if r["socket_errors"] or r["non_2xx"] else ""))
    # The median run (by requests/s) stands for the scenario; errors in any run fail it.
    med = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
    failed = [r for r in runs if r["socket_errors"] or r["non_2xx"] or r["requests"] == 0]
    row.update(
        status="FAILED" if failed else "ok",
        connections=connections,
        requests=med["requests"], duration_s=round(med["duration_us"] / 1e6, 3),
        rps=round(med["rps"], 1), value=round(med["rps"], 1), unit="req/s",
        transfer_bytes_per_s=round(med["transfer_bytes_per_s"]),
        latency_us=med["latency_us"] if sc.latency_meaningful else None,
        errors=med["errors"], socket_errors=med["socket_errors"], non_2xx=med["non_2xx"],
        server_cpu_s=med.get("server_cpu_s"), peak_rss_kb=med.get("peak_rss_kb"),
        rps_per_server_cpu_s=(round(med["requests"] / med["server_cpu_s"], 1)
                              if med.get("server_cpu_s") else None),
        client_cpu_util=med["client_cpu_util"],
        client_bound=med["client_cpu_util"] >= args.client_bound_threshold,
        foreign_cpu_share=med.get("foreign_cpu_share"),
        runs=[{"rps": round(r["rps"], 1), "errors": r["errors"],
               "server_cpu_s": r.get("server_cpu_s"), "client_cpu_util": r["client_cpu_util"],
               "foreign_cpu_share": r.get("foreign_cpu_share")}
              for r in runs],
    )
    if failed:
        row["reason"] = "; ".join(f"run {runs.index(r) + 1}: errors {r['errors']}" for r in failed)
    return row


# --------------------------------------------------------------------------- main

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="Squall load runner (see load/README.md)")
    ap.add_argument("--impl", default="reference,tornado",
                    help=f"comma-separated, from {','.join(ALL_IMPLS)} (default reference,tornado)")
    ap.add_argument("--url", help="measure a server you started (http://127.0.0.1:PORT) instead")
    ap.add_argument("--server-pid", type=int, help="with --url: its PID, for CPU/RSS and pinning")
    ap.add_argument("--name", default="url", help="with --url: the name in the report")
    ap.add_argument("--scenario", default="all",
                    help="comma-separated, from " + ",".join(s.name for s in SCENARIOS + TLS_SCENARIOS)
                    + "; 'all' = every non-TLS scenario, 'tls' = the TLS ones")
    ap.add_argument("--duration", type=int, default=5.0, help="seconds per run (default 5)")
    ap.add_argument("--connections", type=int, default=64,
                    help="wrk connections for scenarios without a fixed count (default 64)")
    ap.add_argument("--many-connections", type=int, default=1000,
                    help="connections of the many_connections scenario (default 1000)")
    ap.add_argument("--idle-connections", type=int, default=10000,
                    help="connections the memory scenario holds (default 10000)")
    ap.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    ap.add_argument("--workers", type=int, default=1, help="server processes/threads (default 1)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per scenario; the median is kept")
    ap.add_argument("--warmup", type=int, default=2.0, help="seconds of warm-up per impl (0: none)")
    ap.add_argument("--timeout", type=int, default=5.0, help="wrk's per-request timeout, seconds")
    ap.add_argument("--baseline", help="impl the ratios are relative to (default: the first)")
    ap.add_argument("--server-cpu", default="0", help="CPUs for the server (default 0)")
    ap.add_argument("--client-cpu", default="1", help="CPUs for wrk (default 1)")
    ap.add_argument("--client-bound-threshold", type=float, default=0.9,
                    help="wrk CPU time / wall time at which a run is marked client-bound")
    ap.add_argument("--out", help="output directory (default load/results/<date>)")
    ap.add_argument("--no-plots", action="store_true")
    args = ap.parse_args(argv)
    args.server_cpus = procstat.parse_cpu_list(args.server_cpu)
    args.client_cpus = procstat.parse_cpu_list(args.client_cpu)
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
    if args.url:
        args.impls = [args.name]
    else:
        args.impls = [i.strip() for i in args.impl.split(",") if i.strip()]
        unknown = [i for i in args.impls if i not in ALL_IMPLS]
        if unknown:
            ap.error(f"unknown implementation(s) {unknown}")
    args.baseline = args.baseline or args.impls[0]
    if args.baseline not in args.impls:
        ap.error(f"--baseline {args.baseline} is not among {args.impls}")
    return args


def wrk_version() -> str:
    p = subprocess.run([WRK, "-v"], capture_output=True, text=True)
    return (p.stdout + p.stderr).splitlines()[0].strip() if (p.stdout + p.stderr) else "?"


def main(argv=None) -> int:
    args = parse_args(argv)
    nofile = procstat.raise_nofile(max(args.idle_connections, args.many_connections) * 2 + 256)
    out_dir = args.out or os.path.join(HERE, "results", dt.date.today().isoformat())
    os.makedirs(out_dir, exist_ok=True)
    meta = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "cpu_model": procstat.cpu_model(), "cpus": os.cpu_count(),
        "kernel": platform.release(), "wrk": wrk_version(), "python": platform.python_version(),
        "server_cpus": sorted(args.server_cpus), "client_cpus": sorted(args.client_cpus),
        "duration_s": args.duration, "connections": args.connections,
        "many_connections": args.many_connections, "idle_connections": args.idle_connections,
        "threads": args.threads, "workers": args.workers, "repeat": args.repeat,
        "baseline": args.baseline, "impls": args.impls, "nofile_limit": nofile,
        "scenarios": {s.name: s.description for s in args.scenarios},
        "loadavg_start": os.getloadavg(),
        "reference_bin": os.environ.get("SQUALL_REFERENCE_BIN") or "build/release/reference/squall-contract-app",
        **({"bare_bin": os.environ.get("SQUALL_BARE_BIN") or "build/release/reference/squall-bare-server"}
           if "bare" in args.impls else {}),
        "command": " ".join([os.path.relpath(sys.argv[0])] + (argv or sys.argv[1:])),
    }
    log(f"cpu: {meta['cpu_model']} ({meta['cpus']} cpus); server on cpu {args.server_cpu}, "
        f"wrk on cpu {args.client_cpu}; {len(args.impls)} impl(s) x {len(args.scenarios)} "
        f"scenario(s) x {args.repeat} run(s) of {args.duration:g}s -> {out_dir}")
    rows = []
    interrupted = False
    for name in args.impls:
        server = None
        try:
            if args.url:
                u = urllib.parse.urlsplit(args.url)
                target = {"name": name, "host": u.hostname, "port": u.port or 80,
                          "pid": args.server_pid}
            elif all(sc.tls for sc in args.scenarios):
                # TLS scenarios start their own TLS instance: no plain one needed.
                target = {"name": name, "host": None, "port": None, "pid": None}
            else:
                import impls  # noqa: E402  (imports conformance/peers lazily)
                log(f"{name}: starting ({args.workers} worker(s))")
                server = impls.start(name, workers=args.workers)
                target = {"name": name, "host": server.host, "port": server.port,
                          "pid": server.pid}
                log(f"{name}: listening on {server.host}:{server.port}, pid {server.pid}")
            if target["pid"]:
                procstat.pin(target["pid"], args.server_cpus)
            if args.warmup > 0 and target["port"]:
                log(f"{name}: warm-up {args.warmup:g}s")
                try:
                    run_wrk(f"http://{target['host']}:{target['port']}", BY_NAME["plaintext"],
                            args.warmup, args.connections, args.threads, args.client_cpus,
                            args.timeout)
                except Exception as e:  # the scenarios will say what is wrong
                    log(f"{name}: warm-up failed: {e}")
            for sc in args.scenarios:
                try:
                    row = measure(target, sc, args, args.repeat)
                except Exception as e:
                    row = {"impl": name, "scenario": sc.name, "description": sc.description,
                           "status": "FAILED", "reason": f"{e.__class__.__name__}: {e}"}
                if row["status"] == "n/a":
                    log(f"  {name:<10} {sc.name:<17} n/a: {row['reason']}")
                elif row["status"] == "FAILED":
                    log(f"  {name:<10} {sc.name:<17} *** FAILED ***: {row.get('reason')}")
                rows.append(row)
        except KeyboardInterrupt:
            interrupted = True
        except Exception as e:
            log(f"{name}: *** FAILED to start or run ***: {e.__class__.__name__}: {e}")
            for sc in args.scenarios:
                if not any(r["impl"] == name and r["scenario"] == sc.name for r in rows):
                    rows.append({"impl": name, "scenario": sc.name, "description": sc.description,
                                 "status": "FAILED", "reason": f"{e.__class__.__name__}: {e}"})
        finally:
            if server is not None:
                server.stop()
        if interrupted:
            break

    meta["loadavg_end"] = os.getloadavg()
    data = {"meta": meta, "results": rows}
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(data, f, indent=1)
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
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    sys.exit(main())
