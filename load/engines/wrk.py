"""wrk 4.1 (Debian's /usr/bin/wrk): closed loop, the Lua scenarios in load/scenarios/.

wrk's figures come from the scenario's done() hook (scenarios/common.lua prints one line
`SQUALL_RESULT {json}`); nothing is scraped from wrk's text. Closed loop: each connection
sends its next request only after the previous response, so a server stall stops the
sending and hides in the percentiles (coordinated omission; see load/stall_check.py), and
a pipelined batch is timed as one sample (no per-response latency).
"""
from __future__ import annotations

import json
import os
import subprocess

from .common import client_figures, run_pinned

WRK = "/usr/bin/wrk"
LOAD = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENARIOS = os.path.join(LOAD, "scenarios")
NAME = "wrk"


def version() -> str:
    p = subprocess.run([WRK, "-v"], capture_output=True, text=True)
    return (p.stdout + p.stderr).splitlines()[0].strip() if (p.stdout + p.stderr) else "?"


def latency_per_response(sc) -> bool:
    """wrk records one latency sample per pipelined batch."""
    return sc.latency_meaningful


def run(url: str, sc, duration: float, connections: int, threads: int, client_cpus, timeout_s: float) -> dict:
    """Runs wrk once, pinned with taskset; returns the done() JSON plus wrk's own CPU use."""
    threads = max(1, min(threads, connections))
    duration = max(1, round(duration))  # wrk takes whole seconds only
    cmd = [WRK, "-t", str(threads), "-c", str(connections), "-d", f"{duration:g}s",
           "--timeout", f"{max(1, round(timeout_s))}s", "-s", os.path.join(SCENARIOS, sc.script), url]
    env = dict(os.environ, SQUALL_LUA_DIR=SCENARIOS, SQUALL_SCENARIO=sc.name, **sc.env)
    p = run_pinned(cmd, client_cpus, duration + timeout_s + 20, env)  # every run is bounded in time
    result = None
    for line in p["stdout"].splitlines():
        if line.startswith("SQUALL_RESULT "):
            result = json.loads(line[len("SQUALL_RESULT "):])
    if result is None:
        raise RuntimeError(f"wrk exited {p['returncode']} without a result line: "
                           f"{(p['stderr'] or p['stdout']).strip()[-300:]}")
    result["engine"] = NAME
    secs = result["duration_us"] / 1e6
    result["rps"] = result["requests"] / secs if secs else 0.0
    # wrk's threads can use at most min(threads, client cores) cores.
    result.update(client_figures(p["cpu_s"], p["wall_s"], min(threads, len(client_cpus))))
    result["wrk_cpu_s"] = result["client_cpu_s"]
    result["wrk_wall_s"] = result["client_wall_s"]
    if not latency_per_response(sc):
        result["latency_us"] = None
    return result
