"""Shared building blocks for the case modules."""
from ..core import (ERROR, FAIL, NA, PASS, TORNADO, WARN, case, chunked, codes, error, exchange,  # noqa: F401
                    consequence, fail, judge_reject, judge_status, na, ok, req, warn)

CLOSE = "Connection: close"
# How long a case that needs the server to close waits for it after the response: long enough
# for a close that follows the response (a lingering close sends its FIN at once), short of the
# 2 s idle timeout the conformance runs configure (a close by that timeout proves nothing).
CLOSE_WAIT = 1.5
# A close this soon after the last request was sent is a decision about the connection; a later
# one is a timer running out (the idle timeouts of conformance runs are 2 s or more), so what
# the server held unanswered until then counts as never answered.
PROMPT_CLOSE = 1.0


def echo_lines(r):
    """The /echo body as [(name, value)] (names lower-cased)."""
    out = []
    for line in r.body.decode("latin-1").split("\n"):
        if line:
            k, _, v = line.partition(":")
            out.append((k.strip().lower(), v.strip()))
    return out


def announces_close(r):
    """The response says the server will close after it: `Connection: close`, or an HTTP/1.0
    response without keep-alive (RFC 9112 §9.3). A server that does not keep connections MUST
    send it (§9.3) and MAY then close: requests sent after that one are not lost to a defect."""
    if r is None:
        return False
    if r.has_token("connection", "close"):
        return True
    return r.version == "HTTP/1.0" and not r.has_token("connection", "keep-alive")


def closed_as_announced(ex):
    """The server answered, said it would close, and closed: nothing after that is judged."""
    f = ex.finals
    return bool(f) and ex.closed and announces_close(f[-1])


def judge_sequence(ex, expected, what="responses"):
    """Responses whose bodies must be `expected`, in order. A server that answers a prefix,
    announces the close (Connection: close) and closes does not keep connections, which RFC
    9112 §9.3 allows (warn: the sequence itself was not tested)."""
    bodies = [r.body for r in ex.finals]
    if bodies == expected:
        return ok(f"{len(bodies)} {what} in order")
    n = len(bodies)
    if 0 < n < len(expected) and bodies == expected[:n] and closed_as_announced(ex):
        return warn(f"answered {n} of {len(expected)}, then closed as its last response announced (Connection: "
                    "close): it does not keep this connection, which RFC 9112 §9.3 allows; the rest was not tested")
    prompt = ex.close_after is not None and ex.close_after <= PROMPT_CLOSE
    if 0 < n < len(expected) and bodies == expected[:n] and ex.closed and prompt:
        return warn(f"answered {n} of {len(expected)}, then closed at once without announcing it: a server MAY close "
                    "at any time (RFC 9112 §9.6) and the client retries what was not answered (§9.3.2), but sending "
                    "Connection: close first says so; the rest was not tested")
    if 0 < n < len(expected) and bodies == expected[:n]:
        held = (f"held them {ex.close_after:.1f} s, then closed (an idle timeout, not an answer)" if ex.closed
                else "left the connection open")
        return fail(f"answered {n} of {len(expected)}: the requests after them were received and never answered; it "
                    f"{held}")
    mismatch = next((i for i, (a, b) in enumerate(zip(bodies, expected)) if a != b), n)
    return fail(f"{n} {what} ({ex.describe()}); first difference at #{mismatch + 1}: "
                f"{bodies[mismatch][:40]!r} vs {expected[mismatch][:40]!r}" if mismatch < min(n, len(expected))
                else f"{n} {what} where {len(expected)} were expected ({ex.describe()})")


# ---- does the server read request bodies here? ------------------------------------------

_BODY = {}   # (id(server), framing) -> (server, mode, why)


def body_reading(ctx, framing="chunked"):
    """How the server treats a *valid* body on `POST /`, asked once per server instance:
    ("reads", why) when it answers and then serves a request sent right after the body (it
    consumed the body by its framing, or echoes it: contract endpoint `echo`); ("ignores", why)
    when it answers without reading the body and closes, as announced; ("refuses", why) when it
    refuses the valid request too (405, 411, 501, ...); ("unknown", why) otherwise.

    Cases whose point is how a body is framed are n/a for a server that ignores or refuses
    bodies there: its answer to a malformed body says nothing about the body."""
    srv = ctx.server
    if srv.has("echo"):
        return "reads", "echoes request bodies (endpoint echo)"
    key = (id(srv), framing)
    hit = _BODY.get(key)
    if hit is not None and hit[0] is srv:
        return hit[1], hit[2]
    if framing == "chunked":
        first = req("POST", "/", "Transfer-Encoding: chunked", body=chunked("abc"))
        valid = "a valid chunked POST /"
    else:
        first = req("POST", "/", body=b"abc")
        valid = "a valid POST / with Content-Length: 3"
    ex = ctx.send(first + req("GET", "/", CLOSE), methods=("POST", "GET"), expect=2, timeout=3.0)
    f = ex.finals
    if not f:
        mode, why = "unknown", f"{valid} got {ex.describe()}"
    elif f[0].status >= 400:
        mode, why = "refuses", f"{valid} is refused too ({f[0].summary()})"
    elif len(f) >= 2 and f[1].status == 200 and f[1].body == b"OK":
        mode, why = "reads", f"{valid} is answered and the request after its body is served"
    elif len(f) == 1 and closed_as_announced(ex):
        mode, why = "ignores", f"{valid} is answered ({f[0].summary()}) without reading its body, then the " \
                               f"connection is closed as announced"
    else:
        mode, why = "unknown", f"{valid} got {ex.describe()}"
    _BODY[key] = (srv, mode, why)
    return mode, why


def body_na(ctx, framing):
    """n/a (a Verdict) when the server does not read bodies on POST / (body_reading), else None."""
    mode, why = body_reading(ctx, framing)
    if mode in ("ignores", "refuses"):
        return na(f"{why}: how it frames a malformed body cannot be observed here")
    return None


def reject_case(id, area, title, source, level, raw, ok_codes=(400,), weak=(), close_only=WARN,
                must_close=False, needs=("root-get",), catch_all=False, accept=None, body=None, note=""):
    """A request that must be refused. `accept(ex)` may return a verdict for a 2xx answer
    that is allowed (e.g. a MAY-lenient parse) instead of failing it. `body` ("chunked" or
    "length"): the request's point is its body framing; an answer other than `ok_codes` or
    `weak` from a server that ignores or refuses valid bodies on POST / is n/a."""
    method = raw.split(b" ", 1)[0].decode("latin-1") if b" " in raw[:20] else "GET"

    @case(id, area, title, source, level, needs=needs, catch_all=catch_all, note=note)
    def run(ctx):
        # A case that asks for the close reads until the server closes (CLOSE_WAIT at most), so
        # that a server closing a moment after its answer is not judged by how fast it closes.
        ex = ctx.send(raw, methods=(method, "GET"), expect=1, timeout=3.0, linger=0.3,
                      **({"wait_close": CLOSE_WAIT} if must_close else {}))
        r = ex.first
        if body and not (r is not None and r.status in tuple(ok_codes) + tuple(weak)):
            v = body_na(ctx, body)
            if v is not None:
                return v
        if accept is not None and r is not None and r.status < 400:
            return accept(ex)
        return judge_reject(ex, ok_codes, weak, close_only, must_close)
    return run


def lenient_ok(reason):
    """For `accept=`: a 2xx answer is allowed but the stricter answer is a rejection."""
    def judge(ex):
        return warn(f"{ex.first.summary()}: {reason}")
    return judge


def accepted_ok(reason):
    def judge(ex):
        return ok(f"{ex.first.summary()}: {reason}")
    return judge


# ---- one connection, step by step ----------------------------------------------------------

def converse(ctx, steps, methods=("GET",), connect_timeout=3.0):
    """One connection driven step by step, for cases that must know *when* something arrived:
    ("send", bytes); ("read", seconds[, finals]) reads what arrives for that long, or until
    the server closes, or until `finals` final responses are complete; ("read_any", seconds, n)
    the same until n responses, interim (1xx) ones included, are complete; ("wait", seconds)
    sleeps without reading (the server's writes pile up in the socket); ("shut",) half-closes.
    Returns (exchange, seen): seen[i] holds the responses complete after the i-th read step.
    The exchange is recorded, shown and linted like those of ctx.send."""
    import socket
    import time
    from .. import core, wire

    srv = ctx.server
    tls = srv.tls.client_context() if srv.tls is not None else None
    ex = wire.Exchange(methods=tuple(methods))
    t0 = time.monotonic()
    try:
        s = wire.connect(srv.host, srv.port, connect_timeout, tls)
    except OSError as e:
        raise core.DriverError(f"connect failed: {e}") from None
    s.setblocking(False)
    buf, seen, last_send, waited_out = b"", [], t0, False

    def parsed():
        return [r for r in wire.parse_responses(buf, list(methods), ex.closed)[0] if r.complete]

    try:
        for step in steps:
            kind = step[0]
            if kind == "send" and not ex.closed:
                try:
                    s.setblocking(True)
                    s.settimeout(3.0)
                    s.sendall(step[1])
                    s.setblocking(False)
                    ex.sent += step[1]
                    last_send = time.monotonic()
                except (BrokenPipeError, ConnectionResetError):
                    ex.reset = ex.closed = True
                except socket.timeout:
                    ex.note = "send blocked (server stopped reading)"
                except OSError as e:
                    ex.reset = ex.closed = True
                    ex.note = f"send failed: {e}"
            elif kind == "wait":
                time.sleep(step[1])
            elif kind == "shut" and not ex.closed:
                try:
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            elif kind in ("read", "read_any"):
                end = time.monotonic() + step[1]
                want = step[2] if len(step) > 2 else None
                count = wire.count_finals if kind == "read" else len
                waited_out = True
                while not ex.closed:
                    if want is not None and count(parsed()) >= want:
                        waited_out = False
                        break
                    left = end - time.monotonic()
                    if left <= 0:
                        break
                    if wire.readable(s, left):
                        buf += wire.receive(s, ex)
                if ex.closed:
                    waited_out = False
                seen.append(parsed())
    finally:
        s.close()
    ex.received = buf
    ex.responses = wire.parse_responses(buf, list(methods), ex.closed)[0]
    ex.timed_out = waited_out
    ex.elapsed = time.monotonic() - t0
    if ex.closed:
        ex.close_after = time.monotonic() - last_send
    ctx.exchanges.append(ex)
    return ex, seen
