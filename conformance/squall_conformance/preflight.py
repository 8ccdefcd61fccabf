"""The pre-flight: which endpoints of contract §1 a server really serves.

For a server given by URL, or a description with `endpoints = "probe"`, one request per
endpoint finds out; an endpoint whose answer is not exactly the contract's is missing, and
the cases that need it are n/a. Endpoints that the contract's own answer cannot tell apart
from a 404 everywhere (`404`) or that need another first (`405` needs `plaintext`) are
checked after their prerequisite.
"""
from __future__ import annotations

import hashlib
import json

from . import core, lint

PATTERN16 = b"0123456789abcdef"


def _json(r):
    try:
        return json.loads(r.body)
    except ValueError:
        return None


def _get(srv, target, *headers, method="GET", body=b"", version="HTTP/1.1", problems=None):
    ex = core.exchange(srv, core.req(method, target, *headers, "Connection: close", body=body, version=version),
                       methods=(method,), timeout=3.0, linger=0.0)
    if problems is not None:
        problems += [f"{method} {target}: {f.text()}" for f in lint.lint(ex) if f.level == "MUST"]
    return ex.first


# endpoint -> (request arguments, test of the response)
CHECKS = {
    "root-get": (("/",), lambda r: r.status == 200 and r.body == b"OK"),
    "echo": (("/",), {"method": "POST", "body": b"squall-preflight"},
             lambda r: r.status == 200 and r.body == b"squall-preflight"),
    "echo-headers": (("/echo", "X-Squall-Preflight: yes"),
                     lambda r: r.status == 200 and b"X-Squall-Preflight: yes" in r.body),
    "cookie": (("/cookie", "Cookie: squall=1"), lambda r: r.status == 200 and b"squall=1" in r.body),
    "plaintext": (("/plaintext",), lambda r: r.status == 200 and r.body == b"Hello, World!"),
    "json": (("/json",), lambda r: r.status == 200 and _json(r) == {"message": "Hello, World!"}),
    "args": (("/args?squall=1",), lambda r: r.status == 200 and _json(r) == {"squall": ["1"]}),
    "form": (("/form", "Content-Type: application/x-www-form-urlencoded"), {"method": "POST", "body": b"squall=1"},
             lambda r: r.status == 200 and isinstance(_json(r), dict) and "squall" in _json(r)),
    "path": (("/path/abc/12",), lambda r: r.status == 200 and _json(r) == ["abc", "12"]),
    "named": (("/named/abc/def",), lambda r: r.status == 200 and _json(r) == {"first": "abc", "second": "def"}),
    "status": (("/status/201",), lambda r: r.status == 201),
    "bytes": (("/bytes/16",), lambda r: r.status == 200 and r.body == PATTERN16),
    "stream": (("/stream/2",), lambda r: r.status == 200 and r.complete),
    "gzip": (("/gzip", "Accept-Encoding: gzip"),
             lambda r: r.status == 200 and (r.header("content-encoding") or "").lower() == "gzip"),
    "redirect": (("/redirect/1",), lambda r: r.status == 302 and (r.header("location") or "").endswith("/redirect/0")),
    "slow": (("/slow/1",), lambda r: r.status == 200),
    "error": (("/error",), lambda r: r.status == 500),
    "httperror": (("/httperror/418",), lambda r: r.status == 418),
    "upload": (("/upload",), {"method": "PUT", "body": b"squall"},
               lambda r: r.status == 200 and hashlib.sha256(b"squall").hexdigest().encode() in r.body),
    "asterisk": (("*",), {"method": "OPTIONS"}, lambda r: r.status == 200),
    "404": (("/squall-preflight-no-such-path",), lambda r: r.status == 404),
}
# Checked only when the first endpoint is served (else the answer proves nothing).
AFTER = {"405": ("plaintext", ("/plaintext",), {"method": "DELETE"}, lambda r: r.status == 405)}


def _check(srv, spec, problems):
    args, kw, test = (spec[0], spec[1], spec[2]) if len(spec) == 3 else (spec[0], {}, spec[1])
    try:
        r = _get(srv, *args, problems=problems, **kw)
    except OSError:
        return False
    return r is not None and test(r)


def endpoints(srv):
    """(the endpoint names srv answers as the contract says, the framing errors the response
    linter found in its answers: an endpoint answered with broken framing is not found, and
    the report says why)."""
    problems = []
    found = {name for name, spec in CHECKS.items() if _check(srv, spec, problems)}
    for name, (needs, *spec) in AFTER.items():
        if needs in found and _check(srv, tuple(spec), problems):
            found.add(name)
    return frozenset(found), problems
