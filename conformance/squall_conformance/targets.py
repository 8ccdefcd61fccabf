"""The implementations under test, and how each layer reaches them.

A Target is one implementation: its server (contract §1, started through peers.py or given
with --url), its loop probe command (§3), its stream probes (§2, started on first use, one
per set of extra options such as --max-buffer-size) and its client adapter command (§4).
An implementation without a layer gets "n/a" for every case of that layer.
With tls=True the server is started serving HTTPS with the test certificate (tls.certs()).
Everything binds 127.0.0.1 and is stopped by PID (peers.Server.stop).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading

from . import core, tls as tls_

HERE = os.path.dirname(os.path.abspath(__file__))
CONFORMANCE = os.path.dirname(HERE)
REPO = os.path.dirname(CONFORMANCE)
if os.path.join(CONFORMANCE, "peers") not in sys.path:
    sys.path.insert(0, os.path.join(CONFORMANCE, "peers"))
import peers  # noqa: E402  conformance/peers/peers.py

PYTHON = peers.PYTHON  # Debian's, with python3-tornado and python3-aiohttp
PROBES = os.path.join(CONFORMANCE, "probes")
ADAPTERS = os.path.join(CONFORMANCE, "adapters")
DEFAULT_REFERENCE_DIR = os.path.dirname(peers.DEFAULT_REFERENCE_BIN)

# Which layers each named implementation has (server apps are started by peers.py).
IMPL_LAYERS = {
    "reference": ("server", "loop", "stream", "client"),
    "tornado": ("server", "loop", "stream", "client"),
    "aiohttp": ("server", "client"),
    "nginx": ("server",),
    "h2o": ("server",),
    "curl": ("client",),
}
IMPLEMENTATIONS = tuple(IMPL_LAYERS)
WHAT = {"server": "server app (contract §1)", "loop": "loop probe (contract §3)",
        "stream": "stream probe (contract §2)", "client": "client adapter (contract §4)"}

_log_lock = threading.Lock()


def log(msg):
    with _log_lock:
        sys.stderr.write(msg + "\n")
        sys.stderr.flush()


def layer_commands(impl, reference_dir):
    """layer -> command line (without the per-call arguments) for the probe/adapter layers."""
    if impl == "reference":
        return {"loop": [os.path.join(reference_dir, "squall-loop-probe")],
                "stream": [os.path.join(reference_dir, "squall-stream-probe")],
                "client": [os.path.join(reference_dir, "squall-fetch")]}
    if impl == "tornado":
        return {"loop": [PYTHON, os.path.join(PROBES, "tornado_loop_probe.py")],
                "stream": [PYTHON, os.path.join(PROBES, "tornado_stream_probe.py")],
                "client": [PYTHON, os.path.join(ADAPTERS, "tornado_fetch.py")]}
    if impl in ("aiohttp", "curl"):
        return {"client": [PYTHON, os.path.join(ADAPTERS, f"{impl}_fetch.py")]}
    return {}


def start_probe(name, cmd):
    """Start a stream probe (`cmd --port 0`, prints port=N) as a peers.Server."""
    workdir = tempfile.mkdtemp(prefix=f"squall-probe-{name}-")
    log_path = os.path.join(workdir, "probe.log")
    with open(log_path, "ab") as errlog:
        proc = subprocess.Popen(cmd + ["--port", "0"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=errlog, start_new_session=True)
    srv = peers.Server(name, "127.0.0.1", 0, proc=proc, workdir=workdir, log_path=log_path)
    try:
        srv.port = peers._read_port_line(proc, log_path, 15.0)
    except Exception as e:
        srv.stop()
        raise core.DriverError(f"{name} stream probe did not start ({' '.join(cmd)}): {e}")
    return srv


class Target:
    """One implementation under test: a server (normal and, lazily, catch-all mode) and the
    probes and adapter of the other layers."""

    def __init__(self, name, impl=None, url=None, catch_all_url=None, reference_bin=None, reference_dir=None,
                 tls=False):
        self.name, self.impl, self.url, self.catch_all_url = name, impl, url, catch_all_url
        self.tls = tls
        self.reference_bin = reference_bin
        self.layers = IMPL_LAYERS[impl] if impl else ("server",)
        self.commands = layer_commands(impl, reference_dir or DEFAULT_REFERENCE_DIR)
        self.servers = {}
        self.start_error = {}
        self.probes = {}      # tuple of extra probe options -> peers.Server
        self.help = {}        # layer -> the --help text of its command
        self.lock = threading.Lock()

    # ---- which layers ----

    def has_layer(self, layer):
        return layer in self.layers

    def lacks(self, layer):
        """The n/a reason for a layer this target does not have."""
        if self.url:
            return f"{self.name} is a server given by URL: it has the server layer only"
        return f"{self.name} has no {WHAT[layer]}"

    def command(self, layer):
        """The loop/stream/client command; a missing binary is a driver error."""
        cmd = self.commands.get(layer)
        if not cmd:
            raise core.DriverError(self.lacks(layer))
        exe = cmd[1] if cmd[0] == PYTHON else cmd[0]
        if not os.path.exists(exe):
            raise core.DriverError(f"{exe} not found (build the reference: ci/build.sh release)")
        return list(cmd)

    def supports(self, layer, option):
        """Whether the layer's command lists `option` in its --help."""
        if layer not in self.help:
            try:
                p = subprocess.run(self.command(layer) + ["--help"], capture_output=True, timeout=10)
                self.help[layer] = (p.stdout + p.stderr).decode("utf-8", "replace")
            except (subprocess.TimeoutExpired, OSError, core.DriverError):
                self.help[layer] = ""
        return option in self.help[layer]

    # ---- server layer ----

    def server(self, catch_all):
        if catch_all in self.servers:
            return self.servers[catch_all]
        if catch_all in self.start_error:
            raise core.DriverError(self.start_error[catch_all])
        try:
            if self.url:
                u = self.catch_all_url if catch_all else self.url
                if not u:
                    return None
                srv = peers.attach(u, impl=self.name, catch_all=catch_all)
            else:
                certs = tls_.certs() if self.tls else None
                srv = peers.start(self.impl, catch_all=catch_all, reference_bin=self.reference_bin,
                                  tls=peers.TLS(*certs.pair("server"), cafile=certs.ca) if certs else None)
        except Exception as e:
            self.start_error[catch_all] = f"could not start {self.name}: {e}"
            raise core.DriverError(self.start_error[catch_all])
        self.servers[catch_all] = srv
        return srv

    def restart(self, catch_all):
        srv = self.servers.pop(catch_all, None)
        if srv is not None:
            srv.stop()

    # ---- stream layer ----

    def stream_address(self, *options):
        """(host, port) of the stream probe started with these extra options (e.g.
        "--max-buffer-size", "1024"): started on first use, again if it died."""
        with self.lock:
            srv = self.probes.get(options)
            if srv is None or not srv.alive():
                srv = self.probes[options] = start_probe(self.name, self.command("stream") + list(options))
            return srv.host, srv.port

    def dead_probes(self):
        """Descriptions of the stream probes that died since they started (then forgotten)."""
        dead = []
        with self.lock:
            for options, srv in list(self.probes.items()):
                if not srv.alive():
                    rc = srv.proc.returncode
                    dead.append(f"stream probe{' ' + ' '.join(options) if options else ''} (exit status {rc})")
                    srv.stop()
                    del self.probes[options]
        return dead

    def stop(self):
        for srv in self.servers.values():
            srv.stop()
        self.servers.clear()
        with self.lock:
            for options, srv in self.probes.items():
                rc = srv.stop()
                if rc not in (0, None):
                    log(f"{self.name}: stream probe {' '.join(options)} exited with status {rc} on SIGTERM")
            self.probes.clear()
