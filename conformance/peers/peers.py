"""Start, probe and stop the implementations of the server contract (contracts.md §1).

Used by the conformance driver (conformance/run.py) and importable by the load harness:

    import sys; sys.path.insert(0, "<repo>/conformance/peers")   # or: from conformance.peers import peers
    import peers
    with peers.start("tornado") as srv:          # reference | tornado | aiohttp | nginx | h2o
        print(srv.url, srv.host, srv.port)
    tls = peers.TLS("server.pem", "server.key", cafile="ca.pem")
    with peers.start("nginx", tls=tls) as srv:   # HTTPS with that certificate: srv.url is https://...
        ...
    srv = peers.attach("http://127.0.0.1:8080")  # a server the user started (never stopped by us)

Every server binds 127.0.0.1 on a free port; start() waits until it answers an HTTP
request and stop() ends exactly the process it started (SIGTERM by PID, then SIGKILL
after a grace period) -- never by name.
"""
from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PYTHON = "/usr/bin/python3"
DEFAULT_REFERENCE_BIN = os.path.join(REPO, "build", "release", "reference", "squall-contract-app")
IMPLEMENTATIONS = ("reference", "tornado", "aiohttp", "nginx", "h2o")

# What a dynamic implementation of the whole contract offers.
ALL = "all"
# Static peers: the parts of the contract that a config file can serve.
STATIC_FEATURES = frozenset({
    "root-get", "plaintext", "json", "bytes", "gzip", "status", "httperror", "redirect", "404",
    "catch-all",
})
STATIC_BYTES = (0, 1, 16, 100, 1000, 4096, 65536, 1048576)
STATIC_STATUSES = (200, 201, 202, 204, 301, 304, 400, 401, 403, 404, 409, 410, 418, 429, 500, 502, 503)
STATIC_REDIRECT_MAX = 5
PATTERN = b"0123456789abcdef"
GZIP_BODY = b"Squall compresses this line when the client accepts gzip.\n" * 200

# Short timeouts (seconds) handed to implementations that take them as flags/config.
SHORT_TIMEOUTS = {"idle": 2.0, "header": 2.0, "body": 2.0}


@dataclass(frozen=True)
class TLS:
    """Serve HTTPS: the certificate (then its chain) and key files, and the CA file that
    validates the certificate (None: the readiness probe and the driver do not validate)."""
    certfile: str
    keyfile: str
    cafile: str | None = None

    def client_context(self) -> ssl.SSLContext:
        """A client context for talking to a server presenting this certificate."""
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
    """One running (or user-started) implementation of the server contract."""

    impl: str
    host: str
    port: int
    features: object = ALL                      # ALL or a frozenset of feature names
    catch_all: bool = False
    timeouts: dict = field(default_factory=dict)  # idle/header/body -> seconds we configured
    proc: subprocess.Popen | None = None
    workdir: str | None = None
    log_path: str | None = None
    tls: TLS | None = None                      # set when it serves HTTPS

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def has(self, feature: str) -> bool:
        return self.features == ALL or feature in self.features

    def alive(self) -> bool:
        return self.proc is None or self.proc.poll() is None

    def log_tail(self, n: int = 20) -> str:
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM the process we started (by PID), SIGKILL after `grace` seconds."""
        rc = None
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    os.kill(self.proc.pid, signal.SIGTERM)
                    rc = self.proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    os.kill(self.proc.pid, signal.SIGKILL)
                    rc = self.proc.wait()
                except ProcessLookupError:
                    pass
            else:
                rc = self.proc.returncode
            self.proc = None
        if self.workdir and not os.environ.get("SQUALL_KEEP_PEER_DIRS"):
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        return rc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class PeerError(RuntimeError):
    pass


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
            raise PeerError(f"process exited with status {proc.returncode} before answering")
        try:
            raw = socket.create_connection((host, port), timeout=1.0)
            with context.wrap_socket(raw, server_hostname=host) if context else raw as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1."):
                    return
        except OSError as e:   # ssl.SSLError included
            last = e
        time.sleep(0.05)
    raise PeerError(f"{host}:{port} did not answer {'over TLS ' if tls else ''}within {timeout}s ({last})")


def _read_port_line(proc, log_path, timeout: float) -> int:
    """Read `port=N` from the child's stdout (other lines are copied to the log)."""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < deadline:
        if not sel.select(timeout=0.1):
            if proc.poll() is not None:
                break
            continue
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.startswith(b"port="):
                sel.close()
                return int(line[5:])
            with open(log_path, "ab") as f:
                f.write(line + b"\n")
    sel.close()
    raise PeerError(f"no port=N line within {timeout}s (exit status {proc.poll()})")


def _spawn(cmd, workdir, stdout_port=True, port=None, env=None, tls=None):
    log_path = os.path.join(workdir, "server.log")
    log = open(log_path, "ab")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE if stdout_port else log, stderr=log,
                            cwd=workdir, env=env, start_new_session=True)
    log.close()
    try:
        if stdout_port:
            port = _read_port_line(proc, log_path, 15.0)
            # Keep draining stdout so the child never blocks on a full pipe.
            import threading
            threading.Thread(target=_drain, args=(proc.stdout, log_path), daemon=True).start()
        if tls:
            wait_http("127.0.0.1", port, proc=proc, tls=tls)
        else:  # (the load harness swaps wait_http for one of its own with this signature)
            wait_http("127.0.0.1", port, proc=proc)
    except Exception:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        raise
    return proc, port, log_path


def _drain(stream, log_path):
    with open(log_path, "ab") as f:
        for line in iter(stream.readline, b""):
            f.write(line)
            f.flush()


def _help_text(binary):
    try:
        return subprocess.run([binary, "--help"], capture_output=True, timeout=5).stdout.decode("utf-8", "replace")
    except Exception:
        return ""


def _static_tree(root):
    os.makedirs(os.path.join(root, "bytes"), exist_ok=True)
    for n in STATIC_BYTES:
        with open(os.path.join(root, "bytes", str(n)), "wb") as f:
            f.write((PATTERN * (n // 16 + 1))[:n])
    with open(os.path.join(root, "gzip"), "wb") as f:
        f.write(GZIP_BODY)
    with open(os.path.join(root, "gzip.txt"), "wb") as f:
        f.write(GZIP_BODY)


def _render(template_name, **values):
    with open(os.path.join(HERE, template_name)) as f:
        return f.read().format(**values)


def start(impl: str, *, catch_all: bool = False, reference_bin: str | None = None,
          short_timeouts: bool = True, extra_args=(), tls: TLS | None = None) -> Server:
    """Start `impl` on 127.0.0.1 with a free port and wait until it answers; with `tls`,
    serving HTTPS (TLS 1.2 and 1.3) with that certificate."""
    workdir = tempfile.mkdtemp(prefix=f"squall-peer-{impl}-")
    os.chmod(workdir, 0o755)  # nginx/h2o workers may run as another user when started by root
    t = dict(SHORT_TIMEOUTS) if short_timeouts else {}
    cert_args = ["--certfile", os.path.abspath(tls.certfile), "--keyfile", os.path.abspath(tls.keyfile)] if tls else []
    try:
        if impl == "reference":
            binary = os.path.abspath(reference_bin or os.environ.get("SQUALL_REFERENCE_BIN") or DEFAULT_REFERENCE_BIN)
            if not os.access(binary, os.X_OK):
                raise PeerError(f"reference binary not found: {binary} (build: ninja -C build/release squall-contract-app)")
            cmd = [binary, "--port", "0", "--log-level", "warning"]
            if catch_all:
                cmd.append("--catch-all")
            helptext = _help_text(binary)
            given = {}
            for key, flag in (("idle", "--idle-timeout"), ("header", "--header-timeout"), ("body", "--body-timeout")):
                if flag in helptext and key in t:
                    cmd += [flag, str(t[key])]
                    given[key] = t[key]
            t = given
            if tls and "--certfile" not in helptext:
                raise PeerError(f"{binary} has no --certfile (TLS): rebuild it")
            cmd += cert_args + list(extra_args)
            proc, port, log = _spawn(cmd, workdir, tls=tls)
            return Server(impl, "127.0.0.1", port, ALL, catch_all, t, proc, workdir, log, tls)
        if impl == "tornado":
            cmd = [PYTHON, os.path.join(HERE, "tornado_app.py"), "--port", "0"]
            if catch_all:
                cmd.append("--catch-all")
            if t:
                cmd += ["--idle-timeout", str(t["idle"]), "--body-timeout", str(t["body"])]
            cmd += cert_args + list(extra_args)
            proc, port, log = _spawn(cmd, workdir, tls=tls)
            return Server(impl, "127.0.0.1", port, ALL, catch_all, t, proc, workdir, log, tls)
        if impl == "aiohttp":
            cmd = [PYTHON, os.path.join(HERE, "aiohttp_app.py"), "--port", "0"]
            if catch_all:
                cmd.append("--catch-all")
            if t:
                cmd += ["--idle-timeout", str(t["idle"])]
                t = {"idle": t["idle"]}
            cmd += cert_args + list(extra_args)
            proc, port, log = _spawn(cmd, workdir, tls=tls)
            return Server(impl, "127.0.0.1", port, ALL, catch_all, t, proc, workdir, log, tls)
        if impl in ("nginx", "h2o"):
            root = os.path.join(workdir, "root")
            _static_tree(root)
            port = free_port()
            secs = {k: int(v) for k, v in (t or {"idle": 75, "header": 60, "body": 60}).items()}
            if impl == "nginx":
                status_locs = "\n".join(f"        location = /{kind}/{c} {{ return {c}; }}"
                                        for kind in ("status", "httperror") for c in STATIC_STATUSES)
                redirect_locs = "        location = /redirect/0 { default_type text/plain; return 200 \"OK\"; }\n" + "\n".join(
                    f"        location = /redirect/{n} {{ return 302 /redirect/{n - 1}; }}"
                    for n in range(1, STATIC_REDIRECT_MAX + 1))
                if catch_all:
                    redirect_locs += '\n        location / { default_type text/plain; return 200 "OK"; }'
                ssl_directives = ("\n".join([
                    f"        ssl_certificate {os.path.abspath(tls.certfile)};",
                    f"        ssl_certificate_key {os.path.abspath(tls.keyfile)};",
                    "        ssl_protocols TLSv1.2 TLSv1.3;"]) if tls else "")
                conf = _render("nginx.conf.template", port=port, root=root, tmp=workdir,
                               idle_timeout=secs["idle"], header_timeout=secs["header"], body_timeout=secs["body"],
                               status_locations=status_locs, redirect_locations=redirect_locs,
                               listen_ssl=" ssl" if tls else "", ssl_directives=ssl_directives)
                path = os.path.join(workdir, "nginx.conf")
                with open(path, "w") as f:
                    f.write(conf)
                cmd = ["/usr/sbin/nginx", "-p", workdir, "-c", path, "-e", os.path.join(workdir, "error.log"),
                       "-g", "daemon off;"]
            else:
                listen_ssl = ("\n".join([
                    "  ssl:",
                    f"    certificate-file: {os.path.abspath(tls.certfile)}",
                    f"    key-file: {os.path.abspath(tls.keyfile)}",
                    "    minimum-version: TLSv1.2",
                    "    ocsp-update-interval: 0"]) if tls else "")  # no OCSP fetching (no network)
                conf = _render("h2o.conf.template", port=port, root=root, tmp=workdir, idle_timeout=secs["idle"],
                               listen_ssl=listen_ssl)
                if catch_all:
                    conf = conf.replace('[404, text, ["not found"]]', '[200, text, ["OK"]]')
                path = os.path.join(workdir, "h2o.conf")
                with open(path, "w") as f:
                    f.write(conf)
                cmd = ["/usr/bin/h2o", "-m", "master", "-c", path]
            features = STATIC_FEATURES if catch_all else STATIC_FEATURES - {"catch-all"}
            proc, port, log = _spawn(cmd, workdir, stdout_port=False, port=port, tls=tls)
            timeouts = {"idle": secs["idle"], "header": secs["header"], "body": secs["body"]} if impl == "nginx" and t else (
                {"idle": secs["idle"], "header": secs["idle"]} if t else {})
            return Server(impl, "127.0.0.1", port, features, catch_all, timeouts, proc, workdir, log, tls)
        raise PeerError(f"unknown implementation {impl!r} (one of {', '.join(IMPLEMENTATIONS)})")
    except Exception:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def attach(url: str, *, impl: str | None = None, catch_all: bool = False, features=ALL,
           cafile: str | None = None) -> Server:
    """A server the user started: we talk to it but never stop it. An https:// URL is
    spoken to over TLS, validated against cafile if given (else not validated)."""
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise PeerError(f"--url must look like http://HOST:PORT or https://HOST:PORT, not {url!r}")
    port = u.port or (443 if u.scheme == "https" else 80)
    tls = TLS("", "", cafile) if u.scheme == "https" else None
    return Server(impl or f"{u.hostname}:{port}", u.hostname, port, features, catch_all, tls=tls)


if __name__ == "__main__":
    import argparse
    p = argparse.ArgumentParser(description="start one implementation and print its URL until Ctrl-C")
    p.add_argument("impl", choices=IMPLEMENTATIONS)
    p.add_argument("--catch-all", action="store_true")
    p.add_argument("--reference-bin")
    p.add_argument("--certfile", help="serve HTTPS with this certificate (and --keyfile)")
    p.add_argument("--keyfile")
    p.add_argument("--cafile", help="the CA that validates --certfile (for the readiness probe)")
    a = p.parse_args()
    tls = TLS(a.certfile, a.keyfile or a.certfile, a.cafile) if a.certfile else None
    srv = start(a.impl, catch_all=a.catch_all, reference_bin=a.reference_bin, tls=tls)
    print(srv.url, flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        sys.exit(srv.stop() or 0)
