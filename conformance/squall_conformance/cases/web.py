"""Web semantics of the contract app (contracts.md §1), as Tornado's web layer defines them."""
import gzip
import hashlib
import json
import zlib

from ._helpers import CLOSE, TORNADO, case, fail, judge_status, ok, req, warn

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
