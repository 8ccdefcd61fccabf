"""squall-load (reference/apps/squall_load.cc): open loop at a constant rate (--rate R,
latency from each request's intended start, so a stall counts) or closed loop like wrk
(rate 0), a latency per response (pipelined ones included), an HDR histogram.

The request comes from the one scenario definition (engines/request.py: load/scenarios.py
plus the header lines of the wrk script), passed as --method/--path/--header/--body-file,
--pipeline and --close: the same request wrk's script sends.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile

from . import request as request_mod
from .common import client_figures, run_pinned

NAME = "squall-load"
BINARY = "squall-load"


def binary(squall_bin: str) -> str:
    return os.path.join(squall_bin, BINARY)


def available(squall_bin: str) -> str | None:
    """None if squall-load can run, else why not."""
    path = binary(squall_bin)
    if not os.access(path, os.X_OK):
        return f"{path} is not built (ninja -C <build> squall-load)"
    return None


def version(squall_bin: str) -> str:
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = subprocess.run(["git", "-C", repo, "describe", "--always", "--dirty"], capture_output=True, text=True)
    return f"squall-load {p.stdout.strip() or 'unknown'} ({binary(squall_bin)})"


def latency_per_response(sc) -> bool:
    return True


def argv(squall_bin: str, url: str, sc, *, duration: float, connections: int, rate: float = 0,
         warmup: float = 0, timeout_s: float = 10, ca_file: str | None = None, body_file: str | None = None,
         histogram: bool = True) -> list[str]:
    req = request_mod.of(sc)
    cmd = [binary(squall_bin), "--rate", f"{rate:g}", "-c", str(connections), "-d", f"{duration:g}",
           "--warmup", f"{warmup:g}", "--timeout", f"{timeout_s:g}", "--method", req.method, "--path", req.path,
           "--pipeline", str(req.pipeline)]
    for name, value in req.headers:
        cmd += ["--header", f"{name}: {value}"]
    if req.close:
        cmd.append("--close")
    if body_file:
        cmd += ["--body-file", body_file]
    if url.startswith("https://"):
        cmd += ["--ca-file", ca_file] if ca_file else ["--insecure"]
    if not histogram:
        cmd.append("--no-histogram")
    return cmd + [url]


def run(url: str, sc, duration: float, connections: int, client_cpus, timeout_s: float, *, squall_bin: str,
        rate: float = 0, warmup: float = 0, ca_file: str | None = None) -> dict:
    """One squall-load run, pinned with taskset; its JSON plus its own CPU use, in the
    shape engines/common.py describes."""
    why = available(squall_bin)
    if why:
        raise RuntimeError(why)
    req = request_mod.of(sc)
    with tempfile.NamedTemporaryFile("wb", prefix="squall-load-body-") as body:
        body_file = None
        if req.body:
            body.write(req.body)
            body.flush()
            body_file = body.name
        cmd = argv(squall_bin, url, sc, duration=duration, connections=connections, rate=rate, warmup=warmup,
                   timeout_s=timeout_s, ca_file=ca_file, body_file=body_file)
        p = run_pinned(cmd, client_cpus, warmup + duration + 2 * timeout_s + 20)  # bounded
    try:
        out = json.loads(p["stdout"].strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise RuntimeError(f"squall-load exited {p['returncode']} without its JSON: "
                           f"{(p['stderr'] or p['stdout']).strip()[-300:]}") from None
    lat = out["latency_us"]
    result = {
        "engine": NAME,
        "requests": out["requests"],
        "duration_us": round(out["duration_s"] * 1e6),
        "rps": out["achieved_rate"],
        "bytes": out["bytes"],
        "errors": out["errors"],
        "latency_us": {k: lat[k] for k in ("min", "mean", "stdev", "max", "p50", "p90", "p99", "p99.9", "p99.99")}
        if out["requests"] else None,
        "mode": out["mode"], "offered_rate": out["offered_rate"], "latency_from": out["latency_from"],
        "send_lag_us": out["send_lag_us"], "timer_lateness_us": out.get("timer_lateness_us"),
        "pipeline": out["pipeline"], "close": out["close"],
        "connections_opened": out["connections_opened"], "statuses": out["statuses"],
        "first_errors": out["first_errors"], "histogram": out.get("histogram"),
    }
    if not out["requests"]:
        result["latency_note"] = "no response was recorded"
    result.update(client_figures(p["cpu_s"], p["wall_s"], 1))  # one thread: one core at most
    return result
