"""Connection management: persistence, close, pipelining, 100-continue, bodiless
responses, timeouts."""
import time

from ._helpers import CLOSE, TORNADO, case, exchange, fail, judge_status, ok, req, warn

A = "connection"
BOUND = 10.0   # no timeout case waits longer than this


@case("CON-001", A, "HTTP/1.1 connections persist by default", "RFC 9112 §9.3", "SHOULD", needs=("root-get",))
def _(ctx):
    ex = ctx.send(req("GET", "/"), expect=1, timeout=2.0, linger=0.5)
    if ex.closed:
        return fail("closed after the first response")
    r = ex.first
    if r is None:
        return fail(ex.describe())
    if r.has_token("connection", "close"):
        return fail("sent Connection: close")
    return ok("open after the response")


@case("CON-002", A, "two sequential requests on one HTTP/1.1 connection", "RFC 9112 §9.3", "MUST", needs=("root-get", "plaintext"))
def _(ctx):
    ex = ctx.send([req("GET", "/"), req("GET", "/plaintext", CLOSE)], pause=0.3, methods=("GET", "GET"), expect=2)
    bodies = [r.body for r in ex.finals]
    return ok("both answered") if bodies == [b"OK", b"Hello, World!"] else fail(f"got {[r.summary() for r in ex.finals]}")


@case("CON-003", A, "HTTP/1.0 without keep-alive: closed after the response", "RFC 9112 §9.3", "MUST", needs=("root-get",))
def _(ctx):
    ex = ctx.send(req("GET", "/", version="HTTP/1.0"), timeout=3.0)
    r = ex.first
    if r is None or r.status != 200:
        return fail(ex.describe())
    return ok("closed") if ex.closed else fail("connection left open after an HTTP/1.0 response")


@case("CON-004", A, "HTTP/1.0 with Connection: keep-alive may persist", "RFC 9112 §9.3", "MAY", needs=("root-get",))
def _(ctx):
    ex = ctx.send(req("GET", "/", "Connection: keep-alive", version="HTTP/1.0"), timeout=2.0, linger=0.5)
    r = ex.first
    if r is None or r.status != 200:
        return fail(ex.describe())
    if ex.closed:
        return warn("closed (allowed; keep-alive was offered)")
    if not r.has_token("connection", "keep-alive"):
        return fail("kept open without answering Connection: keep-alive")
    if r.header("content-length") is None:
        return fail("kept open without Content-Length")
    return ok("kept alive with Connection: keep-alive")


@case("CON-005", A, "Connection: close: the server closes after responding", "RFC 9112 §9.6", "MUST", needs=("root-get",))
def _(ctx):
    ex = ctx.send(req("GET", "/", CLOSE), timeout=3.0)
    r = ex.first
    if r is None or r.status != 200:
        return fail(ex.describe())
    if not ex.closed:
        return fail("connection left open")
    return ok("closed") if r.has_token("connection", "close") else warn("closed without sending Connection: close")


@case("CON-006", A, "'Connection: keep-alive, close' closes", "RFC 9112 §9.6", "MUST", needs=("root-get",))
def _(ctx):
    ex = ctx.send(req("GET", "/", "Connection: keep-alive, close"), timeout=3.0)
    return ok("closed") if ex.closed and ex.first else fail(ex.describe())


@case("CON-007", A, "'Connection: CLOSE' (case-insensitive) closes", "RFC 9110 §7.6.1", "MUST", needs=("root-get",))
def _(ctx):
    ex = ctx.send(req("GET", "/", "Connection: CLOSE"), timeout=3.0)
    return ok("closed") if ex.closed and ex.first else fail(ex.describe())


def pipeline(ctx, targets, methods=None):
    methods = methods or ["GET"] * len(targets)
    data = b"".join(req(m, t) for m, t in zip(methods, targets[:-1])) + req(methods[-1], targets[-1], CLOSE)
    return ctx.send(data, methods=methods, expect=len(targets), timeout=5.0)


@case("CON-008", A, "three pipelined requests are answered in order", "RFC 9112 §9.3.2", "MUST",
      needs=("root-get", "plaintext", "json"))
def _(ctx):
    ex = pipeline(ctx, ["/plaintext", "/json", "/"])
    bodies = [r.body for r in ex.finals]
    exp = [b"Hello, World!", b'{"message":"Hello, World!"}', b"OK"]
    return ok("in order") if bodies == exp else fail(f"got {bodies}")


@case("CON-009", A, "50 pipelined requests in one write", "RFC 9112 §9.3.2", "MUST", needs=("root-get", "plaintext"))
def _(ctx):
    ts = ["/", "/plaintext"] * 25
    ex = pipeline(ctx, ts)
    bodies = [r.body for r in ex.finals]
    exp = [b"OK", b"Hello, World!"] * 25
    return ok("50 in order") if bodies == exp else fail(f"{len(bodies)} responses; first mismatch at "
                                                         f"{next((i for i, (a, b) in enumerate(zip(bodies, exp)) if a != b), len(bodies))}")


@case("CON-010", A, "pipelined HEAD between GETs: no body bytes leak", "RFC 9110 §9.3.2", "MUST", needs=("root-get", "plaintext"))
def _(ctx):
    ex = pipeline(ctx, ["/", "/", "/plaintext"], ["GET", "HEAD", "GET"])
    f = ex.finals
    if [r.status for r in f] != [200, 200, 200] or f[2].body != b"Hello, World!" or f[1].body:
        return fail(f"got {[(r.summary(), r.body[:20]) for r in f]}")
    return ok("HEAD framed without a body")


@case("CON-011", A, "pipelined POST bodies do not bleed into the next request", "RFC 9112 §9.3.2", "MUST", needs=("echo",))
def _(ctx):
    data = req("POST", "/", body=b"first") + req("POST", "/", "Transfer-Encoding: chunked", body=b"6\r\nsecond\r\n0\r\n\r\n") \
        + req("POST", "/", CLOSE, body=b"third")
    ex = ctx.send(data, methods=("POST",) * 3, expect=3)
    bodies = [r.body for r in ex.finals]
    return ok("3 bodies echoed in order") if bodies == [b"first", b"second", b"third"] else fail(f"got {bodies}")


@case("CON-012", A, "HEAD / has headers only", "RFC 9110 §9.3.2", "MUST", needs=("root-get",))
def _(ctx):
    ex = ctx.send(req("HEAD", "/", CLOSE), methods=("HEAD",))
    r = ex.first
    if r is None or r.status != 200:
        return fail(ex.describe())
    extra = ex.received[ex.received.find(b"\r\n\r\n") + 4:]
    return fail(f"{len(extra)} body bytes after the head") if extra else ok("no body")


@case("CON-013", A, "HEAD reports the same Content-Length as GET", "RFC 9110 §9.3.2", "SHOULD", needs=("root-get",))
def _(ctx):
    g = ctx.get("/").first
    h = ctx.send(req("HEAD", "/", CLOSE), methods=("HEAD",)).first
    if not g or not h:
        return fail("missing response")
    a, b = g.header("content-length"), h.header("content-length")
    if b is None:
        return warn("HEAD without Content-Length (allowed)")
    return ok(f"Content-Length {b}") if a == b else fail(f"GET {a} vs HEAD {b}")


def no_body_status(id, code, level="MUST"):
    @case(id, A, f"{code} response has no body (next pipelined response intact)", "RFC 9110 §6.4.1", level,
          needs=("status", "plaintext"))
    def run(ctx):
        data = req("GET", f"/status/{code}") + req("GET", "/plaintext", CLOSE)
        ex = ctx.send(data, methods=("GET", "GET"), expect=2)
        f = ex.finals
        if len(f) != 2 or f[0].status != code or f[1].body != b"Hello, World!":
            return fail(f"got {[(r.summary(), r.body[:20]) for r in f]}")
        if f[0].header("transfer-encoding"):
            return fail(f"{code} with Transfer-Encoding")
        if code == 204 and f[0].header("content-length") not in (None,):
            return fail("204 with Content-Length (MUST NOT)")
        return ok(f"{code} without body")
    return run


no_body_status("CON-014", 204)
no_body_status("CON-015", 304)


@case("CON-016", A, "Expect: 100-continue gets 100 before the body is sent", "RFC 9110 §10.1.1", "SHOULD", needs=("echo",))
def _(ctx):
    body = b"continued body"
    sent = []

    def on_response(ex, sock, done):
        if done and done[-1].status == 100 and not sent:
            sock.sendall(body)
            sent.append(True)

    head = req("POST", "/", "Expect: 100-continue", "Content-Length: %d" % len(body), CLOSE)
    ex = ctx.send(head, methods=("POST",), timeout=1.5, on_response=on_response)
    if not sent:
        # No 100 within the wait: send the body anyway, as clients do after a timeout.
        ex = ctx.send([head, body], pause=1.0, methods=("POST",), timeout=3.0)
        r = ex.first
        if r is not None and r.status == 200 and r.body == body:
            return warn("no 100 Continue (final response after the body)")
        return fail(ex.describe())
    r = ex.first
    return ok("100 then 200 with the body") if r and r.status == 200 and r.body == body else fail(ex.describe())


@case("CON-017", A, "Expect: 100-continue in HTTP/1.0 is ignored (no 100)", "RFC 9110 §10.1.1", "MUST", needs=("echo",))
def _(ctx):
    ex = ctx.send(req("POST", "/", "Expect: 100-continue", body=b"abc", version="HTTP/1.0"), methods=("POST",))
    if any(r.status == 100 for r in ex.responses):
        return fail("sent 100 Continue to an HTTP/1.0 client")
    return judge_status(ex, 200, "abc")


@case("CON-018", A, "unknown expectation: 417 (MAY) or ignored", "RFC 9110 §10.1.1", "MAY", needs=("root-get",))
def _(ctx):
    ex = ctx.send(req("GET", "/", "Expect: something-else", CLOSE))
    r = ex.first
    if r is None:
        return fail(ex.describe())
    return ok("417") if r.status == 417 else (warn("ignored the unknown expectation") if r.status == 200 else fail(r.summary()))


@case("CON-019", A, "request sent one byte at a time (slow client) is served", "RFC 9112 §2", "MUST", needs=("echo",))
def _(ctx):
    data = req("POST", "/", CLOSE, body=b"slow")
    ex = ctx.send([data[i:i + 1] for i in range(len(data))], pause=0.01, methods=("POST",))
    return judge_status(ex, 200, "slow")


@case("CON-020", A, "request then half-close: the response is still delivered", "RFC 9112 §9.6", "SHOULD", needs=("root-get",),
      note="over TLS (run.py --tls) the half-close is close_notify then FIN, after which TLS 1.3 lets the server "
      "still write (RFC 8446 §6.1); Tornado's SSLIOStream takes close_notify for the end and closes without answering")
def _(ctx):
    ex = ctx.send(req("GET", "/"), shut_write=True, timeout=3.0)
    return judge_status(ex, 200, "OK")


@case("CON-021", A, "every response carries Date", "RFC 9110 §6.6.1", "MUST", needs=("root-get",))
def _(ctx):
    r = ctx.get("/").first
    if r is None:
        return fail("no response")
    import email.utils
    d = r.header("date")
    if not d:
        return fail("no Date header")
    return ok(d) if email.utils.parsedate_tz(d) else fail(f"unparseable Date {d!r}")


@case("CON-022", A, "keep-alive responses are self-delimited (Content-Length or chunked)", "RFC 9112 §6.3", "MUST",
      needs=("root-get",))
def _(ctx):
    r = ctx.send(req("GET", "/"), timeout=2.0).first
    if r is None:
        return fail("no response")
    return ok("framed") if r.header("content-length") or r.header("transfer-encoding") else fail(
        "neither Content-Length nor Transfer-Encoding on a persistent connection")


@case("CON-023", A, "a 4xx for a bad request is followed by close, not a resync", "RFC 9112 §9.6", "SHOULD", needs=("plaintext",))
def _(ctx):
    ex = ctx.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n" + req("GET", "/plaintext", CLOSE),
                  methods=("GET", "GET"), expect=2)
    f = ex.finals
    if not f:
        return ok("closed") if ex.closed else fail("no response")
    if f[0].status < 400:
        return fail(f"bad request accepted: {f[0].summary()}")
    if len(f) > 1:
        return warn(f"{f[0].summary()} then served the next request on the same connection")
    return ok(f"{f[0].summary()}" + (", closed" if ex.closed else ""))


def timed_close(ctx, key, pieces, what):
    """Send `pieces`, then wait for the server to close (bounded)."""
    given = ctx.timeouts.get(key)
    wait = min(BOUND, given + 3.0) if given else 6.0
    ex = ctx.send(pieces, wait_close=wait, timeout=wait)
    if ex.closed:
        when = ex.close_after or 0.0
        r = ex.first
        if given and when > given + 2.5:
            return warn(f"closed after {when:.1f} s (configured {given} s)")
        return ok(f"closed after {when:.1f} s" + (f" with {r.summary()}" if r and r.status != 200 else ""))
    cfg = f"configured {given} s" if given else "no timeout flag given"
    if given:
        return fail(f"{what}: still open after {wait:.0f} s ({cfg})")
    return warn(f"{what}: still open after {wait:.0f} s ({cfg}; the default may be longer)")


@case("CON-024", A, "idle keep-alive connection is closed by the idle timeout", "RFC 9112 §9.5", "MAY",
      needs=("root-get",), slow=True)
def _(ctx):
    return timed_close(ctx, "idle", req("GET", "/"), "idle connection")


@case("CON-025", A, "slow header (slowloris) is cut by the header timeout", "RFC 9112 §9.5", "SHOULD",
      needs=("root-get",), slow=True)
def _(ctx):
    return timed_close(ctx, "header", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", "incomplete head")


@case("CON-026", A, "stalled body is cut by the body timeout", "RFC 9112 §9.5", "SHOULD", needs=("echo",), slow=True)
def _(ctx):
    return timed_close(ctx, "body", req("POST", "/", "Content-Length: 100", cl=False) + b"0123456789", "stalled body")


@case("CON-027", A, "a slow request does not block a fast one on another connection", TORNADO, "MUST",
      needs=("slow", "plaintext"))
def _(ctx):
    import threading
    box = {}

    def slow():
        t = time.monotonic()
        box["slow"] = exchange(ctx.server, req("GET", "/slow/1500", CLOSE), timeout=5.0)
        box["slow_t"] = time.monotonic() - t

    th = threading.Thread(target=slow)
    th.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    fast = ctx.get("/plaintext")
    fast_t = time.monotonic() - t0
    th.join()
    ctx.exchanges.append(box["slow"])
    s = box["slow"].first
    if fast.first is None or fast.first.status != 200:
        return fail(f"fast request: {fast.describe()}")
    if s is None or s.status != 200:
        return fail(f"slow request: {box['slow'].describe()}")
    if fast_t > 0.8:
        return fail(f"fast request took {fast_t:.2f} s while /slow/1500 was pending")
    if box["slow_t"] < 1.4:
        return fail(f"/slow/1500 answered after {box['slow_t']:.2f} s")
    return ok(f"fast in {fast_t * 1000:.0f} ms, slow in {box['slow_t']:.2f} s")


@case("CON-028", A, "pipelined requests behind a slow one are answered in order", "RFC 9112 §9.3.2", "MUST",
      needs=("slow", "plaintext"))
def _(ctx):
    ex = ctx.send(req("GET", "/slow/300") + req("GET", "/plaintext", CLOSE), methods=("GET", "GET"), expect=2, timeout=5.0)
    bodies = [r.body for r in ex.finals]
    return ok("in order") if bodies == [b"OK", b"Hello, World!"] else fail(f"got {bodies}")
