"""Message syntax: request-line forms, versions, methods, whitespace, line endings."""
from ._helpers import (CLOSE, TORNADO, accepted_ok, case, echo_lines, fail, judge_reject, judge_status,
                       lenient_ok, ok, reject_case, req, warn)

A = "syntax"


@case("SYN-001", A, "minimal HTTP/1.1 GET / is answered 200 OK", "RFC 9112 §3", "MUST", needs=("root-get",))
def _(ctx):
    return judge_status(ctx.get("/"), 200, "OK")


@case("SYN-002", A, "HTTP/1.1 response version for an HTTP/1.1 request", "RFC 9110 §6.2", "SHOULD", needs=("root-get",))
def _(ctx):
    r = ctx.get("/").first
    if r is None:
        return fail("no response")
    return ok(r.version) if r.version == "HTTP/1.1" else fail(f"status line version {r.version!r}")


@case("SYN-003", A, "HTTP/1.0 request without Host is answered", "RFC 9112 §3.2", "SHOULD", needs=("root-get",))
def _(ctx):
    ex = ctx.send(req("GET", "/", version="HTTP/1.0", host=False))
    r = ex.first
    if r is None:
        return fail(ex.describe())
    if r.status == 200 and r.version.startswith("HTTP/1."):
        return ok(f"{r.version} {r.summary()}")
    return fail(f"{r.version} {r.summary()}")


@case("SYN-004", A, "request with a query string is routed by its path", "RFC 9112 §3.2.1", "MUST", needs=("plaintext",))
def _(ctx):
    return judge_status(ctx.get("/plaintext?x=1&y"), 200, "Hello, World!")


@case("SYN-005", A, "absolute-form target is accepted and routed by its path", "RFC 9112 §3.2.2", "MUST", needs=("plaintext",))
def _(ctx):
    return judge_status(ctx.send(req("GET", "http://127.0.0.1/plaintext", CLOSE)), 200, "Hello, World!")


@case("SYN-006", A, "absolute-form authority overrides a different Host", "RFC 9112 §3.2.2", "MUST", needs=("plaintext",),
      note="RFC 9112 §3.2.2: an origin server MUST ignore the Host field and use the target's authority; but §3.2 says "
      "a client MUST send a Host identical to that authority, so this request is itself a client error, and refusing "
      "it (400, or 421 Misdirected Request) is allowed: warn")
def _(ctx):
    ex = ctx.send(req("GET", "http://127.0.0.1/plaintext", "Host: other.example", CLOSE))
    r = ex.first
    if r is not None and r.status in (400, 421):
        return warn(f"{r.summary()}: refused a request whose Host differs from the target's authority (the client broke "
                    "RFC 9112 §3.2's MUST); serving it by the target's authority is what §3.2.2 asks of the server")
    return judge_status(ex, 200, "Hello, World!")


@case("SYN-007", A, "OPTIONS * (asterisk-form) is answered 200", "RFC 9112 §3.2.4", "MUST", needs=("asterisk",))
def _(ctx):
    ex = ctx.send(req("OPTIONS", "*", CLOSE), methods=("OPTIONS",))
    return judge_status(ex, 200)


reject_case("SYN-008", A, "asterisk-form with GET is refused", "RFC 9112 §3.2.4", "SHOULD",
            req("GET", "*", CLOSE), ok_codes=(400,), weak=(404, 405, 501))
reject_case("SYN-009", A, "authority-form outside CONNECT is refused", "RFC 9112 §3.2.3", "SHOULD",
            req("GET", "127.0.0.1:80", CLOSE), ok_codes=(400,), weak=(404,))
reject_case("SYN-010", A, "CONNECT to an origin server is refused", "RFC 9110 §9.3.6", "SHOULD",
            req("CONNECT", "127.0.0.1:80", CLOSE), ok_codes=(400, 405, 501), weak=(404,))


@case("SYN-011", A, "unknown method on / gets 501 or 405", "RFC 9110 §9.1", "SHOULD", needs=("405",))
def _(ctx):
    return judge_reject(ctx.send(req("FOO", "/", CLOSE), methods=("FOO",)), (501, 405), (400,), what="an unknown method")


@case("SYN-012", A, "methods are case-sensitive: 'get' is not GET", "RFC 9110 §9.1", "SHOULD", needs=("405",))
def _(ctx):
    return judge_reject(ctx.send(req("get", "/", CLOSE), methods=("get",)), (501, 405), (400,),
                        what="lower-case 'get'")


@case("SYN-013", A, "any method token reaches /echo (extension methods)", TORNADO, "MUST", needs=("echo-headers",))
def _(ctx):
    return judge_status(ctx.send(req("PROPFIND-X", "/echo", CLOSE), methods=("PROPFIND-X",)), 200)


reject_case("SYN-014", A, "method with a non-token character is refused", "RFC 9112 §3", "SHOULD",
            req("GE(T", "/", CLOSE), ok_codes=(400,), weak=(501, 405))
reject_case("SYN-015", A, "HTTP-name is case-sensitive: 'http/1.1' is invalid", "RFC 9112 §2.3", "SHOULD",
            req("GET", "/", CLOSE, version="http/1.1"), ok_codes=(400, 505))
reject_case("SYN-016", A, "version with two-digit minor 'HTTP/1.10' is invalid", "RFC 9112 §2.3", "SHOULD",
            req("GET", "/", CLOSE, version="HTTP/1.10"), ok_codes=(400, 505))
reject_case("SYN-017", A, "version with leading zero 'HTTP/01.1' is invalid", "RFC 9112 §2.3", "SHOULD",
            req("GET", "/", CLOSE, version="HTTP/01.1"), ok_codes=(400, 505))
reject_case("SYN-018", A, "HTTP/2.0 over an HTTP/1 connection gets 505", "RFC 9110 §15.6.6", "SHOULD",
            req("GET", "/", CLOSE, version="HTTP/2.0"), ok_codes=(505,), weak=(400,))
reject_case("SYN-019", A, "HTTP/3.1 gets 505", "RFC 9110 §15.6.6", "SHOULD",
            req("GET", "/", CLOSE, version="HTTP/3.1"), ok_codes=(505,), weak=(400,))


@case("SYN-020", A, "HTTP/1.2 is treated as HTTP/1.1 (higher minor)", "RFC 9110 §6.2", "SHOULD", needs=("root-get",))
def _(ctx):
    return judge_status(ctx.send(req("GET", "/", CLOSE, version="HTTP/1.2")), 200, "OK")


@case("SYN-021", A, "HTTP/0.9 simple request (no version) is not served", "RFC 9112 §2.3", "SHOULD", needs=("root-get",))
def _(ctx):
    ex = ctx.send(b"GET /\r\n\r\n", timeout=2.0)
    r = ex.first
    if r is None:
        return ok("closed without an HTTP/0.9 answer") if ex.closed else warn("no answer, connection left open")
    if r.status == 0:
        return fail(f"answered HTTP/0.9-style: {ex.received[:40]!r}")
    return judge_reject(ex, (400, 505))


reject_case("SYN-022", A, "two spaces after the method: 400 (lenient split allowed)", "RFC 9112 §3", "MAY",
            req("GET", " /", CLOSE), accept=lenient_ok("parsed on whitespace boundaries (MAY)"))
reject_case("SYN-023", A, "HTAB as request-line separator: 400 (lenient split allowed)", "RFC 9112 §3", "MAY",
            b"GET\t/\tHTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            accept=lenient_ok("parsed on whitespace boundaries (MAY)"))
reject_case("SYN-024", A, "trailing space after the version is refused", "RFC 9112 §3", "SHOULD",
            b"GET / HTTP/1.1 \r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", ok_codes=(400, 505),
            accept=lenient_ok("trailing whitespace tolerated"))
reject_case("SYN-025", A, "space inside the request-target is refused", "RFC 9112 §3.2", "SHOULD",
            req("GET", "/a b", CLOSE), ok_codes=(400,), catch_all=True, needs=())
reject_case("SYN-026", A, "origin-form must start with '/'", "RFC 9112 §3.2.1", "SHOULD",
            req("GET", "foo", CLOSE), ok_codes=(400,), weak=(404,), catch_all=True, needs=())
reject_case("SYN-027", A, "fragment in the request-target is refused", "RFC 9112 §3.2", "SHOULD",
            req("GET", "/#frag", CLOSE), ok_codes=(400,), accept=lenient_ok("fragment tolerated"), catch_all=True, needs=())
reject_case("SYN-028", A, "NUL in the request-target is refused", "RFC 9112 §3.2", "MUST",
            req("GET", b"/a\x00b", CLOSE), ok_codes=(400,), catch_all=True, needs=())
reject_case("SYN-029", A, "control character (0x01) in the request-target is refused", "RFC 9112 §3.2", "SHOULD",
            req("GET", b"/a\x01b", CLOSE), ok_codes=(400,), catch_all=True, needs=())
reject_case("SYN-030", A, "non-ASCII byte in the request-target is refused", "RFC 9112 §3.2", "SHOULD",
            req("GET", b"/caf\xc3\xa9", CLOSE), ok_codes=(400,), catch_all=True, needs=(),
            accept=lenient_ok("raw UTF-8 in the target tolerated"))
reject_case("SYN-031", A, "empty request-target is refused", "RFC 9112 §3", "SHOULD",
            b"GET  HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", ok_codes=(400,))
reject_case("SYN-032", A, "request-line with only a method is refused", "RFC 9112 §3", "SHOULD",
            b"GET\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", ok_codes=(400,))
@case("SYN-033", A, "bare CR inside the request-line is refused or replaced by SP", "RFC 9112 §2.2", "MUST",
      needs=("plaintext",))
def _(ctx):
    # Replacing the CR with SP leaves the target /plaintext; keeping it makes the target
    # "/plaintext\r", which is neither refusing nor replacing.
    ex = ctx.send(b"GET /plaintext\r HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    r = ex.first
    if r is not None and r.status < 400 and r.body == b"Hello, World!":
        return warn(f"{r.summary()}: bare CR replaced by SP, as RFC 9112 §2.2 allows; refusing is stricter")
    if r is not None and r.status == 404:
        return fail("404: the CR was kept as part of the request-target (neither refused nor replaced by SP)")
    return judge_reject(ex, (400,))


@case("SYN-034", A, "an empty line before the request-line is ignored", "RFC 9112 §2.2", "SHOULD", needs=("root-get",))
def _(ctx):
    return judge_status(ctx.send(b"\r\n" + req("GET", "/", CLOSE)), 200, "OK")


@case("SYN-035", A, "bare LF line endings: accepted or refused, never misparsed", "RFC 9112 §2.2", "MAY", needs=("root-get",))
def _(ctx):
    ex = ctx.send(req("GET", "/", CLOSE, eol=b"\n"))
    r = ex.first
    if r is None:
        return warn(f"bare-LF request not answered ({ex.describe()})")
    if r.status == 200 and r.body == b"OK":
        return ok("bare LF recognized (MAY)")
    if r.status == 400:
        return ok("400: bare LF refused")
    return fail(r.summary())


@case("SYN-036", A, "whitespace-preceded line after the request-line: rejected or ignored", "RFC 9112 §2.2", "MUST",
      needs=("echo-headers",))
def _(ctx):
    ex = ctx.send(b"GET /echo HTTP/1.1\r\n X-Smuggled: 1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    r = ex.first
    if r is not None and r.status == 200:
        names = [k for k, _ in echo_lines(r)]
        if "x-smuggled" in names:
            return fail("the whitespace-preceded line was processed as a header field")
        return ok("line consumed without processing")
    return judge_reject(ex, (400,))


@case("SYN-037", A, "request split into single-byte writes is parsed", "RFC 9112 §2", "MUST", needs=("plaintext",))
def _(ctx):
    data = req("GET", "/plaintext", CLOSE)
    ex = ctx.send([data[i:i + 1] for i in range(len(data))], pause=0.002)
    return judge_status(ex, 200, "Hello, World!")


@case("SYN-038", A, "response status line is 'HTTP/1.1 NNN reason'", "RFC 9112 §4", "MUST", needs=("root-get",))
def _(ctx):
    ex = ctx.get("/")
    line = ex.received.split(b"\r\n", 1)[0]
    import re
    if re.fullmatch(rb"HTTP/1\.[01] [0-9]{3} [\t -~\x80-\xff]*", line):
        return ok(line.decode("latin-1"))
    return fail(f"status line {line[:60]!r}")


reject_case("SYN-039", A, "method longer than any known (1000 chars) is refused", "RFC 9110 §9.1", "SHOULD",
            req("X" * 1000, "/", CLOSE), ok_codes=(501, 405, 400), weak=(414, 431))


@case("SYN-040", A, "percent-encoded target path is matched undecoded then decoded", TORNADO, "MUST", needs=("plaintext",))
def _(ctx):
    # %70 is 'p': Tornado matches routes against the still-encoded path, so this is a 404.
    ex = ctx.get("/%70laintext")
    r = ex.first
    if r is None:
        return fail(ex.describe())
    return ok("404: routing uses the encoded path") if r.status == 404 else fail(
        f"{r.summary()} (Tornado routes on the raw path: expected 404)")
