"""Start the server app of an implementation by name: a thin compatibility layer over
squall_conformance.registry and .launch. load/run.py, load/impls.py and load/client_bench.py
no longer use it; its one remaining importer is load/reliability/harness.py. New code calls
launch.start_server(registry.load(NAME_OR_PATH), ...) directly; remove this file when
nothing imports it.

    import peers
    with peers.start("tornado") as srv:     # any description name or path
        print(srv.url)
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # conformance/
from squall_conformance import launch, registry  # noqa: E402
from squall_conformance.launch import (  # noqa: E402,F401
    ALL, TLS, LaunchError as PeerError, Server, attach, client_context, free_port, server_context, wait_http)

PYTHON = registry.PYTHON
REPO = registry.REPO
DEFAULT_REFERENCE_BIN = os.path.join(registry.DEFAULT_SQUALL_BIN, "squall-contract-app")
SHORT_TIMEOUTS = {"idle": 2.0, "header": 2.0, "body": 2.0}


def start(impl: str, *, catch_all: bool = False, reference_bin: str | None = None,
          short_timeouts: bool = True, workers=None, max_connections=256, tls: TLS | None = None) -> Server:
    """Start `impl` on 127.0.0.1 with a free port and wait until it answers."""
    bin_ = reference_bin or os.environ.get("SQUALL_REFERENCE_BIN")
    return launch.start_server(registry.load(impl), catch_all=catch_all, tls=tls,
                               timeouts=SHORT_TIMEOUTS if short_timeouts else None, workers=workers,
                               max_connections=max_connections,
                               squall_bin=os.path.dirname(os.path.abspath(bin_)) if bin_ else None)
