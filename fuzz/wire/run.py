#!/usr/bin/python3
"""Differential fuzzing over the wire: anyone's HTTP/1.1 parser against the reference.

    squall-wire --impl reference,tornado,aiohttp,nginx,h2o [--seconds 600]
        [--count N] [--seed S] [--out DIR] [--oracle reference] [--url NAME=URL ...]
    squall-wire --impl reference,tornado --replay DIR
    (from a clone: python3 -m squall_wire ... in its root; python3 fuzz/wire/run.py hands over to it)

Every implementation is a description (conformance/implementations/README.md), started,
watched and restarted as in conformance. Each input is a mutated request stream (seeds and
structure-aware mutations: messages.py, mutate.py), sent to every target on a fresh
connection; what each understood (squall_conformance/oracle.py) is compared with the
oracle's (the reference) and with each other's. Disagreements are classified (boundary,
content, accept/reject, liveness), deduplicated, minimised and written as finding files;
the report is a table on the console, JSON and an HTML page (fuzz/wire/README.md).
"""
from __future__ import annotations

import json
import os
import signal
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor

if __name__ == "__main__" and not __package__:  # `python3 fuzz/wire/run.py` from the clone's root (older command lines)
    if os.path.realpath("squall_wire") != os.path.dirname(os.path.realpath(__file__)):
        sys.exit("fuzz/wire/run.py: run it from the clone's root, or use python3 -m squall_wire")
    os.execv(sys.executable, [sys.executable, "-m", "squall_wire", *sys.argv[1:]])

from squall_conformance import core, helpformat, oracle, registry
from squall_conformance.targets import Target, answers, log

from . import findings, messages, mutate, proxy, report
from .minimize import minimize

HERE = os.path.dirname(os.path.abspath(__file__))

PROGRESS_EVERY = 5.0
MINIMISE_SHARE = 0.25   # of --seconds kept for shrinking the findings at the end


class Fuzzer:
    """The targets, the oracle, and the findings kept so far."""

    def __init__(self, targets, oracle_name, out, seed):
        self.targets = {t.name: t for t in targets}
        self.oracle = oracle_name
        self.out = out
        self.seed = seed
        self.kept = {}            # findings.key -> finding dict
        self.counts = {c: 0 for c in oracle.CLASSES}   # disagreements seen, before dedup
        self.restarts = {t.name: 0 for t in targets}
        self.pool = ThreadPoolExecutor(max_workers=len(targets))

    def server(self, t):
        mode = t.desc.server.catch_all is not None or bool(t.desc.server.catch_all_url)
        return t.server(mode), mode

    def opaque(self, name):
        srv, _ = self.server(self.targets[name])
        return not (srv.has("echo") and srv.has("echo-headers"))

    def observe_one(self, t, pieces, methods):
        try:
            srv, mode = self.server(t)
        except core.DriverError as e:
            return oracle.Interpretation([], "error", str(e))
        interp = oracle.observe(srv, pieces, methods, timeout=1.0)
        if interp.end == "dead" or (interp.end == "hang" and not interp.responses and not self.answers(srv)):
            self.restarts[t.name] += 1
            t.restart(mode)
            if interp.end != "dead":
                interp.end, interp.error = "dead", "stopped answering (restarted)"
        return interp

    @staticmethod
    def answers(srv):
        return answers(srv, timeout=1.0)

    def observe(self, names, pieces, methods):
        futures = {n: self.pool.submit(self.observe_one, self.targets[n], pieces, methods) for n in names}
        return {n: f.result() for n, f in futures.items()}

    def pairs(self):
        names = list(self.targets)
        return [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]

    def disagreements(self, interps, requests):
        out = []
        if len(self.targets) == 1:   # alone: only liveness, against a server that answers
            (name, i), = interps.items()
            if i.end == "dead":
                out.append(((name, name), (oracle.LIVENESS, f"{name} {i.error or 'died'}")))
            return out
        for a, b in self.pairs():
            c = oracle.classify(interps[a], interps[b], requests, opaque=self.opaque(a) or self.opaque(b))
            if c:
                out.append(((a, b), c))
        return out

    def still(self, pair, cls, methods, requests):
        """The predicate the minimiser keeps true: this pair still disagrees in this class."""
        def check(pieces):
            interps = self.observe(pair, pieces, methods)
            c = oracle.classify(interps[pair[0]], interps[pair[1]], requests,
                                opaque=self.opaque(pair[0]) or self.opaque(pair[1]))
            return c is not None and c[0] == cls
        return check

    def step(self, iteration, stream, elapsed):
        """One input to every target: the new findings."""
        return self.consider(iteration, stream, self.observe(list(self.targets), stream.pieces(), stream.methods()),
                             elapsed)

    @staticmethod
    def describe(f):
        return f"{f['class']} {' vs '.join(f['pair'])}: {f['detail']}"

    def progress(self):
        return ", ".join(f"{c} {v}" for c, v in self.counts.items())

    def consider(self, iteration, stream, interps, elapsed=None):
        """Keep the disagreements of one input: per class, one finding naming every pair
        that disagrees that way; the first of each key, or a smaller input of it."""
        requests = [(r.method.decode("latin-1"), r.target.decode("latin-1")) for r in stream.requests]
        by_class = {}
        for pair, (cls, detail) in self.disagreements(interps, requests):
            self.counts[cls] += 1
            by_class.setdefault(cls, []).append((pair, detail))
        new = []
        for cls, found in by_class.items():
            pairs = [pair for pair, _ in found]
            odd = self.odd_ones(pairs)
            k = findings.key(cls, odd, stream.ops)
            pieces = stream.pieces()
            old = self.kept.get(k)
            if old is not None and sum(old["pieces"]) <= len(b"".join(pieces)):
                continue
            involved = sorted({n for pair in pairs for n in pair}, key=list(self.targets).index)
            f = findings.make(cls, found[0][1], found[0][0], pieces, requests, stream.ops, mutate.rules(stream.ops),
                              {n: interps[n] for n in involved}, old["iteration"] if old else iteration, self.seed,
                              old["found_after_seconds"] if old else elapsed, pairs=pairs, odd=odd)
            f["against_oracle"] = any(self.oracle in pair for pair in pairs)
            self.kept[k] = f
            if old is None:
                new.append(f)
        return new

    def odd_ones(self, pairs):
        """Who reads the bytes otherwise: the targets that disagree with the oracle (or, when
        the oracle agrees with everyone, every target in a disagreeing pair)."""
        against = sorted({b for a, b in pairs if a == self.oracle})
        if against:
            return tuple(against)
        return tuple(sorted({n for pair in pairs for n in pair}))

    def minimise_all(self, seconds):
        """Shrink every kept finding (within `seconds` in all), then write them out."""
        deadline = time.monotonic() + seconds
        by_severity = sorted(self.kept.items(), key=lambda kv: oracle.CLASSES.index(kv[1]["class"]))
        for k, f in by_severity:   # the most severe classes get the time first
            left = deadline - time.monotonic()
            if left > 1:
                f = self.shrink(f, left)
                self.kept[k] = f
            if self.out:
                findings.save(self.out, f)

    def shrink(self, f, budget):
        """The finding minimised (within budget seconds), observed again on its bytes; the
        finding as found when the smaller input no longer shows the disagreement."""
        pair, cls = tuple(f["pair"]), f["class"]
        methods = [m for m, _ in f["requests"]]
        requests = [tuple(r) for r in f["requests"]]
        pieces, _ = minimize(findings.pieces_of(f), self.still(pair, cls, methods, requests), max_checks=60,
                             max_seconds=min(budget, 10.0))
        final = self.observe(pair, pieces, methods)
        c = oracle.classify(final[pair[0]], final[pair[1]], requests,
                            opaque=self.opaque(pair[0]) or self.opaque(pair[1]))
        if c is None or c[0] != cls:   # flaky: keep the input as found
            return f
        g = findings.make(cls, c[1], pair, pieces, requests, [tuple(x) for x in f["ops"]], f["rules"], final,
                          f["iteration"], self.seed, f["found_after_seconds"], pairs=[tuple(x) for x in f["pairs"]],
                          odd=tuple(f["odd"]))
        g["against_oracle"] = f["against_oracle"]
        return g

    def start(self):
        for t in self.targets.values():
            t.read_version()
            self.server(t)

    def meta(self):
        """What the report says of this run beyond counts and time."""
        return {"implementations": [t.about() for t in self.targets.values()], "restarts": self.restarts,
                "disagreements": self.counts}

    def in_order(self):
        return sorted(self.kept.values(), key=lambda f: (oracle.CLASSES.index(f["class"]), f["pair"]))

    @staticmethod
    def console(kept, meta, out):
        report.console(kept, meta, out)

    def close(self):
        self.pool.shutdown()
        for t in self.targets.values():
            t.stop()


def fuzz(fz, seconds, count, seed, quiet=False):
    """The loop of either mode (fz: a Fuzzer or a proxy.ProxyFuzzer): seeded inputs until
    the time or count is up, then the findings shrunk in the time left."""
    rng = random.Random(seed)
    corpus = messages.seeds()
    t0 = last = time.monotonic()
    n = 0
    while n < count and time.monotonic() - t0 < seconds * (1 - MINIMISE_SHARE):
        stream = mutate.mutate(rng, corpus[n % len(corpus)])
        n += 1
        for f in fz.step(n, stream, round(time.monotonic() - t0, 1)):
            if not quiet:
                log(f"new finding: {fz.describe(f)} ({sum(f['pieces'])} B)")
        now = time.monotonic()
        if not quiet and now - last >= PROGRESS_EVERY:
            last = now
            log(f"[{now - t0:5.0f} s] {n} inputs, {n / (now - t0):.1f}/s; kept {len(fz.kept)} findings; "
                + fz.progress())
    fuzzed = time.monotonic() - t0
    if not quiet:
        log(f"minimising {len(fz.kept)} findings")
    fz.minimise_all(max(0.0, seconds - fuzzed))
    return n, fuzzed


def run_or_replay(a, fz, replay_dir):
    """With --replay: (the replay's exit status, 0, 0) after its table; else the fuzzing
    run's (None, inputs, seconds)."""
    if a.replay:
        rows, bad = replay_dir(a.replay)
        report.replay_table(rows, bad, sys.stdout)
        return (0 if all(r[3] == "reproduced" for r in rows) and not bad else 1), 0, 0.0
    n, secs = fuzz(fz, a.seconds, a.count, a.seed, a.quiet)
    return None, n, secs


def replay(fz, directory):
    """Re-check every finding in directory against the targets named in it."""
    found, bad = findings.load_dir(directory)
    rows = []
    for path, f in found:
        pair = tuple(f["pair"])
        if f.get("mode") == "proxy":   # replayed by --proxy (proxy.replay)
            continue
        if not all(p in fz.targets for p in pair):
            rows.append((path, f, None, f"needs {' and '.join(pair)}"))
            continue
        methods = [m for m, _ in f["requests"]]
        interps = fz.observe(pair, findings.pieces_of(f), methods)
        c = oracle.classify(interps[pair[0]], interps[pair[1]], [tuple(r) for r in f["requests"]],
                            opaque=fz.opaque(pair[0]) or fz.opaque(pair[1]))
        rows.append((path, f, c, findings.outcome(f, c)))
    return rows, bad


def parser():
    p = helpformat.parser("squall-wire", "Differential fuzzing of HTTP/1.1 servers over the wire, against an oracle")
    p.add_argument("--impl", action="append", help="comma list of descriptions (names or .toml paths); the first is "
                   "the oracle unless --oracle says otherwise (default: reference,tornado)")
    p.add_argument("--url", action="append", default=[], help="a running server: NAME=http://127.0.0.1:PORT (repeatable)")
    p.add_argument("--oracle", help="the implementation the others are compared with (default: the first)")
    p.add_argument("--seconds", type=float, default=60.0, help="stop after this long (default 60)")
    p.add_argument("--count", type=int, default=10**9, help="stop after this many inputs (default: no limit)")
    p.add_argument("--seed", type=int, default=1, help="random seed: the same seed gives the same inputs (default 1)")
    p.add_argument("--out", default="build/wire-findings", help="where finding files go (default build/wire-findings)")
    p.add_argument("--replay", help="re-check the findings in this directory instead of fuzzing (default: fuzz)")
    p.add_argument("--json", help="write the JSON report here (default: not written)")
    p.add_argument("--html", help="write the HTML report here (default: not written)")
    p.add_argument("--squall-bin", help="where Squall's programs are (default: $SQUALL_BIN, else the clone's "
                   "build/release/reference, else the folder on PATH holding squall-contract-app)")
    p.add_argument("--fail-on-boundary", action="store_true", help="exit 1 when a boundary disagreement involving "
                   "the oracle is found that fuzz/wire/explained.json does not explain (CI)")
    p.add_argument("--proxy", action="append", help="proxy mode: a comma list of fronts (names in fuzz/wire/fronts/ "
                   "or .toml paths) forwarding to --backend (fuzz/wire/README.md; default: none, direct mode)")
    p.add_argument("--backend", default="reference", help="proxy mode: the back-end the fronts forward to "
                   "(a description; default reference)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def main(argv=None):
    p = parser()
    a = p.parse_args(argv)
    # SIGTERM (a CI timeout) ends the run through the finally blocks that stop every
    # program started, by PID, instead of leaving them behind.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    if a.proxy:
        return proxy_main(a, p, argv)
    specs = [x.strip() for v in (a.impl or ["reference,tornado"]) for x in v.split(",") if x.strip()]
    targets = []
    try:
        for spec in specs:
            targets.append(Target(registry.load(spec), squall_bin=a.squall_bin))
        for v in a.url:
            name, sep, url = v.partition("=")
            if not sep or "://" in name:
                p.error(f"--url {v}: give NAME=URL")
            targets.append(Target(registry.from_url(name, url)))
    except registry.DescriptionError as e:
        p.error(str(e))
    for t in targets:
        if not t.has_layer("server"):
            p.error(f"{t.name} has no server app ({t.desc.source})")
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        p.error("implementation names must be unique")
    if len(names) < 2:
        log("one implementation: nothing to compare it with; only crashes and hangs are found")
    oracle_name = a.oracle or names[0]
    if oracle_name not in names:
        p.error(f"--oracle {oracle_name} is not among {', '.join(names)}")
    targets.sort(key=lambda t: t.name != oracle_name)   # the oracle first: pairs (oracle, x)

    fz = Fuzzer(targets, oracle_name, None if a.replay else a.out, a.seed)
    return session(a, argv, fz, lambda d: replay(fz, d))


def session(a, argv, fz, replay_dir):
    """Start the programs, fuzz (or replay), stop them; the reports; the exit status. fz is
    a Fuzzer or a proxy.ProxyFuzzer."""
    try:
        fz.start()
        code, n, secs = run_or_replay(a, fz, replay_dir)
        if code is not None:
            return code
    except core.DriverError as e:
        print(f"ERROR: {e}")
        return 2
    finally:
        fz.close()
    meta = {"inputs": n, "seconds": round(secs, 1), "rate": round(n / secs, 1) if secs else 0.0, "seed": a.seed,
            "oracle": fz.oracle, **fz.meta(), "command": " ".join(["squall-wire"] + (argv or sys.argv[1:]))}
    kept = fz.in_order()
    fz.console(kept, meta, sys.stdout)
    return write_reports(a, kept, meta, fz.oracle)


def write_reports(a, kept, meta, oracle_name):
    """The JSON and HTML reports, and the CI gate on unexplained boundary disagreements."""
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump({"meta": meta, "findings": kept}, f, indent=1)
    if a.html:
        os.makedirs(os.path.dirname(os.path.abspath(a.html)), exist_ok=True)
        with open(a.html, "w") as f:
            f.write(report.html_page(kept, meta))
    if a.fail_on_boundary:
        unexplained = report.unexplained_boundaries(kept, oracle_name, os.path.join(HERE, "explained.json"))
        for f in unexplained:
            print(f"UNEXPLAINED BOUNDARY DISAGREEMENT: {' vs '.join(f['pair'])}: {f['detail']}: {f['bytes'][:200]!r}")
        return 1 if unexplained else 0
    return 0


def proxy_main(a, p, argv):
    """The proxy mode (proxy.py): fronts forwarding to a back-end, against the oracle."""
    if a.impl or a.url:
        p.error("--proxy takes --backend and --oracle, not --impl or --url")
    front_specs = [x.strip() for v in a.proxy for x in v.split(",") if x.strip()]
    try:
        fronts_desc = [proxy.load_front(s) for s in front_specs]
        oracle_desc, backend_desc = registry.load(a.oracle or "reference"), registry.load(a.backend)
    except registry.DescriptionError as e:
        p.error(str(e))
    names = [d.name for d in fronts_desc]
    if len(set(names)) != len(names):
        p.error("front names must be unique")
    oracle_name, backend_name = oracle_desc.name, backend_desc.name
    descs = {oracle_name: oracle_desc, backend_name: backend_desc}   # one target when the back-end is the oracle
    targets = [Target(d, squall_bin=a.squall_bin) for d in descs.values()]
    targets.sort(key=lambda t: t.name != oracle_name)
    fz = Fuzzer(targets, oracle_name, None, a.seed)
    fronts = [proxy.Front(d, lambda: pf.backend_address(), a.squall_bin) for d in fronts_desc]
    pf = proxy.ProxyFuzzer(fz, fronts, backend_name, None if a.replay else a.out, a.seed)
    return session(a, argv, pf, lambda d: proxy.replay(pf, d))


if __name__ == "__main__":
    sys.exit(main())
