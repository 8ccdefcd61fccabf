#!/usr/bin/python3
"""Squall conformance driver for the HTTP server layer (contract §1).

    /usr/bin/python3 conformance/run.py --impl reference,tornado,aiohttp,nginx,h2o \\
        [--url http://127.0.0.1:PORT] [--area A] [--case ID] [--json out.json] \\
        [--junit out.xml] [--html out.html] [--required-for reference,tornado]

See conformance/README.md.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "peers"))

import peers  # noqa: E402
from squall_conformance import core, report  # noqa: E402
from squall_conformance import cases  # noqa: E402,F401  (registers the cases)

_print_lock = threading.Lock()


def log(msg):
    with _print_lock:
        sys.stderr.write(msg + "\n")
        sys.stderr.flush()


class Target:
    """One implementation under test: a normal-mode and (lazily) a catch-all server."""

    def __init__(self, name, impl=None, url=None, catch_all_url=None, reference_bin=None):
        self.name, self.impl, self.url, self.catch_all_url = name, impl, url, catch_all_url
        self.reference_bin = reference_bin
        self.servers = {}
        self.start_error = {}

    def server(self, catch_all):
        if catch_all in self.servers:
            return self.servers[catch_all]
        if catch_all in self.start_error:
            raise core.DriverError(self.start_error[catch_all])
        try:
            if self.url:
                u = self.catch_all_url if catch_all else self.url
                if not u:
                    return None
                srv = peers.attach(u, impl=self.name, catch_all=catch_all)
            else:
                srv = peers.start(self.impl, catch_all=catch_all, reference_bin=self.reference_bin)
        except Exception as e:
            self.start_error[catch_all] = f"could not start {self.name}: {e}"
            raise core.DriverError(self.start_error[catch_all])
        self.servers[catch_all] = srv
        return srv

    def restart(self, catch_all):
        srv = self.servers.pop(catch_all, None)
        if srv is not None:
            srv.stop()

    def stop(self):
        for srv in self.servers.values():
            srv.stop()
        self.servers.clear()


def answers(srv, timeout=3.0):
    """Health check after each case: does the server still answer a plain request?"""
    from squall_conformance import wire
    ex = wire.exchange(srv.host, srv.port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                       timeout=timeout, linger=0.0)
    return ex.first is not None and ex.first.status > 0


def run_case(case, target):
    t0 = time.monotonic()
    exchanges = []
    try:
        srv = target.server(case.catch_all)
        if srv is None:
            v = core.na("catch-all mode not available (give --catch-all-url)")
        else:
            missing = sorted(f for f in case.needs if not srv.has(f))
            if missing:
                v = core.na(f"{target.name} lacks {', '.join(missing)}")
            else:
                ctx = core.Ctx(srv)
                try:
                    v = case.fn(ctx)
                    if v is None:
                        v = core.error("case returned no verdict")
                except core.DriverError as e:
                    v = core.error(f"driver: {e}")
                except Exception as e:  # a bug in the case: report, don't stop the run
                    v = core.error(f"case raised {type(e).__name__}: {e}")
                    log(traceback.format_exc())
                exchanges = ctx.exchanges
                if srv.alive() and not answers(srv):
                    v = core.fail(f"the server stopped answering after this case (hung or wedged); "
                                  f"was: {v.verdict}: {v.reason}")
                    target.restart(case.catch_all)
                elif not srv.alive():
                    rc = srv.proc.returncode if srv.proc else None
                    v = core.fail(f"the server process died during the case (exit status {rc}); "
                                  f"was: {v.verdict}: {v.reason}")
                    target.restart(case.catch_all)
    except core.DriverError as e:
        v = core.error(str(e))
    return {
        "verdict": v.verdict,
        "reason": " ".join(str(v.reason).split())[:400],
        "required": case.required_for(target.name),
        "seconds": round(time.monotonic() - t0, 3),
        "exchanges": report.result_exchanges(exchanges),
    }


def select_cases(areas, ids):
    out = []
    for c in core.REGISTRY:
        if areas and c.area not in areas:
            continue
        if ids and not any(c.id == i or (i.endswith("*") and c.id.startswith(i[:-1])) for i in ids):
            continue
        out.append(c)
    return out


def split(values):
    return [x.strip() for v in values or [] for x in v.split(",") if x.strip()]


def main(argv=None):
    p = argparse.ArgumentParser(description="Squall conformance suite: the HTTP server layer")
    p.add_argument("--impl", action="append", help="comma list of: " + ", ".join(peers.IMPLEMENTATIONS))
    p.add_argument("--url", action="append", default=[],
                   help="a server you started: http://127.0.0.1:PORT or NAME=http://... (repeatable)")
    p.add_argument("--catch-all-url", action="append", default=[],
                   help="the same server in --catch-all mode (NAME=URL or URL for the first --url)")
    p.add_argument("--reference-bin", help=f"squall-contract-app path (default {peers.DEFAULT_REFERENCE_BIN})")
    p.add_argument("--area", action="append", help="comma list of: " + ", ".join(core.AREAS))
    p.add_argument("--case", action="append", help="case ids (comma list; a trailing * matches a prefix)")
    p.add_argument("--json"), p.add_argument("--junit"), p.add_argument("--html")
    p.add_argument("--required-for", default="", help="comma list of implementations whose required failures fail the run")
    p.add_argument("--jobs", type=int, default=0, help="implementations tested in parallel (default: all)")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.add_argument("--quiet", action="store_true", help="no per-case progress")
    a = p.parse_args(argv)

    cases = select_cases(split(a.area), split(a.case))
    if a.list:
        for c in report.ordered(cases):
            print(f"{c.id:<10} {c.area:<11} {c.level:<6} {c.source:<22} {c.title}")
        print(f"{len(cases)} cases")
        return 0
    if not cases:
        p.error("no case matches the filters")

    targets = []
    for impl in split(a.impl):
        if impl not in peers.IMPLEMENTATIONS:
            p.error(f"unknown implementation {impl!r}")
        targets.append(Target(impl, impl=impl, reference_bin=a.reference_bin))
    ca_urls = {}
    for v in a.catch_all_url:
        name, _, u = v.rpartition("=") if "=" in v and not v.startswith("http") else ("", "", v)
        ca_urls[name] = u
    for n, v in enumerate(a.url):
        name, u = (v.split("=", 1) if "=" in v and not v.startswith("http") else (f"url{n + 1}" if len(a.url) > 1 else "url", v))
        targets.append(Target(name, url=u, catch_all_url=ca_urls.get(name) or (ca_urls.get("") if n == 0 else None)))
    if not targets:
        p.error("give --impl and/or --url")
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        p.error("implementation names must be unique")
    required_for = split([a.required_for])

    results = {}
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    t0 = time.monotonic()

    def run_target(t):
        n = len(cases)
        try:
            for k, c in enumerate(cases, 1):
                r = run_case(c, t)
                results[(c.id, t.name)] = r
                if not a.quiet:
                    log(f"[{t.name} {k}/{n}] {c.id:<10} {r['verdict']:<5} {r['reason'][:100]}")
        finally:
            t.stop()

    jobs = a.jobs or len(targets)
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for f in [pool.submit(run_target, t) for t in targets]:
                f.result()
    finally:
        for t in targets:
            t.stop()

    meta = {"started": started, "seconds": round(time.monotonic() - t0, 1),
            "command": " ".join(["conformance/run.py"] + (argv if argv is not None else sys.argv[1:])),
            "required_for": required_for}
    report.console(cases, names, results, sys.stdout)
    for path, text in ((a.json, lambda: json.dumps(report.to_json(cases, names, results, meta), indent=1)),
                       (a.junit, lambda: report.junit(cases, names, results)),
                       (a.html, lambda: report.html_report(cases, names, results, meta))):
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            with open(path, "w") as f:
                f.write(text())
            print(f"wrote {path}")
    broken = [(c.id, i) for c in cases for i in required_for if i in names
              and results[(c.id, i)]["required"] and results[(c.id, i)]["verdict"] in (core.FAIL, core.ERROR)]
    print(f"{len(cases)} cases x {len(names)} implementations in {meta['seconds']} s")
    if broken:
        print(f"REQUIRED FAILURES: {len(broken)}: " + ", ".join(f"{i}:{c}" for c, i in broken))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
