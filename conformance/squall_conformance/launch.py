"""Start, find and stop the programs a description names (registry.py): server apps and probes.

    srv = launch.start_server(desc, catch_all=False, tls=None, timeouts={"idle": 2.0})
    print(srv.url); srv.stop()
    srv = launch.attach("http://127.0.0.1:8080", name="mine")   # a server the user started

Every program binds 127.0.0.1; start_server() waits until it answers an HTTP request (over
TLS when it serves HTTPS) and stop() ends exactly the process it started (SIGTERM by PID,
then SIGKILL after a grace period) -- never by name. What a program prints is kept in a log
in its work directory, bounded in size; a program that prints garbage instead of its port
line, or never answers, is an error naming the command, within a bounded time.
"""
from __future__ import annotations

import functools
import os
import selectors
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

from . import paths, registry
from .bounded import run_bounded  # noqa: F401  (re-exported for the cases)

ALL = "all"
# The static files {static_root} holds (contract §1's static parts), as the cases expect them.
STATIC_BYTES = (0, 1, 16, 100, 1000, 4096, 65536, 1048576)
PATTERN = b"0123456789abcdef"
GZIP_BODY = b"Squall compresses this line when the client accepts gzip.\n" * 200
START_TIMEOUT = 15.0
LOG_LIMIT = 4 << 20          # bytes of a program's output kept in its log
PORT_LINE_LIMIT = 64 << 10   # bytes read while looking for the port=N line


class LaunchError(RuntimeError):
    pass


@dataclass(frozen=True)
class TLS:
    """Serve HTTPS: the certificate (then its chain) and key files, and the CA file that
    validates the certificate (None: the readiness probe and the driver do not validate)."""
    certfile: str
    keyfile: str
    cafile: str | None = None

    def client_context(self) -> ssl.SSLContext:
        return client_context(self.cafile)


@functools.lru_cache(maxsize=None)
def client_context(cafile: str | None = None) -> ssl.SSLContext:
    """A TLS 1.2+ client context validating against cafile (hostname checked), or, with
    cafile None, validating nothing."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cafile:
        ctx.load_verify_locations(cafile)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def server_context(certfile: str, keyfile: str | None = None) -> ssl.SSLContext:
    """A TLS 1.2+ server context presenting certfile (the Python peers' and the client
    layer's scripted servers')."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile, keyfile)
    return ctx


@dataclass
class Server:
    """One running (or user-started) program listening on host:port: a server app or a
    stream probe."""

    name: str
    host: str
    port: int
    features: object = ALL                      # ALL or a frozenset of endpoint names
    catch_all: bool = False
    timeouts: dict = field(default_factory=dict)  # idle/header/body -> seconds we configured
    proc: subprocess.Popen | None = None
    workdir: str | None = None
    log_path: str | None = None
    tls: TLS | None = None                      # set when it serves HTTPS
    argv: list = field(default_factory=list)

    @property
    def impl(self) -> str:
        return self.name

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def has(self, feature: str) -> bool:
        return self.features == ALL or feature in self.features

    def alive(self) -> bool:
        return self.proc is None or self.proc.poll() is None

    def log_tail(self, n: int = 20) -> str:
        return log_tail(self.log_path, n)

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM the process we started (by PID), SIGKILL after `grace` seconds."""
        rc = None
        if self.proc is not None:
            rc = stop_process(self.proc, grace)
            self.proc = None
        if self.workdir and not os.environ.get("SQUALL_KEEP_PEER_DIRS"):
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        return rc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def stop_process(proc: subprocess.Popen, grace: float = 5.0) -> int | None:
    if proc.poll() is not None:
        return proc.returncode
    try:
        os.kill(proc.pid, signal.SIGTERM)
        return proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        return proc.wait()
    except ProcessLookupError:
        return proc.wait()


def log_tail(path, n=20) -> str:
    if not path or not os.path.exists(path):
        return ""
    with open(path, "rb") as f:
        f.seek(max(0, os.path.getsize(path) - 8192))
        return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(host: str, port: int, timeout: float = 10.0, proc=None, tls: TLS | None = None) -> None:
    """Wait until host:port answers an HTTP/1.1 request with a status line (over TLS, with
    its certificate validated against tls.cafile, when tls is given)."""
    deadline = time.monotonic() + timeout
    last = None
    context = tls.client_context() if tls else None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise LaunchError(f"exited with status {proc.returncode} before answering")
        try:
            raw = socket.create_connection((host, port), timeout=1.0)
            with context.wrap_socket(raw, server_hostname=host) if context else raw as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1."):
                    return
                last = "answered something that is not an HTTP/1.x response"
        except OSError as e:   # ssl.SSLError included
            last = e
        time.sleep(0.05)
    raise LaunchError(f"{host}:{port} did not answer {'over TLS ' if tls else ''}within {timeout:g} s ({last})")


def wait_listening(host: str, port: int, timeout: float = 10.0, proc=None) -> None:
    """Wait until host:port accepts a TCP connection."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise LaunchError(f"exited with status {proc.returncode} before listening")
        try:
            socket.create_connection((host, port), timeout=1.0).close()
            return
        except OSError as e:
            last = e
        time.sleep(0.05)
    raise LaunchError(f"{host}:{port} did not accept a connection within {timeout:g} s ({last})")


def read_port_line(proc, log_path, timeout: float = START_TIMEOUT) -> int:
    """Read `port=N` from the child's stdout (other lines go to the log). Bounded in time and
    in bytes: a program that prints garbage is an error, not a hang."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    buf, seen = b"", 0
    try:
        while time.monotonic() < deadline and seen < PORT_LINE_LIMIT:
            if not sel.select(timeout=0.1):
                if proc.poll() is not None:
                    break
                continue
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            seen += len(chunk)
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.startswith(b"port="):
                    try:
                        port = int(line[5:].strip())
                    except ValueError:
                        raise LaunchError(f"printed {line[:80]!r}, not port=N") from None
                    if not 0 < port < 65536:
                        raise LaunchError(f"printed port={port}, not a port number")
                    return port
                with open(log_path, "ab") as f:
                    f.write(line[:4096] + b"\n")
    finally:
        sel.close()
    if seen >= PORT_LINE_LIMIT:
        raise LaunchError(f"printed {seen} bytes without a port=N line")
    raise LaunchError(f"no port=N line on stdout within {timeout:g} s (exit status {proc.poll()})")


def _drain(stream, log_path):
    """Keep reading a child's stdout so it never blocks; keep at most LOG_LIMIT bytes."""
    kept = 0
    with stream, open(log_path, "ab") as f:
        for line in iter(stream.readline, b""):
            if kept < LOG_LIMIT:
                f.write(line[:LOG_LIMIT - kept])
                f.flush()
                kept += len(line)


def spawn(argv, workdir, announce_port: bool, port: int, env=None, tls: TLS | None = None, http=True):
    """Start argv (its environment: paths.child_env(env)); find its port (its port=N line, or
    the given one); wait until it answers HTTP (http=True) or accepts connections. Returns
    (proc, port, log_path)."""
    log_path = os.path.join(workdir, "output.log")
    with open(log_path, "ab") as log:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE if announce_port else log,
                                    stderr=log, cwd=workdir, env=paths.child_env(env), start_new_session=True)
        except OSError as e:
            raise LaunchError(f"could not run {argv[0]}: {e.strerror}") from None
    try:
        if announce_port:
            port = read_port_line(proc, log_path)
            threading.Thread(target=_drain, args=(proc.stdout, log_path), daemon=True).start()
        if http:
            wait_http("127.0.0.1", port, proc=proc, tls=tls)
        else:
            wait_listening("127.0.0.1", port, proc=proc)
    except Exception as e:
        stop_process(proc, grace=1.0)
        tail = log_tail(log_path, 5)
        raise LaunchError(f"{' '.join(argv)}: {e}" + (f"\n--- its output ---\n{tail}" if tail else "")) from None
    return proc, port, log_path


def make_static_root(root):
    """The static files of contract §1 that static servers serve."""
    os.makedirs(os.path.join(root, "bytes"), exist_ok=True)
    for n in STATIC_BYTES:
        with open(os.path.join(root, "bytes", str(n)), "wb") as f:
            f.write((PATTERN * (n // 16 + 1))[:n])
    for name in ("gzip", "gzip.txt"):
        with open(os.path.join(root, name), "wb") as f:
            f.write(GZIP_BODY)
    return root


def values(desc, workdir, squall_bin=None, **extra) -> dict:
    """The placeholders every command and rendered file of `desc` may use."""
    return {"workdir": workdir, "here": desc.here, "repo": paths.REPO or paths.PACKAGE, "python": registry.PYTHON,
            "squall_bin": os.path.abspath(squall_bin or paths.default_squall_bin()),
            "static_root": os.path.join(workdir, "static"), **extra}


def start_server(desc, *, catch_all=False, tls: TLS | None = None, timeouts=None, workers=None,
                 max_connections=256, squall_bin=None, features=None) -> Server:
    """Start the server app of `desc` on 127.0.0.1 and wait until it answers. `timeouts`
    (idle/header/body -> seconds) are given for those the description can take."""
    spec = desc.server
    if spec is None:
        raise LaunchError(f"{desc.name} has no server app")
    if spec.command == ():
        return attach(spec.catch_all_url if catch_all else spec.url, name=desc.name, catch_all=catch_all,
                      features=features)
    if catch_all and spec.catch_all is None:
        raise LaunchError(f"{desc.name} has no catch-all mode ([server] catch_all in {desc.source})")
    if tls and spec.tls is None:
        raise LaunchError(f"{desc.name} does not serve TLS ([server] tls in {desc.source})")
    workdir = tempfile.mkdtemp(prefix=f"squall-{desc.name}-")
    os.chmod(workdir, 0o755)  # nginx/h2o workers may run as another user when started by root
    try:
        port = 0 if spec.announce_port else free_port()
        given = {k: v for k, v in (timeouts or {}).items() if k in spec.timeouts}
        v = values(desc, workdir, squall_bin, port=port, workers=workers or 1, max_connections=max_connections,
                   **{f"timeout_{k}": _seconds(given.get(k, spec.timeout_defaults.get(k, 60))) for k in registry.TIMEOUTS})
        if tls:
            v.update(certfile=os.path.abspath(tls.certfile), keyfile=os.path.abspath(tls.keyfile),
                     cafile=os.path.abspath(tls.cafile or tls.certfile))
        if any("{static_root}" in a for a in spec.command) or spec.files:
            make_static_root(v["static_root"])
        for name, template in spec.files.items():
            with open(os.path.join(desc.here, template), encoding="utf-8") as f:
                text = registry.render_file(f.read(), v, {"tls": bool(tls), "catch_all": catch_all},
                                            f"{desc.source}: server.files.{name} ({template})")
            with open(os.path.join(workdir, name), "w", encoding="utf-8") as f:
                f.write(text)
        argv = registry.program(desc, spec.command, v, "server.command")
        if catch_all:
            argv += registry.render_args(desc, spec.catch_all, v, "server.catch_all")
        for k, secs in given.items():
            argv += registry.render_args(desc, spec.timeouts[k], {**v, "seconds": _seconds(secs)}, f"server.timeouts.{k}")
        if tls:
            argv += registry.render_args(desc, spec.tls, v, "server.tls")
        if workers and spec.workers is not None:
            argv += registry.render_args(desc, spec.workers, v, "server.workers")
        proc, port, log = spawn(argv, workdir, spec.announce_port, port, env=spec.env, tls=tls)
    except Exception:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    feats = features if features is not None else (ALL if spec.endpoints in ("all", "probe") else spec.endpoints)
    return Server(desc.name, "127.0.0.1", port, feats, catch_all, given, proc, workdir, log, tls, argv)


def start_probe(desc, layer, extra_args=(), squall_bin=None) -> Server:
    """Start a listening probe (the stream probe) of `desc`, with extra arguments."""
    spec = getattr(desc, layer)
    workdir = tempfile.mkdtemp(prefix=f"squall-{desc.name}-{layer}-")
    try:
        port = 0 if spec.announce_port else free_port()
        v = values(desc, workdir, squall_bin, port=port)
        argv = registry.program(desc, spec.command, v, f"{layer}.command") + list(extra_args)
        proc, port, log = spawn(argv, workdir, spec.announce_port, port, http=False)
    except Exception:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return Server(desc.name, "127.0.0.1", port, ALL, False, {}, proc, workdir, log, None, argv)


def _seconds(s):
    """Seconds as a short string: 2 rather than 2.0."""
    return f"{s:g}"


def attach(url: str, *, name: str | None = None, catch_all: bool = False, features=None,
           cafile: str | None = None) -> Server:
    """A server the user started: we talk to it but never stop it. An https:// URL is
    spoken to over TLS, validated against cafile if given (else not validated)."""
    u = urllib.parse.urlsplit(url or "")
    if u.scheme not in ("http", "https") or not u.hostname:
        raise LaunchError(f"a server URL must look like http://HOST:PORT or https://HOST:PORT, not {url!r}")
    try:
        port = u.port or (443 if u.scheme == "https" else 80)
    except ValueError:
        raise LaunchError(f"{url!r}: not a valid port") from None
    tls = TLS("", "", cafile) if u.scheme == "https" else None
    return Server(name or f"{u.hostname}:{port}", u.hostname, port, ALL if features is None else features,
                  catch_all, tls=tls)
