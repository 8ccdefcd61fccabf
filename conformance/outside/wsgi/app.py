"""Contract §1 (server app) as a plain WSGI application, standard library only, for the
precision study of the conformance suite: the same app served by waitress and by gunicorn
(conformance/outside/wsgi/*.toml), so the suite judges each server's HTTP/1.1 layer.

WSGI cannot serve `echo-headers` as the contract words it (the environ has no field names
as received, no order and no duplicates) nor `asterisk` (`OPTIONS *` is not a path); the
descriptions list the endpoints this app serves.
"""
import gzip
import hashlib
import json
import re
import time
import urllib.parse

PATTERN = b"0123456789abcdef"
GZIP_BODY = b"Squall compresses this line when the client accepts gzip.\n" * 200
TEXT = "text/plain; charset=utf-8"
JSON_TYPE = "application/json"
REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 301: "Moved Permanently", 302: "Found", 304: "Not Modified", 400: "Bad Request",
           403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large",
           410: "Gone", 418: "I'm a teapot", 500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
           503: "Service Unavailable"}
MAX_BODY = 64 << 20


class HTTPError(Exception):
    def __init__(self, status, allow=None):
        super().__init__(status)
        self.status, self.allow = status, allow


def status_line(code):
    return f"{code} {REASONS.get(code, 'Status')}"


def read_body(environ, limit=MAX_BODY):
    """The whole request body (the server de-chunks; wsgi.input_terminated when it does)."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH") or ""
    if length.isdigit():
        n = int(length)
        if n > limit:
            raise HTTPError(413)
        out = bytearray()
        while len(out) < n:
            piece = stream.read(min(65536, n - len(out)))
            if not piece:
                raise HTTPError(400)
            out += piece
        return bytes(out)
    if environ.get("wsgi.input_terminated") or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        out = bytearray()
        while True:
            piece = stream.read(65536)
            if not piece:
                return bytes(out)
            out += piece
            if len(out) > limit:
                raise HTTPError(413)
    return b""


def pieces(environ):
    """The request body piece by piece (for /upload: never held whole)."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH") or ""
    if length.isdigit():
        left = int(length)
        while left:
            piece = stream.read(min(65536, left))
            if not piece:
                raise HTTPError(400)
            left -= len(piece)
            yield piece
    elif environ.get("wsgi.input_terminated") or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        while True:
            piece = stream.read(65536)
            if not piece:
                return
            yield piece


def parse_qs(text, into):
    for part in text.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        into.setdefault(urllib.parse.unquote_plus(name, errors="strict"), []).append(
            urllib.parse.unquote_plus(value, errors="strict"))
    return into


def media_type(value):
    kind, _, rest = (value or "").partition(";")
    params = {}
    for m in re.finditer(r'\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)', rest):
        v = m.group(2).strip()
        if v.startswith('"'):
            v = re.sub(r"\\(.)", r"\1", v[1:-1])
        params[m.group(1).lower()] = v
    return kind.strip().lower(), params


def multipart(body, boundary):
    """{"fields": {name: [values]}, "files": [...]} of a multipart/form-data body (RFC 7578):
    the parts lie between delimiters CRLF "--" boundary (the first one may start the body)."""
    fields, files = {}, []
    delim = b"\r\n--" + boundary.encode("latin-1")
    body = b"\r\n" + body if body.startswith(delim[2:]) else body
    for part in body.split(delim)[1:]:
        if part.startswith(b"--"):
            break
        part = part.split(b"\r\n", 1)[1] if b"\r\n" in part else b""   # transport padding, CRLF
        head, _, data = part.partition(b"\r\n\r\n")
        headers = {}
        for line in head.split(b"\r\n"):
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        _, disp = media_type(headers.get("content-disposition", ""))
        name = disp.get("name", "")
        if "filename" in disp:
            files.append({"name": name, "filename": disp["filename"],
                          "content_type": headers.get("content-type", "application/octet-stream"), "size": len(data)})
        else:
            fields.setdefault(name, []).append(data.decode("utf-8"))
    return {"fields": fields, "files": files}


def body_args(environ, into):
    kind, params = media_type(environ.get("CONTENT_TYPE"))
    if kind == "application/x-www-form-urlencoded":
        parse_qs(read_body(environ).decode("latin-1"), into)
    elif kind == "multipart/form-data" and params.get("boundary"):
        for k, vs in multipart(read_body(environ), params["boundary"])["fields"].items():
            into.setdefault(k, []).extend(vs)
    return into


def route(environ):
    """(status, headers, body or iterable) for this request."""
    method = environ["REQUEST_METHOD"]
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or urllib.parse.quote(
        environ.get("PATH_INFO", "").encode("latin-1"))
    path = urllib.parse.urlsplit(raw).path if raw.startswith("/") or "://" in raw else raw
    query = environ.get("QUERY_STRING", "")

    def only(*methods):
        if method not in methods:
            raise HTTPError(405, ", ".join(methods))

    if path == "/":
        if method in ("GET", "HEAD", "OPTIONS"):
            return 200, [("Content-Type", TEXT)], b"OK"
        if method in ("POST", "PUT", "PATCH"):
            return 200, [("Content-Type", "application/octet-stream")], read_body(environ)
        raise HTTPError(405, "GET, HEAD, OPTIONS, POST, PUT, PATCH")
    if path == "/plaintext":
        only("GET")
        return 200, [("Content-Type", TEXT)], b"Hello, World!"
    if path == "/json":
        only("GET")
        return 200, [("Content-Type", JSON_TYPE)], b'{"message":"Hello, World!"}'
    if path == "/cookie":
        out = []
        for pair in environ.get("HTTP_COOKIE", "").split(";"):
            name, eq, value = pair.strip().partition("=")
            if not eq:
                continue
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            out.append(f"{name.strip()}={value}\n")
        return 200, [("Content-Type", TEXT)], "".join(out).encode("latin-1")
    if path == "/args":
        only("GET", "POST")
        args = parse_qs(query, {})
        if method == "POST":
            body_args(environ, args)
        return 200, [("Content-Type", JSON_TYPE)], json.dumps(args).encode()
    if path == "/form":
        only("POST")
        kind, params = media_type(environ.get("CONTENT_TYPE"))
        if kind == "multipart/form-data" and params.get("boundary"):
            result = multipart(read_body(environ), params["boundary"])
        else:
            result = {"fields": body_args(environ, {}), "files": []}
        return 200, [("Content-Type", JSON_TYPE)], json.dumps(result).encode()
    if path == "/upload":
        only("PUT")
        h, n = hashlib.sha256(), 0
        for piece in pieces(environ):
            h.update(piece)
            n += len(piece)
        return 200, [("Content-Type", JSON_TYPE)], json.dumps({"bytes": n, "sha256": h.hexdigest()}).encode()
    m = re.fullmatch(r"/path/([^/]+)/([0-9]+)", path)
    if m:
        only("GET")
        return 200, [("Content-Type", JSON_TYPE)], json.dumps(
            [urllib.parse.unquote(g, errors="strict") for g in m.groups()]).encode()
    m = re.fullmatch(r"/named/([^/]+)/([^/]+)", path)
    if m:
        only("GET")
        first, second = (urllib.parse.unquote(g, errors="strict") for g in m.groups())
        return 200, [("Content-Type", JSON_TYPE)], json.dumps({"first": first, "second": second}).encode()
    m = re.fullmatch(r"/(status|httperror)/([0-9]{3})", path)
    if m:
        only("GET")
        code = int(m.group(2))
        if code < 200:   # a WSGI application cannot send an interim response
            raise HTTPError(501)
        return code, [("Content-Type", TEXT)], b"" if code in (204, 304) else status_line(code).encode()
    m = re.fullmatch(r"/bytes/([0-9]+)", path)
    if m:
        only("GET")
        n = int(m.group(1))
        return 200, [("Content-Type", "application/octet-stream")], (PATTERN * (n // 16 + 1))[:n]
    m = re.fullmatch(r"/stream/([0-9]+)", path)
    if m:
        only("GET")
        n = int(m.group(1))
        return 200, [("Content-Type", TEXT)], (b"chunk %d\n" % i for i in range(n))
    if path == "/gzip":
        only("GET")
        headers = [("Content-Type", TEXT), ("Vary", "Accept-Encoding")]
        if accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", "")):
            return 200, headers + [("Content-Encoding", "gzip")], gzip.compress(GZIP_BODY)
        return 200, headers, GZIP_BODY
    m = re.fullmatch(r"/redirect/([0-9]+)", path)
    if m:
        only("GET")
        n = int(m.group(1))
        if n == 0:
            return 200, [("Content-Type", TEXT)], b"OK"
        return 302, [("Location", f"/redirect/{n - 1}"), ("Content-Type", TEXT)], b""
    m = re.fullmatch(r"/slow/([0-9]+)", path)
    if m:
        only("GET")
        time.sleep(int(m.group(1)) / 1000.0)
        return 200, [("Content-Type", TEXT)], b"OK"
    if path == "/error":
        only("GET")
        raise RuntimeError("intentional failure")
    raise HTTPError(404)


def accepts_gzip(value):
    for item in value.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            q = re.search(r"q\s*=\s*([0-9.]+)", params)
            return not q or float(q.group(1)) > 0
    return False


def app(environ, start_response):
    try:
        status, headers, body = route(environ)
    except HTTPError as e:
        status, headers, body = e.status, [("Content-Type", TEXT)], status_line(e.status).encode() + b"\n"
        if e.allow:
            headers.append(("Allow", e.allow))
    except UnicodeDecodeError:
        status, headers, body = 400, [("Content-Type", TEXT)], b"400 Bad Request\n"
    except RuntimeError:  # the contract's /error: a plain 500, no detail
        status, headers, body = 500, [("Content-Type", TEXT)], b"500 Internal Server Error\n"
    # Anything else (the server's own errors while the body is read: bad chunked framing)
    # goes back to the server, which answers it as it does.
    if isinstance(body, bytes):
        if status in (204, 304):
            body = b""
        else:
            headers.append(("Content-Length", str(len(body))))
        start_response(status_line(status), headers)
        # HEAD: the GET's fields (Content-Length included), no body; WSGI servers send what
        # the application returns, for HEAD too.
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]
    start_response(status_line(status), headers)
    return body


application = app


def main(argv):
    """`app.py --port N`: serve with waitress (SIGTERM: exit 0)."""
    import signal
    import sys
    import waitress
    port = int(argv[argv.index("--port") + 1])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    waitress.serve(app, listen=f"127.0.0.1:{port}", threads=4, ident="waitress")


if __name__ == "__main__":
    import sys
    main(sys.argv[1:])
