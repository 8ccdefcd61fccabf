"""The implementations under test, and how each layer reaches them.

A Target is one implementation, read from its description (registry.py): its server
(contract §1, started by launch.py or given by URL), its loop probe command (§3), its stream
probes (§2, started on first use, one per set of extra options such as --max-buffer-size)
and its client adapter command (§4). An implementation without a layer gets "n/a" for every
case of that layer. With tls=True the server serves HTTPS with the test certificate.
"""
from __future__ import annotations

import sys
import threading

from . import core, launch, preflight, registry, tls as tls_

# Timeouts (seconds) given to servers whose description says how to set them: short, so
# that the timeout cases finish quickly.
SHORT_TIMEOUTS = {"idle": 2.0, "header": 2.0, "body": 2.0}
WHAT = {"server": "server app (contract §1)", "loop": "loop probe (contract §3)",
        "stream": "stream probe (contract §2)", "client": "client adapter (contract §4)"}
HELP_LIMIT = 256 << 10

_log_lock = threading.Lock()


def log(msg):
    with _log_lock:
        sys.stderr.write(msg + "\n")
        sys.stderr.flush()


class Target:
    """One implementation under test: a server (normal and, lazily, catch-all mode) and the
    probes and adapter of the other layers."""

    def __init__(self, desc: registry.Description, tls=False, squall_bin=None):
        self.desc = desc
        self.name = desc.name
        self.tls = tls
        self.squall_bin = squall_bin
        self.servers = {}
        self.start_error = {}
        self.probes = {}      # tuple of extra probe options -> launch.Server
        self.help = {}        # layer -> the --help text of its command
        self.features = None  # endpoints found by the pre-flight (endpoints = "probe")
        self.version = ""
        self.lock = threading.Lock()

    @property
    def profiles(self):
        return self.desc.profiles

    def about(self):
        """Who was tested, for every report."""
        d = self.desc
        return {"name": d.name, "title": d.title, "version": self.version, "description": d.source,
                "profiles": list(d.profiles), "layers": list(d.layers)}

    def read_version(self):
        self.version = registry.version(self.desc, launch.values(self.desc, "/tmp", self.squall_bin))

    # ---- which layers ----

    def has_layer(self, layer):
        return self.desc.has_layer(layer)

    def lacks(self, layer):
        """The n/a reason for a layer this target does not have."""
        if self.desc.path is None:
            return f"{self.name} is a server given by URL: it has the server layer only"
        return f"{self.name} has no {WHAT[layer]} ({self.desc.source})"

    def command(self, layer):
        """The loop/stream/client command line (placeholders filled; a listening probe's
        {port} is 0, for --help)."""
        spec = getattr(self.desc, layer)
        if spec is None:
            raise core.DriverError(self.lacks(layer))
        try:
            return registry.program(self.desc, spec.command,
                                    launch.values(self.desc, "/tmp", self.squall_bin, port=0), f"{layer}.command")
        except registry.DescriptionError as e:
            raise core.DriverError(str(e))

    def supports(self, layer, option):
        """Whether the layer's command lists `option` in its --help (optional contract flags)."""
        if layer not in self.help:
            try:
                p = launch.run_bounded(self.command(layer) + ["--help"], 10.0, limit=HELP_LIMIT)
                self.help[layer] = (p.stdout + p.stderr).decode("utf-8", "replace")
            except core.DriverError:
                self.help[layer] = ""
        return option in self.help[layer]

    # ---- server layer ----

    def server(self, catch_all):
        """The running server (started on first use), or None when the mode is missing."""
        if catch_all in self.servers:
            return self.servers[catch_all]
        if catch_all in self.start_error:
            raise core.DriverError(self.start_error[catch_all])
        spec = self.desc.server
        if catch_all and spec.catch_all is None and not spec.catch_all_url:
            return None
        try:
            certs = tls_.certs() if self.tls else None
            tls = launch.TLS(*certs.pair("server"), cafile=certs.ca) if certs else None
            if spec.url is not None:
                srv = launch.attach(spec.catch_all_url if catch_all else spec.url, name=self.name, catch_all=catch_all)
                if not answers(srv):
                    raise launch.LaunchError(f"{srv.url} does not answer an HTTP request (is it running? is the URL right?)")
            else:
                srv = launch.start_server(self.desc, catch_all=catch_all, tls=tls, timeouts=SHORT_TIMEOUTS,
                                          squall_bin=self.squall_bin, features=self.features)
            if spec.endpoints == "probe":
                if self.features is None:
                    self.features, problems = preflight.endpoints(srv)
                    log(f"{self.name}: pre-flight found {len(self.features)} endpoint(s): "
                        f"{', '.join(sorted(self.features)) or 'none'}")
                    for p in problems[:5]:
                        log(f"{self.name}: pre-flight: {p}")
                srv.features = self.features
        except (launch.LaunchError, registry.DescriptionError, OSError) as e:
            self.start_error[catch_all] = f"could not start {self.name}{' (catch-all mode)' if catch_all else ''}: {e}"
            raise core.DriverError(self.start_error[catch_all])
        self.servers[catch_all] = srv
        return srv

    def can_restart(self):
        return self.desc.server is not None and self.desc.server.url is None

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
                try:
                    srv = self.probes[options] = launch.start_probe(self.desc, "stream", options, self.squall_bin)
                except (launch.LaunchError, registry.DescriptionError) as e:
                    raise core.DriverError(f"{self.name} stream probe did not start: {e}")
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


def answers(srv, timeout=3.0):
    """Does the server answer a plain request with any HTTP status?"""
    ex = core.exchange(srv, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                       timeout=timeout, linger=0.0)
    return ex.first is not None and ex.first.status > 0

