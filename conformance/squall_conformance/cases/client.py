"""Client layer (CONTRACTS.md §4): one fetch per case against a scripted raw server.

Each case starts a server on 127.0.0.1 (a free port, one accept thread per server, one thread
per connection) that answers with exact bytes, runs the implementation's client adapter once
(`<fetch_cmd> fetch URL [flags]`, one process per fetch, only the flags of CONTRACTS.md §4:
REQUIRED_FLAGS, and OPTIONAL_FLAGS where the adapter's --help lists them) and checks the JSON
object it prints (code, reason, headers, body_b64, effective_url, error) and what the server
received.
Errors (timeouts, connection and protocol errors) are expected as code 599 with an error
string, as Tornado reports them. Expectations are RFC 9110/9112 or Tornado 6.2's
simple_httpclient (Tornado semantics); where Tornado is the yardstick it passes them.
The `tls-*` cases wrap the scripted server in TLS (Python's ssl, the test certificates of
tls.certs()) and use the adapters' optional `--ca-certs FILE` and `--insecure` flags (n/a for
an adapter whose --help lacks either).
Nothing here ever connects to a non-loopback address.
"""
import base64
import gzip
import json
import os
import re
import select
import socket
import ssl
import tempfile
import threading
import time

from .. import tls
from ..core import TORNADO, case, mismatch, na, ok
from .. import launch
from ..bounded import run_bounded

FETCH_TIMEOUT = 15.0   # the adapter process
FETCH_OUTPUT_LIMIT = 64 << 20   # bytes an adapter may print (the largest body is 5 MiB, base64 in JSON)
# The adapter flags this layer passes (CONTRACTS.md §4; tests/test_contract_usage.py checks
# both lists against the document and every case's command line against both lists).
REQUIRED_FLAGS = ("--method", "--header", "--body-file", "--connect-timeout", "--request-timeout",
                  "--max-redirects", "--no-follow", "--decompress", "--no-decompress", "--max-body-size")
OPTIONAL_FLAGS = ("--ca-certs", "--insecure")   # found in the adapter's --help; the tls-* cases need both
# The members of the printed JSON object and their types (CONTRACTS.md §4).
JSON_FIELDS = {"code": (int,), "reason": (str,), "headers": (list,), "body_b64": (str,),
               "effective_url": (str,), "error": (str, type(None))}
BODY = b"payload"      # the request body of the "@body" cases
HOLD = 1.5             # a server keeping a connection open after a bodiless response
R9110, R9112 = "RFC 9110", "RFC 9112"


# ---------------------------------------------------------------- scripted raw servers

class Req:
    def __init__(self, method, target, version, headers, body, conn, index):
        self.method, self.target, self.version = method, target, version
        self.headers, self.body, self.conn, self.index = headers, body, conn, index

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __str__(self):
        return f"#{self.index} conn{self.conn} {self.method} {self.target} body={len(self.body)}B"


class RawServer:
    """Answers each request with handler(req, server) -> list of actions: bytes are sent,
    a number sleeps that many seconds, "hang" waits until the server stops, "keep" keeps the
    connection for another request (otherwise it is closed after the actions). With `tls` (a
    server SSLContext) it speaks HTTPS; failed handshakes are kept in `handshake_errors`."""

    def __init__(self, handler, tls=None):
        self.handler = handler
        self.tls = tls
        self.handshake_errors = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.requests, self.conns, self.log = [], 0, []
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def url(self, path="/"):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{path}"

    def _serve(self):
        while not self.stopping.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.conns += 1
                cid = self.conns
            threading.Thread(target=self._conn, args=(c, cid), daemon=True).start()

    def _recv_request(self, c, buf, cid):
        while b"\r\n\r\n" not in buf:
            r = (self.tls and c.pending()) or select.select([c], [], [], 0.1)[0]
            if self.stopping.is_set():
                return None, buf
            if r:
                d = c.recv(65536)
                if not d:
                    return None, buf
                buf += d
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        headers = [(k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in lines[1:])]
        n = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
        while len(buf) < n:
            d = c.recv(65536)
            if not d:
                break
            buf += d
        body, buf = buf[:n], buf[n:]
        with self.lock:
            req = Req(parts[0], parts[1] if len(parts) > 1 else "", parts[-1], headers, body, cid,
                      len(self.requests))
            self.requests.append(req)
        return req, buf

    def _handshake(self, c, cid):
        """The server side of the TLS handshake: the wrapped socket, or None if it failed."""
        c = self.tls.wrap_socket(c, server_side=True, do_handshake_on_connect=False)
        c.settimeout(5.0)
        try:
            c.do_handshake()
        except (ssl.SSLError, OSError) as e:
            self.handshake_errors.append(f"conn{cid}: {e}")
            c.close()
            return None
        c.settimeout(None)
        return c

    def _conn(self, c, cid):
        buf = b""
        if self.tls:
            c = self._handshake(c, cid)
            if c is None:
                return
        try:
            while True:
                req, buf = self._recv_request(c, buf, cid)
                if req is None:
                    return
                keep = False
                for act in self.handler(req, self):
                    if isinstance(act, (bytes, bytearray)):
                        c.sendall(act)
                    elif isinstance(act, (int, float)):
                        if self.stopping.wait(act):
                            return
                    elif act == "hang":
                        self.stopping.wait(30)
                        return
                    elif act == "keep":
                        keep = True
                if not keep:
                    try:
                        c.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    return
        except OSError as e:
            self.log.append(f"conn{cid}: {e}")
        finally:
            time.sleep(0.05)
            c.close()

    def stop(self):
        self.stopping.set()
        self.sock.close()


def full_backlog():
    """A loopback listening socket that never accepts, its backlog filled so that a further
    connect gets no SYN-ACK (the connect hangs until the client's connect timeout)."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    fillers = []
    for _ in range(32):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(ls.getsockname())
        fillers.append(c)
        _, w, _ = select.select([], [c], [], 0.2)
        if not w:
            return ls, fillers
    raise RuntimeError("could not fill the listen backlog")


# ---------------------------------------------------------------- response builders

def resp(status=b"200 OK", headers=(), body=b"", version=b"HTTP/1.1"):
    out = version + b" " + status + b"\r\n"
    for h in headers:
        out += h + b"\r\n"
    return out + b"\r\n" + body


def cl(body, status=b"200 OK", extra=()):
    return resp(status, (b"Content-Length: %d" % len(body),) + tuple(extra), body)


def static(*actions):
    return lambda req, srv: list(actions)


def chunked(*chunks, trailer=b""):
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n" + trailer + b"\r\n"


TE = b"Transfer-Encoding: chunked"
CLOSE = b"Connection: close"  # the server closes after a redirect (RFC 9112 §9.6)
HELLO = b"hello world"
BIN = bytes(range(256)) * 4
MIB = bytes((i * 7919) & 0xff for i in range(1 << 20))
GZ = gzip.compress(b"squall " * 200, mtime=0)
GZ_PLAIN = b"squall " * 200


def redirect(status, location_fn, final=b"final"):
    """The first request gets `status` with Location location_fn(srv); later ones get 200 with
    a body echoing the method and the request body."""
    def h(req, srv):
        if req.index == 0:
            return [resp(status, (b"Location: " + location_fn(srv).encode(), b"Content-Length: 0", CLOSE))]
        return [cl(final + b" " + req.method.encode() + b" " + req.body)]
    return h


def chain(n):
    def h(req, srv):
        if req.index < n:
            return [resp(b"302 Found", (b"Location: /hop%d" % (req.index + 1), b"Content-Length: 0", CLOSE))]
        return [cl(b"arrived")]
    return h


def loop_forever(req, srv):
    return [resp(b"302 Found", (b"Location: /loop", b"Content-Length: 0", CLOSE))]


def keepalive_redirect(req, srv):
    if req.index == 0:
        return [resp(b"302 Found", (b"Location: /second", b"Content-Length: 0")), "keep"]
    return [cl(b"second"), "keep"]


# ---------------------------------------------------------------- checks

def failed(r):
    return r["code"] == 599 or bool(r["error"])


def expect_body(body, code=200):
    def check(r, srv):
        if r["code"] != code:
            return False, f"code {r['code']} (error {r['error']!r}), expected {code}"
        if r["body"] != body:
            return False, f"body {short(r['body'])} ({len(r['body'])} B), expected {short(body)} ({len(body)} B)"
        return True, f"{code} with the expected {len(body)} B body"
    return check


def expect_error(max_seconds=None, hint=""):
    def check(r, srv):
        if not failed(r):
            return False, f"no error: code {r['code']} with a {len(r['body'])} B body {short(r['body'])}" + hint
        if r["code"] != 599:
            return False, f"error {r['error']!r} but code {r['code']}, expected 599"
        if max_seconds is not None and r["seconds"] > max_seconds:
            return False, f"599 ({r['error']}) after {r['seconds']:.2f} s, expected within {max_seconds} s"
        return True, f"599: {r['error']}" + (f" after {r['seconds']:.2f} s" if max_seconds else "")
    return check


def expect_no_body(code, max_seconds=HOLD - 0.3):
    def check(r, srv):
        if r["code"] != code:
            return False, f"code {r['code']} (error {r['error']!r}), expected {code}"
        if r["body"]:
            return False, f"{len(r['body'])} B body, expected none"
        if r["seconds"] > max_seconds:
            return False, f"took {r['seconds']:.2f} s: waited for a body the response cannot have"
        return True, f"{code}, no body, {r['seconds']:.2f} s"
    return check


def expect_redirected(method, body, code=200, requests=2):
    want = b"final " + method.encode() + b" " + body

    def check(r, srv):
        if r["code"] != code or r["body"] != want:
            return False, f"code {r['code']} body {short(r['body'])} (error {r['error']!r}), expected {code} {short(want)}"
        if len(srv.requests) != requests:
            return False, f"server saw {len(srv.requests)} requests, expected {requests}"
        second = srv.requests[-1]
        if method == "GET" and (second.header("Content-Length") not in (None, "0") or second.header("Content-Type")):
            return False, "the GET after the redirect still carries Content-Length/Content-Type of the old body"
        return True, f"followed with {second.method} and a {len(second.body)} B body"
    return check


def all_of(*checks):
    def check(r, srv):
        reasons = []
        for c in checks:
            good, why = c(r, srv)
            if not good:
                return False, why
            reasons.append(why)
        return True, "; ".join(reasons)
    return check


def effective(path):
    def check(r, srv):
        want = srv.url(path)
        if r["effective_url"] != want:
            return False, f"effective_url {r['effective_url']!r}, expected {want!r}"
        return True, f"effective_url {path}"
    return check


def requested(pred, what):
    def check(r, srv):
        if not srv.requests:
            return False, "the server received no request"
        good = pred(srv.requests)
        return (True, what) if good else (False, f"not {what}: " + "; ".join(str(q) for q in srv.requests))
    return check


def refused_tls():
    """The fetch failed and the request never reached the server: the client refused the
    certificate during the handshake."""
    def check(r, srv):
        good, why = expect_error()(r, srv)
        if not good:
            return False, why + " (the certificate must be refused)"
        if srv.requests:
            return False, f"599, but only after sending the request over the unverified connection: {srv.requests[0]}"
        return True, why + "; no request sent"
    return check


def header_is(name, value):
    def check(r, srv):
        got = [v for k, v in r["headers"] if k.lower() == name.lower()]
        return (value in got, f"{name}: {got}")
    return check


def header_unfolded(name, first, second):
    """The field value with its obs-fold replaced by one or more SP (RFC 9112 §5.2)."""
    def check(r, srv):
        got = [v for k, v in r["headers"] if k.lower() == name.lower()]
        ok = len(got) == 1 and re.fullmatch(re.escape(first) + " +" + re.escape(second), got[0]) is not None
        return (ok, f"{name}: {got}")
    return check


def short(b, n=40):
    return repr(b[:n]) + ("..." if len(b) > n else "")


# ---------------------------------------------------------------- cases
# (id, title, source, level, handler, fetch args, check[, note]); a handler of None with
# args ["@backlog"] / ["@refused"] means a special target; "@tls=NAME" serves HTTPS with the
# test certificate NAME (tls.Certs) and "@ca" adds --ca-certs with the test CA; "@body" adds
# --body-file with BODY (the spec gives the method explicitly: --method POST or PUT);
# "@path=/p" fetches /p instead of /<id>. adapter_args() turns them into the flags.

SPECS = [
    # ---- Content-Length ----
    ("cl-basic", "Content-Length body", f"{R9112} §6.3", "MUST",
     static(cl(HELLO)), [], expect_body(HELLO)),
    ("cl-zero", "Content-Length: 0", f"{R9112} §6.3", "MUST",
     static(cl(b""), "hang"), [], expect_body(b"")),
    ("cl-binary", "Content-Length body with every byte value", f"{R9112} §6.3", "MUST",
     static(cl(BIN)), [], expect_body(BIN)),
    ("cl-1mib", "1 MiB Content-Length body", f"{R9112} §6.3", "MUST",
     static(cl(MIB)), [], expect_body(MIB)),
    ("cl-dripped", "headers and body one byte at a time", f"{R9112} §6.3", "MUST",
     static(*[x for ch in cl(b"drip") for x in (bytes([ch]), 0.002)]), [], expect_body(b"drip")),
    ("cl-surplus-ignored", "bytes after Content-Length are not part of the body", f"{R9112} §6.3", "MUST",
     static(resp(b"200 OK", (b"Content-Length: 5",), b"helloEXTRA")), [], expect_body(b"hello")),
    ("cl-truncated", "connection closed before Content-Length bytes: an error, not a short body",
     f"{R9112} §8", "MUST",
     static(resp(b"200 OK", (b"Content-Length: 100",), b"only ten b")), [], expect_error()),
    ("cl-conflicting", "two different Content-Length values: an error", f"{R9112} §6.3", "MUST",
     static(resp(b"200 OK", (b"Content-Length: 5", b"Content-Length: 6"), b"hello!")), [], expect_error()),
    ("cl-invalid", "Content-Length: abc is an error", f"{R9112} §6.3", "MUST",
     static(resp(b"200 OK", (b"Content-Length: abc",), b"hello")), [], expect_error()),
    ("cl-negative", "Content-Length: -1 is an error", f"{R9112} §6.3", "SHOULD",
     static(resp(b"200 OK", (b"Content-Length: -1",), b"hello")), [], expect_error(),
     "SHOULD because Tornado 6.2 accepts int('-1') and reports 200 with an empty body"),
    # ---- chunked ----
    ("chunked-basic", "chunked body of several chunks", f"{R9112} §7.1", "MUST",
     static(resp(b"200 OK", (TE,), chunked(b"hello", b" ", b"world"))), [], expect_body(HELLO)),
    ("chunked-uppercase-hex", "chunk sizes in upper-case hex (1A, FF)", f"{R9112} §7.1", "MUST",
     static(resp(b"200 OK", (TE,), b"1A\r\n" + b"a" * 26 + b"\r\nFF\r\n" + b"b" * 255 + b"\r\n0\r\n\r\n")),
     [], expect_body(b"a" * 26 + b"b" * 255)),
    ("chunked-leading-zeros", "chunk size 0005", f"{R9112} §7.1", "MUST",
     static(resp(b"200 OK", (TE,), b"0005\r\nhello\r\n0\r\n\r\n")), [], expect_body(b"hello")),
    ("chunked-extension", "chunk extensions are ignored", f"{R9112} §7.1.1", "SHOULD",
     static(resp(b"200 OK", (TE,), b"5;name=value\r\nhello\r\n6;x\r\n world\r\n0;last\r\n\r\n")),
     [], expect_body(HELLO),
     "RFC 9112 requires ignoring unknown extensions; SHOULD because Tornado 6.2 parses the size line "
     "with int(line, 16) and rejects any extension"),
    ("chunked-trailers", "a trailer section after the last chunk", f"{R9112} §7.1.2", "SHOULD",
     static(resp(b"200 OK", (TE,), chunked(b"hello", trailer=b"X-Checksum: 1234\r\n"))),
     [], expect_body(b"hello"),
     "SHOULD because Tornado 6.2 expects CRLF right after the last chunk and rejects trailers"),
    ("chunked-bad-size", "a non-hex chunk size is an error", f"{R9112} §7.1", "MUST",
     static(resp(b"200 OK", (TE,), b"zz\r\nhello\r\n0\r\n\r\n")), [], expect_error()),
    ("chunked-empty-size", "an empty chunk-size line is an error", f"{R9112} §7.1", "MUST",
     static(resp(b"200 OK", (TE,), b"\r\nhello\r\n0\r\n\r\n")), [], expect_error()),
    ("chunked-huge-size", "a chunk size beyond 64 bits is an error, not a crash", f"{R9112} §7.1", "MUST",
     static(resp(b"200 OK", (TE,), b"FFFFFFFFFFFFFFFFFFFF\r\nhello\r\n")), [], expect_error()),
    ("chunked-bad-terminator", "chunk data not followed by CRLF is an error", f"{R9112} §7.1", "MUST",
     static(resp(b"200 OK", (TE,), b"5\r\nhelloXX0\r\n\r\n")), [], expect_error()),
    ("header-obs-fold-unfolded", "an obs-fold in a response field is replaced by SP", f"{R9112} §5.2", "MUST",
     static(resp(b"200 OK", (b"X-Folded: a", b" b", b"Content-Length: 2"), b"hi")), [],
     all_of(expect_body(b"hi"), header_unfolded("X-Folded", "a", "b"))),
    ("chunked-overrun", "chunk data longer than its size, then CRLF, is an error", f"{R9112} §7.1", "MUST",
     static(resp(b"200 OK", (TE,), b"5\r\nhelloXX\r\n0\r\n\r\n")), [], expect_error()),
    ("chunked-truncated", "closed inside a chunk: an error", f"{R9112} §8", "MUST",
     static(resp(b"200 OK", (TE,), b"a\r\nabc")), [], expect_error()),
    ("chunked-no-last-chunk", "closed after a chunk, before the last chunk: an error", f"{R9112} §8", "MUST",
     static(resp(b"200 OK", (TE,), b"5\r\nhello\r\n")), [], expect_error()),
    ("chunked-dripped", "a chunked response one byte at a time", f"{R9112} §7.1", "MUST",
     static(*[x for ch in resp(b"200 OK", (TE,), chunked(b"drip", b"ped")) for x in (bytes([ch]), 0.002)]),
     [], expect_body(b"dripped")),
    # ---- close-delimited ----
    ("close-delimited", "no Content-Length nor Transfer-Encoding: the body runs to close", f"{R9112} §6.3",
     "MUST", static(resp(b"200 OK", (), HELLO)), [], expect_body(HELLO)),
    ("close-delimited-http10", "HTTP/1.0 response delimited by close", f"{R9112} §6.3", "MUST",
     static(resp(b"200 OK", (), HELLO, version=b"HTTP/1.0")), [], expect_body(HELLO)),
    ("close-delimited-1mib", "1 MiB close-delimited body", f"{R9112} §6.3", "MUST",
     static(resp(b"200 OK", (), MIB)), [], expect_body(MIB)),
    # ---- gzip ----
    ("gzip-decompress", "gzip body decoded with --decompress", TORNADO, "MUST",
     static(cl(GZ, extra=(b"Content-Encoding: gzip",))), ["--decompress"],
     all_of(expect_body(GZ_PLAIN),
            requested(lambda q: "gzip" in (q[0].header("Accept-Encoding") or ""), "Accept-Encoding: gzip sent"))),
    ("gzip-no-decompress", "gzip body kept as is with --no-decompress", TORNADO, "MUST",
     static(cl(GZ, extra=(b"Content-Encoding: gzip",))), ["--no-decompress"], expect_body(GZ)),
    ("gzip-chunked", "gzip over chunked, decoded", TORNADO, "MUST",
     static(resp(b"200 OK", (TE, b"Content-Encoding: gzip"), chunked(GZ[:10], GZ[10:100], GZ[100:]))),
     ["--decompress"], expect_body(GZ_PLAIN)),
    ("gzip-corrupt", "a corrupt gzip body with --decompress is an error", TORNADO, "SHOULD",
     static(cl(b"\x1f\x8b\x08\x00garbage-not-deflate", extra=(b"Content-Encoding: gzip",))), ["--decompress"],
     expect_error()),
    # ---- no body ----
    ("head-content-length", "HEAD: Content-Length describes the GET body; none is read", f"{R9110} §9.3.2",
     "MUST", static(resp(b"200 OK", (b"Content-Length: 1000",)), HOLD), ["--method", "HEAD"],
     expect_no_body(200)),
    ("status-204", "204 has no body (no Content-Length, connection left open)", f"{R9110} §15.3.5", "MUST",
     static(resp(b"204 No Content"), HOLD), [], expect_no_body(204)),
    ("status-304", "304 has no body even with Content-Length", f"{R9110} §15.4.5", "MUST",
     static(resp(b"304 Not Modified", (b"Content-Length: 1000", b"ETag: \"x\"")), HOLD),
     ["--header", "If-None-Match: \"x\""], expect_no_body(304)),
    ("status-100-continue", "an interim 100 Continue before the final response", f"{R9110} §15.2", "MUST",
     static(resp(b"100 Continue") + cl(HELLO)), [], expect_body(HELLO)),
    ("status-103-early-hints", "an interim 103 Early Hints before the final response", f"{R9110} §15.2",
     "SHOULD", static(resp(b"103 Early Hints", (b"Link: </s.css>; rel=preload",)) + cl(HELLO)), [],
     expect_body(HELLO), "a client MUST be able to parse 1xx before the final response; SHOULD here "
     "because Tornado 6.2 only skips 100"),
    # ---- redirects ----
    ("redirect-301-get", "301 followed with GET", f"{R9110} §15.4.2", "MUST",
     redirect(b"301 Moved Permanently", lambda s: "/next"), [], all_of(expect_redirected("GET", b""), effective("/next"))),
    ("redirect-301-post", "301 after POST: followed with GET, no body", TORNADO, "MUST",
     redirect(b"301 Moved Permanently", lambda s: "/next"), ["@body", "--method", "POST"], expect_redirected("GET", b"")),
    ("redirect-302-post", "302 after POST: followed with GET, no body", TORNADO, "MUST",
     redirect(b"302 Found", lambda s: "/next"), ["@body", "--method", "POST"], expect_redirected("GET", b"")),
    ("redirect-303-post", "303 after POST: followed with GET, no body", f"{R9110} §15.4.4", "MUST",
     redirect(b"303 See Other", lambda s: "/next"), ["@body", "--method", "POST"], expect_redirected("GET", b"")),
    ("redirect-303-put", "303 after PUT: followed with GET", f"{R9110} §15.4.4", "MUST",
     redirect(b"303 See Other", lambda s: "/next"), ["@body", "--method", "PUT"], expect_redirected("GET", b"")),
    ("redirect-307-post", "307 after POST: method and body kept", f"{R9110} §15.4.8", "MUST",
     redirect(b"307 Temporary Redirect", lambda s: "/next"), ["@body", "--method", "POST"], expect_redirected("POST", b"payload")),
    ("redirect-308-post", "308 after POST: method and body kept", f"{R9110} §15.4.9", "MUST",
     redirect(b"308 Permanent Redirect", lambda s: "/next"), ["@body", "--method", "POST"], expect_redirected("POST", b"payload")),
    ("redirect-302-put", "302 after PUT: method and body kept", TORNADO, "SHOULD",
     redirect(b"302 Found", lambda s: "/next"), ["@body", "--method", "PUT"], expect_redirected("PUT", b"payload"),
     "Tornado only rewrites POST to GET on 301/302"),
    ("redirect-location-relative", "Location: a relative reference, resolved against the request URL",
     f"{R9110} §10.2.2", "MUST", redirect(b"302 Found", lambda s: "next?q=1"), ["@path=/dir/page"],
     all_of(expect_redirected("GET", b""), effective("/dir/next?q=1"))),
    ("redirect-location-dotdot", "Location: ../up resolved against the request URL", f"{R9110} §10.2.2", "MUST",
     redirect(b"302 Found", lambda s: "../up"), ["@path=/a/b/c"], all_of(expect_redirected("GET", b""), effective("/a/up"))),
    ("redirect-location-absolute", "Location: an absolute URL", f"{R9110} §10.2.2", "MUST",
     redirect(b"302 Found", lambda s: s.url("/abs")), [], all_of(expect_redirected("GET", b""), effective("/abs"))),
    ("redirect-no-follow", "--no-follow returns the 302 and its Location", TORNADO, "MUST",
     redirect(b"302 Found", lambda s: "/next"), ["--no-follow"],
     all_of(lambda r, s: (r["code"] == 302, f"code {r['code']} error {r['error']!r}"), header_is("Location", "/next"),
            lambda r, s: (len(s.requests) == 1, f"{len(s.requests)} request(s)"))),
    ("redirect-chain-at-limit", "three redirects with --max-redirects 3 arrive", TORNADO, "MUST",
     chain(3), ["--max-redirects", "3"], all_of(expect_body(b"arrived"), effective("/hop3"))),
    ("redirect-loop-past-limit", "a redirect loop stops after --max-redirects 3 (no more requests)", TORNADO,
     "MUST", loop_forever, ["--max-redirects", "3"],
     lambda r, s: ((len(s.requests) == 4 and (300 <= r["code"] < 400 or r["code"] == 599)),
                   f"code {r['code']} error {r['error']!r} after {len(s.requests)} requests (expected a 3xx or "
                   f"599 after 4)")),
    # ---- timeouts and connection errors ----
    ("connect-timeout", "connect timeout on a loopback socket whose backlog is full", TORNADO, "MUST",
     None, ["@backlog", "--connect-timeout", "0.5", "--request-timeout", "10"], expect_error(max_seconds=4)),
    ("request-timeout", "request timeout: the server accepts and never answers", TORNADO, "MUST",
     static("hang"), ["--request-timeout", "0.5"], expect_error(max_seconds=4)),
    ("request-timeout-slow-body", "request timeout while the body trickles in", TORNADO, "MUST",
     static(resp(b"200 OK", (b"Content-Length: 100",), b"x"), *[x for _ in range(40) for x in (0.1, b"x")]),
     ["--request-timeout", "0.8"], expect_error(max_seconds=4)),
    ("connection-refused", "a closed loopback port: 599", TORNADO, "MUST",
     None, ["@refused"], expect_error(max_seconds=4)),
    ("connection-closed-no-response", "the server closes without a response: an error", f"{R9112} §8", "MUST",
     static(), [], expect_error()),
    # ---- malformed status lines and headers ----
    ("status-garbage", "a garbage status line is an error", f"{R9112} §4", "MUST",
     static(b"HELLO THERE\r\nContent-Length: 2\r\n\r\nhi"), ["--request-timeout", "2"], expect_error(),
     "Tornado 6.2 logs the malformed response and reports 599 only when the request timeout expires"),
    ("status-bad-code", "a non-numeric status code is an error", f"{R9112} §4", "MUST",
     static(b"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nhi"), ["--request-timeout", "2"], expect_error(),
     "Tornado 6.2 logs the malformed response and reports 599 only when the request timeout expires"),
    ("status-bad-version", "a status line with FTP/1.1 is an error", f"{R9112} §4", "MUST",
     static(b"FTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"), ["--request-timeout", "2"], expect_error(),
     "Tornado 6.2 logs the malformed response and reports 599 only when the request timeout expires"),
    ("status-http09", "no status line at all (HTTP/0.9 style) is an error", f"{R9112} §4", "MUST",
     static(b"hello world\n"), [], expect_error()),
    ("status-empty-reason", "an empty reason phrase (\"200 \") is accepted", f"{R9112} §4", "MUST",
     static(b"HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nhi"), [], expect_body(b"hi")),
    ("status-custom-reason", "the reason phrase is reported as sent", f"{R9112} §4", "MUST",
     static(b"HTTP/1.1 299 Fine By Me\r\nContent-Length: 2\r\n\r\nhi"), [],
     all_of(expect_body(b"hi", 299), lambda r, s: (r["reason"] == "Fine By Me", f"reason {r['reason']!r}"))),
    ("header-no-colon", "a header line without a colon is an error", f"{R9112} §5", "MUST",
     static(b"HTTP/1.1 200 OK\r\nBroken header line\r\nContent-Length: 2\r\n\r\nhi"), ["--request-timeout", "2"], expect_error(),
     "Tornado 6.2 logs the malformed response and reports 599 only when the request timeout expires"),
    ("header-repeated", "repeated header fields are all reported", f"{R9110} §5.3", "MUST",
     static(resp(b"200 OK", (b"Set-Cookie: a=1", b"Set-Cookie: b=2", b"Content-Length: 2"), b"hi")), [],
     all_of(expect_body(b"hi"), lambda r, s: (
         [v for k, v in r["headers"] if k.lower() == "set-cookie"] == ["a=1", "b=2"],
         f"Set-Cookie values {[v for k, v in r['headers'] if k.lower() == 'set-cookie']}"))),
    # ---- framing conflicts ----
    ("cl-with-te", "Content-Length with Transfer-Encoding: chunked wins or the response is an error",
     f"{R9112} §6.3", "MUST",
     static(resp(b"200 OK", (b"Content-Length: 3", TE), chunked(b"hello"))), [],
     lambda r, s: ((r["code"] == 599 or (r["code"] == 200 and r["body"] == b"hello")),
                   f"code {r['code']} body {short(r['body'])} error {r['error']!r}")),
    ("te-not-chunked-final", "Transfer-Encoding without chunked last: an error (length unknown)",
     f"{R9112} §6.3", "SHOULD",
     static(resp(b"200 OK", (b"Transfer-Encoding: gzip",), b"hello")), [],
     lambda r, s: (r["code"] == 599 or (r["code"] == 200 and r["body"] == b"hello"),
                   f"code {r['code']} body {short(r['body'])} error {r['error']!r}"),
     "a client may read to close (RFC 9112 §6.3 item 4) or reject it"),
    # ---- sizes ----
    ("header-oversized", "a 100 KiB header section is rejected", TORNADO, "SHOULD",
     static(resp(b"200 OK", (b"X-Big: " + b"b" * (100 << 10), b"Content-Length: 2"), b"hi")), [],
     expect_error(), "Tornado's max_header_size is 64 KiB"),
    ("body-max-size-cl", "Content-Length above --max-body-size is an error", TORNADO, "MUST",
     static(cl(b"x" * 5000)), ["--max-body-size", "1000"], expect_error()),
    ("body-max-size-exact", "a body of exactly --max-body-size is accepted", TORNADO, "MUST",
     static(cl(b"x" * 1000)), ["--max-body-size", "1000"], expect_body(b"x" * 1000)),
    ("body-max-size-chunked", "chunked bytes above --max-body-size are an error", TORNADO, "MUST",
     static(resp(b"200 OK", (TE,), chunked(*[b"y" * 500] * 10))), ["--max-body-size", "1000"], expect_error()),
    ("body-max-size-close", "close-delimited bytes above --max-body-size are an error", "contracts.md §4",
     "SHOULD", static(resp(b"200 OK", (), b"z" * 5000)), ["--max-body-size", "1000"], expect_error(),
     "SHOULD because Tornado 6.2 applies max_body_size to Content-Length and chunked bodies only"),
    # ---- the request ----
    ("request-host-header", "the request carries Host: 127.0.0.1:port", f"{R9110} §7.2", "MUST",
     static(cl(b"ok")), [], all_of(expect_body(b"ok"), lambda r, s: (
         s.requests[0].header("Host") == f"127.0.0.1:{s.port}", f"Host {s.requests[0].header('Host')!r}"))),
    ("request-headers-and-body", "--header and --body-file arrive with Content-Length", f"{R9112} §6.2",
     "MUST", static(cl(b"ok")), ["@body", "--method", "POST", "--header", "X-Squall: yes"],
     all_of(expect_body(b"ok"), requested(
         lambda q: q[0].method == "POST" and q[0].body == b"payload" and q[0].header("X-Squall") == "yes"
         and q[0].header("Content-Length") == "7", "POST with X-Squall and a 7 B body"))),
    # ---- beyond Tornado ----
    ("connection-reuse-redirect", "a same-origin redirect reuses the kept-alive connection", "beyond Tornado",
     "MAY", keepalive_redirect, [], all_of(expect_body(b"second"), lambda r, s: (
         s.conns == 1, f"{s.conns} connection(s) for {len(s.requests)} requests")),
     "beyond Tornado: Tornado 6.2's simple client opens one connection per request"),
    ("connection-reuse-fetches", "several fetches reuse one connection", "beyond Tornado", "MAY",
     None, ["@n/a"], None,
     "beyond Tornado, and not testable: contract §4 has one fetch per adapter process and squall-fetch "
     "has no multi-request mode, so this is n/a for every implementation"),
    # ---- TLS: certificate validation (RFC 9110 §4.3.4), and --insecure ----
    ("tls-valid", "https: a certificate for 127.0.0.1 signed by the --ca-certs CA is accepted", f"{R9110} §4.3.4",
     "MUST", static(cl(HELLO)), ["@tls=server", "@ca"], all_of(expect_body(HELLO), effective("/tls-valid"))),
    ("tls-expired", "an expired certificate is refused before the request is sent", f"{R9110} §4.3.4", "MUST",
     static(cl(HELLO)), ["@tls=expired", "@ca"], refused_tls()),
    ("tls-wrong-host", "a certificate for another host (wrong.example) is refused", f"{R9110} §4.3.4", "MUST",
     static(cl(HELLO)), ["@tls=wronghost", "@ca"], refused_tls()),
    ("tls-self-signed", "a self-signed certificate (unknown issuer) is refused", f"{R9110} §4.3.4", "MUST",
     static(cl(HELLO)), ["@tls=selfsigned", "@ca"], refused_tls()),
    ("tls-ca-not-given", "without --ca-certs the test CA is not trusted (system store): refused",
     f"{R9110} §4.3.4", "MUST", static(cl(HELLO)), ["@tls=server"], refused_tls()),
    ("tls-expired-insecure", "--insecure: an expired certificate is accepted", TORNADO, "MUST",
     static(cl(HELLO)), ["@tls=expired", "--insecure"], expect_body(HELLO)),
    ("tls-wrong-host-insecure", "--insecure: a certificate for another host is accepted", TORNADO, "MUST",
     static(cl(HELLO)), ["@tls=wronghost", "--insecure"], expect_body(HELLO)),
    ("tls-self-signed-insecure", "--insecure: a self-signed certificate is accepted", TORNADO, "MUST",
     static(cl(HELLO)), ["@tls=selfsigned", "--insecure"], expect_body(HELLO)),
]


def adapter_args(args, body_file="BODY_FILE", ca="CA_FILE"):
    """The flags after `fetch URL` for a spec's args: its own flags, then --body-file for
    "@body" and --ca-certs for "@ca"."""
    out = [a for a in args if not a.startswith("@")]
    if "@body" in args:
        out = ["--body-file", body_file] + out
    if "@ca" in args:
        out += ["--ca-certs", ca]
    return out


def fetch_argv(cmd, url, args):
    """The adapter's whole command line (CONTRACTS.md §4: `<cmd> fetch URL [flags]`)."""
    return cmd + ["fetch", url] + args


def check_json(r):
    """None if r is the object of CONTRACTS.md §4, else what is wrong with it."""
    if not isinstance(r, dict):
        return f"printed {type(r).__name__}, not a JSON object"
    missing = [k for k in JSON_FIELDS if k not in r]
    if missing:
        return f"the JSON object lacks {', '.join(missing)}"
    wrong = [k for k, types in JSON_FIELDS.items()
             if not isinstance(r[k], types) or (types == (int,) and isinstance(r[k], bool))]
    if wrong:
        return "wrong type for " + ", ".join(f"{k} ({type(r[k]).__name__})" for k in wrong)
    if not all(isinstance(h, list) and len(h) == 2 and all(isinstance(x, str) for x in h) for h in r["headers"]):
        return "headers is not a list of [name, value] string pairs"
    try:
        base64.b64decode(r["body_b64"], validate=True)
    except ValueError:
        return "body_b64 is not base64"
    return None


def run_fetch(cmd, url, args):
    cmd = fetch_argv(cmd, url, args)
    t0 = time.monotonic()
    p = run_bounded(cmd, FETCH_TIMEOUT, limit=FETCH_OUTPUT_LIMIT)
    if p.problem:
        return None, f"adapter {p.problem}" if "run" not in p.problem else p.problem, cmd
    secs = time.monotonic() - t0
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    try:
        r = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None, f"adapter exited {p.returncode} without JSON: {err.strip()[-200:] or out[:200]}", cmd
    bad = check_json(r)
    if bad:
        return None, f"adapter exited {p.returncode}: {bad}: {out.strip()[-200:]}", cmd
    r["body"] = base64.b64decode(r["body_b64"])
    r["seconds"] = secs
    return r, err, cmd


def client_case(cid, title, source, level, handler, args, check, note=""):
    assert "@body" not in args or "--method" in args, f"{cid}: --body-file is always sent with --method"

    @case(f"client-{cid}", "client", title, source, level, note=note)
    def run(ctx):
        if "@n/a" in args:
            return na("one fetch per adapter process (contract §4); no multi-request mode")
        fetch_cmd = ctx.target.command("client")
        path = next((a[6:] for a in args if a.startswith("@path=")), "/" + cid)
        cert = next((a[5:] for a in args if a.startswith("@tls=")), None)
        server_tls = None
        if cert:
            missing = [f for f in OPTIONAL_FLAGS if not ctx.target.supports("client", f)]
            if missing:
                return na(f"the adapter has no {' or '.join(missing)} (the optional TLS flags of contract §4)")
            certs = tls.certs()
            server_tls = launch.server_context(*certs.pair(cert))
        srv, extra, tmp = None, [], None
        try:
            if "@backlog" in args:
                ls, fillers = full_backlog()
                extra = [ls] + fillers
                url = f"http://127.0.0.1:{ls.getsockname()[1]}{path}"
            elif "@refused" in args:
                s = socket.socket()
                s.bind(("127.0.0.1", 0))
                url = f"http://127.0.0.1:{s.getsockname()[1]}{path}"
                s.close()
            else:
                srv = RawServer(handler, server_tls)
                url = srv.url(path)
            if "@body" in args:
                tmp = tempfile.NamedTemporaryFile(prefix="squall-body-", delete=False)
                tmp.write(BODY)
                tmp.close()
            r, err, cmd = run_fetch(fetch_cmd, url, adapter_args(args, tmp and tmp.name,
                                                                 cert and tls.certs().ca))
        finally:
            if srv:
                srv.stop()
            for s in extra:
                s.close()
            if tmp:
                os.unlink(tmp.name)
        seen = "\n".join([f"server: {q}" for q in (srv.requests if srv else [])] +
                         [f"server: TLS handshake failed: {e}" for e in (srv.handshake_errors if srv else [])])
        if r is None:
            ctx.log(f"$ {' '.join(cmd)}\n{seen}")
            return mismatch(level, err)
        shown = {k: v for k, v in r.items() if k not in ("body", "body_b64")}
        ctx.log(f"$ {' '.join(cmd)}\n{seen}\n{json.dumps(shown)[:1500]}\nbody {short(r['body'], 200)}"
                + (f"\n--- stderr ---\n{err[-800:]}" if err.strip() else ""))
        good, why = check(r, srv)
        return ok(why) if good else mismatch(level, why)
    return run


for _spec in SPECS:
    client_case(*_spec)
