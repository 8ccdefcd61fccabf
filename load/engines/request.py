#!/usr/bin/python3
"""A load scenario as one HTTP request, from the one definition: load/scenarios.py
(method, path, body, connections, the wrk environment such as SQUALL_PIPELINE) plus the
header lines of its wrk script (`wrk.headers["Name"] = "value"` in scenarios/*.lua, the
only part of a request the scenario table leaves to the script). squall-load and the
Locust engine send exactly this; wrk runs the script itself.

    /usr/bin/python3 -m squall_load.engines.request plaintext     # what squall-load --scenario reads
    method GET
    path /plaintext
    ...

Output lines: `method M`, `path P`, `header Name: value` (repeated), `body-hex HEX` (when
there is a body), `pipeline N` (requests per round trip), `close 1|0` (a connection per
request: its script sends Connection: close), `connections N` (a fixed count).
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field

if __name__ == "__main__" and not __package__:
    # Run by path (squall-load --scenario does: reference/apps/squall_load.cc): the same as
    # python3 -m squall_load.engines.request from the folder holding the package squall_load
    # (the clone's root, through its link, or site-packages).
    os.chdir(os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))))
    os.execv(sys.executable, [sys.executable, "-m", "squall_load.engines.request", *sys.argv[1:]])

from ..scenarios import BY_NAME, Scenario

LOAD = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPTS = os.path.join(LOAD, "scenarios")
_HEADER = re.compile(r'^\s*wrk\.headers\[\s*"([^"]+)"\s*\]\s*=\s*"([^"]*)"\s*$', re.MULTILINE)


@dataclass
class Request:
    scenario: str
    method: str
    path: str
    headers: list = field(default_factory=list)   # [(name, value)]
    body: bytes | None = None
    pipeline: int = 1          # requests written per round trip
    close: bool = False        # Connection: close, a connection per request
    connections: int | None = None


def script_headers(sc: Scenario) -> list:
    """The literal header assignments of the scenario's wrk script, in order."""
    if not sc.script:
        return []
    with open(os.path.join(SCRIPTS, sc.script)) as f:
        return _HEADER.findall(f.read())


def of(sc: Scenario) -> Request:
    headers = script_headers(sc)
    close = any(n.lower() == "connection" and v.lower() == "close" for n, v in headers)
    return Request(sc.name, sc.method, sc.path, headers, sc.body,
                   int(sc.env.get("SQUALL_PIPELINE", "1")), close, sc.connections)


def lines(req: Request) -> list[str]:
    out = [f"method {req.method}", f"path {req.path}"]
    out += [f"header {n}: {v}" for n, v in req.headers]
    if req.body:
        out.append(f"body-hex {req.body.hex()}")
    out += [f"pipeline {req.pipeline}", f"close {int(req.close)}"]
    if req.connections:
        out.append(f"connections {req.connections}")
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in BY_NAME or BY_NAME[argv[0]].script is None:
        names = ", ".join(n for n, s in BY_NAME.items() if s.script)
        print(f"usage: request.py SCENARIO (one of {names})", file=sys.stderr)
        return 2
    print("\n".join(lines(of(BY_NAME[argv[0]]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
