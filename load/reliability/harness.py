"""What every reliability scenario needs: the servers under test (started, measured and
stopped by PID), figures from /proc summed over a server's process tree, and raw-socket
clients that misbehave on purpose (never read, reset, trickle bytes).

Only 127.0.0.1. Every wait here is bounded by a deadline.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time

from squall_conformance import launch, paths, registry

from .. import procstat

SHORT_TIMEOUTS = {"idle": 2.0, "header": 2.0, "body": 2.0}
DEFAULT_REFERENCE_BIN = os.path.join(paths.default_squall_bin(), "squall-contract-app")
MAKE_CERTS = paths.MAKE_CERTS

# Largest body nginx's static tree serves ({static_root}/bytes/N for a few sizes: launch.STATIC_BYTES).
NGINX_LARGEST_BYTES = max(launch.STATIC_BYTES)


# Root PIDs of the servers running now (run.py's watchdog kills these past a time bound).
LIVE_SERVERS: set[int] = set()


class ScenarioError(RuntimeError):
    """The scenario could not run (not a verdict on the server)."""


# ---- /proc ----------------------------------------------------------------------------------

# tree(), cpu_seconds(), rss_kib(): the load runner's, over the same process trees.
tree = procstat.tree
cpu_seconds = procstat.cpu_seconds
rss_kib = procstat.rss_kb


def fd_count(root: int) -> int:
    """Open descriptors summed over the tree."""
    total = 0
    for pid in tree(root):
        try:
            total += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            pass
    return total


def socket_count(root: int) -> int:
    """Open socket descriptors summed over the tree (listening ones included)."""
    total = 0
    for pid in tree(root):
        try:
            for name in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:"):
                        total += 1
                except OSError:
                    pass
        except OSError:
            pass
    return total


def raise_own_nofile(wanted: int = 65536) -> int:
    return procstat.raise_nofile(wanted)


class Sampler:
    """Samples a tree's RSS every `interval` seconds in a thread; .peak_kib is the peak."""

    def __init__(self, root: int, interval: float = 0.1):
        self.root, self.interval = root, interval
        self.peak_kib = rss_kib(root)
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        t0 = time.monotonic()
        while not self._stop.is_set():
            kib = rss_kib(self.root)
            self.samples.append((time.monotonic() - t0, kib))
            self.peak_kib = max(self.peak_kib, kib)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


def wait_until(predicate, timeout: float, interval: float = 0.05) -> float | None:
    """Seconds until predicate() held, or None if it did not within timeout."""
    t0 = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - t0
        if time.monotonic() - t0 >= timeout:
            return None
        time.sleep(interval)


# ---- servers --------------------------------------------------------------------------------

class Target:
    """One running server under test. root_pid is what signals go to and what /proc
    figures are summed under."""

    def __init__(self, impl: str, port: int, proc: subprocess.Popen, workdir: str, log_path: str,
                 tls: bool, handle=None, timeouts=None):
        self.impl, self.port, self.proc, self.workdir, self.log_path = impl, port, proc, workdir, log_path
        self.tls, self._handle, self.timeouts = tls, handle, timeouts or {}
        LIVE_SERVERS.add(proc.pid)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def fds(self) -> int:
        return fd_count(self.pid)

    def sockets(self) -> int:
        return socket_count(self.pid)

    def workers(self) -> list[int]:
        """The processes that serve connections: nginx's workers, else the root."""
        pids = tree(self.pid)
        return pids[1:] if len(pids) > 1 else pids

    def graceful_signal(self) -> int:
        # nginx's graceful stop is SIGQUIT (SIGTERM is its fast stop).
        return signal.SIGQUIT if self.impl == "nginx" else signal.SIGTERM

    def log_tail(self, n: int = 15) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, os.path.getsize(self.log_path) - 16384))
                return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self, grace: float = 5.0) -> int | None:
        rc = None
        LIVE_SERVERS.discard(self.proc.pid)
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                rc = self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                rc = self.proc.wait()
            except ProcessLookupError:
                rc = self.proc.wait()
        else:
            rc = self.proc.returncode
        if self._handle is not None:
            self._handle.proc = None  # we stopped it ourselves
            try:
                self._handle.stop()
            except Exception:
                pass
        return rc

    def cleanup(self) -> None:
        """Removes the working directory (the server's log) once it was read."""
        if self._handle is None and self.workdir and not os.environ.get("SQUALL_KEEP_PEER_DIRS"):
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        self.cleanup()


def probe_http(port: int, tls_context: ssl.SSLContext | None = None, timeout: float = 2.0,
               path: str = "/") -> int | None:
    """The status of one GET (Connection: close), or None if there was no answer."""
    try:
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return None
    try:
        s = tls_context.wrap_socket(raw, server_hostname="127.0.0.1") if tls_context else raw
        s.settimeout(timeout)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while b"\r\n" not in data and len(data) < 4096:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        parts = data.split(b" ", 2)
        return int(parts[1]) if len(parts) >= 2 and data.startswith(b"HTTP/1.") else None
    except (OSError, ValueError):
        return None
    finally:
        raw.close()


def insecure_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Certs:
    """A CA and a server certificate for 127.0.0.1, made at run time (make_certs.sh)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="squall-reliability-certs-")
        r = subprocess.run(["sh", MAKE_CERTS, self.dir], capture_output=True, timeout=60)
        if r.returncode != 0:
            raise ScenarioError(f"make_certs.sh failed: {r.stderr.decode(errors='replace')[-300:]}")
        self.certfile = os.path.join(self.dir, "server.pem")
        self.keyfile = os.path.join(self.dir, "server.key")
        self.cafile = os.path.join(self.dir, "ca.pem")

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def start_reference(binary: str, *, args=(), tls: Certs | None = None, timeouts=None) -> Target:
    """The contract app on 127.0.0.1, port chosen by the kernel (it prints port=N)."""
    if not os.access(binary, os.X_OK):
        raise ScenarioError(f"reference binary not found: {binary} (ninja -C build/release squall-contract-app)")
    workdir = tempfile.mkdtemp(prefix="squall-reliability-reference-")
    log_path = os.path.join(workdir, "server.log")
    cmd = [binary, "--port", "0", "--log-level", "warning"]
    for key, flag in (("idle", "--idle-timeout"), ("header", "--header-timeout"), ("body", "--body-timeout")):
        if timeouts and key in timeouts:
            cmd += [flag, str(timeouts[key])]
    if tls:
        cmd += ["--certfile", tls.certfile, "--keyfile", tls.keyfile]
    cmd += list(args)
    env = dict(os.environ)
    # The sanitizer build: reports (leaks included, at exit) go to the log, which the
    # scenarios search; the server is not aborted at the first one.
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:halt_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                                start_new_session=True, env=env)
    try:
        port = launch.read_port_line(proc, log_path, 30.0)
    except launch.LaunchError as e:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        raise ScenarioError(f"reference did not print port=N ({e}): {open(log_path, 'rb').read()[-500:]!r}")
    # Keep stdout drained (it is only the port line, but never let the child block).
    threading.Thread(target=lambda: [None for _ in iter(lambda: proc.stdout.read(4096), b"")], daemon=True).start()
    target = Target("reference", port, proc, workdir, log_path, bool(tls), timeouts=timeouts)
    ctx = insecure_context() if tls else None
    if wait_until(lambda: probe_http(port, ctx, timeout=1.0) is not None or proc.poll() is not None, 20) is None \
            or proc.poll() is not None:
        target.stop()
        target.cleanup()
        raise ScenarioError("reference did not answer")
    return target


def start_nginx(*, tls: Certs | None = None, short_timeouts: bool = False) -> Target:
    """nginx from its description (conformance/implementations/nginx.toml): static files,
    2 s timeouts with short_timeouts, else its defaults."""
    if not os.access("/usr/sbin/nginx", os.X_OK):
        raise ScenarioError("nginx not installed (/usr/sbin/nginx)")
    kw = {"timeouts": SHORT_TIMEOUTS if short_timeouts else None}
    if tls:
        kw["tls"] = launch.TLS(tls.certfile, tls.keyfile, cafile=tls.cafile)
    try:
        srv = launch.start_server(registry.load("nginx"), **kw)
    except Exception as e:
        raise ScenarioError(f"nginx did not start: {e}")
    log_path = srv.log_path or os.path.join(srv.workdir or "/nonexistent", "error.log")
    error_log = os.path.join(srv.workdir or "", "error.log")
    if os.path.exists(error_log):
        log_path = error_log
    return Target("nginx", srv.port, srv.proc, srv.workdir, log_path, bool(tls), handle=srv,
                  timeouts=dict(getattr(srv, "timeouts", {}) or {}))


# ---- misbehaving clients --------------------------------------------------------------------

def connect(port: int, rcvbuf: int | None = None, timeout: float = 5.0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


def reset(s: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0)."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


def read_response(s: socket.socket, timeout: float = 5.0, limit: int = 1 << 26) -> tuple[int | None, bytes, bool]:
    """Reads one response (Content-Length or until close) -> (status, body, closed)."""
    s.settimeout(timeout)
    data = b""
    closed = False
    try:
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            data += chunk
        if b"\r\n\r\n" not in data:
            status = None
            if data.startswith(b"HTTP/1.") and len(data.split(b" ")) > 1:
                try:
                    status = int(data.split(b" ")[1])
                except ValueError:
                    pass
            return status, b"", True
        head, body = data.split(b"\r\n\r\n", 1)
        status = int(head.split(b" ")[1])
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"connection" and b"close" in value.lower():
                closed = True  # the server closes after this response (keepalive_requests, ...)
        while (length is None or len(body) < length) and len(body) < limit:
            chunk = s.recv(1 << 20)
            if not chunk:
                closed = True
                break
            body += chunk
        return status, body, closed
    except (OSError, ValueError):
        return None, b"", True


def peer_closed(s: socket.socket) -> bool:
    """True if the peer closed (EOF or reset); reads and drops what is pending. Never waits."""
    import select
    try:
        while select.select([s], [], [], 0)[0]:
            if not s.recv(1 << 20):
                return True
        return False
    except OSError:
        return True
