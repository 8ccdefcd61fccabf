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
"""
from __future__ import annotations

import contextlib
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "conformance", "peers"))
import peers  # noqa: E402  conformance/peers/peers.py

MAX_CONNECTIONS = 20000


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
def _load_configs(workers: int):
    """While active, peers' rendered nginx/h2o configs get load-sized limits."""
    original = peers._render

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

    peers._render = render
    try:
        yield
    finally:
        peers._render = original


def start(impl: str, workers: int = 1) -> LoadServer:
    if impl == "reference":
        srv = peers.start(impl, short_timeouts=False, extra_args=["--workers", str(workers)])
        return LoadServer(srv, workers)
    if impl in ("nginx", "h2o"):
        with _load_configs(workers):
            srv = peers.start(impl, short_timeouts=False)
        return LoadServer(srv, workers)
    srv = peers.start(impl, short_timeouts=False)
    return LoadServer(srv, 1)
