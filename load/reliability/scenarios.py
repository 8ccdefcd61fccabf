"""The reliability scenarios: each starts a fresh server, attacks it on 127.0.0.1 (bounded
in time and count), and returns one Result with its figures and, for the reference, the
bound checks (see BOUNDS and README.md).

A scenario function takes a Ctx and returns a Result. Figures are plain numbers (MiB,
seconds, counts) so that the JSON is easy to compare between runs.
"""
from __future__ import annotations

import os
import random
import select
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field

from . import harness as h

MIB = 1024.0

# ---- bounds (the reference's configured marks; see README.md) --------------------------------
#
# Memory a connection may hold, from the reference's configured marks
# (http1connection.h: output_high_water 256 KiB of queued output, read buffers of two
# read_chunk_size pieces (2 x 64 KiB) plus a head of up to max_header_size (64 KiB), and
# the largest single write of the contract app (its /bytes pieces, as large as the output
# mark: apps/contract_app.cc kDownloadPiece)): 256 + 128 + 64 + 256.
PER_CONNECTION_KIB = 704
# What the process may grow by regardless of connections: allocator arenas and caches,
# the per-thread block pool (small_pool.h), log buffers.
SLACK_MIB = 4.0
# A server-side timeout is "kept" if the connection closed within it plus this.
TIMEOUT_SLACK_S = 3.0
# Soak: the quiet RSS (clients paused) may move by this much between a quarter in and the end.
SOAK_FLAT_MIB = 2.0
# Statuses a malformed request may get (RFC 9112 / 9110); anything else but a plain close
# is a failure.
GARBAGE_STATUSES = {400, 413, 414, 431, 501, 505}

# Checks that gate the exit status of run.py (for the reference). A check not listed is
# measured and shown ("over", not "FAIL") but does not fail the run: those wait for work
# still under way elsewhere (README.md says which and why).
GATED = {
    "alive",                       # every scenario: the server did not crash
    "no-sanitizer-report",         # every scenario: no ASan/UBSan/LSan report in the log
    "clean-exit",                  # every scenario: SIGTERM at the end -> exit status 0
    "endless-chunked.memory",      # a streamed body is not held
    "endless-chunked.refused",     # ... and is cut at max_body_size
    "endless-chunked-10.memory",
    "endless-chunked-10.refused",
    "slowloris.closed",            # the header timeout (short form passes 2 s)
    "slow-body.closed",            # the body timeout (short form passes 2 s)
    "fd-exhaustion.cpu",           # accept back-off
    "fd-exhaustion.recovery",      # instant recovery
    "resets.fd-leak",
    "resets.memory",
    "garbage.answers",
    "garbage.fd-leak",
    "sigterm.lost",
    "sigterm.exit",
    "sigterm-downloads.lost",
    "sigterm-downloads.exit",
    "plain-http-tls.400",
    "reset-downloads.memory",
    "soak.flat",
    "soak.requests",
    "soak.fd-leak",
    "slow-reader-pipelined.memory",  # the output high-water mark (HTTP1Connection)
    "slow-readers.memory",
    "slow-reader-pipelined.closed",  # the send timeout (short form passes 2 s)
    "slow-readers.closed",
}


COMMON_CHECKS = ("alive", "no-sanitizer-report", "clean-exit")


@dataclass
class Ctx:
    impl: str
    short: bool
    reference_bin: str
    soak_seconds: float
    certs: "h.Certs | None" = None
    progress: object = print
    flags: frozenset = frozenset()  # the reference binary's options (from --help)
    sanitized: bool = False          # the reference binary is an ASan/UBSan/TSan build

    def log(self, msg: str) -> None:
        self.progress(f"  [{self.impl}] {msg}")

    def pick(self, short, full):
        return short if self.short else full


@dataclass
class Result:
    scenario: str
    impl: str
    status: str = "pass"           # pass | FAIL | over | n/a | error
    summary: str = ""
    figures: dict = field(default_factory=dict)
    checks: list = field(default_factory=list)  # {"name", "ok", "gated", "detail"}
    seconds: float = 0.0
    note: str = ""

    def memory_check(self, ctx: "Ctx", name: str, ok: bool, detail: str) -> bool:
        """A memory bound: not applicable to a sanitizer build (quarantine, shadow memory),
        whose figures are recorded but never gated."""
        if ctx.sanitized and self.impl == "reference":
            detail += " [sanitizer build: memory not bounded]"
            return self.check(name, ok, detail, impl_gates=False)
        return self.check(name, ok, detail)

    def check(self, name: str, ok: bool, detail: str, impl_gates: bool = True) -> bool:
        full = f"{self.scenario}.{name}" if name not in COMMON_CHECKS else name
        gated = impl_gates and self.impl == "reference" and full in GATED
        self.checks.append({"name": full, "ok": bool(ok), "gated": gated, "detail": detail})
        return ok

    def settle_status(self) -> None:
        if self.status in ("n/a", "error"):
            return
        if self.impl != "reference":
            bad = [c for c in self.checks if not c["ok"]]
            self.status = "over" if bad else "ok"
            return
        if any(not c["ok"] and c["gated"] for c in self.checks):
            self.status = "FAIL"
        elif any(not c["ok"] for c in self.checks):
            self.status = "over"
        else:
            self.status = "pass"


# ---- helpers ----------------------------------------------------------------------------------

def mib(kib: float) -> float:
    return round(kib / MIB, 1)


def big_path(ctx: Ctx) -> tuple[str, int]:
    """The large download: 10 MB from the reference; nginx serves only its static sizes."""
    if ctx.impl == "nginx":
        return f"/bytes/{h.NGINX_LARGEST_BYTES}", h.NGINX_LARGEST_BYTES
    return "/bytes/10000000", 10_000_000


def body_target(ctx: Ctx) -> tuple[str, str]:
    """Where a request body goes: the reference streams PUT /upload (hashing it); nginx's
    static configuration answers POST / and discards the body."""
    return ("POST", "/") if ctx.impl == "nginx" else ("PUT", "/upload")


def start(ctx: Ctx, *, short_timeouts: bool = False, tls: bool = False, extra=()) -> h.Target:
    """A fresh server for one scenario. short_timeouts: 2 s idle/header/body (and send)."""
    certs = None
    if tls:
        if ctx.certs is None:
            ctx.certs = h.Certs()
        certs = ctx.certs
    if ctx.impl == "nginx":
        return h.start_nginx(tls=certs, short_timeouts=short_timeouts)
    args = list(extra)
    timeouts = None
    if short_timeouts:
        timeouts = {"idle": 2, "header": 2, "body": 2}
        if "--send-timeout" in ctx.flags:
            args += ["--send-timeout", "2"]
            timeouts["send"] = 2
    return h.start_reference(ctx.reference_bin, args=args, tls=certs, timeouts=timeouts)


def is_sanitizer_build(binary: str) -> bool:
    try:
        out = subprocess.run(["ldd", binary], capture_output=True, timeout=10).stdout.decode("utf-8", "replace")
    except Exception:
        return False
    return any(lib in out for lib in ("libasan", "libubsan", "libtsan"))


def reference_flags(binary: str) -> frozenset:
    try:
        out = subprocess.run([binary, "--help"], capture_output=True, timeout=10).stdout.decode("utf-8", "replace")
    except Exception:
        return frozenset()
    return frozenset(w.strip(",=[]") for w in out.split() if w.startswith("--"))


def warm_download(t: h.Target, path: str) -> None:
    """One complete download, so that what a server caches for it (the reference's pattern
    of /bytes bodies) is in the baseline, not in the growth."""
    s = h.connect(t.port, timeout=20)
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        h.read_response(s, timeout=20)
    finally:
        s.close()


def sanitizer_report(t: h.Target) -> str:
    try:
        with open(t.log_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "WARNING: ThreadSanitizer"):
        i = text.find(marker)
        if i >= 0:
            return text[i:i + 300]
    return ""


def finish_common(r: Result, t: h.Target) -> None:
    """Every scenario's end: the server is still alive; then it is stopped (SIGTERM, a
    graceful stop) and its log is searched for sanitizer reports, which include the leak
    report a sanitizer build prints at exit."""
    alive = t.alive()
    r.check("alive", alive, "running" if alive else f"exited with {t.proc.returncode}: {t.log_tail(5)}")
    rc = t.stop()
    r.figures.setdefault("stop_exit_code", rc)
    if t.impl == "reference" and alive:
        r.check("clean-exit", rc == 0, f"exit status {rc} after SIGTERM")
    if t.impl == "reference":
        report = sanitizer_report(t)
        r.check("no-sanitizer-report", not report, report or "none")
    t.cleanup()


class Baseline:
    """RSS, CPU and descriptors of a server when a scenario's attack starts."""

    def __init__(self, t: h.Target):
        self.t = t
        self.rss = t.rss_kib()
        self.cpu = t.cpu()
        self.fds = t.fds()
        self.sockets = t.sockets()

    def figures(self, peak_kib: int | None = None) -> dict:
        out = {"rss_before_mib": mib(self.rss), "rss_after_mib": mib(self.t.rss_kib()),
               "cpu_s": round(self.t.cpu() - self.cpu, 2), "fds_before": self.fds, "fds_after": self.t.fds()}
        out["rss_growth_mib"] = round(out["rss_after_mib"] - out["rss_before_mib"], 1)
        if peak_kib is not None:
            out["rss_peak_growth_mib"] = mib(peak_kib - self.rss)
        return out


# ---- slow readers -------------------------------------------------------------------------------

def _slow_readers(ctx: Ctx, r: Result, connections: int, pipelined: int) -> None:
    hold = ctx.pick(6.0, 65.0)
    t = start(ctx, short_timeouts=ctx.short)
    try:
        path, size = big_path(ctx)
        warm_download(t, path)
        base = Baseline(t)
        socks = []
        with h.Sampler(t.pid) as sampler:
            for _ in range(connections):
                s = h.connect(t.port, rcvbuf=16384)
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode() * pipelined)
                socks.append(s)
            ctx.log(f"{connections} connection(s) x {pipelined} x GET {path}, never read; holding {hold:.0f} s")
            t0 = time.monotonic()
            # Accepted first (the server takes them on its own time), then watched until gone.
            h.wait_until(lambda: t.sockets() >= base.sockets + connections, 5.0, interval=0.02)
            closed_after = h.wait_until(lambda: t.sockets() <= base.sockets, hold, interval=0.25)
            if closed_after is not None:
                closed_after = time.monotonic() - t0
        for s in socks:
            h.reset(s)
        time.sleep(1.5)
        fig = base.figures(sampler.peak_kib)
        fig["closed_after_s"] = round(closed_after, 1) if closed_after is not None else None
        fig["hold_s"] = hold
        send_timeout = (t.timeouts or {}).get("send")
        r.figures.update(fig)
        bound = SLACK_MIB + connections * PER_CONNECTION_KIB / MIB
        r.memory_check(ctx, "memory", fig["rss_peak_growth_mib"] <= bound,
                f"peak RSS growth {fig['rss_peak_growth_mib']} MiB (bound {bound:.1f} MiB: "
                f"{connections} x {PER_CONNECTION_KIB} KiB + {SLACK_MIB:.0f} MiB)")
        if send_timeout:
            r.check("closed", closed_after is not None and closed_after <= send_timeout + TIMEOUT_SLACK_S,
                    f"closed after {fig['closed_after_s']} s (send timeout {send_timeout} s)")
        else:
            r.check("closed", closed_after is not None,
                    f"closed after {fig['closed_after_s']} s (within the {hold:.0f} s hold)", impl_gates=False)
        r.summary = (f"peak +{fig['rss_peak_growth_mib']} MiB, CPU {fig['cpu_s']} s, "
                     + (f"closed after {fig['closed_after_s']} s" if closed_after is not None
                        else f"not closed in {hold:.0f} s"))
        if ctx.impl == "nginx":
            r.note = f"{size} B bodies (nginx's largest static file); send_timeout 60 s"
    finally:
        finish_common(r, t)


def slow_reader_pipelined(ctx: Ctx) -> Result:
    r = Result("slow-reader-pipelined", ctx.impl)
    _slow_readers(ctx, r, connections=1, pipelined=50)
    return r


def slow_readers(ctx: Ctx) -> Result:
    r = Result("slow-readers", ctx.impl)
    _slow_readers(ctx, r, connections=20, pipelined=1)
    return r


# ---- endless chunked body -------------------------------------------------------------------------

def _endless_chunked(ctx: Ctx, r: Result, connections: int) -> None:
    hold = ctx.pick(5.0, 15.0)
    t = start(ctx)
    try:
        method, target = body_target(ctx)
        base = Baseline(t)
        piece = b"x" * 65536
        frame = b"10000\r\n" + piece + b"\r\n"
        sent = [0] * connections
        outcome = [""] * connections

        def client(i: int) -> None:
            deadline = time.monotonic() + hold
            try:
                s = h.connect(t.port, timeout=2)
            except OSError as e:
                outcome[i] = f"connect failed: {e}"
                return
            try:
                s.sendall(f"{method} {target} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
                s.settimeout(0.5)
                while time.monotonic() < deadline and not outcome[i]:
                    try:
                        s.sendall(frame)
                        sent[i] += len(piece)
                    except socket.timeout:
                        pass  # the server is not reading (now): see whether it answered
                    except OSError:
                        break  # reset or closed: the answer (if any) is read below
                    if select.select([s], [], [], 0)[0]:  # an answer or a close
                        try:
                            data = s.recv(4096)
                            outcome[i] = data[:12].decode("latin-1") if data else "closed"
                        except OSError:
                            outcome[i] = "reset"
                if not outcome[i]:
                    try:
                        s.settimeout(1.0)
                        data = s.recv(4096)
                        outcome[i] = data[:12].decode("latin-1") if data else "closed"
                    except socket.timeout:
                        outcome[i] = "still reading"
                    except OSError:
                        outcome[i] = "reset"
            finally:
                h.reset(s)

        ctx.log(f"{connections} endless chunked {method} {target}, {hold:.0f} s at full speed")
        with h.Sampler(t.pid) as sampler:
            threads = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
            for th in threads:
                th.start()
            for th in threads:
                th.join(hold + 10)
        time.sleep(1.0)
        fig = base.figures(sampler.peak_kib)
        fig["sent_mib_per_connection"] = round(sum(sent) / connections / (1 << 20), 1)
        fig["outcomes"] = sorted(set(o.strip() for o in outcome))
        r.figures.update(fig)
        bound = SLACK_MIB + connections * PER_CONNECTION_KIB / MIB
        r.memory_check(ctx, "memory", fig["rss_peak_growth_mib"] <= bound,
                f"peak RSS growth {fig['rss_peak_growth_mib']} MiB (bound {bound:.1f} MiB)")
        refused = all(o and o != "still reading" for o in outcome)
        r.check("refused", refused, f"outcomes {fig['outcomes']} after {fig['sent_mib_per_connection']} MiB each")
        r.summary = (f"peak +{fig['rss_peak_growth_mib']} MiB, CPU {fig['cpu_s']} s, "
                     f"{fig['sent_mib_per_connection']} MiB sent each, then {', '.join(fig['outcomes'])}")
        if ctx.impl == "nginx":
            r.note = "POST / (return 200; nginx discards the body)"
    finally:
        finish_common(r, t)


def endless_chunked_1(ctx: Ctx) -> Result:
    r = Result("endless-chunked", ctx.impl)
    _endless_chunked(ctx, r, 1)
    return r


def endless_chunked_10(ctx: Ctx) -> Result:
    r = Result("endless-chunked-10", ctx.impl)
    _endless_chunked(ctx, r, 10)
    return r


# ---- slowloris and slow body ----------------------------------------------------------------------

def _trickle(ctx: Ctx, r: Result, *, head: bytes, first: bytes, then: bytes | None, interval: float,
             connections: int, timeout_key: str, what: str) -> None:
    hold = ctx.pick(8.0, 70.0)
    t = start(ctx, short_timeouts=ctx.short)
    try:
        base = Baseline(t)
        socks: list[socket.socket] = []
        for _ in range(connections):
            try:
                s = h.connect(t.port, timeout=2)
                s.sendall(head + first)
                socks.append(s)
            except OSError:
                break
        ctx.log(f"{len(socks)} {what} connections; holding up to {hold:.0f} s")
        t0 = time.monotonic()
        closed_at: dict[int, float] = {}
        with h.Sampler(t.pid) as sampler:
            next_send = t0 + interval
            while time.monotonic() - t0 < hold and len(closed_at) < len(socks):
                now = time.monotonic()
                for i, s in enumerate(socks):
                    if i in closed_at:
                        continue
                    if h.peer_closed(s):
                        closed_at[i] = now - t0
                    elif then is not None and now >= next_send:
                        try:
                            s.sendall(then)
                        except OSError:
                            closed_at[i] = now - t0
                if then is not None and now >= next_send:
                    next_send = now + interval
                time.sleep(0.1)
        for s in socks:
            h.reset(s)
        time.sleep(1.0)
        fig = base.figures(sampler.peak_kib)
        fig["connections"] = len(socks)
        fig["closed"] = len(closed_at)
        fig["all_closed_after_s"] = round(max(closed_at.values()), 1) if len(closed_at) == len(socks) and socks else None
        fig["hold_s"] = hold
        r.figures.update(fig)
        limit = (t.timeouts or {}).get(timeout_key)
        if limit:
            ok = fig["all_closed_after_s"] is not None and fig["all_closed_after_s"] <= float(limit) + TIMEOUT_SLACK_S
            r.check("closed", ok, f"{fig['closed']}/{fig['connections']} closed, the last after "
                                  f"{fig['all_closed_after_s']} s ({timeout_key} timeout {limit} s)")
        else:
            r.check("closed", fig["all_closed_after_s"] is not None,
                    f"{fig['closed']}/{fig['connections']} closed within {hold:.0f} s (default timeouts)",
                    impl_gates=False)
        r.summary = (f"{fig['closed']}/{fig['connections']} closed"
                     + (f", the last after {fig['all_closed_after_s']} s" if fig["all_closed_after_s"] is not None
                        else f" in {hold:.0f} s")
                     + f"; peak +{fig['rss_peak_growth_mib']} MiB, CPU {fig['cpu_s']} s")
    finally:
        finish_common(r, t)


def slowloris(ctx: Ctx) -> Result:
    r = Result("slowloris", ctx.impl)
    n = ctx.pick(50, 200)
    _trickle(ctx, r, head=b"GET / HTTP/1.1\r\nHost: x\r\n", first=b"X-Slow: ", then=b"a",
             interval=ctx.pick(0.5, 5.0), connections=n, timeout_key="header",
             what="slowloris (a header byte every few seconds)")
    r.note = "short form: 2 s header timeout on both" if ctx.short else "default timeouts"
    return r


def slow_body(ctx: Ctx) -> Result:
    r = Result("slow-body", ctx.impl)
    method, target = body_target(ctx)
    n = ctx.pick(20, 50)
    _trickle(ctx, r, head=f"{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n".encode(),
             first=b"x" * 1000, then=None, interval=1.0, connections=n, timeout_key="body",
             what="slow-body (1 KB of a 1 MB body, then silence)")
    r.note = "short form: 2 s body timeout on both" if ctx.short else "default timeouts"
    return r


# ---- descriptor exhaustion ------------------------------------------------------------------------

def fd_exhaustion(ctx: Ctx) -> Result:
    r = Result("fd-exhaustion", ctx.impl)
    limit, hogs_wanted, window = 64, 100, 3.0
    t = start(ctx)
    hogs: list[socket.socket] = []
    try:
        if ctx.impl == "nginx":
            # Its workers run as another user: limit the master, whose new workers (SIGHUP
            # reloads them) inherit the limit.
            old = set(t.workers())
            subprocess.run(["prlimit", "--pid", str(t.pid), f"--nofile={limit}:{limit}"], check=True, timeout=10)
            os.kill(t.pid, signal.SIGHUP)
            if h.wait_until(lambda: not (set(t.workers()) & old) and len(h.tree(t.pid)) > 1, 10.0) is None:
                raise h.ScenarioError("nginx workers were not restarted by SIGHUP")
            r.note = "limit set on the master; its workers, restarted by SIGHUP, inherit it"
        else:
            subprocess.run(["prlimit", "--pid", str(t.pid), f"--nofile={limit}:{limit}"], check=True, timeout=10)
        base = Baseline(t)
        answered = 0
        for _ in range(hogs_wanted):
            try:
                s = h.connect(t.port, timeout=1.0)
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            except OSError:
                break
            hogs.append(s)
        time.sleep(1.0)  # those the server could accept are answered by now
        for s in hogs:
            try:
                if select.select([s], [], [], 0)[0] and s.recv(64).startswith(b"HTTP/1.1 200"):
                    answered += 1
            except OSError:
                pass
        ctx.log(f"RLIMIT_NOFILE {limit}; {len(hogs)} connections held ({answered} answered); {window:.0f} s exhausted")
        cpu0 = t.cpu()
        time.sleep(window)
        cpu_exhausted = t.cpu() - cpu0
        for s in hogs:
            s.close()
        hogs = []
        recovery = h.wait_until(lambda: h.probe_http(t.port, timeout=0.5) == 200, 10.0, interval=0.02)
        fig = base.figures()
        fig.update(limit=limit, held=hogs_wanted, answered=answered, cpu_exhausted_s=round(cpu_exhausted, 2),
                   recovery_s=round(recovery, 2) if recovery is not None else None)
        r.figures.update(fig)
        r.check("cpu", cpu_exhausted <= 0.5, f"{cpu_exhausted:.2f} s CPU in {window:.0f} s exhausted (bound 0.5 s)")
        r.check("recovery", recovery is not None and recovery <= 2.0, f"answered again after {fig['recovery_s']} s")
        r.summary = (f"{answered}/{hogs_wanted} served at nofile {limit}; CPU {fig['cpu_exhausted_s']} s in "
                     f"{window:.0f} s; recovered in {fig['recovery_s']} s")
    finally:
        for s in hogs:
            s.close()
        finish_common(r, t)
    return r


# ---- resets at every stage ------------------------------------------------------------------------

def _run_pool(n: int, workers: int, job, deadline: float) -> list:
    out = [None] * n
    lock = threading.Lock()
    nxt = [0]

    def worker():
        while time.monotonic() < deadline:
            with lock:
                i = nxt[0]
                if i >= n:
                    return
                nxt[0] += 1
            try:
                out[i] = job(i)
            except Exception as e:  # a client-side failure is an outcome too
                out[i] = f"client error: {type(e).__name__}"

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(max(0.0, deadline - time.monotonic()) + 10)
    return out


def resets(ctx: Ctx) -> Result:
    r = Result("resets", ctx.impl)
    per_stage = ctx.pick(80, 400)
    t = start(ctx)
    try:
        path, _ = big_path(ctx)
        method, target = body_target(ctx)
        slow = "/slow/100" if ctx.impl == "reference" else "/bytes/1048576"
        warm_download(t, path)
        base = Baseline(t)

        def stage_job(stage):
            def job(_):
                s = h.connect(t.port, timeout=5)
                try:
                    if stage == "before-head":
                        pass
                    elif stage == "mid-head":
                        s.sendall(b"GET / HTTP/1.1\r\nHo")
                    elif stage == "after-head":
                        s.sendall(f"GET {slow} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                    elif stage == "mid-body":
                        s.sendall(f"{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n".encode()
                                  + b"y" * 50000)
                    elif stage == "mid-response":
                        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                        got = 0
                        while got < 65536:
                            chunk = s.recv(65536)
                            if not chunk:
                                break
                            got += len(chunk)
                    return "ok"
                finally:
                    h.reset(s)
            return job

        stages = ["before-head", "mid-head", "after-head", "mid-body", "mid-response"]
        ctx.log(f"{per_stage} connections reset at each of {len(stages)} stages")
        failures = 0
        deadline = time.monotonic() + ctx.pick(40, 120)
        with h.Sampler(t.pid) as sampler:
            for stage in stages:
                out = _run_pool(per_stage, 8, stage_job(stage), deadline)
                failures += sum(1 for o in out if o != "ok")
        # Descriptors come back once the server noticed every reset; memory a second after
        # the last connection ended (the reference's trim_memory_when_idle), later under load:
        # what is judged is what stays, so wait for it to settle (bounded).
        h.wait_until(lambda: t.fds() <= base.fds, 10.0, interval=0.2)
        settled = h.wait_until(lambda: mib(t.rss_kib() - base.rss) <= SLACK_MIB, 5.0, interval=0.2)
        fig = base.figures(sampler.peak_kib)
        fig.update(connections=per_stage * len(stages), client_failures=failures,
                   memory_settled_after_s=None if settled is None else round(settled, 1))
        r.figures.update(fig)
        r.check("fd-leak", fig["fds_after"] <= fig["fds_before"],
                f"descriptors {fig['fds_before']} before, {fig['fds_after']} after")
        r.memory_check(ctx, "memory", fig["rss_growth_mib"] <= SLACK_MIB,
                f"RSS growth {fig['rss_growth_mib']} MiB once they are gone (bound {SLACK_MIB:.0f} MiB)")
        r.summary = (f"{fig['connections']} resets; fds {fig['fds_before']} -> {fig['fds_after']}; "
                     f"RSS +{fig['rss_growth_mib']} MiB (peak +{fig['rss_peak_growth_mib']}); CPU {fig['cpu_s']} s")
    finally:
        finish_common(r, t)
    return r


# ---- garbage requests -----------------------------------------------------------------------------

def garbage_requests(n: int, seed: int = 17) -> list[bytes]:
    """n requests that are each malformed in a way RFC 9112 / 9110 require a server to
    refuse (or that are not HTTP at all). Deterministic for a seed."""
    rnd = random.Random(seed)
    host = b"Host: x\r\n"

    def rand_bytes(k):
        # Never starting with CR/LF (leading empty lines are ignored) or a token character.
        first = bytes([rnd.choice([c for c in range(0, 32) if c not in (10, 13)] + list(range(127, 256)))])
        return first + bytes(rnd.randrange(256) for _ in range(k))

    makers = [
        lambda: rand_bytes(rnd.randrange(1, 200)) + b"\r\n\r\n",
        lambda: b"G\x01T / HTTP/1.1\r\n" + host + b"\r\n",
        lambda: b"GET / HTTP/9.9\r\n" + host + b"\r\n",
        lambda: b"GET / HTTX/1.1\r\n" + host + b"\r\n",
        lambda: b"GET /\x7f HTTP/1.1\r\n" + host + b"\r\n",
        lambda: b"GET / HTTP/1.1\r\n" + host + b"NoColonHere\r\n\r\n",
        lambda: b"GET / HTTP/1.1\r\n" + host + b"X-A : b\r\n\r\n",
        lambda: b"GET / HTTP/1.1\r\n" + host + b"X-A: b\x00c\r\n\r\n",
        lambda: b"GET / HTTP/1.1\r\n" + host + b"X-A: b\r\n c\r\n\r\n",
        lambda: b"GET / HTTP/1.1\r\n\r\n",
        lambda: b"GET / HTTP/1.1\r\n" + host + host + b"\r\n",
        lambda: b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        lambda: b"GET /" + b"a" * rnd.randrange(70000, 120000) + b" HTTP/1.1\r\n" + host + b"\r\n",
        lambda: b"GET / HTTP/1.1\r\n" + host + b"X-Big: " + b"a" * rnd.randrange(70000, 120000) + b"\r\n\r\n",
        lambda: b"POST / HTTP/1.1\r\n" + host + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        lambda: b"POST / HTTP/1.1\r\n" + host + b"Content-Length: -1\r\n\r\n",
        lambda: b"POST / HTTP/1.1\r\n" + host + b"Content-Length: 1, 2\r\n\r\n",
        lambda: b"POST / HTTP/1.1\r\n" + host + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
        lambda: b"POST / HTTP/1.1\r\n" + host + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
        lambda: b"POST / HTTP/1.1\r\n" + host + b"Content-Length: 99999999999999\r\n\r\n",
        lambda: b" GET / HTTP/1.1\r\n" + host + b"\r\n",
        lambda: b"GET / HTTP/1.1 extra\r\n" + host + b"\r\n",
        # A TLS ClientHello's start on the plain port (complete with a blank line: a server may
        # wait for the end of a line before it judges one).
        lambda: b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(rnd.randrange(256) for _ in range(64))
        + b"\r\n\r\n",
    ]
    return [makers[i % len(makers)]() for i in range(n)]


def garbage(ctx: Ctx) -> Result:
    r = Result("garbage", ctx.impl)
    n = ctx.pick(2000, 10000)
    t = start(ctx)
    try:
        requests = garbage_requests(n)
        base = Baseline(t)

        def job(i):
            s = h.connect(t.port, timeout=5)
            try:
                try:
                    s.sendall(requests[i])
                except OSError:
                    pass  # the server may answer and close before reading everything
                data = b""
                s.settimeout(5)
                try:
                    while len(data) < 64:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                except socket.timeout:
                    return "no answer, no close (5 s)"
                except ConnectionResetError:
                    pass
                if data.startswith(b"HTTP/1."):
                    try:
                        return int(data.split(b" ")[1])
                    except (IndexError, ValueError):
                        return "unparseable status line"
                return "closed" if not data else f"other bytes {data[:16]!r}"
            finally:
                s.close()

        ctx.log(f"{n} malformed requests, 16 at a time")
        out = _run_pool(n, 16, job, time.monotonic() + ctx.pick(60, 240))
        h.wait_until(lambda: t.fds() <= base.fds, 5.0, interval=0.2)
        fig = base.figures()
        counts: dict[str, int] = {}
        for o in out:
            counts[str(o)] = counts.get(str(o), 0) + 1
        bad = {k: v for k, v in counts.items() if not (k == "closed" or (k.isdigit() and int(k) in GARBAGE_STATUSES))}
        fig["outcomes"] = dict(sorted(counts.items(), key=lambda kv: -kv[1]))
        r.figures.update(fig)
        r.check("answers", not bad, f"outside 400/413/414/431/501/505/close: {bad or 'none'}")
        r.check("fd-leak", fig["fds_after"] <= fig["fds_before"],
                f"descriptors {fig['fds_before']} before, {fig['fds_after']} after")
        top = ", ".join(f"{k}: {v}" for k, v in list(fig["outcomes"].items())[:5])
        r.summary = f"{n} requests: {top}" + (f"; unexpected {bad}" if bad else "")
    finally:
        finish_common(r, t)
    return r


# ---- SIGTERM with requests in flight ---------------------------------------------------------------

def _signal_with_requests_in_flight(ctx: Ctx, r: Result, *, path: str, expect_len: int, rate: int | None,
                                    shutdown_timeout: float = 10.0) -> None:
    n = 20
    extra = ["--shutdown-timeout", str(shutdown_timeout)] if "--shutdown-timeout" in ctx.flags else []
    t = start(ctx, extra=extra)
    exit_code = None
    try:
        heads = threading.Barrier(n + 1, timeout=15)
        results: list = [None] * n

        def client(i):
            try:
                s = h.connect(t.port, rcvbuf=65536 if rate else None, timeout=30)
            except OSError as e:
                results[i] = f"connect: {e}"
                try:
                    heads.wait()
                except threading.BrokenBarrierError:
                    pass
                return
            try:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                data = b""
                if rate:
                    while b"\r\n\r\n" not in data:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                try:
                    heads.wait()
                except threading.BrokenBarrierError:
                    pass
                deadline = time.monotonic() + 30
                done = False
                while time.monotonic() < deadline and not done:
                    if rate:
                        # A rate-limited reader: rate/50 bytes per 20 ms slot, read as they come.
                        slot_end = time.monotonic() + 0.02
                        budget = rate // 50
                        while budget > 0 and select.select([s], [], [], max(0.0, slot_end - time.monotonic()))[0]:
                            chunk = s.recv(min(budget, 1 << 20))
                            if not chunk:
                                done = True
                                break
                            data += chunk
                            budget -= len(chunk)
                        time.sleep(max(0.0, slot_end - time.monotonic()))
                    else:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    if b"\r\n\r\n" in data and len(data.split(b"\r\n\r\n", 1)[1]) >= expect_len:
                        break
                head, _, body = data.partition(b"\r\n\r\n")
                ok = head.startswith(b"HTTP/1.1 200") and len(body) == expect_len
                results[i] = "ok" if ok else f"incomplete ({len(body)} of {expect_len} body bytes)"
            except OSError as e:
                results[i] = f"error: {e}"
            finally:
                s.close()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
        for th in threads:
            th.start()
        try:
            heads.wait()
        except threading.BrokenBarrierError:
            pass
        time.sleep(0.3)
        sig = t.graceful_signal()
        ctx.log(f"{n} x GET {path} in flight; sending {signal.Signals(sig).name}")
        t0 = time.monotonic()
        os.kill(t.pid, sig)
        for th in threads:
            th.join(40)
        try:
            exit_code = t.proc.wait(timeout=shutdown_timeout + 10)
            exit_after = time.monotonic() - t0
        except subprocess.TimeoutExpired:
            exit_after = None
        answered = sum(1 for x in results if x == "ok")
        r.figures.update(in_flight=n, answered=answered, lost=n - answered, exit_code=exit_code,
                         exit_after_s=round(exit_after, 2) if exit_after is not None else None,
                         failures=sorted(set(str(x) for x in results if x != "ok"))[:3])
        r.check("lost", answered == n, f"{answered} of {n} answered whole")
        r.check("exit", exit_code == 0 and exit_after is not None and exit_after <= shutdown_timeout + 2,
                f"exit status {exit_code} after {r.figures['exit_after_s']} s")
        r.summary = (f"{answered}/{n} answered, exit {exit_code} after {r.figures['exit_after_s']} s "
                     f"({signal.Signals(sig).name})")
    finally:
        if exit_code is None:
            finish_common(r, t)
        else:
            t.stop()
            if t.impl == "reference":
                report = sanitizer_report(t)
                r.check("no-sanitizer-report", not report, report or "none")
            t.cleanup()


def sigterm(ctx: Ctx) -> Result:
    r = Result("sigterm", ctx.impl)
    if ctx.impl == "nginx":
        r.status, r.summary = "n/a", "n/a (no /slow endpoint in a static configuration)"
        return r
    ms = ctx.pick(1000, 2000)
    _signal_with_requests_in_flight(ctx, r, path=f"/slow/{ms}", expect_len=2, rate=None)
    r.note = f"GET /slow/{ms}"
    return r


def sigterm_downloads(ctx: Ctx) -> Result:
    r = Result("sigterm-downloads", ctx.impl)
    path, size = big_path(ctx)
    rate = int(size / 2.5)  # each download takes about 2.5 s
    # 20 x 10 MB through Python clients takes longer than 2.5 s: a deadline that is not the
    # subject here (sigterm tests the default one).
    _signal_with_requests_in_flight(ctx, r, path=path, expect_len=size, rate=rate, shutdown_timeout=30.0)
    r.note = f"20 x GET {path} read at up to {rate // 1000} kB/s each"
    if ctx.impl == "nginx":
        r.note += ("; SIGQUIT (nginx's graceful stop); 1 MiB fits the kernel's socket buffers, so this row "
                   "does not tell a graceful stop from an abrupt one")
    else:
        r.note += "; --shutdown-timeout 30"
    return r


# ---- plain HTTP to the TLS port --------------------------------------------------------------------

def plain_http_tls(ctx: Ctx) -> Result:
    r = Result("plain-http-tls", ctx.impl)
    t = start(ctx, tls=True)
    try:
        s = h.connect(t.port, timeout=5)
        t0 = time.monotonic()
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        finally:
            s.close()
        took = time.monotonic() - t0
        status_line = data.split(b"\r\n", 1)[0].decode("latin-1") if data else "(closed without an answer)"
        tls_ok = h.probe_http(t.port, h.insecure_context()) == 200
        r.figures.update(status_line=status_line, closed_after_s=round(took, 2), tls_still_served=tls_ok)
        r.check("400", status_line.startswith("HTTP/1.1 400"), status_line)
        r.check("alive", tls_ok, "HTTPS still answered" if tls_ok else "HTTPS no longer answered")
        r.summary = f"{status_line}; closed after {took:.2f} s"
    finally:
        finish_common(r, t)
    return r


# ---- RSS after reset downloads --------------------------------------------------------------------

def reset_downloads(ctx: Ctx) -> Result:
    r = Result("reset-downloads", ctx.impl)
    clients, concurrency = 600, 20
    t = start(ctx)
    try:
        path, size = big_path(ctx)
        warm_download(t, path)
        time.sleep(1.5)
        base = Baseline(t)

        def job(_):
            s = h.connect(t.port, timeout=10)
            try:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                got = 0
                while got < size // 2:
                    chunk = s.recv(1 << 20)
                    if not chunk:
                        break
                    got += len(chunk)
                return "ok"
            finally:
                h.reset(s)

        ctx.log(f"{clients} clients reset half-way through GET {path}, {concurrency} at a time")
        with h.Sampler(t.pid) as sampler:
            out = _run_pool(clients, concurrency, job, time.monotonic() + ctx.pick(60, 120))
        settle = 3.0
        time.sleep(settle)
        fig = base.figures(sampler.peak_kib)
        fig.update(clients=clients, concurrency=concurrency, client_failures=sum(1 for o in out if o != "ok"),
                   settle_s=settle)
        r.figures.update(fig)
        r.memory_check(ctx, "memory", fig["rss_growth_mib"] <= SLACK_MIB,
                f"RSS {fig['rss_before_mib']} -> {fig['rss_after_mib']} MiB {settle:.0f} s after the last "
                f"(peak +{fig['rss_peak_growth_mib']}; bound +{SLACK_MIB:.0f} MiB)")
        r.summary = (f"RSS {fig['rss_before_mib']} -> peak {round(fig['rss_before_mib'] + fig['rss_peak_growth_mib'], 1)}"
                     f" -> {fig['rss_after_mib']} MiB; CPU {fig['cpu_s']} s")
        if ctx.impl == "nginx":
            r.note = f"{size} B bodies (nginx's largest static file)"
    finally:
        finish_common(r, t)
    return r


# ---- mixed soak -----------------------------------------------------------------------------------

def soak(ctx: Ctx) -> Result:
    r = Result("soak", ctx.impl)
    duration = min(ctx.soak_seconds, 15.0) if ctx.short else ctx.soak_seconds
    quiet = 2.5  # seconds of no traffic before a quiet RSS sample (the reference trims after 1 s)
    t = start(ctx)
    try:
        path, _ = big_path(ctx)
        warm_download(t, path)
        stop = threading.Event()
        running = threading.Event()  # cleared: every client pauses (for a quiet RSS sample)
        running.set()
        counts = {"ok": 0, "failed": 0, "resets": 0, "garbage": 0, "slow": 0}
        failures: list[str] = []
        lock = threading.Lock()
        garbage_pool = garbage_requests(200, seed=5)
        method, target = body_target(ctx)

        def bump(key, detail=None):
            with lock:
                counts[key] += 1
                if detail and len(failures) < 5:
                    failures.append(detail)

        def go() -> bool:
            """Waits while paused; False once the soak is over."""
            while not stop.is_set() and not running.wait(0.1):
                pass
            return not stop.is_set()

        def normal(seed):
            rnd = random.Random(seed)
            s = None
            while go():
                try:
                    if s is None:
                        s = h.connect(t.port, timeout=5)
                    kind = rnd.randrange(3)
                    if kind == 0:
                        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    elif kind == 1:
                        s.sendall(b"GET /bytes/65536 HTTP/1.1\r\nHost: x\r\n\r\n")
                    else:
                        body = b"z" * 4096
                        s.sendall(f"{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                                  + body)
                    status, _, closed = h.read_response(s, timeout=5)
                    if status == 200:
                        bump("ok")
                    else:
                        bump("failed", f"status {status}")
                    if closed:
                        s.close()
                        s = None
                except OSError as e:
                    bump("failed", f"{type(e).__name__}: {e}")
                    if s is not None:
                        s.close()
                    s = None
                    stop.wait(0.05)
            if s is not None:
                s.close()

        def resetter():
            rnd = random.Random(3)
            while go() and not stop.wait(0.05):
                try:
                    s = h.connect(t.port, timeout=5)
                    stage = rnd.randrange(3)
                    if stage == 1:
                        s.sendall(b"GET / HTTP/1.1\r\nHo")
                    elif stage == 2:
                        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                        s.recv(65536)
                    h.reset(s)
                    bump("resets")
                except OSError:
                    pass

        def garbager():
            i = 0
            while go() and not stop.wait(0.05):
                try:
                    s = h.connect(t.port, timeout=5)
                    try:
                        s.sendall(garbage_pool[i % len(garbage_pool)])
                        s.recv(256)
                    except OSError:
                        pass
                    s.close()
                    bump("garbage")
                except OSError:
                    pass
                i += 1

        def slow():
            while go() and not stop.wait(1.0):
                try:
                    s = h.connect(t.port, rcvbuf=16384, timeout=5)
                    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                    stop.wait(min(3.0, duration / 10))
                    h.reset(s)
                    bump("slow")
                except OSError:
                    pass

        def quiet_sample() -> int:
            running.clear()
            time.sleep(quiet)
            kib = t.rss_kib()
            running.set()
            return kib

        base = Baseline(t)
        ctx.log(f"mixed load for {duration:.0f} s (4 keep-alive clients, resets, garbage, slow readers); "
                f"quiet RSS samples at a quarter and at the end")
        samples: list[tuple[float, int]] = []
        threads = [threading.Thread(target=normal, args=(i,)) for i in range(4)]
        threads += [threading.Thread(target=f) for f in (resetter, garbager, slow)]
        t0 = time.monotonic()
        for th in threads:
            th.start()
        warm_kib = None
        while time.monotonic() - t0 < duration and t.alive():
            elapsed = time.monotonic() - t0
            if warm_kib is None and elapsed >= duration / 4:
                warm_kib = quiet_sample()
                t0 += quiet  # the pause does not count as load
                continue
            samples.append((elapsed, t.rss_kib()))
            time.sleep(1.0)
        stop.set()
        running.set()
        for th in threads:
            th.join(15)
        h.wait_until(lambda: t.fds() <= base.fds, 10.0, interval=0.2)
        time.sleep(quiet)
        end_kib = t.rss_kib()
        if warm_kib is None:
            warm_kib = end_kib
        fig = base.figures(max((k for _, k in samples), default=None))
        fig.update(duration_s=round(duration), rss_warm_mib=mib(warm_kib), rss_end_mib=mib(end_kib),
                   rss_growth_after_warm_mib=mib(end_kib - warm_kib), **counts, failure_examples=failures)
        r.figures.update(fig)
        r.memory_check(ctx, "flat", fig["rss_growth_after_warm_mib"] <= SOAK_FLAT_MIB,
                f"quiet RSS {fig['rss_warm_mib']} MiB a quarter in, {fig['rss_end_mib']} MiB at the end "
                f"(bound +{SOAK_FLAT_MIB:.0f} MiB)")
        r.check("requests", counts["failed"] == 0 and counts["ok"] > 0,
                f"{counts['ok']} ok, {counts['failed']} failed {failures[:2]}")
        r.check("fd-leak", fig["fds_after"] <= fig["fds_before"],
                f"descriptors {fig['fds_before']} before, {fig['fds_after']} after")
        r.summary = (f"{duration:.0f} s: {counts['ok']} ok / {counts['failed']} failed; quiet RSS "
                     f"{fig['rss_warm_mib']} -> {fig['rss_end_mib']} MiB (peak +{fig['rss_peak_growth_mib']}); "
                     f"CPU {fig['cpu_s']} s; fds {fig['fds_before']} -> {fig['fds_after']}")
    finally:
        finish_common(r, t)
    return r


SCENARIOS = {
    "slow-reader-pipelined": slow_reader_pipelined,
    "slow-readers": slow_readers,
    "endless-chunked": endless_chunked_1,
    "endless-chunked-10": endless_chunked_10,
    "slowloris": slowloris,
    "slow-body": slow_body,
    "fd-exhaustion": fd_exhaustion,
    "resets": resets,
    "garbage": garbage,
    "sigterm": sigterm,
    "sigterm-downloads": sigterm_downloads,
    "plain-http-tls": plain_http_tls,
    "reset-downloads": reset_downloads,
    "soak": soak,
}

TITLES = {
    "slow-reader-pipelined": "slow reader, 50 pipelined big GETs on one connection, never read",
    "slow-readers": "20 slow-reader connections (one big GET each, never read)",
    "endless-chunked": "endless chunked body, 1 connection",
    "endless-chunked-10": "endless chunked body, 10 connections",
    "slowloris": "slowloris (a header byte every few seconds)",
    "slow-body": "slow body (1 KB of a 1 MB body, then silence)",
    "fd-exhaustion": "descriptor exhaustion (RLIMIT_NOFILE 64, 100 connections)",
    "resets": "resets at every stage (before/mid/after head, mid-body, mid-response)",
    "garbage": "malformed requests",
    "sigterm": "SIGTERM with 20 requests in flight (/slow)",
    "sigterm-downloads": "graceful stop with 20 downloads in flight",
    "plain-http-tls": "plain HTTP sent to the TLS port",
    "reset-downloads": "RSS after 600 clients reset half-way through big downloads",
    "soak": "mixed soak",
}
