"""Runs the loop, stream and client cases against implementations and reports the results.

    /usr/bin/python3 -m conformance.layers --impl reference,tornado[,aiohttp,curl] [--area loop|stream|client]
        [--reference-dir build/release/reference] [--case ID[,ID]] [--json out.json] [--quiet]

Prints progress on stderr, then a console table (one row per case, one column per
implementation) with the reasons for every non-pass below it; --json writes the results.
Exit status 1 if the reference or Tornado fails (or errors on) a MUST case, 2 on bad usage.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from . import ERROR, FAIL, NA, PASS, VERDICTS, WARN, client_cases, loop_cases, stream_cases

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PROBES = os.path.join(ROOT, "conformance", "probes")
ADAPTERS = os.path.join(ROOT, "conformance", "adapters")
PYTHON = "/usr/bin/python3"  # Debian's, with python3-tornado


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


class Target:
    """An implementation: its loop probe command and its stream probe (started on demand)."""

    def __init__(self, name, loop_cmd, stream_cmd, fetch_cmd=None):
        self.name = name
        self.fetch_cmd = fetch_cmd  # client adapter (contracts.md §4)
        self.loop_cmd = loop_cmd
        self.stream_cmd = stream_cmd
        self.proc = None
        self.port = None
        self.lock = threading.Lock()

    def stream_address(self):
        if not self.stream_cmd:
            return None
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self._start()
            return ("127.0.0.1", self.port)

    def _start(self):
        self.proc = subprocess.Popen(self.stream_cmd + ["--port", "0"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode().strip()  # port=N
        if not line.startswith("port="):
            raise RuntimeError(f"{self.name} stream probe did not print port=N (got {line!r})")
        self.port = int(line.split("=", 1)[1])

    def alive(self):
        return self.proc is None or self.proc.poll() is None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                rc = self.proc.wait(5)
                if rc != 0:
                    log(f"{self.name}: stream probe exited with status {rc} on SIGTERM")
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                log(f"{self.name}: stream probe ignored SIGTERM (killed)")


def make_target(name, reference_dir):
    if name == "reference":
        return Target(name, [os.path.join(reference_dir, "squall-loop-probe")],
                      [os.path.join(reference_dir, "squall-stream-probe")],
                      [os.path.join(reference_dir, "squall-fetch")])
    if name == "tornado":
        return Target(name, [PYTHON, os.path.join(PROBES, "tornado_loop_probe.py")],
                      [PYTHON, os.path.join(PROBES, "tornado_stream_probe.py")],
                      [PYTHON, os.path.join(ADAPTERS, "tornado_fetch.py")])
    if name in ("aiohttp", "curl"):  # client adapters only: loop and stream cases are n/a
        return Target(name, None, None, [PYTHON, os.path.join(ADAPTERS, f"{name}_fetch.py")])
    raise SystemExit(f"unknown implementation {name!r} (known: reference, tornado, aiohttp, curl)")


def all_cases(area=None, ids=None):
    cs = []
    if area in (None, "loop"):
        cs += loop_cases.cases()
    if area in (None, "stream"):
        cs += stream_cases.cases()
    if area in (None, "client"):
        cs += client_cases.cases()
    if ids:
        unknown = set(ids) - {c.id for c in cs}
        if unknown:
            raise SystemExit(f"unknown case(s): {', '.join(sorted(unknown))}")
        cs = [c for c in cs if c.id in ids]
    return cs


def run_case(case, target):
    t0 = time.monotonic()
    try:
        verdict, reason, transcript = case.fn(target)
    except Exception as e:  # a bug in the case or a probe that would not start
        verdict, reason, transcript = ERROR, f"case raised {type(e).__name__}: {e}", ""
    if case.area == "stream" and not target.alive():
        verdict, reason = FAIL, f"the stream probe died during the case (was {verdict}: {reason})"
    assert verdict in VERDICTS, verdict
    return {"verdict": verdict, "reason": " ".join(str(reason).split())[:400],
            "required": case.required_for(target.name), "seconds": round(time.monotonic() - t0, 3),
            "transcript": transcript[-4000:]}


MARK = {PASS: "pass", WARN: "WARN", FAIL: "FAIL", NA: "n/a", ERROR: "ERROR"}


def console(cases, names, results, out):
    w = max(len(c.id) for c in cases)
    out.write(f"{'case':<{w}}  {'level':<6} " + " ".join(f"{n:<10}" for n in names) + "\n")
    notes = []
    for area in ("loop", "stream", "client"):
        rows = [c for c in cases if c.area == area]
        if not rows:
            continue
        out.write(f"-- {area} ({len(rows)} cases)\n")
        for c in rows:
            cells = []
            for n in names:
                r = results[(c.id, n)]
                cell = MARK[r["verdict"]]
                if r["verdict"] != PASS:
                    notes.append((c, n, r))
                    cell += f"[{len(notes)}]"
                cells.append(f"{cell:<10}")
            out.write(f"{c.id:<{w}}  {c.level:<6} " + " ".join(cells) + "\n")
    for k, (c, n, r) in enumerate(notes, 1):
        out.write(f"[{k}] {c.id} / {n}: {r['verdict']}: {r['reason']}\n")
        if c.note:
            out.write(f"     note: {c.note}\n")
    out.write("\nsummary: " + "; ".join(
        f"{n}: " + ", ".join(f"{sum(1 for c in cases if results[(c.id, n)]['verdict'] == v)} {v}"
                             for v in VERDICTS if any(results[(c.id, n)]['verdict'] == v for c in cases))
        for n in names) + "\n")


def to_json(cases, names, results, meta):
    return {"meta": meta, "implementations": names,
            "cases": [{"id": c.id, "area": c.area, "title": c.title, "source": c.source, "level": c.level,
                       "note": c.note,
                       "results": {n: results[(c.id, n)] for n in names}} for c in cases]}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python3 -m conformance.layers", description="loop, stream and client conformance")
    p.add_argument("--impl", default="reference,tornado", help="comma list: reference, tornado, aiohttp, curl")
    p.add_argument("--area", choices=("loop", "stream", "client"))
    p.add_argument("--case", default="", help="comma list of case ids")
    p.add_argument("--reference-dir", default=os.path.join(ROOT, "build", "release", "reference"))
    p.add_argument("--json", help="write the results as JSON to this file")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    a = p.parse_args(argv)
    names = [n for n in a.impl.split(",") if n]
    if len(set(names)) != len(names):
        p.error("implementation names must be unique")
    targets = [make_target(n, os.path.abspath(a.reference_dir)) for n in names]
    cases = all_cases(a.area, [i for i in a.case.split(",") if i])
    results = {}
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    t0 = time.monotonic()

    def run_target(t):
        try:
            for k, c in enumerate(cases, 1):
                r = run_case(c, t)
                results[(c.id, t.name)] = r
                if not a.quiet:
                    log(f"[{t.name} {k}/{len(cases)}] {c.id:<44} {r['verdict']:<5} {r['reason'][:90]}")
        finally:
            t.stop()

    try:
        with ThreadPoolExecutor(max_workers=len(targets)) as pool:
            for f in [pool.submit(run_target, t) for t in targets]:
                f.result()
    finally:
        for t in targets:
            t.stop()
    meta = {"started": started, "seconds": round(time.monotonic() - t0, 1),
            "command": " ".join(["python3 -m conformance.layers"] + (argv if argv is not None else sys.argv[1:]))}
    console(cases, names, results, sys.stdout)
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(to_json(cases, names, results, meta), f, indent=1)
        print(f"wrote {a.json}")
    broken = [(c.id, n) for c in cases for n in names
              if results[(c.id, n)]["required"] and results[(c.id, n)]["verdict"] in (FAIL, ERROR)]
    print(f"{len(cases)} cases x {len(names)} implementations in {meta['seconds']} s")
    if broken:
        print(f"REQUIRED FAILURES: {len(broken)}: " + ", ".join(f"{n}:{c}" for c, n in broken))
        return 1
    return 0
