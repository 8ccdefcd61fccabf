"""The load scenarios: which wrk script, which request, how many connections.

Each wrk scenario is a Lua script in scenarios/ that prints its results from wrk's
done() hook as one JSON line (see scenarios/common.lua). `check` is a pre-flight request
the runner sends before measuring: an implementation that does not serve the endpoint
the contract's way (a static server has no /slow, no echo) is reported "n/a" rather
than measured on 404s.

The TLS scenarios (TLS_SCENARIOS, selected by name or as the group "tls"; not part of
"all") run the same scripts over HTTPS against a second instance of each implementation
started with a certificate the harness generates at run time (see run.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

ECHO_BYTES = 4096
ECHO_BODY = (b"squall-load-body" * (ECHO_BYTES // 16 + 1))[:ECHO_BYTES]  # == post_echo.lua


@dataclass
class Scenario:
    name: str
    description: str
    script: str | None                 # wrk Lua script under scenarios/; None: own client
    method: str = "GET"
    path: str = "/plaintext"
    body: bytes | None = None
    connections: int | None = None     # fixed count (overrides --connections)
    env: dict = field(default_factory=dict)
    expect_body: bytes | None = None   # pre-flight: the body must be exactly this
    expect_chunked: bool = False       # pre-flight: Transfer-Encoding: chunked
    min_body: int = 0                  # pre-flight: at least this many body bytes
    latency_meaningful: bool = True
    tls: bool = False                  # over HTTPS, against a TLS instance of the impl


SCENARIOS = [
    Scenario("plaintext", "GET /plaintext, keep-alive", "plaintext.lua",
             expect_body=b"Hello, World!"),
    Scenario("pipeline", "GET /plaintext, 16 pipelined per round trip", "pipeline.lua",
             expect_body=b"Hello, World!", env={"SQUALL_PIPELINE": "16"},
             # wrk records one latency sample per pipelined batch, and its percentiles
             # are not usable then: the runner reports none.
             latency_meaningful=False),
    Scenario("json", "GET /json, keep-alive", "json.lua", path="/json",
             expect_body=b'{"message":"Hello, World!"}'),
    Scenario("post_echo", "POST / with a 4 KiB body, echoed", "post_echo.lua", method="POST",
             path="/", body=ECHO_BODY, expect_body=ECHO_BODY),
    Scenario("stream", "GET /stream/10, chunked, flushed per chunk", "stream.lua",
             path="/stream/10", expect_chunked=True, env={"SQUALL_STREAM_CHUNKS": "10"}),
    Scenario("download", "GET /bytes/1048576 (1 MiB)", "download.lua", path="/bytes/1048576",
             min_body=1048576, env={"SQUALL_DOWNLOAD_BYTES": "1048576"}),
    Scenario("connection_close", "GET /plaintext, Connection: close (a connection per request)",
             "connection_close.lua", expect_body=b"Hello, World!"),
    Scenario("many_connections", "GET /plaintext over 1,000 keep-alive connections",
             "many_connections.lua", connections=1000, expect_body=b"Hello, World!"),
    Scenario("slow", "GET /slow/50 under concurrency (async wait)", "slow.lua", path="/slow/50",
             env={"SQUALL_SLOW_MS": "50"}),
    Scenario("memory", "N idle keep-alive connections: server RSS per connection", None,
             connections=10000, expect_body=b"Hello, World!"),
]

TLS_SCENARIOS = [
    Scenario("tls_plaintext", "GET /plaintext over HTTPS (TLS 1.3, ECDSA P-256), keep-alive",
             "plaintext.lua", expect_body=b"Hello, World!", tls=True),
    Scenario("tls_connection_close", "GET /plaintext over HTTPS, Connection: close (a handshake per request)",
             "connection_close.lua", expect_body=b"Hello, World!", tls=True),
]

BY_NAME = {s.name: s for s in SCENARIOS + TLS_SCENARIOS}
