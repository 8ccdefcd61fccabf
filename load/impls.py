"""Implementations for load runs: descriptions read by the conformance registry and started
by its launcher, with load-sized settings. Nothing here knows an implementation by name.

    desc = impls.resolve("nginx")        # a built-in description, load/implementations/NAME.toml,
                                         # or a path to a description file
    why = impls.unserved(desc, scenario) # None, or why the scenario is n/a for it
    srv = impls.start(desc, workers=2, squall_bin=None, tls=None)   # a launch.Server
    srv.stop()

A load run differs from a conformance run only in what it asks the launcher for: no short
timeouts (the description's defaults: the memory scenario holds idle connections for many
seconds), room for MAX_CONNECTIONS connections, and the number of workers -- asked only of a
description that has `[server] workers` (the others run as one process, and the report says
so). TLS instances present conformance's test certificates (squall_conformance/tls.py) and
are started only for descriptions with `[server] tls`.

What a description is measured on is data too: its optional `[load]` table (`scenarios`,
`reason`, `skip`; conformance/implementations/README.md) and its `[server] endpoints`.
`bare` (load/implementations/bare.toml), the canned-reply floor, is restricted that way.
"""
from __future__ import annotations

import os
import tempfile

from squall_conformance import launch, registry
from squall_conformance.launch import LaunchError  # noqa: F401  (what start() raises)
from squall_conformance.registry import DescriptionError  # noqa: F401

from .scenarios import BY_NAME

HERE = os.path.dirname(os.path.abspath(__file__))

LOAD_IMPLEMENTATIONS = os.path.join(HERE, "implementations")
MAX_CONNECTIONS = 20000

# The contract §1 endpoint (registry.ENDPOINTS) each scenario requests.
SCENARIO_ENDPOINTS = {
    "plaintext": "plaintext", "pipeline": "plaintext", "json": "json", "post_echo": "echo",
    "stream": "stream", "download": "bytes", "connection_close": "plaintext",
    "many_connections": "plaintext", "slow": "slow", "memory": "plaintext",
    "tls_plaintext": "plaintext", "tls_connection_close": "plaintext",
}


def builtin_names() -> list[str]:
    """Names --impl accepts without a path: conformance's descriptions, then load's own."""
    own = sorted(f[:-5] for f in os.listdir(LOAD_IMPLEMENTATIONS) if f.endswith(".toml"))
    return registry.builtin_names() + [n for n in own if n not in registry.builtin_names()]


def path_of(spec: str) -> str:
    """The description file --impl SPEC names: a path as given; a name is looked up in
    conformance/implementations/, then in load/implementations/."""
    if "/" in spec or spec.endswith(".toml"):
        return spec
    if os.path.isfile(registry.resolve(spec)):
        return spec
    own = os.path.join(LOAD_IMPLEMENTATIONS, spec + ".toml")
    if os.path.isfile(own):
        return own
    raise DescriptionError(f"{spec}: no such description (a file path, or one of: {', '.join(builtin_names())})")


def resolve(spec: str):
    """Read and check a description for load runs: it needs a server app, and the scenario
    names in its [load] table must be the load suite's."""
    desc = registry.load(path_of(spec))
    if desc.server is None:
        raise DescriptionError(f"{desc.source}: describes no [server]: the load suite measures a server app")
    check_load_table(desc)
    return desc


def check_load_table(desc) -> None:
    ld = desc.load
    if ld is None:
        return
    known = ", ".join(BY_NAME)
    for s in ld.scenarios or ():
        if s not in BY_NAME:
            raise DescriptionError(f"{desc.path}: load.scenarios: unknown scenario {s!r} (known: {known})")
    for s in ld.skip:
        if s not in BY_NAME:
            raise DescriptionError(f"{desc.path}: load.skip.{s}: unknown scenario {s!r} (known: {known})")


def unserved(desc, sc) -> str | None:
    """Why `desc` is not measured on scenario `sc` (it is then n/a), from the description
    alone; None if it is to be measured (the runner's pre-flight request may still find the
    endpoint missing)."""
    ld = desc.load
    if ld is not None:
        if sc.name in ld.skip:
            return f"{ld.skip[sc.name]} ([load] skip in {desc.source})"
        if ld.scenarios is not None and sc.name not in ld.scenarios:
            why = ld.reason or "not among the scenarios it is measured on"
            return f"{why} ([load] scenarios in {desc.source})"
    spec = desc.server
    endpoint = SCENARIO_ENDPOINTS[sc.name]
    if isinstance(spec.endpoints, frozenset) and endpoint not in spec.endpoints:
        return (f"does not serve the {endpoint} endpoint ({sc.method} {sc.path}): "
                f"not in [server] endpoints of {desc.source}")
    if sc.tls and spec.command and spec.tls is None:
        return f"no TLS: [server] tls is absent from {desc.source}"
    return None


def workers_used(desc, workers: int) -> int:
    """The number of workers a load run starts `desc` with: `workers` if its description
    says how to set it ([server] workers), else one process."""
    return workers if desc.server.workers is not None else 1


def start(desc, *, workers: int = 1, squall_bin: str | None = None, tls: launch.TLS | None = None):
    """Start the server app of `desc` for load: default timeouts, MAX_CONNECTIONS, and
    `workers` if the description can take it. Returns the launch.Server (stop() it)."""
    kw = {"workers": workers} if desc.server.workers is not None else {}
    return launch.start_server(desc, timeouts=None, max_connections=MAX_CONNECTIONS, squall_bin=squall_bin,
                               tls=tls, **kw)


def test_tls() -> launch.TLS:
    """Conformance's test certificates (made once per process, removed at exit): the server
    certificate for 127.0.0.1/localhost, its key, and the CA that validates it."""
    from squall_conformance import tls
    certs = tls.certs()
    cert, key = certs.pair("server")
    return launch.TLS(cert, key, certs.ca)


def version(desc, squall_bin: str | None = None) -> str:
    """What the description's version command prints (registry.version), or why there is none."""
    if desc.server.command == ():
        return "unknown (a --url server: no version command)"
    v = registry.version(desc, launch.values(desc, tempfile.gettempdir(), squall_bin))
    return v or f"unknown (no version command in {desc.source})"
