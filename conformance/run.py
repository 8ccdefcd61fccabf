#!/usr/bin/python3
"""Squall conformance driver: the server, loop, stream and client layers (contracts §1-§4).

    /usr/bin/python3 conformance/run.py --impl reference,tornado,aiohttp,curl,nginx,h2o \\
        [--layers server,loop,stream,client] [--url http://127.0.0.1:PORT] [--area A] [--case ID] \\
        [--json out.json] [--junit out.xml] [--html out.html] [--required-for reference,tornado] [--tls]

See conformance/README.md.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from squall_conformance import core, report, targets  # noqa: E402
from squall_conformance import cases  # noqa: E402,F401  (registers the cases)
from squall_conformance.targets import Target, log  # noqa: E402


def answers(srv, timeout=3.0):
    """Health check after each server case: does the server still answer a plain request?"""
    ex = core.exchange(srv, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                       timeout=timeout, linger=0.0)
    return ex.first is not None and ex.first.status > 0


def call(case, ctx):
    """The case's verdict; a bug in the case or a driver problem is an error, not a stop."""
    try:
        v = case.fn(ctx)
        return v if v is not None else core.error("case returned no verdict")
    except core.DriverError as e:
        return core.error(f"driver: {e}")
    except Exception as e:
        log(traceback.format_exc())
        return core.error(f"case raised {type(e).__name__}: {e}")


def run_server_case(case, target):
    """A server-layer case, then the health check (a hung or dead server fails the case and
    is restarted). Returns (verdict, ctx or None)."""
    srv = target.server(case.catch_all)
    if srv is None:
        return core.na("catch-all mode not available (give --catch-all-url)"), None
    missing = sorted(f for f in case.needs if not srv.has(f))
    if missing:
        return core.na(f"{target.name} lacks {', '.join(missing)}"), None
    ctx = core.Ctx(server=srv)
    v = call(case, ctx)
    if srv.alive() and not answers(srv):
        v = core.fail(f"the server stopped answering after this case (hung or wedged); was: {v.verdict}: {v.reason}")
        target.restart(case.catch_all)
    elif not srv.alive():
        rc = srv.proc.returncode if srv.proc else None
        v = core.fail(f"the server process died during the case (exit status {rc}); was: {v.verdict}: {v.reason}")
        target.restart(case.catch_all)
    return v, ctx


def run_layer_case(case, target):
    """A loop, stream or client case; a stream probe that died during it fails the case."""
    ctx = core.Ctx(target=target)
    v = call(case, ctx)
    dead = target.dead_probes()
    if dead:
        v = core.fail(f"{', '.join(dead)} died during the case; was: {v.verdict}: {v.reason}")
    return v, ctx


def run_case(case, target):
    t0 = time.monotonic()
    ctx = None
    absent = not target.has_layer(case.layer)
    try:
        if absent:
            v = core.na(target.lacks(case.layer))
        elif case.layer == "server":
            v, ctx = run_server_case(case, target)
        else:
            v, ctx = run_layer_case(case, target)
    except core.DriverError as e:
        v = core.error(str(e))
    return {
        "verdict": v.verdict,
        "reason": " ".join(str(v.reason).split())[:400],
        "required": case.required_for(target.name),
        "absent": absent,
        "seconds": round(time.monotonic() - t0, 3),
        "exchanges": report.result_exchanges(ctx.exchanges) if ctx else [],
        "transcript": "\n".join(ctx.transcript)[-4000:] if ctx else "",
    }


def select_cases(layers, areas, ids):
    out = []
    for c in core.REGISTRY:
        if layers and c.layer not in layers:
            continue
        if areas and c.area not in areas:
            continue
        if ids and not any(c.id == i or (i.endswith("*") and c.id.startswith(i[:-1])) for i in ids):
            continue
        out.append(c)
    return out


def split(values):
    return [x.strip() for v in values or [] for x in v.split(",") if x.strip()]


def main(argv=None):
    p = argparse.ArgumentParser(description="Squall conformance suite: server, loop, stream and client layers")
    p.add_argument("--impl", action="append", help="comma list of: " + ", ".join(
        f"{i} ({'/'.join(ls)})" for i, ls in targets.IMPL_LAYERS.items()))
    p.add_argument("--layers", help="comma list of: " + ", ".join(core.LAYERS) +
                   " (default: every layer one of the implementations has)")
    p.add_argument("--url", action="append", default=[],
                   help="a server you started: http://127.0.0.1:PORT or NAME=http://... (repeatable; server layer; "
                   "https://... with --tls)")
    p.add_argument("--tls", action="store_true",
                   help="the server layer over TLS: implementations serve HTTPS with a test certificate made "
                   "with openssl; only server-layer cases run (the other layers have no transport to change)")
    p.add_argument("--catch-all-url", action="append", default=[],
                   help="the same server in --catch-all mode (NAME=URL or URL for the first --url)")
    p.add_argument("--reference-bin", help=f"squall-contract-app path (default {targets.peers.DEFAULT_REFERENCE_BIN})")
    p.add_argument("--reference-dir", help="where squall-loop-probe, squall-stream-probe and squall-fetch are "
                   "(default: the directory of --reference-bin, else " + targets.DEFAULT_REFERENCE_DIR + ")")
    p.add_argument("--area", action="append", help="comma list of: " + ", ".join(core.AREAS))
    p.add_argument("--case", action="append", help="case ids (comma list; a trailing * matches a prefix)")
    p.add_argument("--json"), p.add_argument("--junit"), p.add_argument("--html")
    p.add_argument("--required-for", default="", help="comma list of implementations whose required failures fail the run")
    p.add_argument("--jobs", type=int, default=0, help="implementations tested in parallel (default: all)")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.add_argument("--quiet", action="store_true", help="no per-case progress")
    a = p.parse_args(argv)

    layers = split([a.layers] if a.layers else [])
    for layer in layers:
        if layer not in core.LAYERS:
            p.error(f"unknown layer {layer!r} (one of {', '.join(core.LAYERS)})")
    for area in split(a.area):
        if area not in core.AREAS:
            p.error(f"unknown area {area!r} (one of {', '.join(core.AREAS)})")
    if a.tls:  # only the server layer has a transport to change
        layers = [layer for layer in layers or ["server"] if layer == "server"]
        if not layers:
            p.error("--tls runs server-layer cases only (give --layers server, or no --layers)")
    if a.list:
        cases = select_cases(layers, split(a.area), split(a.case))
        for c in report.ordered(cases):
            print(f"{c.id:<44} {c.layer:<6} {c.area:<10} {c.level:<6} {c.source:<22} {c.title}")
        print(f"{len(cases)} cases")
        return 0

    want = "https" if a.tls else "http"
    for v in a.url + a.catch_all_url:
        if not (v.split("=", 1)[1] if "=" in v and not v.startswith("http") else v).startswith(want + "://"):
            p.error(f"{v}: give {want}:// URLs {'with' if a.tls else 'without'} --tls")
    reference_dir = a.reference_dir or (os.path.dirname(os.path.abspath(a.reference_bin)) if a.reference_bin else None)
    targets_ = []
    for impl in split(a.impl):
        if impl not in targets.IMPLEMENTATIONS:
            p.error(f"unknown implementation {impl!r} (one of {', '.join(targets.IMPLEMENTATIONS)})")
        targets_.append(Target(impl, impl=impl, reference_bin=a.reference_bin, reference_dir=reference_dir,
                               tls=a.tls))
    ca_urls = {}
    for v in a.catch_all_url:
        name, _, u = v.rpartition("=") if "=" in v and not v.startswith("http") else ("", "", v)
        ca_urls[name] = u
    for n, v in enumerate(a.url):
        name, u = (v.split("=", 1) if "=" in v and not v.startswith("http") else (f"url{n + 1}" if len(a.url) > 1 else "url", v))
        targets_.append(Target(name, url=u, catch_all_url=ca_urls.get(name) or (ca_urls.get("") if n == 0 else None)))
    if not targets_:
        p.error("give --impl and/or --url")
    names = [t.name for t in targets_]
    if len(set(names)) != len(names):
        p.error("implementation names must be unique")
    required_for = split([a.required_for])
    layers = layers or [layer for layer in core.LAYERS if any(t.has_layer(layer) for t in targets_)]
    cases = select_cases(layers, split(a.area), split(a.case))
    if not cases:
        p.error("no case matches the filters")

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

    jobs = a.jobs or len(targets_)
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for f in [pool.submit(run_target, t) for t in targets_]:
                f.result()
    finally:
        for t in targets_:
            t.stop()

    meta = {"started": started, "seconds": round(time.monotonic() - t0, 1),
            "command": " ".join(["conformance/run.py"] + (argv if argv is not None else sys.argv[1:])),
            "required_for": required_for, "transport": "tls" if a.tls else "tcp"}
    report.console(cases, names, results, sys.stdout, meta["transport"])
    for path, text in ((a.json, lambda: json.dumps(report.to_json(cases, names, results, meta), indent=1)),
                       (a.junit, lambda: report.junit(cases, names, results, meta["transport"])),
                       (a.html, lambda: report.html_report(cases, names, results, meta))):
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            with open(path, "w") as f:
                f.write(text())
            print(f"wrote {path}")
    broken = [(c.id, i) for c in cases for i in required_for if i in names
              and results[(c.id, i)]["required"] and results[(c.id, i)]["verdict"] in (core.FAIL, core.ERROR)]
    print(f"{len(cases)} cases ({', '.join(f'{layer} {len(cs)}' for layer, cs in report.by_layer(cases))}) "
          f"x {len(names)} implementations in {meta['seconds']} s")
    if broken:
        print(f"REQUIRED FAILURES: {len(broken)}: " + ", ".join(f"{i}:{c}" for c, i in broken))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
