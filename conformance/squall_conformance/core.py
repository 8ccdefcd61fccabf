"""Cases, verdicts and the per-case context: the vocabulary the case modules of every layer use.

Four layers, one per contract of conformance/CONTRACTS.md: `server` (§1, raw HTTP bytes),
`stream` (§2, a stream probe), `loop` (§3, a loop probe's traces) and `client` (§4, a client
adapter against scripted raw servers). A case belongs to one area and every area to one layer.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import wire

PASS, WARN, FAIL, NA, ERROR = "pass", "warn", "fail", "n/a", "error"
VERDICTS = (PASS, WARN, FAIL, NA, ERROR)
LEVELS = ("MUST", "SHOULD", "MAY")
TORNADO = "Tornado semantics"

LAYERS = ("server", "loop", "stream", "client")
SERVER_AREAS = ("syntax", "headers", "framing", "smuggling", "connection", "limits", "web")
# area -> layer; the loop, stream and client layers have one area each, named after the layer.
LAYER_OF = {**{a: "server" for a in SERVER_AREAS}, "loop": "loop", "stream": "stream", "client": "client"}
AREAS = tuple(LAYER_OF)


@dataclass
class Verdict:
    verdict: str
    reason: str
    consequence: bool = False   # a failure that shows harm (smuggling, a hang, a crash): fails at any level


def ok(reason="as expected"):
    return Verdict(PASS, reason)


def warn(reason):
    return Verdict(WARN, reason)


def fail(reason):
    return Verdict(FAIL, reason)


def na(reason):
    return Verdict(NA, reason)


def error(reason):
    return Verdict(ERROR, reason)


def consequence(reason):
    """A failure that shows harm done (a smuggled request, a server that hung or died): it
    fails the case whatever the case's level."""
    return Verdict(FAIL, reason, consequence=True)


def at_level(level, v):
    """SHOULD and MAY cases never fail (README: an unmet SHOULD/MAY is a warning), unless
    the failure shows harm done."""
    if level != "MUST" and v.verdict == FAIL and not v.consequence:
        return Verdict(WARN, f"{level} not met: {v.reason}")
    return v


def mismatch(level, reason):
    """An implementation that does not produce the expected outcome: a failure on a MUST
    case, a warning on a SHOULD or MAY case."""
    return Verdict(FAIL if level == "MUST" else WARN, reason)


@dataclass
class Case:
    id: str
    area: str
    title: str
    source: str
    level: str
    needs: frozenset
    fn: object
    tornado: bool = False
    catch_all: bool = False
    slow: bool = False
    note: str = ""      # why the level is below MUST, or how implementations differ
    order: int = 0      # registration order (the report's order within an area and level)

    @property
    def layer(self) -> str:
        return LAYER_OF[self.area]

    @property
    def family(self) -> str:
        """The rule family the case's source belongs to: "rfc", "tornado" or "contract"."""
        if self.tornado:
            return "tornado"
        return "rfc" if self.source.startswith("RFC") else "contract"

    def applies_to(self, profiles) -> bool:
        """Cases of Tornado semantics apply only to implementations claiming the "tornado"
        profile; every other case applies to all."""
        return self.family != "tornado" or "tornado" in profiles

    def required_for(self, profiles) -> bool:
        """Only MUST cases are required: contract cases of every implementation, RFC cases
        of those claiming the "rfc" profile, Tornado-semantics cases of those claiming
        "tornado". (The Tornado peer claims only "tornado": it is the yardstick of Tornado
        semantics and of the contracts, and its RFC failures are reported, not required.)"""
        if self.level != "MUST":
            return False
        return self.family == "contract" or self.family in profiles

    @property
    def tags(self):
        return [TORNADO] if self.tornado else []


REGISTRY: list[Case] = []


def case(id, area, title, source, level, needs=(), catch_all=False, slow=False, note=""):
    """Register a case. `source` is an RFC section, a contract section or TORNADO
    ("Tornado semantics"). Server-layer cases get a Ctx with the server; the other layers'
    cases a Ctx with the target (its probes and adapter)."""
    assert area in AREAS, area
    assert level in LEVELS, level
    feats = frozenset(needs) | ({"catch-all"} if catch_all else frozenset())

    def deco(fn):
        assert all(c.id != id for c in REGISTRY), f"duplicate case id {id}"
        REGISTRY.append(Case(id, area, title, source, level, feats, fn, source == TORNADO, catch_all, slow,
                             note, len(REGISTRY)))
        return fn
    return deco


class Ctx:
    """What a case sees: the server under test (server layer) or the target (the other
    layers), and recorders of what happened: wire exchanges and transcript lines."""

    def __init__(self, server=None, target=None):
        self.server = server
        self.target = target
        self.exchanges: list[wire.Exchange] = []
        self.transcript: list[str] = []
        self.findings: list = []      # the response linter's, for server cases (lint.py)

    def log(self, text):
        self.transcript.append(text)

    @property
    def timeouts(self):
        return self.server.timeouts

    def send(self, data, **kw) -> wire.Exchange:
        ex = exchange(self.server, data, **kw)
        self.exchanges.append(ex)
        if ex.error:
            raise DriverError(ex.error)
        return ex

    def get(self, target, *headers, method="GET", body=b"", close=True, **kw):
        """One simple request (Connection: close unless close=False)."""
        hs = list(headers)
        if close:
            hs.append("Connection: close")
        return self.send(req(method, target, *hs, body=body), methods=(method,), **kw)


class DriverError(Exception):
    pass


def exchange(server, data, **kw) -> wire.Exchange:
    """wire.exchange with a server under test (a peers.Server): over TLS, validated against
    its CA, when it serves HTTPS."""
    if server.tls is not None:
        kw.setdefault("tls", server.tls.client_context())
    return wire.exchange(server.host, server.port, data, **kw)


def req(method="GET", target="/", *headers, body=b"", version="HTTP/1.1", host=True, cl=None, eol=b"\r\n"):
    """Build exact request bytes. Headers are 'Name: value' strings or bytes, sent as is.
    A Host header is added unless host=False or one is given; Content-Length is added for
    a non-empty body unless cl=False or framing headers are given."""
    hs = [h.encode("latin-1") if isinstance(h, str) else h for h in headers]
    lower = [h.lower() for h in hs]
    if host and not any(h.startswith(b"host:") for h in lower):
        hs.insert(0, b"Host: 127.0.0.1")
    if isinstance(body, str):
        body = body.encode()
    framed = any(h.startswith(b"content-length") or h.startswith(b"transfer-encoding") for h in lower)
    if body and cl is not False and not framed:
        hs.append(b"Content-Length: %d" % len(body))
    start = method.encode() + b" " + (target.encode() if isinstance(target, str) else target) + b" " + version.encode()
    return start + eol + b"".join(h + eol for h in hs) + eol + body


def chunked(*pieces, trailers=b""):
    out = b""
    for p in pieces:
        p = p.encode() if isinstance(p, str) else p
        out += b"%x\r\n" % len(p) + p + b"\r\n"
    return out + b"0\r\n" + trailers + b"\r\n"


# ---- common judgements ------------------------------------------------------------------

def judge_reject(ex, ok_codes=(400,), weak_codes=(), close_only=WARN, must_close=False, what="the request",
                 accepted=None):
    """For a request that must not be processed: `ok_codes` pass, `weak_codes` warn,
    a close without any response gets `close_only`; a 2xx/3xx answer fails, unless
    `accepted` (a reason) says the RFC lets the server accept it: then it warns."""
    r = ex.first
    if r is None:
        if ex.closed:
            return Verdict(close_only, f"closed without a response (expected {codes(ok_codes)})")
        return fail(f"no response and connection left open (expected {codes(ok_codes)})")
    if r.status in ok_codes:
        if must_close and not ex.closed:
            return fail(f"{r.summary()} but the connection stayed open (must close)")
        if len(ex.finals) > 1:
            return fail(f"{r.summary()} then {len(ex.finals) - 1} more response(s) on the same connection")
        return ok(f"{r.summary()}" + (", closed" if ex.closed else ""))
    if r.status in weak_codes:
        return warn(f"{r.summary()} (accepted, but {codes(ok_codes)} is the precise answer)")
    if r.status < 400:
        if accepted:
            return warn(f"{what} was accepted: {r.summary()} ({accepted})")
        return fail(f"{what} was accepted: {r.summary()} (expected {codes(ok_codes)})")
    return fail(f"{r.summary()} (expected {codes(ok_codes)})")


def codes(cs):
    return " or ".join(str(c) for c in cs)


def judge_status(ex, code, body=None, ctype=None):
    r = ex.first
    if r is None:
        return fail(f"expected {code}, got {ex.describe()}")
    if r.status != code:
        return fail(f"expected {code}, got {r.summary()}" + (f" body {r.body[:60]!r}" if r.body else ""))
    if body is not None and r.body != (body.encode() if isinstance(body, str) else body):
        return fail(f"{r.status} but body {r.body[:80]!r}, expected {body[:80]!r}")
    if ctype is not None and not (r.header("content-type") or "").lower().startswith(ctype):
        return fail(f"Content-Type {r.header('content-type')!r}, expected {ctype}")
    return ok(f"{r.summary()}" + (f", body {r.body[:40]!r}" if body is not None else ""))
