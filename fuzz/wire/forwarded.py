"""What a front forwarded against what the back-end understood of it (the proxy mode's oracle).

Every front description adds a marker field, `X-Squall-Front: 1`, to each request it
forwards (fuzz/wire/README.md, proxy mode): the number of marker lines in the bytes of one upstream
connection is the number of messages the front meant to send on it. The back-end's answers
on that connection (recorded by the tap) are what it understood. They disagree, most
severe first:

  boundary       the back-end answered more messages than the front forwarded (a request
                 smuggled through the front), or answered a request whose fields lack the
                 marker (a head the front sent as body bytes), or answered some and waits
                 for the rest of a message the front considers complete (it reads a longer
                 body than the front meant: the next message is swallowed)
  accept/reject  the back-end refused a message the front forwarded (the front passed on
                 what it should have refused or repaired: RFC 9110 §5.5, RFC 9112 §6.3),
                 or closed the connection before answering every message
  liveness       the back-end could not be reached or died

The front's own answers to the client are compared with the oracle's reading of the
client's bytes by squall_conformance.oracle.classify, after `strip_proxy_fields` removes
from /echo listings the fields a proxy adds or rewrites by design (RFC 9110 §7.6).
"""
from __future__ import annotations

import re

from squall_conformance.oracle import ACCEPT_REJECT, BOUNDARY, LIVENESS, Interpretation
from squall_conformance.wire import parse_responses

MARKER = b"x-squall-front"
_MARKER_LINE = re.compile(rb"(?im)^x-squall-front[ \t]*:")
_FIELD_LINE = re.compile(rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+:")
# Not anchored at a line start: a front writes the next request right after a body.
_REQUEST_LINE = re.compile(rb"([A-Z][A-Z-]*) ([^ \r\n]+) HTTP/\d\.\d\r?\n")
_LAST_CHUNK = re.compile(rb"(?:^|\r\n)0+(?:;[^\r\n]*)?\r\n")
# Fields a proxy adds, removes or rewrites by design (hop-by-hop fields, RFC 9110 §7.6.1;
# Via §7.6.3; the X-Forwarded-* family; framing, which a proxy may re-encode, RFC 9112 §6).
PROXY_FIELDS = frozenset({
    b"x-squall-front", b"via", b"forwarded", b"x-forwarded-for", b"x-forwarded-host", b"x-forwarded-proto",
    b"x-forwarded-server", b"x-forwarded-port", b"x-real-ip", b"connection", b"keep-alive", b"te",
    b"proxy-connection", b"content-length", b"transfer-encoding", b"upgrade",
})


def meant(forwarded: bytes) -> int:
    """How many messages the front meant to send in these bytes: its marker lines."""
    return len(_MARKER_LINE.findall(forwarded))


def heads(forwarded: bytes):
    """The heads the front wrote, as ((method, target), head bytes, what follows the head):
    for each marker line, the last request line before it and the head up to its empty line."""
    out = []
    for m in _MARKER_LINE.finditer(forwarded):
        lines = [r for r in _REQUEST_LINE.finditer(forwarded, 0, m.start())]
        start = lines[-1].start() if lines else 0
        end = forwarded.find(b"\r\n\r\n", m.start())
        end = len(forwarded) if end < 0 else end + 4
        request = tuple(x.decode("latin-1") for x in lines[-1].groups()) if lines else ("GET", "/")
        out.append((request, forwarded[start:end], forwarded[end:]))
    return out


def requests(forwarded: bytes) -> list[tuple]:
    """(method, target) of the front's messages, in order."""
    return [request for request, _, _ in heads(forwarded)] or [("GET", "/")]


def methods(forwarded: bytes) -> list[str]:
    """The methods of the front's messages, in order (to read the answers to HEAD right)."""
    return [method for method, _ in requests(forwarded)]


def unfinished(forwarded: bytes) -> bool:
    """Whether the front has not yet forwarded the whole of its last message, by the framing
    it wrote itself: fewer bytes than its Content-Length, or no last chunk yet (a front that
    streams a body it is still receiving from the client)."""
    found = heads(forwarded)
    if not found:
        return False
    _, head, rest = found[-1]
    lines = (line.partition(b":") for line in head.split(b"\r\n")[1:])
    fields = {name.strip().lower(): value.strip() for name, _, value in lines}
    if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
        return not (_LAST_CHUNK.search(rest) and rest.endswith(b"\r\n\r\n"))
    try:
        return len(rest) < int(fields.get(b"content-length", b"0"))
    except ValueError:
        return False


def understood(up) -> Interpretation:
    """The back-end's answers on one upstream connection (a tap.Upstream), as an
    Interpretation: the final responses and whether it closed or still waits."""
    resps, _ = parse_responses(bytes(up.answered), methods(bytes(up.forwarded)), up.backend_closed)[:2]
    finals = [(r.status, r.body) for r in resps if r.complete and not r.interim]
    if up.error:
        return Interpretation(finals, "error", up.error)
    if up.backend_closed:
        return Interpretation(finals, "closed")
    # Open with messages unanswered: it still waits for the rest of one (a hang, as the
    # oracle's observe() calls it).
    return Interpretation(finals, "hang" if len(finals) < meant(bytes(up.forwarded)) else "open")


def is_listing(body: bytes) -> bool:
    """An /echo answer: every non-empty line a `name: value` field."""
    lines = [x for x in body.split(b"\n") if x.strip()]
    return bool(lines) and all(_FIELD_LINE.match(x) for x in lines)


def classify_upstream(forwarded: bytes, back: Interpretation):
    """How the back-end's reading of one upstream connection disagrees with what the front
    forwarded on it, as (class, detail), or None."""
    want = meant(forwarded)
    got = back.responses
    if back.end in ("error", "dead"):
        return LIVENESS, f"back-end: {back.error or 'died'}"
    if len(got) > want:
        return BOUNDARY, f"the back-end answered {len(got)} messages where the front forwarded {want}"
    for i, (status, body) in enumerate(got):
        if 200 <= status < 300 and is_listing(body) and not _MARKER_LINE.search(body):
            return BOUNDARY, f"message {i + 1}: the back-end read a request the front did not forward as one"
    if len(got) < want:
        if want - len(got) == 1 and unfinished(forwarded):
            return None     # the front has not finished its last message (still streaming it, or gave up)
        if got and got[-1][0] >= 400:
            return ACCEPT_REJECT, f"the back-end refused message {len(got)} of the {want} forwarded ({got[-1][0]})"
        if back.end == "hang":
            return BOUNDARY, (f"the back-end answered {len(got)} of {want} messages and waits for the rest of one: "
                              "it reads a longer message than the front forwarded")
        return ACCEPT_REJECT, f"the back-end closed the connection after {len(got)} of {want} messages"
    return None


def classify_forwarded(upstreams):
    """The first disagreement over the upstream connections of one input, as
    (class, detail, index of the connection), or None."""
    for n, up in enumerate(upstreams):
        c = classify_upstream(bytes(up.forwarded), understood(up))
        if c:
            return c[0], f"upstream connection {n + 1}: {c[1]}", n
    return None


def strip_proxy_fields(interp: Interpretation, requests) -> Interpretation:
    """The interpretation with each /echo listing normalised as a proxy may change it by
    design: the fields a proxy adds or rewrites removed, the lines of one name combined into
    one (RFC 9110 §5.3), the names in order (the order of different names carries no
    meaning), so that a front's answers compare with a direct server's. The body answering
    `OPTIONS *` is dropped: whoever receives it may answer for itself (RFC 9110 §9.3.7)."""
    out = []
    for i, (status, body) in enumerate(interp.responses):
        if i < len(requests) and requests[i][1] == "*":
            body = b""
        elif 200 <= status < 300 and is_listing(body):
            fields = {}
            for line in body.split(b"\n"):
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if line.strip() and name not in PROXY_FIELDS:
                    fields.setdefault(name, []).append(value.strip())
            body = b"".join(b"%s: %s\n" % (k, b", ".join(v)) for k, v in sorted(fields.items()))
        out.append((status, body))
    return Interpretation(out, interp.end, interp.error)
