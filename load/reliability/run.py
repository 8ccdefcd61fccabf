#!/usr/bin/python3
"""The reliability suite: the reference (and nginx, for comparison) under abuse.

    squall-reliability [--short] [--impl reference,nginx] [--scenario a,b]
                       [--reference-bin PATH] [--soak-seconds 60] [--json F] [--md F]

Each scenario starts a fresh server on 127.0.0.1, attacks it (bounded in time and
count), and yields one row per server: figures (RSS growth summed over the process tree,
server CPU, when slow connections were closed, requests lost on a graceful stop,
descriptor counts, ...) and, for the reference, bound checks derived from its
configured marks (scenarios.py: BOUNDS, GATED). Progress goes to stderr; the Markdown
table to stdout (and --md); everything to --json. The exit status is 1 if a gated
reference check failed or a reference scenario could not run. See README.md.
"""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import signal
import sys
import threading
import time

if __name__ == "__main__" and not __package__:  # `python3 load/reliability/run.py` from the clone's root (older)
    if os.path.realpath("squall_load") != os.path.dirname(os.path.dirname(os.path.realpath(__file__))):
        sys.exit("load/reliability/run.py: run it from the clone's root, or use python3 -m squall_load.reliability")
    os.execv(sys.executable, [sys.executable, "-m", "squall_load.reliability", *sys.argv[1:]])

from squall_conformance import helpformat

from . import harness as h
from . import scenarios as sc


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Watchdog:
    """The hard time bound of a scenario: past it, every server the scenario started is
    killed (SIGKILL by PID), which ends the client sockets' waits, and the row says so."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.fired = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        if self._stop.wait(self.seconds):
            return
        self.fired = True
        progress(f"  !! hard time bound of {self.seconds:.0f} s reached: killing the server")
        for pid in list(h.LIVE_SERVERS):
            for p in reversed(h.tree(pid)):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()


def budget(name: str, args) -> float:
    if name == "soak":
        return (min(args.soak_seconds, 15) if args.short else args.soak_seconds) + 90
    if args.short:
        return 60
    return 240


def run_one(name: str, impl: str, args, flags, certs_holder) -> sc.Result:
    ctx = sc.Ctx(impl=impl, short=args.short, reference_bin=args.reference_bin, soak_seconds=args.soak_seconds,
                 certs=certs_holder.get("certs"), progress=progress, flags=flags,
                 sanitized=impl == "reference" and args.sanitized)
    t0 = time.monotonic()
    with Watchdog(budget(name, args)) as dog:
        try:
            result = sc.SCENARIOS[name](ctx)
        except h.ScenarioError as e:
            result = sc.Result(name, impl, status="error", summary=f"could not run: {e}")
        except Exception as e:  # a scenario bug or a server that vanished mid-way
            result = sc.Result(name, impl, status="error", summary=f"{type(e).__name__}: {e}")
    if ctx.certs is not None:
        certs_holder["certs"] = ctx.certs
    if dog.fired:
        result.status = "error"
        result.summary = f"hard time bound ({dog.seconds:.0f} s) reached; " + result.summary
    result.seconds = round(time.monotonic() - t0, 1)
    result.settle_status()
    return result


def cell(result: sc.Result | None) -> str:
    if result is None:
        return ""
    text = result.summary or result.status
    return text.replace("|", "\\|")


def verdict(result: sc.Result | None) -> str:
    if result is None or result.impl != "reference":
        return ""
    if result.status in ("error", "n/a"):
        return result.status
    failing = [c for c in result.checks if not c["ok"]]
    if not failing:
        return "pass"
    parts = []
    for c in failing:
        tag = "FAIL" if c["gated"] else "over (not gated)"
        parts.append(f"{tag}: {c['name']} — {c['detail']}")
    return "; ".join(parts).replace("|", "\\|")


def markdown(results: list[sc.Result], impls: list[str], args) -> str:
    by = {(r.scenario, r.impl): r for r in results}
    names = [n for n in sc.SCENARIOS if any((n, i) in by for i in impls)]
    lines = [f"| scenario | {' | '.join(impls)} | reference bounds |",
             "|---|" + "---|" * len(impls) + "---|"]
    for n in names:
        row = [sc.TITLES.get(n, n)] + [cell(by.get((n, i))) for i in impls] + [verdict(by.get((n, "reference")))]
        lines.append("| " + " | ".join(row) + " |")
    notes = [f"- {n} ({i}): {r.note}" for (n, i), r in by.items() if r.note]
    if notes:
        lines += ["", "Notes:", ""] + sorted(notes)
    return "\n".join(lines) + "\n"


def parser():
    p = helpformat.parser("squall-reliability", "The reliability suite: the reference (and nginx, for comparison) "
                          "under abuse, bounds checked (see load/reliability/README.md).")
    p.add_argument("--short", action="store_true", help="short holds and counts, short timeouts (CI; < ~3 min)")
    p.add_argument("--impl", default="reference,nginx", help="reference, nginx or both")
    p.add_argument("--scenario", default="", help="comma-separated subset of: " + ", ".join(sc.SCENARIOS)
                   + " (default: every scenario)")
    p.add_argument("--reference-bin", default=os.environ.get("SQUALL_REFERENCE_BIN", h.DEFAULT_REFERENCE_BIN),
                   help="the reference's squall-contract-app, or the directory holding it (default: $SQUALL_REFERENCE_BIN, else "
                   + h.DEFAULT_REFERENCE_BIN + ")")
    p.add_argument("--soak-seconds", type=float, default=60.0, help="mixed soak duration (the short form caps it at 15)")
    p.add_argument("--json", help="write every figure here (default: not written)")
    p.add_argument("--md", help="write the Markdown table here (default: not written)")
    return p


def reference_program(path: str, error) -> str:
    """The squall-contract-app that --reference-bin names: the program itself, or the build
    directory holding it (as the load runner's --squall-bin takes it). Anything else is
    reported through error() (the parser's: a usage message and exit status 2)."""
    if os.path.isdir(path):
        inside = os.path.join(path, "squall-contract-app")
        if not os.path.isfile(inside):
            error(f"--reference-bin {path}: a directory without squall-contract-app in it")
        path = inside
    if not os.path.isfile(path):
        error(f"--reference-bin {path}: no such program (build it, or name the squall-contract-app to run)")
    if not os.access(path, os.X_OK):
        error(f"--reference-bin {path}: not executable")
    return path


def main(argv=None) -> int:
    p = parser()
    args = p.parse_args(argv)
    impls = [i.strip() for i in args.impl.split(",") if i.strip()]
    for i in impls:
        if i not in ("reference", "nginx"):
            p.error(f"unknown implementation {i!r} (reference, nginx)")
    args.reference_bin = os.path.abspath(args.reference_bin)
    if "reference" in impls:
        args.reference_bin = reference_program(args.reference_bin, p.error)
    names = [n.strip() for n in args.scenario.split(",") if n.strip()] or list(sc.SCENARIOS)
    for n in names:
        if n not in sc.SCENARIOS:
            p.error(f"unknown scenario {n!r} (one of {', '.join(sc.SCENARIOS)})")
    h.raise_own_nofile()
    flags = sc.reference_flags(args.reference_bin) if "reference" in impls else frozenset()
    args.sanitized = "reference" in impls and sc.is_sanitizer_build(args.reference_bin)

    started = time.monotonic()
    progress(f"reliability suite ({'short' if args.short else 'full'}): {', '.join(impls)}; "
             f"{len(names)} scenarios; reference {args.reference_bin}"
             + (" (sanitizer build: memory figures recorded, not bounded)" if args.sanitized else ""))
    results: list[sc.Result] = []
    certs_holder: dict = {}
    try:
        for n in names:
            for impl in impls:
                progress(f"- {n} / {impl}")
                r = run_one(n, impl, args, flags, certs_holder)
                progress(f"  -> {r.status}: {r.summary} ({r.seconds} s)")
                for c in r.checks:
                    if not c["ok"]:
                        progress(f"     {'FAIL' if c['gated'] else 'over'} {c['name']}: {c['detail']}")
                results.append(r)
    finally:
        if certs_holder.get("certs"):
            certs_holder["certs"].cleanup()
    elapsed = time.monotonic() - started

    table = markdown(results, impls, args)
    print(table)
    if args.md:
        with open(args.md, "w") as f:
            f.write(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"mode": "short" if args.short else "full", "impls": impls, "reference_bin": args.reference_bin,
                       "sanitizer_build": args.sanitized,
                       "soak_seconds": args.soak_seconds, "elapsed_s": round(elapsed, 1),
                       "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                                   "python": platform.python_version()},
                       "bounds": {"per_connection_kib": sc.PER_CONNECTION_KIB, "slack_mib": sc.SLACK_MIB,
                                  "timeout_slack_s": sc.TIMEOUT_SLACK_S, "soak_flat_mib": sc.SOAK_FLAT_MIB,
                                  "gated": sorted(sc.GATED)},
                       "results": [dataclasses.asdict(r) for r in results]}, f, indent=1)
    failed = [r for r in results if r.impl == "reference" and r.status in ("FAIL", "error")]
    progress(f"done in {elapsed:.0f} s: " + (f"{len(failed)} reference scenario(s) failed: "
                                             + ", ".join(r.scenario for r in failed) if failed else "no gated failure"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
