"""What the engines share: running a client program pinned to the client CPUs, bounded in
time, with its own CPU use measured (wait4's rusage), and the result shape load/run.py
and load/report.py read.

An engine's run() returns a dict with at least:
    engine          "wrk", "squall-load" or "locust": who produced the figures
    requests        responses counted (those of the measured window)
    duration_us     the measured window
    rps             requests per second (achieved)
    bytes           response bytes (None if the engine does not count them)
    errors          {"connect", "read", "write", "status", "timeout"} counts (squall-load adds "parse")
    latency_us      {"min", "mean", "stdev", "max", "p50", "p90", "p99", "p99.9"[, "p99.99"]}
                    in microseconds, or None when the engine has no per-response latency
    client_cpu_s, client_wall_s, client_cpu_util   the client's own CPU time, wall time,
                    and CPU time / wall / cores it may use
"""
from __future__ import annotations

import os
import subprocess
import tempfile
import time


def cpu_list(cpus) -> str:
    return ",".join(map(str, sorted(cpus)))


def run_pinned(cmd: list[str], client_cpus, limit_s: float, env: dict | None = None) -> dict:
    """Runs cmd under taskset on client_cpus, killed (by PID) after limit_s seconds. Returns
    {"returncode", "stdout", "stderr", "cpu_s", "wall_s"}."""
    cmd = ["taskset", "-c", cpu_list(client_cpus), *cmd]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, stdin=subprocess.DEVNULL)
        limit = start + limit_s
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
        return {"returncode": proc.returncode, "stdout": out.read(), "stderr": err.read(),
                "cpu_s": rusage.ru_utime + rusage.ru_stime, "wall_s": wall}


def client_figures(cpu_s: float, wall_s: float, cores: int) -> dict:
    return {"client_cpu_s": round(cpu_s, 3), "client_wall_s": round(wall_s, 3),
            "client_cpu_util": round(cpu_s / wall_s / max(1, cores), 3) if wall_s > 0 else 0.0}
