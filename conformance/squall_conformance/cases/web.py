"""Web semantics of the contract app (contracts.md §1), as Tornado's web layer defines them."""
import gzip
import hashlib
import json
import re
import zlib

from ._helpers import CLOSE, TORNADO, case, converse, fail, judge_status, ok, req, warn

A = "web"
PATTERN = b"0123456789abcdef"
GZIP_BODY = b"Squall compresses this line when the client accepts gzip.\n" * 200


def get_json(ctx, target, *headers, method="GET", body=b""):
    ex = ctx.send(req(method, target, CLOSE, *headers, body=body), methods=(method,))
    r = ex.first
    if r is None or r.status != 200:
        return None, fail(f"expected 200, got {ex.describe()}" + (f" {r.body[:80]!r}" if r else ""))
    try:
        return json.loads(r.body), None
    except ValueError:
        return None, fail(f"not JSON: {r.body[:80]!r}")


def json_case(id, title, target, expect, needs, method="GET", headers=(), body=b"", source=TORNADO, level="MUST"):
    @case(id, A, title, source, level, needs=needs)
    def run(ctx):
        got, bad = get_json(ctx, target, *headers, method=method, body=body)
        if bad:
            return bad
        return ok(json.dumps(got)[:80]) if got == expect else fail(f"got {json.dumps(got)[:120]}, expected {json.dumps(expect)[:120]}")
    return run


def status_case(id, title, target, code, needs, method="GET", body=None, source=TORNADO, level="MUST"):
    @case(id, A, title, source, level, needs=needs)
    def run(ctx):
        return judge_status(ctx.send(req(method, target, CLOSE), methods=(method,)), code, body)
    return run


status_case("WEB-001", "GET / → 200 OK", "/", 200, ("root-get",), body="OK")
status_case("WEB-002", "GET /plaintext → Hello, World!", "/plaintext", 200, ("plaintext",), body="Hello, World!")


@case("WEB-003", A, "GET /json → application/json message", TORNADO, "MUST", needs=("json",))
def _(ctx):
    return judge_status(ctx.get("/json"), 200, '{"message":"Hello, World!"}', ctype="application/json")


status_case("WEB-004", "OPTIONS / → 200 OK", "/", 200, ("root-get", "405"), method="OPTIONS", body="OK")
status_case("WEB-005", "unknown path → 404", "/no/such/path", 404, ("404",))
status_case("WEB-006", "trailing slash is a different path → 404", "/plaintext/", 404, ("404",))
status_case("WEB-007", "DELETE / → 405", "/", 405, ("405",), method="DELETE")
status_case("WEB-008", "POST /plaintext → 405", "/plaintext", 405, ("405",), method="POST")
status_case("WEB-009", "PUT /json → 405", "/json", 405, ("405",), method="PUT")


@case("WEB-010", A, "405 carries an Allow header", "RFC 9110 §15.5.6", "MUST", needs=("405",))
def _(ctx):
    r = ctx.send(req("DELETE", "/", CLOSE), methods=("DELETE",)).first
    if r is None or r.status != 405:
        return fail(f"expected 405, got {r.summary() if r else 'nothing'}")
    a = r.header("allow")
    return ok(f"Allow: {a}") if a else fail("405 without Allow")


json_case("WEB-011", "positional path arguments", "/path/abc/42", ["abc", "42"], ("path",))
json_case("WEB-012", "positional path arguments are percent-decoded", "/path/a%20b%2Bc/7", ["a b+c", "7"], ("path",))
json_case("WEB-013", "UTF-8 percent-encoded path argument", "/path/%E2%9C%93/1", ["\u2713", "1"], ("path",))
json_case("WEB-014", "encoded slash matches [^/]+ then decodes", "/path/a%2Fb/1", ["a/b", "1"], ("path",))
json_case("WEB-015", "named path arguments", "/named/x/y", {"first": "x", "second": "y"}, ("named",))
json_case("WEB-016", "named path arguments are percent-decoded", "/named/x%20y/%C3%A9", {"first": "x y", "second": "\u00e9"}, ("named",))
json_case("WEB-017", "query string does not leak into path arguments", "/path/a/1?z=9", ["a", "1"], ("path",))
status_case("WEB-018", "path argument not matching its pattern → 404", "/path/a/xyz", 404, ("path", "404"))
json_case("WEB-019", "multi-valued query arguments", "/args?a=1&a=2&b=3", {"a": ["1", "2"], "b": ["3"]}, ("args",))
json_case("WEB-020", "blank query values are kept", "/args?a=&b=1", {"a": [""], "b": ["1"]}, ("args",))
json_case("WEB-021", "'+' and %20 decode to space in query values", "/args?q=a+b%20c", {"q": ["a b c"]}, ("args",))
json_case("WEB-022", "UTF-8 percent-encoded query values", "/args?k=v%E2%9C%93", {"k": ["v\u2713"]}, ("args",))
json_case("WEB-023", "urlencoded POST body merges with the query", "/args?a=1", {"a": ["1", "2"], "b": ["x y"]}, ("args",),
          method="POST", headers=("Content-Type: application/x-www-form-urlencoded",), body=b"a=2&b=x+y")
json_case("WEB-024", "POST body without form Content-Type is not parsed", "/args?a=1", {"a": ["1"]}, ("args",),
          method="POST", headers=("Content-Type: text/plain",), body=b"b=2")
json_case("WEB-025", "/form: urlencoded fields", "/form", {"fields": {"x": ["1", "2"], "y": [""]}, "files": []}, ("form",),
          method="POST", headers=("Content-Type: application/x-www-form-urlencoded",), body=b"x=1&x=2&y=")

MP = (b"--BOUND\r\nContent-Disposition: form-data; name=\"field\"\r\n\r\nvalue\r\n"
      b"--BOUND\r\nContent-Disposition: form-data; name=\"up\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\n"
      b"hello file\r\n"
      b"--BOUND\r\nContent-Disposition: form-data; name=\"up\"; filename=\"b.bin\"\r\n"
      b"Content-Type: application/octet-stream\r\n\r\n\x00\x01\x02\r\n--BOUND--\r\n")
json_case("WEB-026", "/form: multipart fields and files", "/form",
          {"fields": {"field": ["value"]}, "files": [
              {"name": "up", "filename": "a.txt", "content_type": "text/plain", "size": 10},
              {"name": "up", "filename": "b.bin", "content_type": "application/octet-stream", "size": 3}]},
          ("form",), method="POST", headers=("Content-Type: multipart/form-data; boundary=BOUND",), body=MP)
json_case("WEB-027", "/form: quoted multipart boundary", "/form", {"fields": {"field": ["value"]}, "files": []}, ("form",),
          method="POST", headers=('Content-Type: multipart/form-data; boundary="BOUND"',),
          body=b"--BOUND\r\nContent-Disposition: form-data; name=\"field\"\r\n\r\nvalue\r\n--BOUND--\r\n")


def cookie_case(id, title, header, expect):
    @case(id, A, title, TORNADO, "MUST", needs=("cookie",))
    def run(ctx):
        hs = (header,) if header else ()
        return judge_status(ctx.send(req("GET", "/cookie", CLOSE, *hs)), 200, expect)
    return run


cookie_case("WEB-028", "cookies are parsed name=value", "Cookie: a=1; b=2", "a=1\nb=2\n")
cookie_case("WEB-029", "no Cookie header → no cookies", None, "")
cookie_case("WEB-030", "quoted cookie value is unquoted", 'Cookie: q="x y"', "q=x y\n")
cookie_case("WEB-031", "spaces around cookie pairs are trimmed; a pair without '=' is dropped",
            "Cookie:  a=1 ;b=2;  c", "a=1\nb=2\n")


@case("WEB-032", A, "/status/N answers N", TORNADO, "MUST", needs=("status",))
def _(ctx):
    for code in (200, 201, 404, 418, 503):
        r = ctx.get(f"/status/{code}").first
        if r is None or r.status != code:
            return fail(f"/status/{code}: {r.summary() if r else 'no response'}")
    return ok("200 201 404 418 503")


@case("WEB-033", A, "/bytes/N returns exactly N bytes with Content-Length", TORNADO, "MUST", needs=("bytes",))
def _(ctx):
    for n in (0, 1, 100, 65536, 1048576):
        r = ctx.send(req("GET", f"/bytes/{n}", CLOSE), timeout=10).first
        if r is None or r.status != 200:
            return fail(f"/bytes/{n}: {r.summary() if r else 'no response'}")
        if r.header("content-length") != str(n) or r.body != (PATTERN * (n // 16 + 1))[:n]:
            return fail(f"/bytes/{n}: Content-Length {r.header('content-length')}, {len(r.body)} bytes")
    return ok("0 1 100 64K 1M")


@case("WEB-034", A, "/stream/N is chunked on HTTP/1.1, one chunk per flush", TORNADO, "MUST", needs=("stream",))
def _(ctx):
    r = ctx.get("/stream/5").first
    if r is None or r.status != 200:
        return fail("expected 200")
    exp = b"".join(b"chunk %d\n" % i for i in range(5))
    if not r.chunked:
        return fail("not chunked")
    if r.body != exp:
        return fail(f"body {r.body[:80]!r}")
    return ok(f"{len(r.chunks)} chunks") if len(r.chunks) >= 5 else warn(f"only {len(r.chunks)} chunks for 5 flushes")


@case("WEB-035", A, "/stream/N on HTTP/1.0 is delimited by close", TORNADO, "MUST", needs=("stream",))
def _(ctx):
    ex = ctx.send(req("GET", "/stream/3", version="HTTP/1.0"), timeout=3)
    r = ex.first
    if r is None or r.status != 200:
        return fail(ex.describe())
    if r.chunked:
        return fail("chunked encoding sent to an HTTP/1.0 client")
    exp = b"chunk 0\nchunk 1\nchunk 2\n"
    return ok("close-delimited") if r.body == exp and ex.closed else fail(f"{r.body!r} closed={ex.closed}")


status_case("WEB-036", "/stream/0 is an empty 200", "/stream/0", 200, ("stream",), body="")


@case("WEB-037", A, "/gzip with Accept-Encoding: gzip is gzip-encoded", TORNADO, "MUST", needs=("gzip",))
def _(ctx):
    r = ctx.get("/gzip", "Accept-Encoding: gzip").first
    if r is None or r.status != 200:
        return fail("expected 200")
    if (r.header("content-encoding") or "").lower() != "gzip":
        return fail(f"Content-Encoding {r.header('content-encoding')!r}")
    try:
        body = gzip.decompress(r.body)
    except (OSError, EOFError, zlib.error) as e:
        return fail(f"not valid gzip: {e}")
    if body != GZIP_BODY:
        return fail("decompressed body differs")
    return ok(f"{len(r.body)} gzip bytes → {len(body)}")


@case("WEB-038", A, "/gzip without Accept-Encoding is identity", TORNADO, "MUST", needs=("gzip",))
def _(ctx):
    r = ctx.get("/gzip").first
    if r is None or r.status != 200:
        return fail("expected 200")
    if r.header("content-encoding"):
        return fail(f"Content-Encoding {r.header('content-encoding')} without Accept-Encoding")
    return ok("identity") if r.body == GZIP_BODY else fail("body differs")


@case("WEB-039", A, "gzip responses carry Vary: Accept-Encoding", "RFC 9110 §12.5.5", "SHOULD", needs=("gzip",))
def _(ctx):
    r = ctx.get("/gzip", "Accept-Encoding: gzip").first
    if r is None:
        return fail("no response")
    return ok("Vary present") if r.has_token("vary", "accept-encoding") else fail("no Vary: Accept-Encoding")


@case("WEB-040", A, "Accept-Encoding: gzip;q=0 refuses gzip", "RFC 9110 §12.5.3", "SHOULD", needs=("gzip",))
def _(ctx):
    r = ctx.get("/gzip", "Accept-Encoding: gzip;q=0").first
    if r is None:
        return fail("no response")
    return fail("gzip sent although q=0") if (r.header("content-encoding") or "").lower() == "gzip" else ok("identity")


@case("WEB-041", A, "/redirect/N → 302 to /redirect/N-1; /redirect/0 → 200", TORNADO, "MUST", needs=("redirect",))
def _(ctx):
    r = ctx.get("/redirect/3").first
    if r is None or r.status != 302:
        return fail(f"expected 302, got {r.summary() if r else 'nothing'}")
    loc = r.header("location") or ""
    if not loc.endswith("/redirect/2"):
        return fail(f"Location {loc!r}")
    r0 = ctx.get("/redirect/0").first
    return ok(f"Location {loc}") if r0 and r0.status == 200 else fail("/redirect/0 not 200")


@case("WEB-042", A, "/error → plain 500 without internal detail", TORNADO, "MUST", needs=("error",))
def _(ctx):
    r = ctx.get("/error").first
    if r is None or r.status != 500:
        return fail(f"expected 500, got {r.summary() if r else 'nothing'}")
    low = r.body.lower()
    for leak in (b"intentional", b"traceback", b"runtimeerror", b"runtime_error", b"exception", b".py", b".cc"):
        if leak in low:
            return fail(f"500 body leaks {leak.decode()!r}")
    return ok(f"500, {len(r.body)}-byte body")


@case("WEB-043", A, "the connection survives a 500", TORNADO, "MUST", needs=("error", "plaintext"))
def _(ctx):
    ex = ctx.send(req("GET", "/error") + req("GET", "/plaintext", CLOSE), methods=("GET", "GET"), expect=2)
    s = [r.status for r in ex.finals]
    return ok("500 then 200") if s == [500, 200] else fail(f"got {s}")


@case("WEB-044", A, "/httperror/N answers N", TORNADO, "MUST", needs=("httperror",))
def _(ctx):
    for code in (400, 403, 404, 409, 503):
        r = ctx.get(f"/httperror/{code}").first
        if r is None or r.status != code:
            return fail(f"/httperror/{code}: {r.summary() if r else 'no response'}")
    return ok("400 403 404 409 503")


def upload(ctx, body, chunked_=False, extra=()):
    if chunked_:
        data = req("PUT", "/upload", CLOSE, "Transfer-Encoding: chunked", *extra) + b"".join(
            b"%x\r\n" % len(body[i:i + 65536]) + body[i:i + 65536] + b"\r\n" for i in range(0, len(body), 65536)) + b"0\r\n\r\n"
    else:
        data = req("PUT", "/upload", CLOSE, *extra, body=body)
    return ctx.send(data, methods=("PUT",), timeout=20)


def upload_case(id, title, size, chunked_=False):
    @case(id, A, title, TORNADO, "MUST", needs=("upload",))
    def run(ctx):
        blob = hashlib.sha256(b"seed").digest() * (size // 32) + b"z" * (size % 32)
        r = upload(ctx, blob, chunked_).first
        if r is None or r.status != 200:
            return fail(f"got {r.summary() if r else 'nothing'}")
        try:
            got = json.loads(r.body)
        except ValueError:
            return fail(f"not JSON: {r.body[:60]!r}")
        exp = {"bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}
        return ok(f"{len(blob)} bytes, sha256 matches") if got == exp else fail(f"got {got}")
    return run


upload_case("WEB-045", "streamed PUT /upload: byte count and SHA-256", 4 * 1024 * 1024)
upload_case("WEB-046", "streamed chunked PUT /upload", 3 * 1024 * 1024 + 7, chunked_=True)
upload_case("WEB-047", "empty PUT /upload", 0)


@case("WEB-048", A, "/echo returns the request headers as Name: Value lines", TORNADO, "MUST", needs=("echo-headers",))
def _(ctx):
    r = ctx.send(req("GET", "/echo", "X-One: 1", "X-Two: two words", CLOSE)).first
    if r is None or r.status != 200:
        return fail("expected 200")
    lines = [l.lower() for l in r.body.decode("latin-1").splitlines()]
    need = ["host: 127.0.0.1", "x-one: 1", "x-two: two words", "connection: close"]
    return ok("all fields echoed") if lines == need else fail(f"got {lines}")


status_case("WEB-049", "HEAD /plaintext (GET only in the contract) → 405", "/plaintext", 405, ("405",), method="HEAD")


@case("WEB-050", A, "redirect responses carry Location on HTTP/1.0 too", TORNADO, "MUST", needs=("redirect",))
def _(ctx):
    r = ctx.send(req("GET", "/redirect/1", version="HTTP/1.0")).first
    return ok("302 with Location") if r and r.status == 302 and r.header("location") else fail(
        f"got {r.summary() if r else 'nothing'}")


@case("WEB-060", A, "responses carry a Date field (2xx and 4xx)", "RFC 9110 §6.6.1", "SHOULD", needs=("root-get",),
      note="a MUST for an origin server with a clock, which the suite cannot know it has; every other case "
      "records a missing Date in its lint notes without changing its verdict")
def _(ctx):
    missing = []
    for what, data in (("200 to GET /", req("GET", "/", CLOSE)),
                       ("the answer to a request with an invalid field line",
                        req("GET", "/", b"Bad Header Line", CLOSE))):
        ex = ctx.send(data)
        r = ex.first
        if r is not None and 200 <= r.status < 500 and r.header("date") is None:
            missing.append(f"{r.summary()} ({what})")
    if missing:
        return warn("no Date field in: " + "; ".join(missing))
    return ok("Date present")


# ---- contract endpoints checked exactly (CONTRACTS.md §1.2) ---------------------------------
# Each states what the contract's table says, no more; where the table is silent or ambiguous
# the case accepts every reading and its note names the sentence the contract lacks.

C1 = "contracts.md §1"


# No Connection field: a gateway in front of the app MUST remove it (RFC 9110 §7.6.1), so the app
# could not echo it; the request is read to its response without a close.
ECHO_FIELDS = [b"Host: 127.0.0.1", b"X-MiXeD-CaSe: One Two", b"x-dup: first", b"X-Spaced:  \t inner  value\t ",
               b"X-DUP: second", b"x-empty:", b"X-Sym: a=b; c=\"d, e\"", b"Accept: */*"]
# "x-empty:" has an empty value: "Name: Value" with one space after the colon gives "x-empty: ";
# the contract does not say whether that space is kept for an empty value: both accepted.
ECHO_WANT = [b"Host: 127.0.0.1", b"X-MiXeD-CaSe: One Two", b"x-dup: first", b"X-Spaced: inner  value",
             b"X-DUP: second", (b"x-empty: ", b"x-empty:"), b"X-Sym: a=b; c=\"d, e\"", b"Accept: */*"]


def grouped(lines):
    """Lines with every repeated name moved up to its first occurrence (Tornado's HTTPHeaders
    order: names in first-appearance order, each name's values in the order received)."""
    order, by = [], {}
    for line in lines:
        name = (line[0] if isinstance(line, tuple) else line).partition(b":")[0].lower()
        if name not in by:
            order.append(name)
            by[name] = []
        by[name].append(line)
    return [x for n in order for x in by[n]]


def echo_exact(ctx, loose):
    """GET /echo with ECHO_FIELDS: (None or a failure, response). Exact: ECHO_WANT line for line.
    Loose: names compared ignoring case, and repeated names may be grouped at their first
    occurrence (the Tornado peer's order)."""
    ex = ctx.send(b"GET /echo HTTP/1.1\r\n" + b"".join(f + b"\r\n" for f in ECHO_FIELDS) + b"\r\n")
    r = ex.first
    if r is None or r.status != 200:
        return fail(f"expected 200, got {ex.describe()}"), r
    if not (r.header("content-type") or "").lower().startswith("text/plain"):
        return fail(f"Content-Type {r.header('content-type')!r}, expected text/plain"), r
    if not r.body.endswith(b"\n"):
        return fail(f"the body does not end with a line feed: {r.body[-20:]!r}"), r
    got = r.body[:-1].split(b"\n")

    def same(a, b):
        if a is None or b is None:
            return a is b
        if not loose:
            return a == b
        an, _, av = a.partition(b":")
        bn, _, bv = b.partition(b":")
        return an.lower() == bn.lower() and av == bv

    def first_difference(want):
        for i in range(max(len(got), len(want))):
            g = got[i] if i < len(got) else None
            w = want[i] if i < len(want) else None
            alts = w if isinstance(w, tuple) else (w,)
            if not any(same(g, a) for a in alts):
                return (f"line {i + 1}: {g if g is not None else b'(missing)'!r}, expected "
                        f"{alts[0] if alts[0] is not None else b'(nothing)'!r}")
        return None
    bad = first_difference(ECHO_WANT)
    if bad and loose and first_difference(grouped(ECHO_WANT)) is None:
        return None, r
    return (fail(bad) if bad else None), r


@case("WEB-061", A, "/echo: every field, duplicates kept, values trimmed, one line each", C1, "MUST",
      needs=("echo-headers",),
      note="contract: one line `Name: Value\\n` per field, in the order received, duplicates kept, one space after "
      "the colon, the value without leading/trailing whitespace. Compared here with names ignoring case and with "
      "a repeated name's lines allowed together at its first place, as the Tornado peer gives them; WEB-076 checks "
      "the names' case and the interleaved order")
def _(ctx):
    v, r = echo_exact(ctx, loose=True)
    return v or ok(f"{len(ECHO_FIELDS)} fields, values exact")


@case("WEB-076", A, "/echo: byte for byte (names' case kept, fields in the order received)", C1, "SHOULD",
      needs=("echo-headers",),
      note="CONTRACTS.md §1.2 says \"in the order received, duplicates kept, the name as received (case kept)\", but "
      "its yardstick, the Tornado peer, cannot: Tornado's HTTPHeaders normalizes names (X-Mixed-Case) and groups a "
      "repeated name at its first occurrence. SHOULD until the contract and the peer agree: either the contract "
      "allows both, or the peer keeps the bytes")
def _(ctx):
    v, r = echo_exact(ctx, loose=False)
    return v or ok(f"{len(ECHO_FIELDS)} lines byte for byte")


@case("WEB-062", A, "/cookie: every cookie in order, values unquoted, blank values kept, text/plain", C1, "MUST",
      needs=("cookie",))
def _(ctx):
    ex = ctx.send(req("GET", "/cookie", 'Cookie: z=26; a=1;m=13 ; blank=; q="quoted value"; last=x', CLOSE))
    return judge_status(ex, 200, "z=26\na=1\nm=13\nblank=\nq=quoted value\nlast=x\n", ctype="text/plain")


@case("WEB-063", A, "/cookie: a repeated cookie name (contract silent: every reading accepted)", C1, "MUST",
      needs=("cookie",),
      note="CONTRACTS.md §1.2 says \"one line name=value per cookie ... in order\" but not what a repeated name gives; "
      "accepted: every pair in order (a=1, b=2, a=3), the last value at the first place (a=3, b=2: Tornado's dict), "
      "the last value at the last place, the first value only (a=1, b=2). Sentence to add: \"a repeated name gives "
      "one line per pair, in order\" (or the reading chosen)")
def _(ctx):
    ex = ctx.send(req("GET", "/cookie", "Cookie: a=1; b=2; a=3", CLOSE))
    r = ex.first
    if r is None or r.status != 200:
        return fail(f"expected 200, got {ex.describe()}")
    readings = {b"a=1\nb=2\na=3\n": "every pair in order", b"a=3\nb=2\n": "last value wins, first place",
                b"b=2\na=3\n": "last value wins, last place", b"a=1\nb=2\n": "first value wins"}
    if r.body in readings:
        return ok(f"{readings[r.body]}: {r.body!r}")
    return fail(f"body {r.body!r} is none of the readings of the contract")


@case("WEB-064", A, "/bytes/N: exact length and pattern for 16, 1000 and 4096 too", C1, "MUST", needs=("bytes",))
def _(ctx):
    for n in (16, 1000, 4096):
        ex = ctx.send(req("GET", f"/bytes/{n}", CLOSE), timeout=10)
        r = ex.first
        if r is None or r.status != 200:
            return fail(f"/bytes/{n}: {ex.describe()}")
        if r.header_all("content-length") != [str(n)]:
            return fail(f"/bytes/{n}: Content-Length {r.header_all('content-length')}, expected exactly one, {n}")
        want = (PATTERN * (n // 16 + 1))[:n]
        if r.body != want:
            at = next((i for i, (a, b) in enumerate(zip(r.body, want)) if a != b), min(len(r.body), n))
            return fail(f"/bytes/{n}: {len(r.body)} bytes, first difference at offset {at}")
    return ok("16 1000 4096: exact")


def stream_chunks(ctx, n):
    """GET /stream/N read with a pause: the request, then 0.6 s without reading, then all of it."""
    ex, _ = converse(ctx, [("send", req("GET", f"/stream/{n}", CLOSE)), ("wait", 0.6), ("read", 5.0, 1)])
    return ex


@case("WEB-065", A, "/stream/N: each line its own chunk, read after a pause", C1, "MUST", needs=("stream",),
      note="contract: chunked with at least N chunks on HTTP/1.1, fewer is a warning; read here after a 0.6 s pause "
      "so that a server which coalesces pending writes shows it; a line split over chunks is allowed (at least N)")
def _(ctx):
    n = 12
    ex = stream_chunks(ctx, n)
    r = ex.first
    if r is None or r.status != 200 or not r.complete:
        return fail(f"expected a complete 200, got {ex.describe()}")
    lines = [b"chunk %d\n" % i for i in range(n)]
    if r.body != b"".join(lines):
        return fail(f"body {r.body[:60]!r}... is not chunk 0..chunk {n - 1}")
    if not r.chunked:
        return fail("not chunked on HTTP/1.1")
    sizes = [len(x) for x in lines]
    if r.chunks == sizes:
        return ok(f"exactly {n} chunks, one line each")
    # boundaries: every line end must be a chunk end
    ends, total = set(), 0
    for c in r.chunks:
        total += c
        ends.add(total)
    line_ends, total = [], 0
    for s in sizes:
        total += s
        line_ends.append(total)
    merged = [i for i, e in enumerate(line_ends) if e not in ends]
    if not merged:
        return ok(f"{len(r.chunks)} chunks, every line ends a chunk (lines split further: allowed, at least N)")
    return warn(f"{len(r.chunks)} chunks for {n} flushes: line(s) {merged[:5]} share a chunk with the next "
                "(the contract: fewer than N chunks is a warning)")


def upload_check(ex, blob):
    """The /upload answer: 200, a JSON object with exactly `bytes` and `sha256` (64 lower-case
    hex digits) for `blob`."""
    r = ex.first
    if r is None or r.status != 200:
        return fail(f"expected 200, got {ex.describe()}")
    try:
        got = json.loads(r.body)
    except ValueError:
        return fail(f"not JSON: {r.body[:60]!r}")
    if not isinstance(got, dict) or sorted(got) != ["bytes", "sha256"]:
        return fail(f"members {sorted(got) if isinstance(got, dict) else type(got).__name__}, expected bytes and sha256")
    if not isinstance(got["sha256"], str) or not re.fullmatch("[0-9a-f]{64}", got["sha256"]):
        return fail(f"sha256 {got['sha256']!r} is not 64 lower-case hex digits")
    exp = {"bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}
    if got != exp:
        return fail(f"got {got}, expected {exp}")
    return ok(f"{len(blob)} bytes, sha256 matches")


@case("WEB-066", A, "/upload: Content-Length body in 40 pieces with pauses", C1, "MUST", needs=("upload",),
      note="contract: 200, exactly {\"bytes\": N, \"sha256\": \"<64 lower-case hex digits>\"}; compared as JSON (the "
      "contract does not fix the spacing: a sentence \"compared as JSON, not byte for byte\" would say so)")
def _(ctx):
    blob = bytes((i * 7 + 3) % 256 for i in range(40 * 1021 + 5))
    head = req("PUT", "/upload", "Content-Length: %d" % len(blob), CLOSE)
    step = len(blob) // 40 + 1
    ex = ctx.send([head] + [blob[i:i + step] for i in range(0, len(blob), step)], methods=("PUT",), pause=0.01,
                  timeout=10)
    return upload_check(ex, blob)


@case("WEB-067", A, "/upload: chunked body of odd-sized chunks in separate writes, the last chunk on its own",
      C1, "MUST", needs=("upload",))
def _(ctx):
    sizes = [1, 2, 15, 16, 17, 255, 4096, 8191, 1, 65537, 3, 0]
    blob, pieces, off = bytearray(), [req("PUT", "/upload", "Transfer-Encoding: chunked", CLOSE)], 0
    for n in sizes[:-1]:
        data = bytes((off + i) % 251 for i in range(n))
        off += n
        blob += data
        pieces.append(b"%x\r\n" % n + data + b"\r\n")
    pieces.append(b"0\r\n\r\n")   # the empty last piece, written alone after a pause
    ex = ctx.send(pieces, methods=("PUT",), pause=0.02, timeout=10)
    return upload_check(ex, bytes(blob))


@case("WEB-068", A, "/upload: empty chunked body (only the last chunk)", C1, "MUST", needs=("upload",))
def _(ctx):
    ex = ctx.send(req("PUT", "/upload", "Transfer-Encoding: chunked", CLOSE) + b"0\r\n\r\n", methods=("PUT",))
    return upload_check(ex, b"")


json_case("WEB-069", "/args: repeated keys in the query and the urlencoded body, query first", "/args?a=1&b=2&a=3",
          {"a": ["1", "3", "4", "6"], "b": ["2"], "c": ["5"]}, ("args",), method="POST",
          headers=("Content-Type: application/x-www-form-urlencoded",), body=b"a=4&c=5&a=6", source=C1)
json_case("WEB-070", "/args: multipart body fields after the query's", "/args?a=1",
          {"a": ["1", "2"], "b": ["x y"]}, ("args",), method="POST",
          headers=("Content-Type: multipart/form-data; boundary=AaB03x",), source=C1,
          body=b"--AaB03x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n2\r\n"
               b"--AaB03x\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\nx y\r\n--AaB03x--\r\n")

# CRLFs and a line that is a truncated delimiter: not a delimiter (RFC 2046 §5.1.1: the delimiter
# is CRLF "--" boundary). The boundary never occurs whole in the content: what a sender must do.
BIG = bytes(range(256)) * 400 + b"\r\n--BOUNDAR\r\n" + b"x" * 999
MP_FILES = (b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n\r\n"
            b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"big\"; filename=\"big.bin\"\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n" + BIG + b"\r\n"
            b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"empty\"; filename=\"empty.txt\"\r\n"
            b"Content-Type: text/plain\r\n\r\n\r\n"
            b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nsecond\r\n--BOUNDARY--\r\n")
json_case("WEB-071", "/form: multipart file sizes exact (a 100 KiB file with CRLFs and a near-delimiter, an empty file)",
          "/form", {"fields": {"note": ["", "second"]}, "files": [
              {"name": "big", "filename": "big.bin", "content_type": "application/octet-stream", "size": len(BIG)},
              {"name": "empty", "filename": "empty.txt", "content_type": "text/plain", "size": 0}]},
          ("form",), method="POST", headers=("Content-Type: multipart/form-data; boundary=BOUNDARY",), body=MP_FILES,
          source=C1)


@case("WEB-072", A, "/redirect/N: the chain from 5 to 0, each 302 Location followed", C1, "MUST", needs=("redirect",))
def _(ctx):
    import urllib.parse
    target, seen = "/redirect/5", []
    for _ in range(7):
        r = ctx.get(target).first
        if r is None:
            return fail(f"{target}: no response")
        seen.append(f"{target} {r.status}")
        if r.status == 200:
            break
        loc = r.header("location")
        if r.status != 302 or not loc:
            return fail(f"{target}: {r.summary()}, Location {loc!r} (expected 302 with a Location)")
        n = int(target.rsplit("/", 1)[1])
        if not loc.endswith(f"/redirect/{n - 1}"):
            return fail(f"{target}: Location {loc!r} does not end in /redirect/{n - 1}")
        target = urllib.parse.urlsplit(urllib.parse.urljoin("http://127.0.0.1" + target, loc)).path
    if not seen[-1].endswith(" 200") or len(seen) != 6:
        return fail(" → ".join(seen))
    return ok(" → ".join(s.split()[1] for s in seen))


@case("WEB-073", A, "/status/N: one code of each class 2xx-5xx; 204 and 304 without body or Transfer-Encoding", C1,
      "MUST", needs=("status",))
def _(ctx):
    done = []
    for code in (202, 204, 301, 304, 410, 502):
        ex = ctx.get(f"/status/{code}")
        r = ex.first
        if r is None or r.status != code:
            return fail(f"/status/{code}: {ex.describe()}")
        if code in (204, 304):
            if r.header("transfer-encoding"):
                return fail(f"/status/{code} with Transfer-Encoding")
            if code == 204 and r.header("content-length") is not None:
                return fail("/status/204 with Content-Length")
            tail = ex.received[ex.received.find(b"\r\n\r\n") + 4:]
            if tail:
                return fail(f"/status/{code} followed by {len(tail)} body bytes {tail[:20]!r}")
        done.append(str(code))
    return ok(" ".join(done))


@case("WEB-074", A, "/status/1xx (contract silent: an interim answer without body, or a refusal)", C1, "MUST",
      needs=("status",),
      note="CONTRACTS.md §1.2 checks 200 201 404 418 503 and says 204 and 304 have no body; for a 1xx it says "
      "nothing. A 1xx cannot end an exchange (RFC 9110 §15.2), so accepted: a 1xx head without content followed by "
      "a final response or the close, or a refusal (4xx/5xx); a 1xx with content fails, a wait for ever warns. "
      "Sentence to add: "
      "\"/status/1xx is not part of the contract\" or the answer wanted")
def _(ctx):
    ex = ctx.send(req("GET", "/status/103", CLOSE), timeout=3.0)
    interim = [r for r in ex.responses if r.interim]
    if interim:
        head_end = ex.received.find(b"\r\n\r\n") + 4
        rest = ex.received[head_end:]
        if rest and not rest.startswith(b"HTTP/"):
            return fail(f"{interim[0].summary()} followed by {len(rest)} bytes of content")
        if any(r.header("content-length") or r.header("transfer-encoding") for r in interim):
            return fail(f"{interim[0].summary()} with Content-Length or Transfer-Encoding")
        f = ex.first
        if f is None and not ex.closed:
            return warn(f"{interim[0].summary()}, then no final response within 3 s and the connection left open "
                        "(a client keeps waiting for the final response a 1xx promises)")
        return ok(f"{interim[0].summary()} without content, then " + (f.summary() if f else "closed"))
    r = ex.first
    if r is not None and 400 <= r.status < 600:
        return ok(f"refused: {r.summary()}")
    return fail(f"{ex.describe()}")


@case("WEB-075", A, "/gzip: gzip only when Accept-Encoding accepts it", C1, "MUST", needs=("gzip",),
      note="contract: gzip-encoded when Accept-Encoding accepts gzip, identity otherwise. It does not say whether "
      "\"*\" or an upper-case \"GZIP\" (codings are case-insensitive, RFC 9110 §8.4.1) \"accepts gzip\": both "
      "answers are accepted for them (the Tornado peer and aiohttp compare case-sensitively). Sentence to add: "
      "\"accepts gzip: a gzip (any case) or * member with q > 0\" (or the reading chosen)")
def _(ctx):
    out = []
    for value, want in (("deflate, br", "identity"), ("identity", "identity"), ("gzip, deflate", "gzip"),
                        ("GZIP", "either"), ("br;q=1.0, gzip;q=0.5", "gzip"), ("*", "either")):
        r = ctx.get("/gzip", f"Accept-Encoding: {value}").first
        if r is None or r.status != 200:
            return fail(f"Accept-Encoding {value!r}: {r.summary() if r else 'no response'}")
        enc = (r.header("content-encoding") or "identity").lower()
        body = r.body
        if enc == "gzip":
            try:
                body = gzip.decompress(r.body)
            except (OSError, EOFError, zlib.error) as e:
                return fail(f"Accept-Encoding {value!r}: Content-Encoding gzip but not valid gzip: {e}")
        elif enc != "identity":
            return fail(f"Accept-Encoding {value!r}: Content-Encoding {enc!r}")
        if body != GZIP_BODY:
            return fail(f"Accept-Encoding {value!r}: the decoded body differs ({len(body)} bytes)")
        if want != "either" and enc != want:
            return fail(f"Accept-Encoding {value!r}: {enc}, expected {want}")
        out.append(f"{value!r}→{enc}")
    return ok("; ".join(out))
