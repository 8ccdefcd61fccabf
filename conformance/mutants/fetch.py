#!/usr/bin/python3
"""A small contract §4 client adapter, written for the mutation harness (conformance/mutants).

Its own HTTP/1.1 client on sockets and ssl (standard library only): one fetch, redirects
followed per RFC 9110 §15.4 (and Tornado's rewriting of POST after 301/302), the response
read per RFC 9112 §4-§7 (status line, fields, Content-Length / chunked / close-delimited
bodies, interim 1xx skipped), gzip decoded on request, and one JSON object printed.

    /usr/bin/python3 conformance/mutants/fetch.py fetch URL [--method M] [--header 'N: V']...
        [--body-file F] [--connect-timeout S] [--request-timeout S] [--max-redirects N]
        [--no-follow] [--decompress|--no-decompress] [--max-body-size B]
        [--ca-certs FILE] [--insecure] [--defect NAME]

`--defect NAME` switches on one single, realistic bug (DEFECTS below); `--list-defects`
prints them as JSON.
"""
from __future__ import annotations

import argparse
import base64
import json
import re
import socket
import ssl
import sys
import time
import urllib.parse
import zlib

# name -> (class, one-line description, the public bug it imitates or "")
DEFECTS = {
    "redirect-past-max": ("redirects", "follows one redirect more than --max-redirects", ""),
    "post-303-kept": ("redirects", "a 303 after POST is followed with POST and the body",
                      "RFC 9110 §15.4.4 (the user agent performs a GET)"),
    "drop-body-307": ("redirects", "a 307/308 after POST keeps the method but drops the body",
                      "RFC 9110 §15.4.8 (method and content must not change)"),
    "relative-root": ("redirects", "a relative Location is resolved against the root, not the request path",
                      "RFC 9110 §10.2.2 / RFC 3986 §5"),
    "ignore-request-timeout": ("timeouts", "--request-timeout is ignored", ""),
    "ignore-connect-timeout": ("timeouts", "--connect-timeout is ignored (blocking connect)", ""),
    "read-to-close": ("bodies", "Content-Length is ignored: the body is read until the close", ""),
    "chunk-overrun": ("bodies", "chunk data is read up to the next CRLF, whatever its size says",
                      "graygnuorg/pound#43 (oversized chunks accepted)"),
    "no-max-body": ("bodies", "--max-body-size is ignored", ""),
    "gunzip-always": ("bodies", "gzip bodies are decoded even with --no-decompress", ""),
    "short-body-ok": ("bodies", "a close before Content-Length bytes gives a short body, no error",
                      "RFC 9112 §8 (incomplete messages)"),
    "no-last-chunk-ok": ("bodies", "a close before the last chunk ends the body without an error",
                         "RFC 9112 §8"),
    "fold-raw": ("headers", "obs-fold kept raw in the field value (CRLF SP inside the value)",
                     "RFC 9112 §5.2 (a user agent MUST replace obs-fold with SP)"),
    "cl-first-wins": ("headers", "different Content-Length values: the first one is used",
                      "unbit/uwsgi#2775 (duplicate Content-Length merged, first used)"),
    "cl-over-te": ("headers", "Transfer-Encoding and Content-Length together: Content-Length frames the body",
                      "RFC 9112 §6.3 (Transfer-Encoding overrides Content-Length)"),
    "http09": ("headers", "a response without a valid status line is taken as an HTTP/0.9 body", ""),
    "interim-final": ("1xx", "an interim 1xx response is reported as the final one", ""),
    "head-reads-body": ("1xx", "a HEAD response's Content-Length body is waited for", ""),
    "304-body": ("1xx", "a 304 with Content-Length is read as having a body", ""),
    "no-hostname-check": ("tls", "the certificate's host name is not checked", ""),
    "host-no-port": ("request", "Host is sent without the port", ""),
}
D = None


def bug(name):
    assert name in DEFECTS, name
    return D == name


TOKEN_RE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
STATUS_RE = re.compile(rb"HTTP/1\.[0-9] ([0-9]{3})(?: ([\t \x21-\x7e\x80-\xff]*))?\Z")
HEX_RE = re.compile(rb"[0-9A-Fa-f]+\Z")
MAX_HEAD = 64 << 10
REDIRECTS = (301, 302, 303, 307, 308)


class FetchError(Exception):
    pass


class Reader:
    """Bytes from a socket, every wait bounded by the request deadline."""

    def __init__(self, sock, deadline):
        self.sock = sock
        self.deadline = deadline
        self.buf = bytearray()
        self.eof = False

    def fill(self):
        if self.eof:
            return False
        left = self.deadline - time.monotonic() if self.deadline else None
        if left is not None and left <= 0:
            raise FetchError("request timeout")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise FetchError("request timeout") from None
        except ssl.SSLError as e:
            raise FetchError(f"TLS error: {e}") from None
        except OSError as e:
            raise FetchError(f"connection error: {e}") from None
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def line(self, limit, what):
        """One line without its CRLF (a bare LF is accepted, RFC 9112 §2.2)."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 1]
                return line[:-1] if line.endswith(b"\r") else line
            if len(self.buf) > limit:
                raise FetchError(f"{what} too long")
            if not self.fill():
                raise FetchError(f"connection closed in the {what}")

    def exactly(self, n, what, short_ok=False):
        while len(self.buf) < n:
            if not self.fill():
                if short_ok:
                    break
                raise FetchError(f"connection closed in the {what} ({len(self.buf)} of {n} bytes)")
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def rest(self, limit):
        while True:
            if limit is not None and len(self.buf) > limit:
                raise FetchError(f"body larger than --max-body-size {limit}")
            if not self.fill():
                break
        data = bytes(self.buf)
        self.buf.clear()
        return data


class Response:
    def __init__(self, code, reason, headers, body):
        self.code = code
        self.reason = reason
        self.headers = headers
        self.body = body

    def values(self, name):
        return [v for n, v in self.headers if n.lower() == name]


def connect(url, a, deadline):
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise FetchError(f"unsupported URL {url!r}")
    port = u.port or (443 if u.scheme == "https" else 80)
    left = deadline - time.monotonic() if deadline else None
    timeout = a.connect_timeout
    if bug("ignore-connect-timeout"):
        timeout = None
        left = None
    elif left is not None:
        timeout = min(timeout, left) if timeout is not None else left
    try:
        sock = socket.create_connection((u.hostname, port), timeout=timeout)
    except socket.timeout:
        raise FetchError("connect timeout") from None
    except OSError as e:
        raise FetchError(f"connect failed: {e}") from None
    if u.scheme == "https":
        ctx = ssl.create_default_context(cafile=a.ca_certs) if a.ca_certs else ssl.create_default_context()
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if a.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif bug("no-hostname-check"):
            ctx.check_hostname = False
        try:
            sock.settimeout(max(0.01, deadline - time.monotonic()) if deadline else None)
            sock = ctx.wrap_socket(sock, server_hostname=u.hostname)
        except socket.timeout:
            sock.close()
            raise FetchError("request timeout (TLS handshake)") from None
        except (ssl.SSLError, ssl.CertificateError, OSError) as e:
            sock.close()
            raise FetchError(f"TLS handshake failed: {e}") from None
    return sock, u, port


def request_bytes(u, port, method, headers, body, a):
    target = (u.path or "/") + (f"?{u.query}" if u.query else "")
    host = u.hostname if (u.port is None or bug("host-no-port")) else f"{u.hostname}:{port}"
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    names = {n.lower() for n, _ in headers}
    lines += [f"{n}: {v}" for n, v in headers]
    if a.decompress and "accept-encoding" not in names:
        lines.append("Accept-Encoding: gzip")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def read_head(r):
    """(code, reason, headers) of one response head; raises FetchError."""
    start = r.line(MAX_HEAD, "status line")
    m = STATUS_RE.match(start)
    if not m:
        raise FetchError(f"malformed status line {start[:60]!r}")
    code = int(m.group(1))
    reason = (m.group(2) or b"").decode("latin-1")
    headers = []
    size = len(start)
    while True:
        line = r.line(MAX_HEAD, "header section")
        size += len(line) + 2
        if size > MAX_HEAD:
            raise FetchError("header section too large")
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            if not headers:
                raise FetchError("whitespace before the first header field")
            n, v = headers[-1]
            if bug("fold-raw"):
                headers[-1] = (n, v + "\r\n" + line.decode("latin-1"))
            else:   # RFC 9112 §5.2: replace obs-fold with SP
                headers[-1] = (n, (v + " " + line.strip(b" \t").decode("latin-1")).strip())
            continue
        name, colon, value = line.partition(b":")
        if not colon or not TOKEN_RE.match(name):
            raise FetchError(f"malformed header line {line[:60]!r}")
        headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    return code, reason, headers


def read_response(r, method, a):
    while True:
        try:
            code, reason, headers = read_head(r)
        except FetchError:
            if bug("http09"):
                return Response(200, "", [], r.rest(None))
            raise
        if 100 <= code < 200 and code != 101 and not bug("interim-final"):
            continue    # interim response (RFC 9110 §15.2)
        break
    if code == 101:
        raise FetchError("unexpected 101 Switching Protocols")
    resp = Response(code, reason, headers, b"")
    limit = None if a.max_body_size is None or bug("no-max-body") else a.max_body_size
    te = resp.values("transfer-encoding")
    cl = resp.values("content-length")
    no_body = (method == "HEAD" and not bug("head-reads-body")) or 100 <= code < 200 or code == 204 \
        or (code == 304 and not bug("304-body"))
    if no_body:
        return resp
    if te and not (bug("cl-over-te") and cl):
        codings = [c.strip().lower() for v in te for c in v.split(",") if c.strip()]
        if not codings or codings[-1] != "chunked" or len(codings) > 1:
            raise FetchError(f"unsupported Transfer-Encoding {', '.join(te)!r}")
        resp.body = read_chunked(r, limit)
    elif cl and not bug("read-to-close"):
        items = [x.strip() for v in cl for x in v.split(",")]
        if bug("cl-first-wins"):
            items = items[:1]
        if len(set(items)) != 1 or not items[0].isdigit() or not items[0].isascii():
            raise FetchError(f"invalid Content-Length {', '.join(cl)!r}")
        n = int(items[0])
        if limit is not None and n > limit:
            raise FetchError(f"Content-Length {n} above --max-body-size {limit}")
        resp.body = r.exactly(n, "body", short_ok=bug("short-body-ok"))
    else:
        resp.body = r.rest(limit)
    return resp


def read_chunked(r, limit):
    out = bytearray()
    while True:
        try:
            line = r.line(8192, "chunk-size line")
        except FetchError:
            if bug("no-last-chunk-ok") and r.eof and not r.buf:
                return bytes(out)
            raise
        size_text = line.split(b";", 1)[0].strip(b" \t")
        if not HEX_RE.match(size_text) or len(size_text.lstrip(b"0")) > 15:
            raise FetchError(f"invalid chunk size {line[:40]!r}")
        size = int(size_text, 16)
        if size == 0:
            break
        if limit is not None and len(out) + size > limit:
            raise FetchError(f"body larger than --max-body-size {limit}")
        if bug("chunk-overrun"):
            out += r.line(1 << 30, "chunk data")
            continue
        out += r.exactly(size, "chunk")
        if r.exactly(2, "chunk") != b"\r\n":
            raise FetchError("chunk data not followed by CRLF")
    while True:   # trailer section: read and dropped
        if not r.line(MAX_HEAD, "trailer section"):
            break
    return bytes(out)


def decode(resp, a):
    codings = [c.strip().lower() for v in resp.values("content-encoding") for c in v.split(",") if c.strip()]
    if codings == ["gzip"] and (a.decompress or bug("gunzip-always")) and resp.body:
        try:
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            body = d.decompress(resp.body) + d.flush()
            if not d.eof:
                raise FetchError("truncated gzip body")
        except zlib.error as e:
            raise FetchError(f"corrupt gzip body: {e}") from None
        resp.body = body
    return resp


def fetch(a):
    deadline = None if bug("ignore-request-timeout") else time.monotonic() + a.request_timeout
    url = a.url
    method = a.method
    headers = list(a.headers)
    body = a.body
    follows = 0
    limit = a.max_redirects + (1 if bug("redirect-past-max") else 0)
    while True:
        a.last_url = url
        sock, u, port = connect(url, a, deadline)
        try:
            try:
                sock.sendall(request_bytes(u, port, method, headers, body, a))
            except OSError as e:
                raise FetchError(f"send failed: {e}") from None
            resp = read_response(Reader(sock, deadline), method, a)
        finally:
            sock.close()
        location = resp.values("location")
        if a.follow and resp.code in REDIRECTS and location and follows < limit:
            follows += 1
            url = resolve(url, location[0])
            if resp.code == 303 and not bug("post-303-kept") and method != "HEAD" \
                    or resp.code in (301, 302) and method == "POST":
                method, body = "GET", None
                headers = [(n, v) for n, v in headers
                           if n.lower() not in ("content-length", "content-type", "transfer-encoding")]
            elif resp.code in (307, 308) and bug("drop-body-307"):
                body = None
            continue
        return url, decode(resp, a)


def resolve(base, location):
    if bug("relative-root") and "://" not in location and not location.startswith("/"):
        u = urllib.parse.urlsplit(base)
        return f"{u.scheme}://{u.netloc}/" + location.lstrip("./")
    return urllib.parse.urljoin(base, location)


def main(argv=None):
    global D
    p = argparse.ArgumentParser(description="Contract §4 client adapter of the mutation harness")
    p.add_argument("command", nargs="?", choices=["fetch"])
    p.add_argument("url", nargs="?")
    p.add_argument("--method", default=None)
    p.add_argument("--header", action="append", default=[], help="'Name: Value' (repeatable)")
    p.add_argument("--body-file")
    p.add_argument("--connect-timeout", type=float, default=20.0)
    p.add_argument("--request-timeout", type=float, default=20.0)
    p.add_argument("--max-redirects", type=int, default=5)
    p.add_argument("--no-follow", dest="follow", action="store_false")
    p.add_argument("--decompress", dest="decompress", action="store_true", default=True)
    p.add_argument("--no-decompress", dest="decompress", action="store_false")
    p.add_argument("--max-body-size", type=int, default=None)
    p.add_argument("--ca-certs", help="PEM file of the CAs to trust instead of the system store")
    p.add_argument("--insecure", "-k", action="store_true", help="accept any certificate")
    p.add_argument("--json", action="store_true", help="accepted and ignored")
    p.add_argument("--defect", help="switch on one defect (--list-defects)")
    p.add_argument("--list-defects", action="store_true")
    a = p.parse_args(argv)
    if a.list_defects:
        print(json.dumps({k: {"class": c, "description": d, "imitates": i} for k, (c, d, i) in DEFECTS.items()},
                         indent=1))
        return 0
    if a.command != "fetch" or not a.url:
        p.error("usage: fetch.py fetch URL [options]")
    if a.defect is not None:
        if a.defect not in DEFECTS:
            p.error(f"unknown defect {a.defect!r} (--list-defects)")
        D = a.defect
    a.headers = []
    for h in a.header:
        n, colon, v = h.partition(":")
        if not colon or not n.strip():
            p.error(f"--header {h!r}: give 'Name: Value'")
        a.headers.append((n.strip(), v.strip()))
    a.body = None
    if a.body_file:
        with open(a.body_file, "rb") as f:
            a.body = f.read()
    a.method = a.method or ("POST" if a.body is not None else "GET")
    t0 = time.monotonic()
    try:
        url, resp = fetch(a)
        out = {"code": resp.code, "reason": resp.reason, "headers": [[n, v] for n, v in resp.headers],
               "body_b64": base64.b64encode(resp.body).decode(), "effective_url": url, "error": None}
    except FetchError as e:
        out = {"code": 599, "reason": "", "headers": [], "body_b64": "", "effective_url": getattr(a, "last_url", a.url),
               "error": str(e)}
    out["seconds"] = round(time.monotonic() - t0, 3)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
