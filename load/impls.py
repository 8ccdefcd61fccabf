"""Starting implementations for load runs: a thin wrapper over conformance/peers/peers.py.

The conformance peers are configured for correctness probes (short timeouts, 256
connections for nginx/h2o, one worker). A load run needs long idle timeouts (the memory
scenario holds connections for many seconds), room for 10,000+ connections, and a worker
count. This module starts the same peers through peers.start() and only adjusts that:

- short_timeouts=False (the peers' defaults: 75 s idle for nginx/h2o, none for the apps);
- reference: `--workers N` (pre-forked on SO_REUSEPORT);
- nginx / h2o: the rendered config gets worker_processes / num-threads = N and a
  connection limit of MAX_CONNECTIONS (done by post-processing the rendered template, so
  that conformance/ stays the single source of the peer configs);
- tornado / aiohttp: the contract apps are single-process; workers > 1 is reported and
  ignored for them (Server.workers says what was actually used).

CPU pinning is done by the runner on the started process tree (procstat.pin).

bare (`squall-bare-server`, reference/bench/bare_server.cc) is not a contract
implementation but the floor of the comparison: a bare epoll loop writing a canned
"Hello, World!" reply to every request, no parsing. It is started here (peers knows
nothing of it) the way peers starts the reference (`--port 0`, a `port=N` line, then the
readiness probe). It is measured only on BARE_SCENARIOS, where a canned plaintext reply is
what the others send too; unserved() makes every other scenario n/a for it.

start_tls() starts a TLS instance for the TLS scenarios (reference and nginx): the same
peers.start(), with the reference given --certfile/--keyfile and nginx's rendered config
turned to `listen ... ssl` with the certificate; peers' readiness probe (plain HTTP) is
swapped for one over TLS that validates the certificate against the generated CA.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import ssl
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "conformance", "peers"))
import peers  # noqa: E402  conformance/peers/peers.py

MAX_CONNECTIONS = 20000

BARE_BIN_DEFAULT = os.path.join(peers.REPO, "build", "release", "reference", "squall-bare-server")
# Scenarios whose request is a bodiless GET /plaintext answered with "Hello, World!": the
# canned reply is a fair floor there. Not memory (its fixed 16 KiB buffer per connection
# is not a floor for RSS per idle connection) and not TLS.
BARE_SCENARIOS = frozenset({"plaintext", "pipeline", "connection_close", "many_connections"})


def bare_bin() -> str:
    return os.path.abspath(os.environ.get("SQUALL_BARE_BIN") or BARE_BIN_DEFAULT)


def unserved(impl: str, scenario: str) -> str | None:
    """Why impl is not measured on scenario (reported n/a), or None. Only bare declares
    this up front; the others are n/a when the runner's pre-flight request fails."""
    if impl == "bare" and scenario not in BARE_SCENARIOS:
        return (f"bare (the canned-reply floor) is measured only on {', '.join(sorted(BARE_SCENARIOS))}")
    return None


class LoadServer:
    def __init__(self, srv, workers: int):
        self.srv = srv
        self.name = srv.impl
        self.host = srv.host
        self.port = srv.port
        self.pid = srv.proc.pid if srv.proc is not None else None
        self.workers = workers

    def stop(self):
        return self.srv.stop()


@contextlib.contextmanager
def _patched(name: str, make):
    """While active, peers.<name> is make(the current peers.<name>)."""
    original = getattr(peers, name)
    setattr(peers, name, make(original))
    try:
        yield
    finally:
        setattr(peers, name, original)


def _load_configs(workers: int):
    """While active, peers' rendered nginx/h2o configs get load-sized limits."""
    return _patched("_render", lambda original: _load_render(original, workers))


def _load_render(original, workers: int):
    def render(template_name, **values):
        conf = original(template_name, **values)
        if template_name.startswith("nginx"):
            conf = re.sub(r"worker_processes\s+\d+;", f"worker_processes {workers};", conf)
            conf = re.sub(r"worker_connections\s+\d+;", f"worker_connections {MAX_CONNECTIONS};", conf)
            if "worker_rlimit_nofile" not in conf:
                conf = conf.replace("pid ", f"worker_rlimit_nofile {MAX_CONNECTIONS * 2};\npid ", 1)
        elif template_name.startswith("h2o"):
            conf = re.sub(r"(?m)^max-connections:.*$", f"max-connections: {MAX_CONNECTIONS}", conf)
            conf = re.sub(r"(?m)^num-threads:.*$", f"num-threads: {workers}", conf)
        return conf

    return render


class NoTLS(Exception):
    """The implementation has no TLS set-up here (its TLS scenarios are n/a)."""


TLS_IMPLS = ("reference", "nginx")


def _tls_probe(ca: str):
    """While active, peers' readiness probe speaks HTTPS and validates against ca."""
    context = ssl.create_default_context(cafile=ca)

    def wait_https(host, port, timeout=10.0, proc=None):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise peers.PeerError(f"process exited with status {proc.returncode} before answering")
            try:
                with socket.create_connection((host, port), timeout=1.0) as raw:
                    with context.wrap_socket(raw, server_hostname=host) as s:
                        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                        if s.recv(64).startswith(b"HTTP/1."):
                            return
            except (OSError, ssl.SSLError) as e:
                last = e
            time.sleep(0.05)
        raise peers.PeerError(f"{host}:{port} did not answer over TLS within {timeout}s ({last})")

    return _patched("wait_http", lambda original: wait_https)


def _nginx_tls(cert: str, key: str):
    """While active, the rendered nginx config listens with TLS (1.2 and 1.3, as the
    reference) on the peer's port, presenting cert."""
    return _patched("_render", lambda original: _tls_render(original, cert, key))


def _tls_render(original, cert: str, key: str):
    def render(template_name, **values):
        conf = original(template_name, **values)
        if template_name.startswith("nginx"):
            conf, n = re.subn(r"listen\s+(127\.0\.0\.1:\d+);",
                              lambda m: (f"listen {m.group(1)} ssl;\n        ssl_certificate {cert};\n"
                                         f"        ssl_certificate_key {key};\n"
                                         "        ssl_protocols TLSv1.2 TLSv1.3;"), conf)
            if n != 1:
                raise peers.PeerError("nginx template: no single listen directive to turn to TLS")
        return conf

    return render


def start_tls(impl: str, certs: str, workers: int = 1) -> LoadServer:
    """A TLS instance of impl presenting certs/server.pem (see make_certs.sh)."""
    if impl not in TLS_IMPLS:
        raise NoTLS(f"no TLS set-up for {impl} in the load harness (only {', '.join(TLS_IMPLS)})")
    cert, key, ca = (os.path.join(certs, f) for f in ("server.pem", "server.key", "ca.pem"))
    with _tls_probe(ca):
        if impl == "reference":
            srv = peers.start(impl, short_timeouts=False,
                              extra_args=["--workers", str(workers), "--certfile", cert, "--keyfile", key])
        else:
            with _load_configs(workers), _nginx_tls(cert, key):
                srv = peers.start(impl, short_timeouts=False)
    return LoadServer(srv, workers)


def _start_bare() -> "peers.Server":
    binary = bare_bin()
    if not os.access(binary, os.X_OK):
        raise peers.PeerError(f"bare server not found: {binary} "
                              "(build: ninja -C build/release squall-bare-server, or set SQUALL_BARE_BIN)")
    workdir = tempfile.mkdtemp(prefix="squall-peer-bare-")
    try:
        proc, port, log = peers._spawn([binary, "--host", "127.0.0.1", "--port", "0"], workdir)
    except Exception:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return peers.Server("bare", "127.0.0.1", port, frozenset({"plaintext", "catch-all"}), True, {},
                        proc, workdir, log)


def start(impl: str, workers: int = 1) -> LoadServer:
    if impl == "bare":  # single-threaded by design: --workers does not apply
        return LoadServer(_start_bare(), 1)
    if impl == "reference":
        srv = peers.start(impl, short_timeouts=False, extra_args=["--workers", str(workers)])
        return LoadServer(srv, workers)
    if impl in ("nginx", "h2o"):
        with _load_configs(workers):
            srv = peers.start(impl, short_timeouts=False)
        return LoadServer(srv, workers)
    srv = peers.start(impl, short_timeouts=False)
    return LoadServer(srv, 1)
