"""The proxy mode of the wire fuzzer: fronts (reverse proxies) forwarding to a back-end.

    /usr/bin/python3 -m squall_wire --proxy nginx,haproxy --backend reference --seconds 300

A front is an implementation description (fuzz/wire/fronts/NAME.toml or any .toml path)
whose configuration forwards to `{upstream_host}:{upstream_port}` and adds the marker field
`X-Squall-Front: 1` to every request it forwards. Each front forwards to its own recording
tap (tap.py), which relays to the back-end. For every input and every front:

  client view     the front's answers to the client (stripped of the fields a proxy adds)
                  against the oracle's reading of the same bytes sent to it directly
  forwarded view  what the front forwarded on each upstream connection (its marker count:
                  the messages it meant) against what the back-end understood (its answers
                  there): forwarded.py; the request-smuggling finding
  back-end view   (when the back-end is not the oracle) the forwarded bytes replayed to the
                  oracle against the back-end's answers: who reads the front's output right

The targets (oracle, back-end) are managed by the direct mode's Fuzzer (run.py): started,
watched and restarted the same way.
"""
from __future__ import annotations

import base64
import dataclasses
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from squall_conformance import core, launch, oracle, registry
from squall_conformance.report import show_bytes
from squall_conformance.targets import answers

from . import findings, forwarded, mutate, report
from .minimize import minimize
from .tap import Tap

HERE = os.path.dirname(os.path.abspath(__file__))
FRONTS_DIR = os.path.join(HERE, "fronts")
UPSTREAM_PLACEHOLDER = "{upstream_port}"
REUSE_GRACE = 0.02     # after cutting upstream connections, before the next input: the front sees them close
# Quiet on the upstream connections that ends an input's recording. The front has relayed the
# back-end's answers before the client's read ends, and a back-end answers a smuggled
# request right after the one before it, so a short wait suffices.
SETTLE_QUIET = 0.05
VIEWS = ("forwarded", "backend", "client")


def front_names():
    return sorted(f[:-5] for f in os.listdir(FRONTS_DIR) if f.endswith(".toml"))


def load_front(spec):
    """A front's description: a name in fuzz/wire/fronts/ or a .toml path. It must forward to
    {upstream_port} (in its command or a rendered file)."""
    path = os.path.abspath(spec) if "/" in spec or spec.endswith(".toml") else os.path.join(FRONTS_DIR, spec + ".toml")
    if not os.path.isfile(path):
        raise registry.DescriptionError(f"{spec}: no such front (a .toml path, or one of: {', '.join(front_names())})")
    desc = registry.load(path)
    if desc.server is None or desc.server.command == ():
        raise registry.DescriptionError(f"{desc.source}: a front needs a [server] command the fuzzer starts")
    text = " ".join(desc.server.command)
    for template in desc.server.files.values():
        with open(os.path.join(desc.here, template), encoding="utf-8") as f:
            text += f.read()
    if UPSTREAM_PLACEHOLDER not in text:
        raise registry.DescriptionError(f"{desc.source}: a front must forward to {UPSTREAM_PLACEHOLDER} "
                                        "(in server.command or a rendered file)")
    return desc


def with_upstream(desc, upstream, directory):
    """The description with the front's own placeholders ({upstream_host}, {upstream_port})
    filled in its command and in copies of its templates (written to directory); launch
    renders the rest as for any server."""
    def fill(text):
        for k, v in upstream.items():
            text = text.replace("{" + k + "}", str(v))
        return text
    files = {}
    for name, template in desc.server.files.items():
        with open(os.path.join(desc.here, template), encoding="utf-8") as f:
            text = fill(f.read())
        files[name] = os.path.join(directory, name + ".template")
        with open(files[name], "w", encoding="utf-8") as f:
            f.write(text)
    server = dataclasses.replace(desc.server, command=tuple(fill(a) for a in desc.server.command), files=files)
    return dataclasses.replace(desc, server=server)


class Front:
    """One running front, its recording tap, and how often it was restarted."""

    def __init__(self, desc, upstream, squall_bin=None):
        self.desc, self.name, self.squall_bin = desc, desc.name, squall_bin
        self.tap = Tap(upstream)
        self.templates = tempfile.mkdtemp(prefix=f"squall-front-{self.name}-")
        self.srv = None
        self.version = ""
        self.restarts = 0

    def server(self):
        if self.srv is None:
            try:
                desc = with_upstream(self.desc, {"upstream_host": "127.0.0.1", "upstream_port": self.tap.port},
                                     self.templates)
                self.srv = launch.start_server(desc, squall_bin=self.squall_bin)
            except (launch.LaunchError, registry.DescriptionError, OSError) as e:
                raise core.DriverError(f"could not start the front {self.name}: {e}") from None
        return self.srv

    def run(self, pieces, methods):
        """Send the input to the front; (its answers to the client, the tap's upstream records)."""
        srv = self.server()
        self.tap.begin()
        client = oracle.observe(srv, pieces, methods, timeout=1.0)
        ups = self.tap.settle(quiet=SETTLE_QUIET)
        time.sleep(REUSE_GRACE)
        if not srv.alive() or (client.end == "hang" and not client.responses and not answers(srv, timeout=1.0)):
            client.end, client.error = "dead", "the front died or stopped answering (restarted)"
            self.restart()
        return client, ups

    def restart(self):
        self.restarts += 1
        if self.srv is not None:
            self.srv.stop()
        self.srv = None

    def read_version(self):
        self.version = registry.version(self.desc, launch.values(self.desc, "/tmp", self.squall_bin))

    def about(self):
        d = self.desc
        return {"name": d.name, "title": d.title, "version": self.version, "description": d.source,
                "profiles": list(d.profiles), "layers": ["front"]}

    def stop(self):
        if self.srv is not None:
            self.srv.stop()
            self.srv = None
        self.tap.close()
        shutil.rmtree(self.templates, ignore_errors=True)


class ProxyFuzzer:
    """The fronts, the direct mode's Fuzzer holding the oracle and the back-end, the findings."""

    def __init__(self, direct, fronts, backend_name, out, seed):
        self.direct = direct                # run.Fuzzer over the oracle (and the back-end)
        self.oracle = direct.oracle
        self.backend = backend_name
        self.fronts = {f.name: f for f in fronts}
        self.out, self.seed = out, seed
        self.kept = {}
        self.counts = {v: {c: 0 for c in oracle.CLASSES} for v in VIEWS}
        self.pool = ThreadPoolExecutor(max_workers=len(fronts) + 1)

    def backend_address(self):
        srv, _ = self.direct.server(self.direct.targets[self.backend])
        return srv.host, srv.port

    def observe(self, names, pieces, methods, direct=True):
        """Every named front's (client, upstreams), and the oracle's direct reading."""
        futures = {n: self.pool.submit(self.fronts[n].run, pieces, methods) for n in names}
        ref = self.pool.submit(self.direct.observe_one, self.direct.targets[self.oracle], pieces, methods) \
            if direct else None
        got = {n: f.result() for n, f in futures.items()}
        return got, (ref.result() if ref else None)

    def views(self, client, ups, ref, requests):
        """The disagreements of one front on one input: [(view, class, detail, upstream index)]."""
        out = []
        backend_srv, mode = self.direct.server(self.direct.targets[self.backend])
        if not backend_srv.alive():
            self.direct.restarts[self.backend] += 1
            self.direct.targets[self.backend].restart(mode)
            out.append(("forwarded", oracle.LIVENESS, "the back-end died (restarted)", None))
        else:
            c = forwarded.classify_forwarded(ups)
            if c:
                out.append(("forwarded", c[0], c[1], c[2]))
        if self.backend != self.oracle:
            for n, up in enumerate(ups):
                c = self.backend_view(up)
                if c:
                    out.append(("backend", c[0], f"upstream connection {n + 1}: {c[1]}", n))
                    break
        if ref is not None:
            a, b = forwarded.strip_proxy_fields(ref, requests), forwarded.strip_proxy_fields(client, requests)
            c = oracle.classify(a, b, requests)
            if c:
                out.append(("client", c[0], c[1], None))
        return out

    def backend_view(self, up):
        """The oracle's reading of the forwarded bytes against the back-end's."""
        data = bytes(up.forwarded)
        if not data or forwarded.unfinished(data):   # a message the front is still forwarding
            return None
        reqs = forwarded.requests(data)
        # Listings compared as in the client view: field order and case, and the proxy's own
        # fields, are no disagreement between two readers of the same bytes either.
        return oracle.classify(forwarded.strip_proxy_fields(self.oracle_reading(data), reqs),
                               forwarded.strip_proxy_fields(forwarded.understood(up), reqs), reqs,
                               opaque=self.direct.opaque(self.oracle) or self.direct.opaque(self.backend))

    def oracle_reading(self, data):
        """The oracle's reading of the bytes a front forwarded on one connection."""
        return self.direct.observe_one(self.direct.targets[self.oracle], [data], forwarded.methods(data))

    def step(self, iteration, stream, elapsed):
        """One input through every front (and to the oracle directly): the new findings."""
        results, ref = self.observe(list(self.fronts), stream.pieces(), stream.methods())
        return self.consider(iteration, stream, results, ref, elapsed)

    @staticmethod
    def describe(f):
        return f"{f['class']} ({f['view']} view) {f['front']}: {f['detail']}"

    def progress(self):
        return "; ".join(f"{v}: " + ", ".join(f"{c} {k}" for c, k in cs.items() if k)
                         for v, cs in self.counts.items() if any(cs.values()))

    def consider(self, iteration, stream, results, ref, elapsed):
        requests = [(r.method.decode("latin-1"), r.target.decode("latin-1")) for r in stream.requests]
        new = []
        for name, (client, ups) in results.items():
            for view, cls, detail, n in self.views(client, ups, ref, requests):
                self.counts[view][cls] += 1
                seen = findings.key(cls, (view, name), stream.ops) in self.kept
                f = self.keep(view, cls, detail, name, stream.pieces(), requests, stream.ops, client, ups, n, ref,
                              iteration, elapsed)
                if f is not None and not seen:
                    new.append(f)
        return new

    def pair(self, view, front):
        return (self.oracle, front) if view == "client" else (front, self.backend)

    def keep(self, view, cls, detail, front, pieces, requests, ops, client, ups, n, ref, iteration, elapsed,
             smaller=True):
        """Record a finding (the first of its key, or a smaller input of it); the finding
        recorded, or None. smaller=False replaces the kept one whatever its size."""
        k = findings.key(cls, (view, front), ops)
        old = self.kept.get(k)
        if old is not None and smaller and sum(old["pieces"]) <= len(b"".join(pieces)):
            return None
        interps = {f"{front} (answers to the client)": client}
        if ref is not None:
            interps[f"{self.oracle} (the client's bytes directly)"] = ref
        for i, up in enumerate(ups):
            interps[f"{self.backend} (upstream connection {i + 1})"] = forwarded.understood(up)
        if view == "backend":     # what the back-end was compared with: read again for the record
            interps[f"{self.oracle} (upstream connection {n + 1} replayed)"] = \
                self.oracle_reading(bytes(ups[n].forwarded))
        pair = self.pair(view, front)
        f = findings.make(cls, detail, pair, pieces, requests, ops, mutate.rules(ops), interps,
                          old["iteration"] if old else iteration, self.seed,
                          old["found_after_seconds"] if old else elapsed, odd=(front,))
        f.update(mode="proxy", view=view, front=front, backend=self.backend, upstream_index=n,
                 against_oracle=self.oracle in pair, upstream=[upstream_json(up) for up in ups])
        self.kept[k] = f
        return f

    def check(self, f, pieces):
        """Run a finding's input again: the class its view shows now (None: they agree), the
        front's answers, the upstream records and the oracle's direct reading."""
        requests = [tuple(r) for r in f["requests"]]
        methods = [m for m, _ in requests]
        got, ref = self.observe([f["front"]], pieces, methods, direct=f["view"] == "client")
        client, ups = got[f["front"]]
        for view, cls, detail, n in self.views(client, ups, ref, requests):
            if view == f["view"]:
                return (cls, detail, n), client, ups, ref
        return None, client, ups, ref

    def minimise_all(self, seconds):
        deadline = time.monotonic() + seconds
        for k, f in sorted(self.kept.items(), key=lambda kv: oracle.CLASSES.index(kv[1]["class"])):
            left = deadline - time.monotonic()
            if left > 1:
                self.kept[k] = self.shrink(f, left)
            if self.out:
                findings.save(self.out, self.kept[k])

    def shrink(self, f, budget):
        def still(pieces):
            c = self.check(f, pieces)[0]
            return c is not None and c[0] == f["class"]
        pieces, _ = minimize(findings.pieces_of(f), still, max_checks=40, max_seconds=min(budget, 10.0))
        c, client, ups, ref = self.check(f, pieces)
        if c is None or c[0] != f["class"]:
            return f                        # flaky: keep the input as found
        return self.keep(f["view"], f["class"], c[1], f["front"], pieces, [tuple(r) for r in f["requests"]],
                         [tuple(x) for x in f["ops"]], client, ups, c[2], ref, f["iteration"],
                         f["found_after_seconds"], smaller=False)

    def start(self):
        self.direct.start()
        for f in self.fronts.values():
            f.read_version()
            f.server()

    def meta(self):
        fronts = [f.about() for f in self.fronts.values()]
        direct = self.direct.meta()
        return {"mode": "proxy", "backend": self.backend, "fronts": fronts,
                "implementations": direct["implementations"] + fronts,
                "restarts": {**direct["restarts"], **{f.name: f.restarts for f in self.fronts.values()}},
                "disagreements": self.counts}

    def in_order(self):
        return sorted(self.kept.values(), key=lambda f: (oracle.CLASSES.index(f["class"]), f["view"], f["front"]))

    @staticmethod
    def console(kept, meta, out):
        report.proxy_console(kept, meta, out)

    def close(self):
        self.pool.shutdown()
        for f in self.fronts.values():
            f.stop()
        self.direct.close()


def upstream_json(up):
    data = bytes(up.forwarded)
    return {"forwarded_b64": base64.b64encode(data).decode(), "forwarded": show_bytes(data, limit=len(data)),
            "answered": show_bytes(bytes(up.answered), limit=4096), "meant": forwarded.meant(data),
            "front_closed": up.front_closed, "backend_closed": up.backend_closed, "error": up.error}


def replay(pf, directory):
    """Re-check the proxy findings in directory through the fronts running now: (rows, bad)."""
    found, bad = findings.load_dir(directory)
    rows = []
    for path, f in found:
        if f.get("mode") != "proxy":   # replayed by the direct mode
            continue
        if f["front"] not in pf.fronts:
            rows.append((path, f, None, f"needs the front {f['front']}"))
            continue
        c = pf.check(f, findings.pieces_of(f))[0]
        rows.append((path, f, c, findings.outcome(f, c)))
    return rows, bad
