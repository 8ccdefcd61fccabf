"""Limits: header block, field size, URI length, body size (refused without reading it all)."""
from ._helpers import FAIL, WARN, case, fail, judge_reject, judge_status, ok, req, warn  # noqa: F401

A = "limits"


# RFC 9110 §5.4: a server that receives a header field line, field value or set of fields
# larger than it wishes to process "MUST respond with an appropriate 4xx (Client Error) status
# code". 431 (RFC 6585) is the precise one, 400 the generic one; any other 4xx (413 is for
# content) is a refusal whose code the suite cannot call inappropriate: warn.
OTHER_4XX = tuple(c for c in range(400, 500) if c not in (400, 431))


def big_head_case(id, title, lines, ok_codes=(431,), weak=(400,) + OTHER_4XX, target=b"/"):
    @case(id, A, title, "RFC 9110 §5.4", "MUST", needs=("root-get",))
    def run(ctx):
        data = b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(l + b"\r\n" for l in lines) + \
            b"Connection: close\r\n\r\n"
        ex = ctx.send(data, timeout=5.0)
        return reset_or(ex) or judge_reject(ex, ok_codes, weak, close_only=FAIL, what="the oversized head",
                                            accepted="no limit below this size: RFC 9110 §5.4 leaves the limit to "
                                                     "the server")
    return run


def reset_or(ex):
    """A connection reset with nothing readable: the server may have answered and closed with
    the rest of the request unread, and the reset destroyed the answer before it could be read
    (RFC 9112 §9.6, "the TCP reset problem"; a lingering close avoids it). The suite cannot
    tell that from no answer at all, and which one it sees depends on timing: warn, never fail."""
    if ex.first is None and ex.reset:
        return warn("connection reset with no readable response: an answer may have been lost to the TCP reset problem "
                    "(RFC 9112 §9.6: close in stages, reading on, so that the client can read the response)")
    return None


big_head_case("LIM-001", "128 KiB header block (many fields): 431", [b"X-F%d: %s" % (i, b"v" * 100) for i in range(1300)])
big_head_case("LIM-002", "one 128 KiB field value: 431", [b"X-Big: " + b"v" * 131072])
big_head_case("LIM-003", "20000 tiny header fields: 431", [b"A: b"] * 20000)
big_head_case("LIM-004", "1 MiB header block: 431", [b"X-F%d: %s" % (i, b"v" * 1000) for i in range(1024)])


@case("LIM-005", A, "100 KiB request-target: 414", "RFC 9110 §15.5.15", "MUST", catch_all=True)
def _(ctx):
    ex = ctx.send(req("GET", "/" + "a" * 102400, "Connection: close"), timeout=5.0)
    return reset_or(ex) or judge_reject(ex, (414,), (400, 431), close_only=FAIL, what="the oversized target",
                        accepted="RFC 9112 §3: 414 is for a target longer than the server wishes to parse")


@case("LIM-006", A, "8000-octet request-line is supported", "RFC 9112 §3", "SHOULD", catch_all=True)
def _(ctx):
    ex = ctx.send(req("GET", "/?" + "a" * 7980, "Connection: close"))
    r = ex.first
    if r is None:
        return fail(ex.describe())
    return ok(r.summary()) if r.status == 200 else fail(f"{r.summary()} for an 8000-octet request-line")


@case("LIM-007", A, "Content-Length of 1 GiB is refused (413) before the body is sent", "RFC 9110 §15.5.14", "SHOULD",
      needs=("root-get",))
def _(ctx):
    ex = ctx.send(req("POST", "/", "Content-Length: 1073741824", cl=False) + b"x" * 1024, methods=("POST",), timeout=3.0)
    r = ex.first
    if r is None:
        return warn("closed without a response" if ex.closed else
                    "waits for the announced 1 GiB body (allowed; refusing it at once is the recommended answer)")
    if r.status == 413:
        return ok("413" + (", closed" if ex.closed else ""))
    if r.status == 400:
        return warn("400 (413 is the precise answer)")
    return fail(f"{r.summary()} for a 1 GiB body that was never sent")


@case("LIM-008", A, "chunked body declaring a 2 GiB chunk is refused early", "RFC 9110 §15.5.14", "SHOULD", needs=("root-get",))
def _(ctx):
    ex = ctx.send(req("POST", "/", "Transfer-Encoding: chunked") + b"80000000\r\n" + b"x" * 1024, methods=("POST",), timeout=3.0)
    r = ex.first
    if r is None:
        return warn("closed without a response" if ex.closed else
                    "waits for the announced 2 GiB chunk (allowed; refusing it early is the recommended answer)")
    if r.status == 413:
        return ok("413")
    if r.status == 400:
        return warn("400 (413 is the precise answer)")
    return fail(r.summary())


@case("LIM-009", A, "10 MiB body under the limit is accepted", "RFC 9110 §15.5.14", "MUST", needs=("echo",))
def _(ctx):
    blob = bytes(range(256)) * 40960
    ex = ctx.send(req("POST", "/", "Connection: close", body=blob), methods=("POST",), timeout=15.0)
    r = ex.first
    if r is None or r.status != 200:
        return fail(ex.describe())
    return ok("10 MiB echoed") if r.body == blob else fail(f"echoed {len(r.body)} bytes")


@case("LIM-010", A, "huge chunk extension (100 KiB) is refused", "RFC 9112 §7.1.1", "SHOULD", needs=("root-get",))
def _(ctx):
    ex = ctx.send(req("POST", "/", "Transfer-Encoding: chunked", "Connection: close") + b"3;" + b"e" * 102400 + b"\r\nabc\r\n0\r\n\r\n",
                  methods=("POST",), timeout=5.0)
    r = ex.first
    if r is not None and r.status < 400:
        return warn(f"{r.summary()}: accepted a 100 KiB chunk extension")
    return judge_reject(ex, (400, 413, 431))


@case("LIM-011", A, "huge trailer section (200 KiB) is refused", "RFC 9112 §7.1.2", "SHOULD", needs=("root-get",))
def _(ctx):
    trailers = b"".join(b"X-T%d: %s\r\n" % (i, b"v" * 1000) for i in range(200))
    ex = ctx.send(req("POST", "/", "Transfer-Encoding: chunked", "Connection: close") + b"3\r\nabc\r\n0\r\n" + trailers + b"\r\n",
                  methods=("POST",), timeout=5.0)
    r = ex.first
    if r is not None and r.status < 400:
        return warn(f"{r.summary()}: accepted a 200 KiB trailer section")
    return judge_reject(ex, (431, 400, 413))


@case("LIM-012", A, "head just under 64 KiB is accepted", "RFC 9110 §5.4", "MAY", needs=("root-get",))
def _(ctx):
    lines = b"".join(b"X-F%d: %s\r\n" % (i, b"v" * 490) for i in range(100))  # ~50 KB
    ex = ctx.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + lines + b"Connection: close\r\n\r\n")
    r = ex.first
    if r is not None and r.status in (400, 431):
        return warn(f"{r.summary()} for a 50 KB head")
    return judge_status(ex, 200, "OK")


@case("LIM-013", A, "1000 pipelined requests in one write are all answered or cut cleanly", "RFC 9112 §9.3.2", "SHOULD",
      needs=("root-get",))
def _(ctx):
    data = req("GET", "/") * 999 + req("GET", "/", "Connection: close")
    ex = ctx.send(data, methods=("GET",) * 1000, expect=1000, timeout=10.0)
    f = ex.finals
    if any(r.body != b"OK" for r in f):
        return fail("a response out of step")
    if len(f) == 1000:
        return ok("1000 answered")
    return warn(f"{len(f)} answered, then {'closed' if ex.closed else 'stopped'}")
