"""Header fields: name/value validation, whitespace, obs-fold, duplicates, Host."""
import re

from ._helpers import (CLOSE, FAIL, TORNADO, accepted_ok, case, echo_lines, fail, judge_reject, judge_status,
                       lenient_ok, ok, reject_case, req, warn)

A = "headers"
H = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"


def raw_get(*lines, target=b"/"):
    return b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(l + b"\r\n" for l in lines) + \
        b"Connection: close\r\n\r\n"


reject_case("HDR-001", A, "space between field name and colon: 400", "RFC 9112 §5.1", "MUST",
            raw_get(b"X-A : 1"), close_only=FAIL)
reject_case("HDR-002", A, "tab between field name and colon: 400", "RFC 9112 §5.1", "MUST",
            raw_get(b"X-A\t: 1"), close_only=FAIL)
reject_case("HDR-003", A, "space before colon in Host: 400", "RFC 9112 §5.1", "MUST",
            b"GET / HTTP/1.1\r\nHost : 127.0.0.1\r\nConnection: close\r\n\r\n", close_only=FAIL)
reject_case("HDR-004", A, "non-token character in a field name is refused", "RFC 9110 §5.1", "SHOULD",
            raw_get(b"X@A: 1"), accept=lenient_ok("invalid field name accepted"))
reject_case("HDR-005", A, "field line without a colon is refused", "RFC 9112 §5", "SHOULD", raw_get(b"X-A 1"))
reject_case("HDR-006", A, "empty field name is refused", "RFC 9112 §5", "SHOULD", raw_get(b": 1"))
reject_case("HDR-007", A, "field name with a space inside is refused", "RFC 9110 §5.1", "SHOULD", raw_get(b"X A: 1"))
reject_case("HDR-008", A, "non-ASCII byte in a field name is refused", "RFC 9110 §5.1", "SHOULD",
            raw_get(b"X-\xc3\xa9: 1"), accept=lenient_ok("invalid field name accepted"))


def value_case(id, title, source, level, line, expect_value, name="x-a", reject_ok=True, also_ok=(), pattern=None):
    """Send `line` to /echo: pass if the server refuses it (when reject_ok) or shows the
    field with `expect_value` (or one of also_ok, or a value matching the regex `pattern`)."""
    @case(id, A, title, source, level, needs=("echo-headers",))
    def run(ctx):
        ex = ctx.send(raw_get(line, target=b"/echo"))
        r = ex.first
        if r is not None and r.status == 200:
            vals = [v for k, v in echo_lines(r) if k == name]
            if expect_value is None:
                return fail(f"accepted; /echo shows {vals!r}") if vals else ok("field dropped")
            if vals and (vals[0] == expect_value or vals[0] in also_ok
                         or (pattern is not None and re.fullmatch(pattern, vals[0]))):
                return ok(f"{name}: {vals[0]!r}")
            return fail(f"/echo shows {name}={vals!r}, expected {expect_value!r}")
        if reject_ok:
            return judge_reject(ex, (400,))
        return fail(f"expected 200, got {ex.describe()}")
    return run


def fold_case(id, title, line):
    """RFC 9112 §5.2: a server "MUST either reject the message by sending a 400 (Bad Request)
    ... or replace each received obs-fold with one or more SP octets prior to interpreting the
    field value or forwarding the message downstream". obs-fold = OWS CRLF RWS: the
    whitespace that starts the next line belongs to it. A value that keeps an HTAB of the fold
    reads the same (whitespace) but is not what the text says: warn."""
    @case(id, A, title, "RFC 9112 §5.2", "MUST", needs=("echo-headers",))
    def run(ctx):
        ex = ctx.send(raw_get(line, target=b"/echo"))
        r = ex.first
        if r is not None and r.status == 200:
            vals = [v for k, v in echo_lines(r) if k == "x-a"]
            if vals and re.fullmatch("a +b", vals[0]):
                return ok(f"x-a: {vals[0]!r}")
            if vals and re.fullmatch("a[ \t]+b", vals[0]):
                return warn(f"x-a: {vals[0]!r}: the fold became whitespace but an HTAB of it was kept (each obs-fold, "
                            "its leading whitespace included, is to become SP octets)")
            return fail(f"/echo shows x-a={vals!r}, expected 'a b' (one or more SP) or a 400")
        return judge_reject(ex, (400,))
    return run


fold_case("HDR-009", "obs-fold is refused or replaced by one or more SP", b"X-A: a\r\n b")
fold_case("HDR-010", "obs-fold with a tab is refused or replaced by one or more SP", b"X-A: a\r\n\tb")
value_case("HDR-011", "NUL in a field value is refused or replaced by SP", "RFC 9110 §5.5", "MUST",
           b"X-A: a\x00b", "a b")
value_case("HDR-012", "bare CR in a field value is refused or replaced by SP", "RFC 9112 §2.2", "MUST",
           b"X-A: a\rb", "a b")
value_case("HDR-013", "leading and trailing whitespace is not part of the value", "RFC 9112 §5.1", "MUST",
           b"X-A: \t  v v \t ", "v v", reject_ok=False)
value_case("HDR-014", "no space after the colon is fine", "RFC 9112 §5.1", "MUST", b"X-A:v", "v", reject_ok=False)
value_case("HDR-015", "empty field value is kept", "RFC 9110 §5.5", "SHOULD", b"X-A:", "", reject_ok=False)
value_case("HDR-016", "obs-text (0x80-0xFF) in a value is accepted", "RFC 9110 §5.5", "MAY",
           b"X-A: caf\xc3\xa9", "caf\xc3\xa9", reject_ok=True)
value_case("HDR-017", "underscore in a field name is a token character", "RFC 9110 §5.1", "SHOULD",
           b"X_A: 1", "1", name="x_a", reject_ok=False)
value_case("HDR-018", "quoted-string value passes through untouched", "RFC 9110 §5.6.4", "MUST",
           b'X-A: "a, b" ; c', '"a, b" ; c', reject_ok=False)


@case("HDR-019", A, "control character 0x01 in a value: refused or kept", "RFC 9110 §5.5", "MAY", needs=("echo-headers",))
def _(ctx):
    ex = ctx.send(raw_get(b"X-A: a\x01b", target=b"/echo"))
    r = ex.first
    if r is not None and r.status == 200:
        return warn("accepted a CTL in a field value (MAY retain)")
    return judge_reject(ex, (400,))


@case("HDR-020", A, "duplicate fields are all delivered, in order", TORNADO, "MUST", needs=("echo-headers",))
def _(ctx):
    r = ctx.send(raw_get(b"X-Dup: 1", b"X-Other: z", b"X-Dup: 2", target=b"/echo")).first
    if r is None or r.status != 200:
        return fail(f"expected 200, got {r.summary() if r else 'nothing'}")
    vals = [v for k, v in echo_lines(r) if k == "x-dup"]
    if vals == ["1", "2"]:
        return ok("X-Dup: 1 and X-Dup: 2")
    if vals == ["1, 2"] or vals == ["1,2"]:
        return ok("combined as one list value")
    return fail(f"/echo shows X-Dup {vals!r}")


@case("HDR-021", A, "/echo lists fields in the order received", TORNADO, "MUST", needs=("echo-headers",))
def _(ctx):
    r = ctx.send(raw_get(b"X-Zed: 1", b"X-Alpha: 2", b"X-Mid: 3", target=b"/echo")).first
    if r is None or r.status != 200:
        return fail("expected 200")
    names = [k for k, _ in echo_lines(r) if k.startswith("x-")]
    return ok(", ".join(names)) if names == ["x-zed", "x-alpha", "x-mid"] else fail(f"order {names}")


@case("HDR-022", A, "field names are case-insensitive ('host', 'CONTENT-LENGTH')", "RFC 9110 §5.1", "MUST", needs=("echo",))
def _(ctx):
    ex = ctx.send(b"POST / HTTP/1.1\r\nhost: 127.0.0.1\r\nCONTENT-LENGTH: 3\r\nconnection: close\r\n\r\nabc",
                  methods=("POST",))
    return judge_status(ex, 200, "abc")


@case("HDR-023", A, "100 ordinary header fields are accepted", "RFC 9110 §5.4", "SHOULD", needs=("root-get",))
def _(ctx):
    return judge_status(ctx.send(raw_get(*[b"X-H%d: %d" % (i, i) for i in range(100)])), 200, "OK")


@case("HDR-024", A, "an 8000-byte field value is accepted", "RFC 9110 §5.4", "MAY", needs=("root-get",))
def _(ctx):
    ex = ctx.send(raw_get(b"X-Long: " + b"v" * 8000))
    r = ex.first
    if r is not None and r.status in (431, 400):
        return warn(f"{r.summary()}: refused an 8 KB field")
    return judge_status(ex, 200, "OK")


reject_case("HDR-025", A, "HTTP/1.1 request without Host: 400", "RFC 9112 §3.2", "MUST",
            b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", close_only=FAIL)
reject_case("HDR-026", A, "two Host fields: 400", "RFC 9112 §3.2", "MUST",
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: example.com\r\nConnection: close\r\n\r\n", close_only=FAIL)
reject_case("HDR-027", A, "Host with a space inside: 400", "RFC 9112 §3.2", "MUST",
            b"GET / HTTP/1.1\r\nHost: exa mple.com\r\nConnection: close\r\n\r\n", close_only=FAIL)
reject_case("HDR-028", A, "Host with a list of two hosts: 400", "RFC 9112 §3.2", "MUST",
            b"GET / HTTP/1.1\r\nHost: a.example, b.example\r\nConnection: close\r\n\r\n", close_only=FAIL)
reject_case("HDR-029", A, "Host with userinfo: 400", "RFC 9110 §7.2", "SHOULD",
            b"GET / HTTP/1.1\r\nHost: user@127.0.0.1\r\nConnection: close\r\n\r\n")
reject_case("HDR-030", A, "Host with a non-numeric port: 400", "RFC 9110 §7.2", "SHOULD",
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1:http\r\nConnection: close\r\n\r\n")
reject_case("HDR-031", A, "Host with a slash (path) in it: 400", "RFC 9110 §7.2", "SHOULD",
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1/evil\r\nConnection: close\r\n\r\n")


@case("HDR-032", A, "Host with a port is accepted", "RFC 9110 §7.2", "MUST", needs=("root-get",))
def _(ctx):
    return judge_status(ctx.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\n\r\n"), 200, "OK")


@case("HDR-033", A, "empty Host value is accepted", "RFC 9110 §7.2", "SHOULD", needs=("root-get",))
def _(ctx):
    ex = ctx.send(b"GET / HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n")
    r = ex.first
    if r is not None and r.status == 400:
        return warn("400 for an empty Host (allowed, but RFC 9110 §7.2 defines it)")
    return judge_status(ex, 200, "OK")


@case("HDR-034", A, "IPv6 literal Host is accepted", "RFC 9110 §7.2", "SHOULD", needs=("root-get",))
def _(ctx):
    return judge_status(ctx.send(b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n"), 200, "OK")


@case("HDR-035", A, "Host name is case-insensitive and may have a trailing dot", "RFC 9110 §4.2.3", "SHOULD", needs=("root-get",))
def _(ctx):
    return judge_status(ctx.send(b"GET / HTTP/1.1\r\nHost: LOCALHOST.\r\nConnection: close\r\n\r\n"), 200, "OK")


reject_case("HDR-036", A, "header section ended by a line with only spaces is refused", "RFC 9112 §2.2", "SHOULD",
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n \r\n\r\n")
reject_case("HDR-037", A, "field value with a bare LF continuation is refused", "RFC 9112 §5.2", "SHOULD",
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\n b\r\nConnection: close\r\n\r\n",
            accept=accepted_ok("bare LF taken as a line end and the fold replaced (MAY)"))


@case("HDR-038", A, "Cookie fields reach the app (/cookie)", TORNADO, "MUST", needs=("cookie",))
def _(ctx):
    return judge_status(ctx.send(raw_get(b"Cookie: a=1; b=2", target=b"/cookie")), 200, "a=1\nb=2\n")


# ---- the valid forms beside the refusals above ------------------------------------------------

value_case("HDR-039", "HTAB as OWS before and after a value", "RFC 9112 §5.1, RFC 9110 §2.2", "MUST", b"X-A:\tv\t", "v",
           reject_ok=False)
value_case("HDR-040", "HTAB inside a field value is accepted", "RFC 9110 §5.5", "MUST", b"X-A: a\tb", "a\tb",
           reject_ok=False, also_ok=("a b",))


@case("HDR-041", A, "Host with HTAB and SP as OWS is accepted", "RFC 9112 §5.1, RFC 9110 §2.2", "MUST",
      needs=("root-get",))
def _(ctx):
    return judge_status(ctx.send(b"GET / HTTP/1.1\r\nHost:\t127.0.0.1 \t\r\nConnection: close\r\n\r\n"), 200, "OK")
