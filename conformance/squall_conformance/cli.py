"""Squall conformance driver: the server, loop, stream and client layers (contracts §1-§4).

    squall-conformance --impl reference,tornado,path/to/mine.toml \\
        [--layers server,loop,stream,client] [--url NAME=http://127.0.0.1:PORT] [--area A] [--case ID] \\
        [--json out.json] [--junit out.xml] [--html out.html] [--gate NAMES|all|none] [--tls] \\
        [--expect FILE] [--write-expect FILE]

From a clone: `python3 -m squall_conformance ...` in its root, or `python3 conformance/run.py ...`.
See conformance/README.md.
"""
from __future__ import annotations

import datetime
import json
import os
import signal
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

from . import core, expect, helpformat, lint, paths, registry, report
from . import cases  # noqa: F401  (registers the cases)
from .targets import Target, answers, log


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
        return core.na(f"{target.name} has no catch-all mode ([server] catch_all in its description; "
                       "with --url, give --catch-all-url)"), None
    missing = sorted(f for f in case.needs if not srv.has(f))
    if missing:
        return core.na(f"{target.name} lacks {', '.join(missing)}"), None
    ctx = core.Ctx(server=srv)
    v = call(case, ctx)
    ctx.findings = [f for ex in ctx.exchanges for f in lint.lint(ex)]
    v = lint.judged(v, ctx.findings)
    if srv.alive() and not answers(srv):
        v = core.consequence(f"the server stopped answering after this case (hung or wedged); was: {v.verdict}: {v.reason}")
        if target.can_restart():
            target.restart(case.catch_all)
        else:  # a server given by URL: later cases cannot be judged
            target.start_error[case.catch_all] = (f"{srv.url} stopped answering after {case.id} (given by URL: "
                                                  "the driver cannot restart it; describe it in TOML to let it)")
            target.servers.pop(case.catch_all, None)
    elif not srv.alive():
        rc = srv.proc.returncode if srv.proc else None
        v = core.consequence(f"the server process died during the case (exit status {rc}); was: {v.verdict}: {v.reason}")
        target.restart(case.catch_all)
    return v, ctx


def run_layer_case(case, target):
    """A loop, stream or client case; a stream probe that died during it fails the case."""
    ctx = core.Ctx(target=target)
    v = call(case, ctx)
    dead = target.dead_probes()
    if dead:
        v = core.consequence(f"{', '.join(dead)} died during the case; was: {v.verdict}: {v.reason}")
    return v, ctx


def run_case(case, target):
    t0 = time.monotonic()
    ctx = None
    absent = not target.has_layer(case.layer)
    try:
        if absent:
            v = core.na(target.lacks(case.layer))
        elif not case.applies_to(target.profiles):
            v = core.na(f"{case.source}: {target.name} does not claim this profile "
                        f"(profiles: {', '.join(target.profiles)})")
        elif case.layer == "server":
            v, ctx = run_server_case(case, target)
        else:
            v, ctx = run_layer_case(case, target)
    except core.DriverError as e:
        v = core.error(str(e))
    v = core.at_level(case.level, v)
    return {
        "verdict": v.verdict,
        "reason": str(v.reason)[:400],
        "required": case.required_for(target.profiles),
        "absent": absent,
        "seconds": round(time.monotonic() - t0, 3),
        "exchanges": report.result_exchanges(ctx.exchanges) if ctx else [],
        "lint": [{"level": f.level, "rule": f.rule, "what": f.what, "bytes": report.show_bytes(f.excerpt, 200)}
                 for f in ctx.findings] if ctx else [],
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


STOPPING = threading.Event()


def stop_on_signal(signum, frame):
    """SIGTERM: the running cases finish, no new one starts, then every program is stopped."""
    STOPPING.set()
    sys.exit(128 + signum)


def parse_named(value, option):
    """NAME=URL or URL (name None). A name may start with "http" (httpd=http://...): only a
    URL's scheme marks a value without a name."""
    name, sep, rest = value.partition("=")
    if sep and "://" not in name:
        return name, rest
    return None, value


def build_targets(p, a):
    """The Targets the command line names: --impl descriptions and --url servers."""
    squall_bin = a.squall_bin or a.reference_dir or (
        os.path.dirname(os.path.abspath(a.reference_bin)) if a.reference_bin else None)
    targets_ = []
    for spec in split(a.impl):
        try:
            targets_.append(Target(registry.load(spec), tls=a.tls, squall_bin=squall_bin))
        except registry.DescriptionError as e:
            p.error(str(e))
    want = "https" if a.tls else "http"
    urls = [parse_named(v, "--url") for v in a.url]
    for n, (name, u) in enumerate(urls):
        if not name:
            urls[n] = (f"url{n + 1}" if len(urls) > 1 else "url", u)
    catch_all = {}
    for v in a.catch_all_url:
        name, u = parse_named(v, "--catch-all-url")
        if name is None:
            if not urls:
                p.error(f"--catch-all-url {v}: give the server itself with --url first")
            name = urls[0][0]
        if name not in {n for n, _ in urls}:
            p.error(f"--catch-all-url {v}: no --url named {name!r} (names: {', '.join(n for n, _ in urls)})")
        catch_all[name] = u
    for name, u in urls + list(catch_all.items()):
        if not u.startswith(want + "://"):
            p.error(f"{name}={u}: give {want}:// URLs {'with' if a.tls else 'without'} --tls")
    for name, u in urls:
        try:
            targets_.append(Target(registry.from_url(name, u, catch_all.get(name)), tls=a.tls))
        except registry.DescriptionError as e:
            p.error(str(e))
    if not targets_:
        p.error("give --impl (a description name or file) and/or --url")
    names = [t.name for t in targets_]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        p.error(f"implementation names must be unique: {', '.join(dup)} given twice")
    return targets_


def gated(p, a, names):
    """The implementations whose required failures make the exit status non-zero."""
    spec = a.gate if a.gate is not None else (a.required_for or "all")
    if spec == "all":
        return list(names)
    if spec == "none":
        return []
    chosen = split([spec])
    unknown = [i for i in chosen if i not in names]
    if unknown:
        p.error(f"--gate {spec}: {', '.join(unknown)} not under test (names: {', '.join(names)})")
    return chosen


def parser():
    p = helpformat.parser("squall-conformance", "Squall conformance suite: server, loop, stream and client layers. "
                          "Implementations are descriptions (conformance/implementations/README.md).")
    p.add_argument("--impl", action="append",
                   help="comma list of descriptions: a built-in name (" + ", ".join(registry.builtin_names()) +
                   ") or a path to a .toml file (repeatable; default: none, then --url is needed)")
    p.add_argument("--layers", help="comma list of: " + ", ".join(core.LAYERS) +
                   " (default: every layer one of the implementations has)")
    p.add_argument("--url", action="append", default=[],
                   help="a server you started: NAME=http://127.0.0.1:PORT or the URL alone (repeatable; server layer "
                   "only, endpoints found by a pre-flight; https://... with --tls)")
    p.add_argument("--tls", action="store_true",
                   help="the server layer over TLS: implementations serve HTTPS with a test certificate made "
                   "with openssl; only server-layer cases run (the other layers have no transport to change)")
    p.add_argument("--catch-all-url", action="append", default=[],
                   help="the same server in --catch-all mode: NAME=URL (NAME of a --url) or URL for the first --url")
    p.add_argument("--squall-bin", help="where Squall's programs are ({squall_bin} in descriptions; default: "
                   "$SQUALL_BIN, else the clone's build/release/reference, else the folder on PATH holding "
                   "squall-contract-app; now " + paths.default_squall_bin() + ")")
    p.add_argument("--reference-bin", help="squall-contract-app path: sets --squall-bin to its directory "
                   "(default: see --squall-bin)")
    p.add_argument("--reference-dir", help="same as --squall-bin (default: see --squall-bin)")
    p.add_argument("--area", action="append", help="comma list of: " + ", ".join(core.AREAS) + " (default: every area)")
    p.add_argument("--case", action="append", help="case ids (comma list; a trailing * matches a prefix; "
                   "default: every case)")
    p.add_argument("--json", help="write the JSON report here (default: no JSON report)")
    p.add_argument("--junit", help="write JUnit XML here (default: no JUnit XML)")
    p.add_argument("--html", help="write the HTML report here (default: no HTML report)")
    p.add_argument("--gate", help="whose failures of required cases make the exit status 1: a comma list of "
                   "names, 'all' or 'none' (default: all)")
    p.add_argument("--required-for", help="the old name of --gate (default: all)")
    p.add_argument("--expect", help="expectations file (from --write-expect): exit 1 only for a case that got "
                   "worse than recorded or vanished; implementations not in it are gated as usual (default: none)")
    p.add_argument("--write-expect", help="record this run's verdicts as the expectations file (default: not written)")
    p.add_argument("--jobs", type=int, default=0, help="implementations tested in parallel (0: all)")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.add_argument("--quiet", action="store_true", help="no per-case progress")
    return p


def main(argv=None):
    p = parser()
    a = p.parse_args(argv)
    # SIGTERM (a CI timeout) ends the run through the finally blocks that stop every
    # program started, by PID, instead of leaving them behind.
    signal.signal(signal.SIGTERM, stop_on_signal)

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

    targets_ = build_targets(p, a)
    names = [t.name for t in targets_]
    gate = gated(p, a, names)
    expected = {}
    if a.expect:
        try:
            expected = expect.read(a.expect)
        except expect.ExpectError as e:
            p.error(str(e))
    layers = layers or [layer for layer in core.LAYERS if any(t.has_layer(layer) for t in targets_)]
    cases = select_cases(layers, split(a.area), split(a.case))
    if not cases:
        p.error("no case matches the filters")

    results = {}
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    t0 = time.monotonic()

    def run_target(t):
        n = len(cases)
        t.read_version()
        try:
            for k, c in enumerate(cases, 1):
                if STOPPING.is_set():
                    break
                r = run_case(c, t)
                results[(c.id, t.name)] = r
                if not a.quiet:
                    log(f"[{t.name} {k}/{n}] {c.id:<10} {r['verdict']:<5} {r['reason'][:100]!r}")
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
            "gate": gate, "transport": "tls" if a.tls else "tcp",
            "implementations": [t.about() for t in targets_]}
    report.console(cases, names, results, sys.stdout, meta)
    for path, text in ((a.json, lambda: json.dumps(report.to_json(cases, names, results, meta), indent=1)),
                       (a.junit, lambda: report.junit(cases, names, results, meta)),
                       (a.html, lambda: report.html_report(cases, names, results, meta))):
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            with open(path, "w") as f:
                f.write(text())
            print(f"wrote {path}")
    if a.write_expect:
        expect.write(a.write_expect, cases, names, results)
        print(f"wrote {a.write_expect} (expectations: {len(cases)} cases x {len(names)} implementations)")
    print(f"{len(cases)} cases ({', '.join(f'{layer} {len(cs)}' for layer, cs in report.by_layer(cases))}) "
          f"x {len(names)} implementations in {meta['seconds']} s")
    return verdict_status(a, cases, names, results, targets_, gate, expected)


def verdict_status(a, cases, names, results, targets_, gate, expected):
    """The exit status: 2 when an implementation could not be reached at all; else 1 for a
    gated required failure (or, for implementations in --expect, a regression)."""
    status = 0
    for t in targets_:
        for mode, err in t.start_error.items():
            print(f"ERROR: {err}")
            status = 2
    if a.expect:
        known = {c.id for c in core.REGISTRY}
        regressions, improvements, vanished = expect.compare(expected, cases, names, results, known)
        for impl, cid, old, new in improvements:
            print(f"improved: {impl} {cid}: {old} -> {new}")
        for impl, cid, old, new in regressions:
            print(f"REGRESSION: {impl} {cid}: {old} -> {new}: {results[(cid, impl)]['reason'][:160]!r}")
        for impl, cid, old, _ in vanished:
            print(f"VANISHED: {impl} {cid} (was {old}): the suite has no such case any more")
        print(f"expectations {a.expect}: {len(regressions)} regression(s), {len(vanished)} vanished, "
              f"{len(improvements)} improvement(s)")
        if regressions or vanished:
            status = status or 1
        gate = [i for i in gate if i not in expected]
    broken = [(c.id, i) for c in cases for i in gate
              if results[(c.id, i)]["required"] and results[(c.id, i)]["verdict"] in (core.FAIL, core.ERROR)]
    if broken:
        print(f"REQUIRED FAILURES: {len(broken)}: " + ", ".join(f"{i}:{c}" for c, i in broken))
        status = status or 1
    return status


if __name__ == "__main__":
    sys.exit(main())
