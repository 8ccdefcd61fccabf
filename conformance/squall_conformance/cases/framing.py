"""Body framing: Content-Length, chunked, both, unknown transfer codings."""
from ._helpers import (CLOSE, CLOSE_WAIT, FAIL, WARN, accepted_ok, body_na, case, chunked, closed_as_announced,  # noqa: F401
                       fail, judge_reject, judge_status, lenient_ok, ok, reject_case, req, warn)

A = "framing"


def post(*headers, body=b"", target=b"/"):
    hs = b"".join((h.encode("latin-1") if isinstance(h, str) else h) + b"\r\n" for h in headers)
    return b"POST " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + hs + b"Connection: close\r\n\r\n" + body


def echo_case(id, title, source, level, data, expect, pieces=None, lenient=None, refuse_ok=None):
    """POST / must echo `expect` (the de-framed body). `lenient`: the reason a 400 is
    allowed but weaker (warn); `refuse_ok`: the reason a 400 is as right as the echo (pass)."""
    @case(id, A, title, source, level, needs=("echo",))
    def run(ctx):
        ex = ctx.send(pieces(data) if pieces else data, methods=("POST",), pause=0.002 if pieces else 0.0)
        r = ex.first
        if lenient and r is not None and r.status == 400:
            return warn(f"400: refused ({lenient})")
        if refuse_ok and r is not None and r.status == 400:
            return ok(f"400: refused ({refuse_ok})")
        return judge_status(ex, 200, expect)
    return run


echo_case("FRM-001", "Content-Length body is echoed exactly", "RFC 9112 §6.2", "MUST",
          post("Content-Length: 11", body=b"hello world"), b"hello world")
echo_case("FRM-002", "Content-Length: 0 gives an empty body", "RFC 9112 §6.2", "MUST",
          post("Content-Length: 0"), b"")
echo_case("FRM-003", "binary body with NUL and CRLF bytes is echoed", "RFC 9112 §6.2", "MUST",
          post("Content-Length: 8", body=b"\x00\r\n\xff\r\n\r\n"), b"\x00\r\n\xff\r\n\r\n")
echo_case("FRM-004", "Content-Length with leading zeros is valid", "RFC 9112 §6.2", "SHOULD",
          post("Content-Length: 003", body=b"abc"), b"abc", lenient="leading zeros are valid 1*DIGIT")
echo_case("FRM-005", "Content-Length with surrounding whitespace is valid", "RFC 9112 §5.1", "MUST",
          post("Content-Length:   3  ", body=b"abc"), b"abc")
echo_case("FRM-006", "body split into single-byte writes is assembled", "RFC 9112 §6.2", "MUST",
          post("Content-Length: 10", body=b"0123456789"), b"0123456789",
          pieces=lambda d: [d[:-10]] + [d[i:i + 1] for i in range(len(d) - 10, len(d))])
echo_case("FRM-007", "chunked body is de-chunked", "RFC 9112 §7.1", "MUST",
          post("Transfer-Encoding: chunked", body=chunked("hello", " ", "world")), b"hello world")
echo_case("FRM-008", "upper- and lower-case hex chunk sizes", "RFC 9112 §7.1", "MUST",
          post("Transfer-Encoding: chunked", body=b"A\r\n0123456789\r\nb\r\nabcdefghijk\r\n0\r\n\r\n"),
          b"0123456789abcdefghijk")
echo_case("FRM-009", "chunk sizes with leading zeros", "RFC 9112 §7.1", "MUST",
          post("Transfer-Encoding: chunked", body=b"0003\r\nabc\r\n00000\r\n\r\n"), b"abc")
echo_case("FRM-010", "unknown chunk extensions are ignored", "RFC 9112 §7.1.1", "MUST",
          post("Transfer-Encoding: chunked", body=b"3;foo=bar\r\nabc\r\n2;x\r\nde\r\n0;last=1\r\n\r\n"), b"abcde")
echo_case("FRM-011", "quoted-string chunk extension value", "RFC 9112 §7.1.1", "SHOULD",
          post("Transfer-Encoding: chunked", body=b'3;a="b c;d"\r\nabc\r\n0\r\n\r\n'), b"abc",
          lenient="quoted extension values are valid")
echo_case("FRM-012", "trailer fields after the last chunk are accepted", "RFC 9112 §7.1.2", "MUST",
          post("Transfer-Encoding: chunked", "Trailer: X-T",
               body=chunked("abc", trailers=b"X-T: 1\r\nX-U: 2\r\n")), b"abc")
echo_case("FRM-013", "Content-Length in a trailer does not change framing", "RFC 9112 §7.1.2", "SHOULD",
          post("Transfer-Encoding: chunked", body=chunked("abc", trailers=b"Content-Length: 100\r\n")), b"abc",
          refuse_ok="Content-Length is not allowed in a trailer section (RFC 9110 §6.5.1)")
echo_case("FRM-014", "1000 one-byte chunks", "RFC 9112 §7.1", "MUST",
          post("Transfer-Encoding: chunked", body=chunked(*[b"x"] * 1000)), b"x" * 1000)
echo_case("FRM-015", "chunked body split into single-byte writes", "RFC 9112 §7.1", "MUST",
          post("Transfer-Encoding: chunked", body=chunked("abc", "defg")), b"abcdefg",
          pieces=lambda d: [d[:-30]] + [d[i:i + 1] for i in range(len(d) - 30, len(d))])
echo_case("FRM-016", "transfer-coding names are case-insensitive ('Chunked')", "RFC 9112 §7", "SHOULD",
          post("Transfer-Encoding: Chunked", body=chunked("abc")), b"abc", lenient="coding names are case-insensitive")
echo_case("FRM-017", "POST without Content-Length or Transfer-Encoding has an empty body", "RFC 9112 §6.3", "MUST",
          post(), b"")
echo_case("FRM-018", "chunked with an empty data chunk list (just 0)", "RFC 9112 §7.1", "MUST",
          post("Transfer-Encoding: chunked", body=b"0\r\n\r\n"), b"")
echo_case("FRM-019", "64 KiB Content-Length body", "RFC 9112 §6.2", "MUST",
          post("Content-Length: 65536", body=bytes(range(256)) * 256), bytes(range(256)) * 256)
echo_case("FRM-020", "BWS around chunk-extension ';'", "RFC 9112 §7.1.1", "MAY",
          post("Transfer-Encoding: chunked", body=b"3 ; a=b\r\nabc\r\n0\r\n\r\n"), b"abc",
          lenient="BWS before ';' is obsolete but allowed")

for n, (cl, title) in enumerate([
        (b"abc", "non-numeric"), (b"-1", "negative"), (b"+3", "signed (+)"), (b"0x3", "hexadecimal"),
        (b"3 3", "two numbers separated by space"), (b"", "empty"), (b"3.0", "decimal point"),
        (b"99999999999999999999999999", "overflowing 64 bits"), (b"3, 4", "list of different values"),
        (b"1e2", "exponent notation")], start=21):
    reject_case(f"FRM-{n:03d}", A, f"Content-Length {title} ({cl.decode()!r}): 400 and close",
                "RFC 9112 §6.3", "MUST", post(b"Content-Length: " + cl, body=b"abc"),
                ok_codes=(400,) if n != 28 else (400, 413), must_close=True, needs=("root-get",), body="length",
                # An empty value is no length at all: 411 (Length Required) refuses it as well.
                weak=(411,) if n == 26 else ())

reject_case("FRM-031", A, "two different Content-Length fields: 400 and close", "RFC 9112 §6.3", "MUST",
            post("Content-Length: 3", "Content-Length: 4", body=b"abcd"), must_close=True, body="length")


@case("FRM-032", A, "two identical Content-Length fields: rejected or merged", "RFC 9110 §8.6", "MAY", needs=("echo",))
def _(ctx):
    ex = ctx.send(post("Content-Length: 3", "Content-Length: 3", body=b"abc"), methods=("POST",))
    r = ex.first
    if r is not None and r.status == 200:
        return warn("merged duplicate Content-Length (MAY); rejecting is stricter") if r.body == b"abc" else fail(
            f"200 with body {r.body!r}")
    return judge_reject(ex, (400,))


@case("FRM-033", A, "Content-Length list of equal values '3, 3': rejected or merged", "RFC 9110 §8.6", "MAY", needs=("echo",))
def _(ctx):
    ex = ctx.send(post("Content-Length: 3, 3", body=b"abc"), methods=("POST",))
    r = ex.first
    if r is not None and r.status == 200:
        return warn("merged list Content-Length (MAY); rejecting is stricter") if r.body == b"abc" else fail(
            f"200 with body {r.body!r}")
    return judge_reject(ex, (400,))


# Malformed chunked framing. RFC 9112 has no MUST to refuse these: §2.2 asks for 400 and close
# (SHOULD) for octets that do not match the grammar, and RFC 9110 §2.2 lets a recipient
# recover a usable element from an invalid construct unless noted otherwise. What is noted
# otherwise is judged at MUST: integer overflow of the size (§7.1), and harm (a request hidden
# by a lenient parse is a smuggling case, which fails at any level).
LENIENT_CHUNKS = ("RFC 9112 §2.2 asks for 400 and close (SHOULD) and RFC 9110 §2.2 lets a recipient recover from an "
                  "invalid construct (MAY); the harm a lenient parse can do is judged by the smuggling cases")
for n, spec in enumerate([
        (b"xyz\r\nabc\r\n0\r\n\r\n", "non-hex chunk size", (400,), "RFC 9112 §7.1, §2.2"),
        (b"-3\r\nabc\r\n0\r\n\r\n", "negative chunk size", (400,), "RFC 9112 §7.1, §2.2"),
        (b"0x3\r\nabc\r\n0\r\n\r\n", "chunk size with 0x prefix", (400,), "RFC 9112 §7.1, §2.2"),
        None,   # FRM-037, FRM-038: overflow, below
        None,
        (b"3\r\nabcdef\r\n0\r\n\r\n", "chunk data longer than its size", (400,), "RFC 9112 §7.1, §2.2"),
        (b"3\r\nabcXY0\r\n\r\n", "chunk data not followed by CRLF", (400,), "RFC 9112 §7.1, §2.2"),
        (b"\r\nabc\r\n0\r\n\r\n", "empty chunk-size line", (400,), "RFC 9112 §7.1, §2.2"),
        (b"3\r\nabc\r\n0\r\nX-T 1\r\n\r\n", "malformed trailer field (no colon)", (400,), "RFC 9112 §7.1.2, §2.2"),
        (b"3;\x00=1\r\nabc\r\n0\r\n\r\n", "NUL in a chunk extension", (400,), "RFC 9112 §7.1.1, §2.2"),
        (b" 3\r\nabc\r\n0\r\n\r\n", "leading space before the chunk size", (400,), "RFC 9112 §7.1, §2.2"),
], start=34):
    if spec is None:
        continue
    body, title, codes_, source = spec
    reject_case(f"FRM-{n:03d}", A, f"chunked: {title}: refused", source, "SHOULD",
                post("Transfer-Encoding: chunked", body=body), ok_codes=codes_, needs=("root-get",), body="chunked",
                note=LENIENT_CHUNKS + (" (a recipient MUST ignore unrecognized chunk extensions, §7.1.1)"
                                       if b";" in body.split(b"\r\n")[0] else ""))


def overflow_case(id, title, size_line, wrapped):
    """A chunk size too large for 64 bits. RFC 9112 §7.1: "Recipients MUST anticipate
    potentially large hexadecimal numerals and prevent parsing errors due to integer conversion
    overflows". Refusing it passes; waiting for that many bytes is no overflow (the limit on a
    body is the server's, RFC 9110 §15.5.14: warn); taking the chunk as `wrapped` bytes and
    answering 2xx is the overflow."""
    @case(id, A, f"chunked: {title}: no overflow", "RFC 9112 §7.1", "MUST", needs=("root-get",))
    def run(ctx):
        ex = ctx.send(post("Transfer-Encoding: chunked", body=size_line + b"\r\nabc\r\n0\r\n\r\n"),
                      methods=("POST",), expect=1, timeout=3.0, linger=0.3)
        r = ex.first
        if r is None:
            if ex.closed:
                return ok("closed without a response: refused")
            return warn(f"no response within 3 s, connection open: it waits for the announced {int(size_line, 16)}-byte "
                        "chunk (no overflow); refusing a size above its limit (413 or 400) at once is the better answer")
        if r.status in (400, 413):
            return ok(r.summary() + (", closed" if ex.closed else ""))
        v = body_na(ctx, "chunked")
        if v is not None:
            return v
        if r.status < 400:
            return fail(f"{r.summary()}: the {int(size_line, 16)}-byte chunk was taken as complete "
                        f"(overflow: {wrapped}){'; echoed ' + repr(r.body[:20]) if r.body else ''}")
        return warn(f"{r.summary()} (400 or 413 are the precise answers)")
    return run


overflow_case("FRM-037", "chunk size overflowing 64 bits", b"ffffffffffffffffffff", "read as a small size")
overflow_case("FRM-038", "chunk size that wraps to 3 in 64 bits", b"10000000000000003", "2^64 + 3 wrapped to 3")

reject_case("FRM-045", A, "chunk data ended by bare LF: refused (or MAY accept)", "RFC 9112 §7.1", "SHOULD",
            post("Transfer-Encoding: chunked", body=b"3\r\nabc\n0\r\n\r\n"), needs=("root-get",),
            accept=lenient_ok("bare LF after chunk data accepted"), body="chunked")
reject_case("FRM-046", A, "chunk-size line ended by bare LF: refused (or MAY accept)", "RFC 9112 §2.2", "MAY",
            post("Transfer-Encoding: chunked", body=b"3\nabc\r\n0\r\n\r\n"), needs=("root-get",),
            accept=lenient_ok("bare LF line end accepted (MAY)"), body="chunked")
reject_case("FRM-047", A, "Transfer-Encoding with an unknown coding, chunked not final: 501 or 400", "RFC 9112 §6.1, §6.3",
            "SHOULD", post("Transfer-Encoding: foo", body=b"abc"), ok_codes=(501, 400), must_close=False, needs=("root-get",),
            body="chunked")
reject_case("FRM-048", A, "Transfer-Encoding: gzip, chunked (unsupported coding): 501", "RFC 9112 §6.1", "SHOULD",
            post("Transfer-Encoding: gzip, chunked", body=chunked("abc")), ok_codes=(501,), weak=(400, 415), needs=("root-get",),
            body="chunked")
reject_case("FRM-049", A, "Transfer-Encoding: identity (not a coding, chunked not final): 501 or 400",
            "RFC 9112 §6.1, §6.3", "SHOULD", post("Transfer-Encoding: identity", body=b"abc"), ok_codes=(501, 400),
            needs=("root-get",),
            body="chunked")
reject_case("FRM-050", A, "chunked not the final coding (chunked, gzip): 400 and close", "RFC 9112 §6.3", "MUST",
            post("Transfer-Encoding: chunked, gzip", body=chunked("abc")), ok_codes=(400,), weak=(501,),
            must_close=True, needs=("root-get",), body="chunked")
reject_case("FRM-051", A, "chunked applied twice (chunked, chunked): refused", "RFC 9112 §6.1", "SHOULD",
            post("Transfer-Encoding: chunked, chunked", body=chunked(chunked("abc"))), ok_codes=(400, 501),
            needs=("root-get",), body="chunked")


@case("FRM-052", A, "both Content-Length and chunked: reject, or chunked wins; then close", "RFC 9112 §6.1", "MUST",
      needs=("echo",))
def _(ctx):
    ex = ctx.send(post("Content-Length: 100", "Transfer-Encoding: chunked", body=chunked("abc")).replace(
        b"Connection: close\r\n", b""), methods=("POST", "GET"), timeout=3.0, wait_close=CLOSE_WAIT)
    r = ex.first
    if r is None:
        return fail(ex.describe())
    if r.status == 400:
        return ok("400" + (", closed" if ex.closed else "")) if ex.closed else fail("400 but connection stayed open")
    if r.status == 200:
        if r.body != b"abc":
            return fail(f"200 with body {r.body!r}: Content-Length was used instead of chunked")
        return warn("processed by Transfer-Encoding (MAY), closed") if ex.closed else fail(
            "processed but the connection stayed open (MUST close)")
    return fail(r.summary())


@case("FRM-053", A, "Transfer-Encoding in an HTTP/1.0 request: faulty framing, close", "RFC 9112 §6.1", "MUST",
      needs=("root-get",))
def _(ctx):
    # "A server or client that receives an HTTP/1.0 message containing a Transfer-Encoding
    # header field MUST treat the message as if the framing is faulty, even if a
    # Content-Length is present, and close the connection after processing the message."
    data = b"POST / HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked("abc")
    ex = ctx.send(data + req("GET", "/json", version="HTTP/1.0"), methods=("POST", "GET"), wait_close=CLOSE_WAIT)
    if any(b'"message"' in r.body for r in ex.finals):
        return fail("the connection was not closed after the message: the bytes after it were served as another "
                    "request (GET /json)")
    if not ex.closed:
        return fail(f"{ex.describe()}: connection not closed")
    r = ex.first
    if r is None:
        return ok("closed without a response")
    return ok(f"{r.summary()}, closed") if r.status == 400 else warn(f"{r.summary()}, closed (400 is stricter)")


@case("FRM-054", A, "GET with a Content-Length body: the body is consumed, not parsed as a request", "RFC 9112 §6.3",
      "MUST", needs=("root-get", "plaintext"))
def _(ctx):
    body = b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n"
    data = req("GET", "/", "Content-Length: %d" % len(body), body=body) + req("GET", "/plaintext", CLOSE)
    ex = ctx.send(data, methods=("GET", "GET"), expect=2)
    bodies = [r.body for r in ex.finals]
    if any(b'"message"' in b for b in bodies):
        return fail("the body was processed as a request")
    if bodies == [b"OK", b"Hello, World!"]:
        return ok("2 responses: / then /plaintext")
    if ex.first is not None and ex.first.status in (400, 413):
        return warn(f"{ex.first.summary()}: refused a GET with a body")
    if bodies == [b"OK"] and closed_as_announced(ex):
        return ok("/ answered, then closed as announced (Connection: close): the body was not taken for a request")
    if bodies == [b"OK"] and not ex.closed:
        return warn("/ answered, then nothing more on the open connection: the body was not taken for a request, but "
                    "the request sent after it was not answered either (pipelining: see CON-008)")
    return fail(f"responses {[r.summary() for r in ex.finals]}")


@case("FRM-055", A, "incomplete Content-Length body then half-close: no 2xx", "RFC 9112 §8", "SHOULD", needs=("echo",))
def _(ctx):
    ex = ctx.send(post("Content-Length: 10", body=b"abc"), methods=("POST",), shut_write=True, timeout=3.0)
    r = ex.first
    if r is None:
        return ok("closed without a response") if ex.closed else warn("no response, connection left open")
    if r.status < 300:
        return fail(f"{r.summary()} for an incomplete body {r.body!r}")
    return ok(f"{r.summary()}")


@case("FRM-056", A, "missing final chunk then half-close: no 2xx", "RFC 9112 §8", "SHOULD", needs=("echo",))
def _(ctx):
    ex = ctx.send(post("Transfer-Encoding: chunked", body=b"3\r\nabc\r\n"), methods=("POST",), shut_write=True, timeout=3.0)
    r = ex.first
    if r is None:
        return ok("closed without a response") if ex.closed else warn("no response, connection left open")
    if r.status < 300:
        return fail(f"{r.summary()} for an incomplete chunked body")
    return ok(r.summary())


@case("FRM-057", A, "incomplete body: the server waits rather than answering early", "RFC 9112 §6.2", "MUST", needs=("echo",))
def _(ctx):
    ex = ctx.send(post("Content-Length: 10", body=b"abc"), methods=("POST",), timeout=1.0)
    r = ex.first
    if r is None:
        return ok("no response while the body is incomplete")
    if r.status < 300:
        return fail(f"answered {r.summary()} before the body was complete")
    return warn(f"{r.summary()} before the body was complete")


@case("FRM-058", A, "Transfer-Encoding: chunked with trailing OWS is chunked", "RFC 9112 §5.1", "MUST", needs=("echo",))
def _(ctx):
    return judge_status(ctx.send(post("Transfer-Encoding: chunked  ", body=chunked("abc")), methods=("POST",)), 200, "abc")


@case("FRM-059", A, "PUT and PATCH bodies are echoed like POST", "RFC 9110 §9.3", "MUST", needs=("echo",))
def _(ctx):
    for m in ("PUT", "PATCH"):
        ex = ctx.send(req(m, "/", CLOSE, body=b"m=" + m.encode()), methods=(m,))
        v = judge_status(ex, 200, b"m=" + m.encode())
        if v.verdict != "pass":
            return fail(f"{m}: {v.reason}")
    return ok("PUT and PATCH echoed")


@case("FRM-060", A, "1 MiB chunked body in 64 KiB chunks", "RFC 9112 §7.1", "MUST", needs=("echo",))
def _(ctx):
    blob = bytes(range(256)) * 4096
    ex = ctx.send(post("Transfer-Encoding: chunked", body=chunked(*[blob[i:i + 65536] for i in range(0, len(blob), 65536)])),
                  methods=("POST",), timeout=10)
    r = ex.first
    if r is None or r.status != 200:
        return fail(ex.describe())
    return ok("1 MiB echoed") if r.body == blob else fail(f"echoed {len(r.body)} bytes, not the 1 MiB sent")


# ---- the valid forms beside the refusals above ------------------------------------------------

echo_case("FRM-061", "Content-Length with HTAB as OWS is valid", "RFC 9112 §5.1, RFC 9110 §2.2", "MUST",
          post("Content-Length:\t3\t", body=b"abc"), b"abc")
echo_case("FRM-062", "Transfer-Encoding: chunked with HTAB as OWS is chunked", "RFC 9112 §5.1, RFC 9110 §2.2",
          "MUST",
          post("Transfer-Encoding:\tchunked\t", body=chunked("abc")), b"abc")
echo_case("FRM-063", "legal chunk-extension forms (token values, several per chunk, on the last chunk) are ignored",
          "RFC 9112 §7.1.1", "MUST",
          post("Transfer-Encoding: chunked",
               body=b"3;a\r\nabc\r\n3;a=b;c=d\r\ndef\r\n3;name=!#$%&'*+-.^_`|~09AZaz\r\nghi\r\n"
                    b"3;A=1;b;C=x\r\njkl\r\n0;end=1;z\r\n\r\n"), b"abcdefghijkl")
echo_case("FRM-064", "quoted-string chunk-extension values with quoted-pairs are ignored", "RFC 9112 §7.1.1", "SHOULD",
          post("Transfer-Encoding: chunked",
               body=b'3;q="a \\"b\\" c"\r\nabc\r\n3;q="";r="x;y=z"\r\ndef\r\n0\r\n\r\n'), b"abcdef",
          lenient="quoted-string values (with quoted-pairs) are valid chunk-ext-val")
echo_case("FRM-065", "legal trailer forms (HTAB OWS, empty value, list value, obs-text) are accepted", "RFC 9112 §7.1.2",
          "MUST", post("Transfer-Encoding: chunked", "Trailer: X-A, X-B, X-C, X-D",
                       body=chunked("abc", trailers=b"X-A:\tv\t\r\nX-B:\r\nX-C: a, b ,c\r\nX-D: caf\xc3\xa9\r\n")),
          b"abc")
