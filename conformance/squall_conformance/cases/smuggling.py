"""Request smuggling: send an ambiguous request whose body hides `GET /json`, then a
normal `GET /plaintext` on the same connection; count the responses. A response that
carries /json's body means a request was smuggled through."""
from ._helpers import body_na, case, closed_as_announced, consequence, fail, ok, warn

A = "smuggling"
SMUGGLED = b"GET /json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
FOLLOW = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
NEEDS = ("root-get", "plaintext", "json")


def head(*lines, version=b"HTTP/1.1"):
    return b"POST / " + version + b"\r\nHost: 127.0.0.1\r\n" + b"".join(lines) + b"\r\n"


def judge(ex, allow_processed=True, processed_is_right=False, ctx=None, framing="chunked"):
    finals = ex.finals
    if any(b'"message"' in r.body for r in finals):
        return consequence(f"SMUGGLED: /json was answered ({len(finals)} responses: "
                    f"{', '.join(r.summary() for r in finals)})")
    if any(r.problems for r in finals):
        return fail(f"desynchronised responses: {finals[0].problems}")
    first = ex.first
    if first is None:
        return ok("closed without a response") if ex.closed else warn("no response, connection left open")
    if 400 <= first.status < 600:
        extra = finals[1:]
        if extra:
            if all(b"Hello, World!" == r.body for r in extra):
                return warn(f"{first.summary()} but the connection was kept and the next request served")
            return fail(f"{first.summary()} then {', '.join(r.summary() for r in extra)}")
        return ok(f"{first.summary()}" + (", closed" if ex.closed else ""))
    if ctx is not None and len(finals) == 1 and closed_as_announced(ex):
        # Answered, then closed as announced: nothing after the first head was read as a
        # request. If the server does not read bodies on POST / at all, how it would frame
        # this one is not observable.
        v = body_na(ctx, framing)
        if v is not None:
            return v
    if not allow_processed:
        return fail(f"{first.summary()}: the ambiguous request was processed")
    tail = [r.body for r in finals[1:]]
    if tail in ([], [b"Hello, World!"]):
        if processed_is_right:
            return ok(f"{first.summary()}: processed with Content-Length framing; nothing smuggled")
        return warn(f"{first.summary()}: processed, but no request was smuggled (rejecting is stricter)")
    return fail(f"unexpected responses after {first.summary()}: {[r.summary() for r in finals[1:]]}")


def smuggle_case(id, title, source, level, data, allow_processed=True, processed_is_right=False, framing=None):
    """`framing`: "chunked" or "length", the body framing a server that reads it would use
    (default: chunked when the head has Transfer-Encoding)."""
    framing = framing or ("chunked" if b"transfer-encoding" in data.split(b"\r\n\r\n")[0].lower() else "length")

    @case(id, A, title, source, level, needs=NEEDS)
    def run(ctx):
        ex = ctx.send(data + FOLLOW, methods=("POST", "GET", "GET"), expect=3, timeout=3.0, linger=0.4)
        return judge(ex, allow_processed, processed_is_right, ctx, framing)
    return run


def te_cl(te_line, id, title, level="MUST", source="RFC 9112 §6.1"):
    """TE.CL: front uses Content-Length 4, back uses chunked -> smuggles SMUGGLED."""
    chunk = b"%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n"
    smuggle_case(id, f"TE.CL {title}", source, level, head(b"Content-Length: 4\r\n", te_line) + chunk)


def cl_te(te_line, id, title, level="MUST", source="RFC 9112 §6.1"):
    """CL.TE: Content-Length covers everything, a chunked parser stops at 0 and then
    reads SMUGGLED as the next request. A line that is not a Transfer-Encoding field at
    all (another name) leaves Content-Length the only framing: processing is right."""
    body = b"0\r\n\r\n" + SMUGGLED
    smuggle_case(id, f"CL.TE {title}", source, level, head(b"Content-Length: %d\r\n" % len(body), te_line) + body,
                 processed_is_right=te_line.lower().split(b":")[0].strip() != b"transfer-encoding"
                 and b"\n" not in te_line.rstrip(b"\r\n"))


cl_te(b"Transfer-Encoding: chunked\r\n", "SMG-001", "plain Transfer-Encoding: chunked")
te_cl(b"Transfer-Encoding: chunked\r\n", "SMG-002", "plain Transfer-Encoding: chunked")
variants = [
    (b"Transfer-Encoding : chunked\r\n", "space before colon"),
    (b"Transfer-Encoding:\tchunked\r\n", "tab before value"),
    (b"Transfer-Encoding: xchunked\r\n", "'xchunked'"),
    (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n", "second TE field 'x'"),
    (b"Transfer-Encoding: x\r\nTransfer-Encoding: chunked\r\n", "first TE field 'x'"),
    (b"Transfer-Encoding:\r\n chunked\r\n", "obs-fold value"),
    (b"Transfer-Encoding: \"chunked\"\r\n", "quoted 'chunked'"),
    (b"Transfer-Encoding: chunked, identity\r\n", "'chunked, identity'"),
    (b"Transfer-Encoding: chunk\r\n", "truncated 'chunk'"),
    (b"Transfer-Encoding: \x0bchunked\r\n", "vertical tab before value"),
    (b"Transfer-Encoding: chunked\x00\r\n", "NUL after value"),
    (b"Transfer-Encoding: chunked\rX: y\r\n", "bare CR inside the field"),
    (b"X: y\nTransfer-Encoding: chunked\r\n", "bare LF before the field"),
    (b" Transfer-Encoding: chunked\r\n", "leading space (folded into previous line)"),
    (b"Transfer_Encoding: chunked\r\n", "underscore name (not TE)"),
    (b"Transfer-Encoding: ,chunked\r\n", "empty list element first"),
    (b"Transfer-Encoding: chunked;q=1\r\n", "parameter on chunked"),
    (b"Transfer-Encoding: CHUNKED\r\n", "upper case"),
]
for n, (line, title) in enumerate(variants):
    cl_te(line, f"SMG-{3 + 2 * n:03d}", f"TE.TE {title}")
    if b"_" not in line:  # not a TE field at all: Content-Length framing is the right one
        te_cl(line, f"SMG-{4 + 2 * n:03d}", f"TE.TE {title}")

base = 3 + 2 * len(variants)
smuggle_case(f"SMG-{base:03d}", "CL.CL two different Content-Length fields", "RFC 9112 §6.3", "MUST",
             head(b"Content-Length: 0\r\n", b"Content-Length: %d\r\n" % len(SMUGGLED)) + SMUGGLED, allow_processed=False)
smuggle_case(f"SMG-{base + 1:03d}", "chunk size that wraps to a small number in 64 bits", "RFC 9112 §7.1", "MUST",
             head(b"Transfer-Encoding: chunked\r\n") + b"10000000000000001\r\nA\r\n" + b"%x\r\n" % len(SMUGGLED)
             + SMUGGLED + b"\r\n0\r\n\r\n", allow_processed=False)
smuggle_case(f"SMG-{base + 2:03d}", "chunk extension ended by bare LF hides a chunk", "RFC 9112 §7.1.1", "MUST",
             head(b"Transfer-Encoding: chunked\r\n") + b"2;\n" + b"xx\r\n%x\r\n" % len(SMUGGLED) + SMUGGLED
             + b"\r\n0\r\n\r\n")
smuggle_case(f"SMG-{base + 3:03d}", "HTTP/1.0 with Transfer-Encoding and Content-Length", "RFC 9112 §6.1", "MUST",
             head(b"Content-Length: 5\r\n", b"Transfer-Encoding: chunked\r\n", b"Connection: keep-alive\r\n",
                  version=b"HTTP/1.0") + b"0\r\n\r\n" + SMUGGLED)


@case(f"SMG-{base + 4:03d}", A, "Content-Length in the trailer section does not swallow the next request",
      "RFC 9112 §7.1.2", "MUST", needs=NEEDS)
def _(ctx):
    # The body is empty (the last chunk at once); a trailer field Content-Length must not make
    # the server read the next request as body. With the echo endpoint the POST's answer shows
    # the body it read; without it, the next request's answer does.
    data = head(b"Transfer-Encoding: chunked\r\n") + b"0\r\nContent-Length: %d\r\n\r\n" % len(FOLLOW) + FOLLOW
    ex = ctx.send(data, methods=("POST", "GET"), expect=2, timeout=3.0)
    f = ex.finals
    if f and f[0].status == 400:
        return ok("400: trailer refused")
    if len(f) == 2 and f[1].body == b"Hello, World!":
        return ok("trailer ignored; the next request was served")
    if f and f[0].status == 200 and ctx.server.has("echo"):
        if f[0].body == b"":
            if len(f) == 1 and closed_as_announced(ex):
                return ok("empty body echoed; then closed as announced")
            return warn("empty body echoed (the trailer did not reframe it), but the request after it was not "
                        f"answered ({ex.describe()}; pipelining: see CON-008)")
        return fail(f"the echoed body is {f[0].body[:40]!r}: the trailer Content-Length reframed the body")
    if len(f) == 1 and closed_as_announced(ex):
        v = body_na(ctx, "chunked")
        if v is not None:
            return v
        return warn(f"{f[0].summary()}, then closed as announced: the next request was not tested")
    return fail(f"the next request was not served ({ex.describe()}): the trailer Content-Length reframed the body")


smuggle_case(f"SMG-{base + 5:03d}", "request line hidden in a chunk-size line", "RFC 9112 §7.1", "MUST",
             head(b"Transfer-Encoding: chunked\r\n") + b"0 " + SMUGGLED[:-2] + b"\r\n\r\n")
smuggle_case(f"SMG-{base + 6:03d}", "GET with Content-Length: body looks like a request", "RFC 9112 §6.3", "MUST",
             b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED)
smuggle_case(f"SMG-{base + 7:03d}", "Content-Length with a plus sign", "RFC 9112 §6.3", "MUST",
             head(b"Content-Length: +%d\r\n" % len(SMUGGLED)) + SMUGGLED, allow_processed=False)
smuggle_case(f"SMG-{base + 8:03d}", "Content-Length: 0, N list", "RFC 9110 §8.6", "MUST",
             head(b"Content-Length: 0, %d\r\n" % len(SMUGGLED)) + SMUGGLED, allow_processed=False)
smuggle_case(f"SMG-{base + 9:03d}", "space before colon in Content-Length", "RFC 9112 §5.1", "MUST",
             head(b"Content-Length : %d\r\n" % len(SMUGGLED)) + SMUGGLED, allow_processed=False)
smuggle_case(f"SMG-{base + 10:03d}", "chunk data not followed by CRLF hides a request", "RFC 9112 §7.1", "MUST",
             head(b"Transfer-Encoding: chunked\r\n") + b"3\r\nabc0\r\n\r\n" + SMUGGLED)
