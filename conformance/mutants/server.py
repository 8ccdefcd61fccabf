#!/usr/bin/python3
"""A small contract §1 server app, written for the mutation harness (conformance/mutants).

Its own HTTP/1.1 on asyncio streams (standard library only, no http.server): the request
head is parsed by hand from RFC 9112 (§2 message format, §3 request line, §5 fields, §6-§7
body framing, §9 connection management) and RFC 9110 (§5 fields, §7.2 Host, §8.6
Content-Length, §10.1.1 Expect, §12.5.3 Accept-Encoding), and the endpoints are those of
conformance/CONTRACTS.md §1. It is meant to be correct and small, not fast.

    /usr/bin/python3 conformance/mutants/server.py --port 0 [--catch-all]
        [--idle-timeout S] [--header-timeout S] [--body-timeout S] [--defect NAME]

`--defect NAME` switches on one single, realistic bug (DEFECTS below, each with the public
bug it imitates); `--list-defects` prints them as JSON. SIGTERM exits with status 0.
"""
from __future__ import annotations

import argparse
import asyncio
import email.utils
import gzip
import hashlib
import http
import json
import os
import re
import signal
import sys
import time
import urllib.parse

# ---- the defects ----------------------------------------------------------------------------
# name -> (class, one-line description, the public bug it imitates or "")
DEFECTS = {
    # request parsing
    "bare-cr": ("parse", "a bare CR inside a field value is kept as data instead of refused",
                "apple/servicetalk#3022, ruby/webrick#137 (HTTP Garden findings)"),
    "space-before-colon": ("parse", "whitespace between a field name and the colon is stripped, not refused",
                           "apple/servicetalk#901, apache/trafficserver#3192"),
    "cl-lenient": ("parse", "Content-Length parsed with int(): '+5', ' 5', '5_0' and '0x5' accepted",
                   "golang/go#39017 ('+' in Content-Length), apple/servicetalk#1427 (signed values)"),
    "chunk-size-int": ("parse", "chunk size parsed with int(s, 16): '0x5', '-0', '+5', '5_0' accepted",
                       "graygnuorg/pound#19 (strtoll accepts 0x and -0x0), openwrt/uhttpd#3"),
    "chunk-size-wrap": ("parse", "chunk size accumulated in 64 bits without an overflow check (wraps)",
                        "oven-sh/bun#26931 (chunk size truncation), baidu/dperf#577"),
    "obs-fold-raw": ("parse", "obs-fold accepted and kept raw: CRLF SP stays inside the field value",
                     "unbit/uwsgi#2775 (obs-fold accepted); RFC 9112 §5.2 (reject, or replace with SP)"),
    "ws-line-as-field": ("parse", "a line starting with whitespace is read as a field of its own, whitespace stripped",
                         "embedthis/appweb#5, stephenberry/glaze#2661 (folded ' Transfer-Encoding' seen as a field)"),
    "cl-last-wins": ("parse", "several different Content-Length values: the last one wins",
                     "K0M15/webserv#52, NVIDIA/OpenShell#660 (map overwrite)"),
    "te-cl-uses-cl": ("parse", "Transfer-Encoding and Content-Length together: Content-Length frames the body",
                      "kazuho/Starlet#34"),
    "chunk-ext-lf": ("parse", "a chunk extension runs to the next LF: bare LF ends the chunk-size line",
                     "golang/go#71988 (CVE-2025-22871), nginx/nginx#1016, ruby/webrick#125"),
    "nul-in-value": ("parse", "NUL accepted inside a field value",
                     "nodejs/http-parser#468 (CVE-2019-9900), dart-lang/sdk#56636"),
    "te-substring": ("parse", "the body is chunked when 'chunked' appears anywhere in Transfer-Encoding",
                     "apple/servicetalk#3509 (chunked anywhere, not last), cesanta/mongoose#2509"),
    "no-host-check": ("parse", "HTTP/1.1 requests without Host, or with two, are served",
                      "Lightbug-HQ/lightbug_http RFC 9112 §3.2 issues"),
    "chunk-data-crlf": ("parse", "any two bytes after chunk data are taken for its CRLF",
                        "graygnuorg/pound#43 (parsers that accept any 2-byte chunk terminator)"),
    "method-case": ("parse", "methods are matched case-insensitively ('get' served as GET)",
                    "RFC 9110 §9.1 (the method token is case-sensitive)"),
    "bad-field-name": ("parse", "field names are not checked to be tokens",
                       "valyala/fasthttp#1785 (CR accepted in field names)"),
    "te-http10": ("parse", "Transfer-Encoding: chunked honoured on an HTTP/1.0 request, connection kept",
                  "RFC 9112 §6.1 (HTTP/1.0 with Transfer-Encoding: framing is faulty)"),
    "version-lenient": ("parse", "any HTTP/d.d version is served as HTTP/1.1 (no 505, no 400)", ""),
    # framing of what it sends
    "gzip-cl": ("send", "/gzip sends the Content-Length of the identity body with the gzip body",
                "a classic: length computed before compression"),
    "no-last-chunk": ("send", "/stream ends without the last chunk and closes", "hyperium/hyper#3252, yhirose/cpp-httplib#2563, netty/netty#1861"),
    "chunked-http10": ("send", "/stream is chunked to an HTTP/1.0 request", "RFC 9112 §6.1"),
    "head-body": ("send", "a HEAD response carries the GET body", "h2o/h2o#300, mar10/wsgidav#123, cesanta/mongoose#1151"),
    "cl-in-204": ("send", "204 responses carry Content-Length: 0", "bottlepy/bottle#829, pallets/werkzeug#1025, fluent/fluent-bit#7231"),
    "body-in-304": ("send", "304 is sent chunked with a last chunk (content in a 304)", "nextcloud/server#1221 (no body or Content-Length for 204 and 304)"),
    "chunk-no-crlf": ("send", "/stream chunk data is not followed by CRLF", "jetty/jetty.project#154 (the CRLF after chunk data held back)"),
    "cl-and-te": ("send", "/stream sends Content-Length and Transfer-Encoding: chunked", "RFC 9112 §6.2"),
    "no-status-sp": ("send", "status line without the SP after the code ('HTTP/1.1 200')", "RFC 9112 §4"),
    "no-date": ("send", "responses carry no Date field", "RFC 9110 §6.6.1"),
    # connection management
    "ignore-close": ("conn", "a request's Connection: close is ignored (connection kept open)", "swift-server/swift-http-server#119, rapidoid/rapidoid#95"),
    "close-unannounced": ("conn", "HTTP/1.1 connections are closed after each response without Connection: close",
                          "RFC 9112 §9.6"),
    "keep-http10": ("conn", "HTTP/1.0 connections without keep-alive stay open", "swift-server/swift-http-server#119 (HTTP/1.0 kept open)"),
    "pipeline-order": ("conn", "pipelined requests are handled concurrently, answered as they finish", "guzba/mummy#142, Kludex/uvicorn#19"),
    "answer-after-close": ("conn", "requests pipelined after Connection: close are still answered", "cesanta/mongoose#2765 (answers the request pipelined after Connection: close)"),
    "serve-after-400": ("conn", "after a 400 the connection stays open and parsing resumes after the head",
                        "request smuggling via error recovery"),
    "no-100-continue": ("conn", "Expect: 100-continue is never answered with 100 Continue", "K0M15/webserv#41, facebook/hhvm#1384, yhirose/cpp-httplib#349"),
    "eof-drops": ("conn", "a request followed by the client's half-close is dropped unanswered", ""),
    # limits
    "no-head-limit": ("limits", "no limit on the request head: it is read whole, however large", ""),
    "late-413": ("limits", "a too large Content-Length is answered 413 only after the body was read", ""),
    "no-idle-timeout": ("limits", "--idle-timeout is ignored", ""),
    "no-header-timeout": ("limits", "--header-timeout is ignored", ""),
    "no-body-timeout": ("limits", "--body-timeout is ignored", ""),
    "no-uri-limit": ("limits", "no request-line limit (no 414)", ""),
    "no-ext-limit": ("limits", "chunk extensions and trailer sections are not bounded", ""),
    # contract endpoints
    "echo-lower": ("endpoint", "/echo lower-cases field names", ""),
    "echo-dedup": ("endpoint", "/echo keeps only the last of repeated fields", ""),
    "echo-sorted": ("endpoint", "/echo lists fields sorted by name", ""),
    "bytes-short": ("endpoint", "/bytes/N sends N-1 bytes (with a matching Content-Length)", ""),
    "stream-one-chunk": ("endpoint", "/stream/N is buffered into one chunk", ""),
    "stream-count": ("endpoint", "/stream/N sends lines 1..N-1 (one short)", ""),
    "upload-chunked-sha": ("endpoint", "/upload hashes the chunked framing with the data", ""),
    "upload-empty": ("endpoint", "/upload of an empty body reports sha256 null", ""),
    "args-last": ("endpoint", "/args keeps only the last value of a repeated key", ""),
    "form-size": ("endpoint", "/form counts a file's trailing CRLF in its size", ""),
    "redirect-self": ("endpoint", "/redirect/N redirects to /redirect/N (not N-1)", ""),
    "gzip-always": ("endpoint", "/gzip is gzip-encoded whatever Accept-Encoding says", "18F/18f.gsa.gov#1796, envoyproxy/envoy#2855"),
    "gzip-q0": ("endpoint", "/gzip ignores q=0 in Accept-Encoding", "jaysylvester/citizen#38, senchalabs/connect#414"),
    "cookie-quoted": ("endpoint", "/cookie keeps the quotes of quoted values", ""),
    "405-no-allow": ("endpoint", "405 responses carry no Allow field", "emicklei/go-restful#436, tower-rs/tower-http#263"),
    "404-not-405": ("endpoint", "a known path with an unsupported method gets 404", ""),
    "path-undecoded": ("endpoint", "path arguments are not percent-decoded", ""),
    "route-decoded": ("endpoint", "routes match the percent-decoded path", ""),
    "error-leak": ("endpoint", "/error's 500 shows the exception and traceback", ""),
    "slow-blocks": ("endpoint", "/slow/N sleeps with time.sleep, blocking every connection", ""),
    "head-no-cl": ("endpoint", "HEAD / carries no Content-Length", ""),
    "no-vary": ("endpoint", "/gzip carries no Vary: Accept-Encoding", "kataras/iris#361"),
}
D = None   # the defect switched on (at most one)


def bug(name):
    assert name in DEFECTS, name
    return D == name


# ---- limits and grammar ----------------------------------------------------------------------
MAX_LINE = 16 << 10        # request line (RFC 9112 §3: at least 8000 octets SHOULD be supported)
MAX_HEAD = 96 << 10        # whole request head -> 431
MAX_FIELDS = 256
MAX_BODY = 64 << 20        # -> 413
MAX_CHUNK_LINE = 4096      # chunk-size line with its extensions
MAX_TRAILERS = 16 << 10
MAX_LEADING_CRLF = 8
LINGER = 1.0               # seconds we keep reading after we stopped writing (RFC 9112 §9.6)

TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
TOKEN_RE = re.compile(TOKEN + rb"\Z")
REQUEST_LINE_RE = re.compile(rb"(" + TOKEN + rb") ([^ ]+) (HTTP/[0-9]\.[0-9])\Z")
FIELD_VALUE_RE = re.compile(rb"[\t \x21-\x7e\x80-\xff]*\Z")
# RFC 3986 characters of a path and query; '%' must start a pct-encoded octet.
URI_CHARS_RE = re.compile(rb"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*\Z")
AUTHORITY_RE = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)(?::[0-9]*)?\Z")
CHUNK_EXT_RE = re.compile(rb"(?:[ \t]*;[ \t]*" + TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + TOKEN +
                          rb'|"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"))?)*[ \t]*\Z')
HEX_RE = re.compile(rb"[0-9A-Fa-f]+\Z")

PATTERN = b"0123456789abcdef"
GZIP_TEXT = b"Squall compresses this line when the client accepts gzip.\n" * 200


class HTTPError(Exception):
    """A request we refuse: answered with `status`, then the connection is closed."""

    def __init__(self, status, why=""):
        super().__init__(why)
        self.status = status
        self.why = why


class Closed(Exception):
    """The peer went away (or timed out between requests): close without answering."""


class Request:
    def __init__(self, method, target, version, fields):
        self.method = method            # str
        self.target = target            # str (ASCII)
        self.version = version          # (major, minor)
        self.fields = fields            # [(name str as received, value str)], latin-1
        self.path, _, self.query = target.partition("?")
        self.body = b""

    def values(self, name):
        name = name.lower()
        return [v for n, v in self.fields if n.lower() == name]

    def first(self, name, default=None):
        vs = self.values(name)
        return vs[0] if vs else default

    def tokens(self, name):
        return [t.strip().lower() for v in self.values(name) for t in v.split(",") if t.strip()]


def http_date():
    return email.utils.formatdate(usegmt=True)


def reason(status):
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


# ---- one connection ----------------------------------------------------------------------------

class Connection:
    def __init__(self, app, reader, writer):
        self.app = app
        self.r = reader
        self.w = writer
        self.buf = bytearray()
        self.eof = False
        self.loop = asyncio.get_running_loop()

    # -- reading --
    async def fill(self, timeout):
        """Read more bytes into buf; False at EOF. Raises asyncio.TimeoutError."""
        if self.eof:
            return False
        if timeout is not None and timeout <= 0:
            raise asyncio.TimeoutError()
        data = await asyncio.wait_for(self.r.read(65536), timeout)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    async def serve(self):
        linger = True
        try:
            while True:
                try:
                    req = await self.read_head()
                except HTTPError as e:
                    await self.send_error(e.status, None)
                    if bug("serve-after-400") and e.status == 400 and not self.eof:
                        if not self.consumed:
                            self.buf.clear()
                        continue
                    break
                if req is None:
                    break
                keep = await self.process(req)
                if not keep:
                    break
        except Closed:
            pass
        except (ConnectionError, OSError):
            linger = False
        except asyncio.CancelledError:
            linger = False
        finally:
            await self.close(linger)

    async def close(self, linger):
        """Half-close, then read (and drop) what the client still sends for a while, so
        that unread input does not turn our close into a reset (RFC 9112 §9.6)."""
        try:
            if linger and not self.w.is_closing():
                await self.w.drain()
                if self.w.can_write_eof():
                    self.w.write_eof()
                end = self.loop.time() + LINGER
                drained = 0
                while not self.eof and drained < (8 << 20):
                    left = end - self.loop.time()
                    if left <= 0:
                        break
                    try:
                        data = await asyncio.wait_for(self.r.read(65536), left)
                    except asyncio.TimeoutError:
                        break
                    if not data:
                        break
                    drained += len(data)
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            self.w.close()

    async def read_head(self):
        """The next request head, or None when the connection ends between requests."""
        app = self.app
        idle = None if bug("no-idle-timeout") else app.idle_timeout
        # Between requests: wait for the first byte (idle timeout).
        self.consumed = False
        skipped = 0
        while True:
            while self.buf[:2] == b"\r\n" and skipped < MAX_LEADING_CRLF:   # RFC 9112 §2.2
                del self.buf[:2]
                skipped += 1
            if self.buf and self.buf != b"\r":
                break
            try:
                if not await self.fill(idle):
                    return None
            except asyncio.TimeoutError:
                return None
        # The head: complete within the header timeout from its first byte.
        deadline = None if bug("no-header-timeout") else self.loop.time() + app.header_timeout
        while True:
            end = head_end(self.buf)
            if end >= 0:
                break
            nl = self.buf.find(b"\n")
            if (nl < 0 or nl > MAX_LINE) and len(self.buf) > MAX_LINE and not bug("no-uri-limit"):
                first = bytes(self.buf[:64]).split(b" ", 1)[0]
                raise HTTPError(414 if TOKEN_RE.match(first) and len(first) < 32 else 400, "request line too long")
            line = (nl + 1 if nl >= 0 else len(self.buf)) if bug("no-uri-limit") else 0
            if len(self.buf) - line > MAX_HEAD and not bug("no-head-limit"):
                raise HTTPError(431, "request head too large")
            try:
                more = await self.fill(None if deadline is None else deadline - self.loop.time())
            except asyncio.TimeoutError:
                raise HTTPError(408, "request head not complete in time") from None
            if not more:
                raise Closed()
        head = bytes(self.buf[:end])
        del self.buf[:end]
        self.consumed = True
        return parse_head(head)

    # -- one exchange --
    async def process(self, req):
        """Read the body, run the handler, answer. Returns whether to keep the connection."""
        keep = self.keep_alive(req)
        try:
            framing = body_framing(req)
        except HTTPError as e:
            await self.send_error(e.status, req)
            if bug("serve-after-400") and e.status == 400:
                return True
            return False
        if framing is not None and framing[0] == "fault-close":   # te-http10: served, then framing is faulty
            keep = bug("te-http10")
            framing = framing[1]
        if framing and framing[0] == "length" and framing[1] > MAX_BODY:
            if bug("late-413"):
                try:
                    async for _ in self.body_pieces(req, framing):
                        pass
                except HTTPError:
                    return False
            await self.send_error(413, req)
            return False
        expect = req.first("Expect")
        if expect is not None:
            if expect.strip().lower() != "100-continue":
                await self.send_error(417, req)
                return False
            if req.version >= (1, 1) and framing and not bug("no-100-continue"):
                self.w.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                await self.w.drain()
        handler, args = self.app.route(req)
        try:
            if handler is upload:
                resp = await upload(req, self.body_pieces(req, framing), framing == ("chunked",))
            else:
                chunks = []
                size = 0
                async for piece in self.body_pieces(req, framing):
                    size += len(piece)
                    if size > MAX_BODY:
                        raise HTTPError(413, "body too large")
                    chunks.append(piece)
                req.body = b"".join(chunks)
                resp = await handler(req, *args)
        except HTTPError as e:
            await self.send_error(e.status, req)
            return False
        except (ConnectionError, OSError, Closed):
            raise
        except Exception as e:   # a handler bug: 500 without detail
            if bug("error-leak"):
                import traceback
                text = "".join(traceback.format_exception(e)).encode()
                resp = Response(500, text)
            else:
                resp = Response(500, b"Internal Server Error")
        if bug("eof-drops"):
            await asyncio.sleep(0.05)
            if (self.eof or self.r.at_eof()) and not self.buf:
                return False
        if isinstance(resp, Stream):
            return await self.send_stream(req, resp, keep)
        await self.send(req, resp, keep)
        return keep and not resp.close

    def keep_alive(self, req):
        conn = req.tokens("Connection")
        if bug("ignore-close") and req.version >= (1, 1):
            return True
        if "close" in conn:
            return bug("answer-after-close")
        if req.version >= (1, 1):
            return not bug("close-unannounced")
        return "keep-alive" in conn or bug("keep-http10")

    async def body_pieces(self, req, framing):
        """The request body, piece by piece, as it arrives (de-chunked)."""
        if not framing:
            return
        body_timeout = None if bug("no-body-timeout") else self.app.body_timeout

        async def more():
            try:
                if not await self.fill(body_timeout):
                    raise Closed()
            except asyncio.TimeoutError:
                raise HTTPError(408, "body not received in time") from None

        if framing[0] == "length":
            left = framing[1]
            while left > 0:
                if not self.buf:
                    await more()
                piece = bytes(self.buf[:left])
                del self.buf[:len(piece)]
                left -= len(piece)
                yield piece
            return
        # chunked (RFC 9112 §7.1)
        total = 0
        while True:
            while True:
                nl = self.buf.find(b"\n")
                if nl >= 0:
                    break
                if len(self.buf) > MAX_CHUNK_LINE and not bug("no-ext-limit"):
                    raise HTTPError(400, "chunk-size line too long")
                await more()
            if nl > MAX_CHUNK_LINE and not bug("no-ext-limit"):
                raise HTTPError(400, "chunk-size line too long")
            line = bytes(self.buf[:nl + 1])
            size = parse_chunk_line(line)
            del self.buf[:nl + 1]
            total += size
            if total > MAX_BODY and not bug("chunk-size-wrap"):
                raise HTTPError(413, "body too large")
            if size == 0:
                break
            left = size
            while left > 0:
                if not self.buf:
                    await more()
                piece = bytes(self.buf[:left])
                del self.buf[:len(piece)]
                left -= len(piece)
                yield piece
            while len(self.buf) < 2:
                await more()
            if self.buf[:2] != b"\r\n" and not bug("chunk-data-crlf"):
                raise HTTPError(400, "chunk data not followed by CRLF")
            del self.buf[:2]
        # trailer section (RFC 9112 §7.1.2): fields we check and drop
        while True:
            end = trailer_end(self.buf)
            if end >= 0:
                break
            if len(self.buf) > MAX_TRAILERS and not bug("no-ext-limit"):
                raise HTTPError(431, "trailer section too large")
            await more()
        trailers = bytes(self.buf[:end])
        del self.buf[:end]
        if len(trailers) > MAX_TRAILERS and not bug("no-ext-limit"):
            raise HTTPError(431, "trailer section too large")
        if trailers != b"\r\n":
            parse_fields(split_lines(b"X\r\n" + trailers)[1:])

    # -- writing --
    def head_bytes(self, req, status, fields, keep):
        sp = b"" if bug("no-status-sp") else b" " + reason(status).encode()
        out = [b"HTTP/1.1 %d%s" % (status, sp)]
        if not bug("no-date"):
            out.append(b"Date: " + http_date().encode())
        for n, v in fields:
            out.append(n.encode("latin-1") + b": " + v.encode("latin-1"))
        if not keep:
            if not bug("close-unannounced") or (req is not None and "close" in req.tokens("Connection")) \
                    or req is None or req.version < (1, 1):
                out.append(b"Connection: close")
        elif req is not None and req.version < (1, 1) and "keep-alive" in req.tokens("Connection"):
            out.append(b"Connection: keep-alive")
        return b"\r\n".join(out) + b"\r\n\r\n"

    async def send(self, req, resp, keep):
        fields = list(resp.fields)
        body = resp.body
        status = resp.status
        head_req = req is not None and req.method == "HEAD"
        if status == 204:
            body = b""
            if bug("cl-in-204"):
                fields.append(("Content-Length", "0"))
        elif status == 304:
            body = b""
            if bug("body-in-304"):
                fields.append(("Transfer-Encoding", "chunked"))
                body = b"0\r\n\r\n"
        elif not (head_req and resp.omit_length):
            length = resp.length if resp.length is not None else len(body)
            if not (bug("head-no-cl") and head_req):
                fields.append(("Content-Length", str(length)))
        if head_req and not bug("head-body"):
            body = b""
        self.w.write(self.head_bytes(req, status, fields, keep and not resp.close) + body)
        await self.w.drain()

    async def send_error(self, status, req):
        body = (f"{status} {reason(status)}\n").encode()
        fields = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
        try:
            self.w.write(self.head_bytes(req, status, fields, bug("serve-after-400") and status == 400) + body)
            await self.w.drain()
        except (ConnectionError, OSError):
            pass

    async def send_stream(self, req, stream, keep):
        """/stream/N: chunked on HTTP/1.1 (one chunk per line, flushed), close-delimited on 1.0."""
        chunked = req.version >= (1, 1) or bug("chunked-http10")
        lines = stream.lines
        fields = [("Content-Type", "text/plain; charset=utf-8")]
        if chunked:
            fields.append(("Transfer-Encoding", "chunked"))
            if bug("cl-and-te"):
                fields.append(("Content-Length", str(sum(len(x) for x in lines))))
        else:
            keep = False
        if bug("no-last-chunk"):
            keep = False
        self.w.write(self.head_bytes(req, 200, fields, keep))
        await self.w.drain()
        if bug("stream-one-chunk") and lines:
            lines = [b"".join(lines)]
        for line in lines:
            if chunked:
                end = b"" if bug("chunk-no-crlf") else b"\r\n"
                self.w.write(b"%x\r\n%s%s" % (len(line), line, end))
            else:
                self.w.write(line)
            await self.w.drain()
            await asyncio.sleep(0)
        if chunked and not bug("no-last-chunk"):
            self.w.write(b"0\r\n\r\n")
        await self.w.drain()
        return keep


def head_end(buf):
    """The offset just past the empty line that ends a head, or -1."""
    i = 0
    while True:
        j = buf.find(b"\n", i)
        if j < 0:
            return -1
        if j == i or (j == i + 1 and buf[i] == 0x0D):
            return j + 1
        i = j + 1


def trailer_end(buf):
    return head_end(buf) if not buf.startswith(b"\r\n") else 2


def split_lines(head):
    """Lines of a head (its final empty line excluded), each without CRLF. A bare LF or bare
    CR makes the request invalid (RFC 9112 §2.2)."""
    if not head.endswith(b"\r\n\r\n"):
        raise HTTPError(400, "bare LF")
    lines = head[:-4].split(b"\r\n")
    for line in lines:
        if b"\n" in line:
            raise HTTPError(400, "bare LF")
        if b"\r" in line and not bug("bare-cr"):
            raise HTTPError(400, "bare CR")
    return lines


def parse_head(head):
    lines = split_lines(head)
    if not lines:
        raise HTTPError(400, "empty request")
    start = lines[0]
    m = REQUEST_LINE_RE.match(start)
    if not m:
        if bug("version-lenient"):
            m2 = re.match(rb"(" + TOKEN + rb") ([^ ]+) [Hh][Tt][Tt][Pp]/[0-9]+\.[0-9]+\Z", start)
            if m2:
                m = re.match(rb"(.*) (.*) (.*)\Z", m2.group(1) + b" " + m2.group(2) + b" HTTP/1.1")
        if not m:
            raise HTTPError(400, "malformed request line")
    method, target, version = m.group(1).decode(), m.group(2), m.group(3)
    if bug("method-case"):
        method = method.upper()
    major, minor = version[5] - 48, version[7] - 48
    if major != 1:
        if not bug("version-lenient"):
            raise HTTPError(505 if major >= 2 else 400, "unsupported HTTP version")
        major, minor = 1, 1
    ver = (1, min(minor, 1))
    fields = parse_fields(lines[1:])
    # the request target (RFC 9112 §3.2)
    if target == b"*":
        if method != "OPTIONS":
            raise HTTPError(400, "asterisk-form is for OPTIONS only")
        path = "*"
    elif target.startswith(b"/"):
        if not URI_CHARS_RE.match(target):
            raise HTTPError(400, "invalid request-target")
        path = target.decode()
    elif re.match(rb"[A-Za-z][A-Za-z0-9+.\-]*://", target):
        scheme, _, rest = target.partition(b"://")
        authority, slash, tail = rest.partition(b"/")
        if scheme.lower() not in (b"http", b"https") or not authority or not AUTHORITY_RE.match(authority) \
                or (slash and not URI_CHARS_RE.match(b"/" + tail)):
            raise HTTPError(400, "invalid absolute-form")
        path = "/" + tail.decode() if slash else "/"
    elif method == "CONNECT":
        if not AUTHORITY_RE.match(target) or b":" not in target:
            raise HTTPError(400, "invalid authority-form")
        raise HTTPError(501, "CONNECT is not supported")
    else:
        raise HTTPError(400, "invalid request-target")
    req = Request(method, path, ver, fields)
    # Host (RFC 9112 §3.2, RFC 9110 §7.2)
    hosts = req.values("Host")
    if not bug("no-host-check"):
        if len(hosts) > 1 or (ver >= (1, 1) and not hosts):
            raise HTTPError(400, "Host missing or repeated")
    if hosts and not AUTHORITY_RE.match(hosts[0].encode("latin-1")):
        raise HTTPError(400, "invalid Host")
    return req


def parse_fields(lines):
    """[(name, value)] of field lines (RFC 9112 §5, RFC 9110 §5.5)."""
    if len(lines) > MAX_FIELDS and not bug("no-head-limit"):
        raise HTTPError(431, "too many fields")
    fields = []
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            if bug("obs-fold-raw") and fields:
                n, v = fields[-1]
                fields[-1] = (n, v + "\r\n" + line.decode("latin-1"))
                continue
            if bug("ws-line-as-field"):
                line = line.lstrip(b" \t")
            else:
                raise HTTPError(400, "obs-fold or whitespace before a field line")
        name, colon, value = line.partition(b":")
        if not colon:
            raise HTTPError(400, "field line without a colon")
        if bug("space-before-colon"):
            name = name.rstrip(b" \t")
        if not TOKEN_RE.match(name) and not (bug("bad-field-name") and name and b"\r" not in name):
            raise HTTPError(400, "invalid field name")
        value = value.strip(b" \t")
        if not FIELD_VALUE_RE.match(value):
            bad = set(value) - set(range(0x20, 0x7f)) - set(range(0x80, 0x100)) - {0x09}
            allowed = set()
            if bug("nul-in-value"):
                allowed.add(0)
            if bug("bare-cr"):
                allowed.add(0x0D)
            if not bad <= allowed:
                raise HTTPError(400, "invalid character in a field value")
        fields.append((name.decode("latin-1"), value.decode("latin-1")))
    return fields


def body_framing(req):
    """None (no body), ("length", n) or ("chunked",); ("fault-close", framing) for a message
    whose framing we read but must not trust for the next one. Raises HTTPError."""
    te = req.values("Transfer-Encoding")
    cls = req.values("Content-Length")
    if te and not (bug("te-cl-uses-cl") and cls):
        if bug("te-substring"):
            if "chunked" in ",".join(te).lower():
                return ("chunked",)
        if req.version < (1, 1) and not bug("te-http10"):
            raise HTTPError(400, "Transfer-Encoding in an HTTP/1.0 request")
        codings = [c.strip().lower() for v in te for c in v.split(",")]
        if any(not TOKEN_RE.match(c.encode("latin-1")) for c in codings):
            raise HTTPError(400, "invalid Transfer-Encoding")
        if "chunked" in codings and (codings[-1] != "chunked" or codings.count("chunked") > 1):
            raise HTTPError(400, "chunked is not the final transfer coding, or applied twice")   # §6.3
        if any(c != "chunked" for c in codings):   # RFC 9112 §6.1: a coding we do not understand
            raise HTTPError(501, "unsupported transfer coding")
        if cls:
            raise HTTPError(400, "Transfer-Encoding with Content-Length")
        if req.version < (1, 1):
            return ("fault-close", ("chunked",))
        return ("chunked",)
    if cls:
        n = content_length(cls)
        return ("length", n) if n else None
    return None


def content_length(values):
    if bug("cl-last-wins"):
        values = values[-1:]
    if bug("cl-lenient"):
        out = set()
        for v in values:
            for item in v.split(","):
                try:
                    out.add(int(item.strip(), 0) if item.strip().lower().startswith(("0x", "+0x")) else int(item))
                except ValueError:
                    raise HTTPError(400, "invalid Content-Length") from None
        if len(out) != 1 or min(out) < 0:
            raise HTTPError(400, "invalid Content-Length")
        return out.pop()
    items = [item.strip() for v in values for item in v.split(",")]
    if len(items) != 1:   # RFC 9110 §8.6 lets a recipient merge identical values; we refuse them all
        raise HTTPError(400, "several Content-Length values")
    item = items[0]
    if not item.isdigit() or not item.isascii():
        raise HTTPError(400, "invalid Content-Length")
    if len(item) > 18:
        raise HTTPError(413, "Content-Length too large")
    return int(item)


def parse_chunk_line(line):
    """The size of a chunk-size line (with its CRLF); RFC 9112 §7.1, §7.1.1."""
    if bug("chunk-ext-lf"):
        size, semi, _ = line.partition(b";")
        if semi:
            line = size + b"\r\n"
    if not line.endswith(b"\r\n"):
        raise HTTPError(400, "chunk-size line not ended by CRLF")
    body = line[:-2]
    if b"\r" in body or b"\n" in body:
        raise HTTPError(400, "bare CR or LF in a chunk-size line")
    m = re.match(rb"[^;]*", body)
    size_text, ext = m.group(0), body[m.end():]
    if bug("chunk-size-int"):
        try:
            size = int(size_text.decode("latin-1"), 16)
        except ValueError:
            raise HTTPError(400, "invalid chunk size") from None
        return max(size, 0)
    size_text = size_text.rstrip(b" \t")     # BWS before a chunk extension
    if ext and not CHUNK_EXT_RE.match(ext):
        raise HTTPError(400, "invalid chunk extension")
    if not HEX_RE.match(size_text):
        raise HTTPError(400, "invalid chunk size")
    if bug("chunk-size-wrap"):
        n = 0
        for c in size_text:
            n = ((n << 4) | int(chr(c), 16)) & 0xFFFFFFFFFFFFFFFF
        return n
    if len(size_text.lstrip(b"0")) > 15:
        raise HTTPError(413, "chunk size too large")
    return int(size_text, 16)


# ---- responses and the application -------------------------------------------------------------

class Response:
    def __init__(self, status=200, body=b"", fields=(), ctype="text/plain; charset=utf-8", close=False):
        self.status = status
        self.body = body
        self.fields = ([("Content-Type", ctype)] if ctype and status not in (204, 304) else []) + list(fields)
        self.close = close
        self.length = None          # Content-Length to announce, when not len(body)
        self.omit_length = False


class Stream:
    def __init__(self, lines):
        self.lines = lines


def json_response(obj, status=200):
    return Response(status, json.dumps(obj).encode(), ctype="application/json; charset=UTF-8")


def pct_decode(s):
    try:
        return urllib.parse.unquote(s, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise HTTPError(400, "path argument is not UTF-8") from None


def form_args(req):
    """(query args, body fields, files) per contract §1: query first, then the body."""
    out = {}

    def add(k, v):
        if bug("args-last"):
            out[k] = [v]
        else:
            out.setdefault(k, []).append(v)
    for k, v in urllib.parse.parse_qsl(req.query, keep_blank_values=True):
        add(k, v)
    fields, files = body_form(req)
    for k, vs in fields.items():
        for v in vs:
            add(k, v)
    return out, fields, files


def content_type(req):
    value = req.first("Content-Type", "")
    kind, _, rest = value.partition(";")
    params = {}
    for p in rest.split(";"):
        k, eq, v = p.strip().partition("=")
        if eq:
            v = v.strip()
            if len(v) >= 2 and v[0] == v[-1] == '"':
                v = v[1:-1]
            params[k.strip().lower()] = v
    return kind.strip().lower(), params


def body_form(req):
    kind, params = content_type(req)
    fields, files = {}, []
    if kind == "application/x-www-form-urlencoded":
        for k, v in urllib.parse.parse_qsl(req.body.decode("latin-1"), keep_blank_values=True):
            fields.setdefault(k, []).append(v.encode("latin-1").decode("utf-8", "replace"))
    elif kind == "multipart/form-data" and params.get("boundary"):
        delim = b"--" + params["boundary"].encode("latin-1")
        parts = req.body.split(delim)
        for part in parts[1:]:
            if part.startswith(b"--"):
                break
            if part.startswith(b"\r\n"):
                part = part[2:]
            head, sep, data = part.partition(b"\r\n\r\n")
            if not sep:
                continue
            if data.endswith(b"\r\n") and not bug("form-size"):
                data = data[:-2]
            disp, ctype = "", "application/unknown"
            for line in head.split(b"\r\n"):
                n, _, v = line.decode("latin-1").partition(":")
                if n.strip().lower() == "content-disposition":
                    disp = v.strip()
                elif n.strip().lower() == "content-type":
                    ctype = v.strip()
            dparams = {}
            for p in disp.split(";")[1:]:
                k, eq, v = p.strip().partition("=")
                if eq:
                    v = v.strip()
                    if len(v) >= 2 and v[0] == v[-1] == '"':
                        v = v[1:-1]
                    dparams[k.strip().lower()] = v
            name = dparams.get("name")
            if name is None:
                continue
            if "filename" in dparams:
                files.append({"name": name, "filename": dparams["filename"], "content_type": ctype,
                              "size": len(data)})
            else:
                fields.setdefault(name, []).append(data.decode("utf-8", "replace"))
    return fields, files


class App:
    def __init__(self, catch_all, idle, header, body):
        self.catch_all = catch_all
        self.idle_timeout = idle
        self.header_timeout = header
        self.body_timeout = body

    # path regex (on the still percent-encoded path) -> (methods or None for any, handler)
    def routes(self):
        return ROUTES

    def route(self, req):
        """(handler, args) for the request; 404/405 are handlers too."""
        if req.path == "*":
            return asterisk, ()
        path = req.path
        if bug("route-decoded"):
            path = urllib.parse.unquote(path)
        for pattern, methods, handler in ROUTES:
            m = pattern.fullmatch(path)
            if m:
                if methods is not None and req.method not in methods:
                    if bug("404-not-405"):
                        return not_found, ()
                    return not_allowed, (methods,)
                return handler, m.groups()
        if self.catch_all:
            return route_root(req)
        return not_found, ()


ROOT_METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH")


def route_root(req):
    if req.method not in ROOT_METHODS:
        return not_allowed, (ROOT_METHODS,)
    return root, ()


async def asterisk(req):
    if req.method != "OPTIONS":
        raise HTTPError(400, "asterisk-form is for OPTIONS only")
    return Response(200, b"", fields=[("Allow", ", ".join(ROOT_METHODS))])


async def not_found(req, *args):
    return Response(404, b"404 Not Found\n")


async def not_allowed(req, methods):
    fields = [] if bug("405-no-allow") else [("Allow", ", ".join(methods))]
    return Response(405, b"405 Method Not Allowed\n", fields=fields)


async def root(req):
    if req.method in ("POST", "PUT", "PATCH"):
        return Response(200, req.body, ctype="application/octet-stream")
    return Response(200, b"OK")


async def echo(req):
    fields = req.fields
    if bug("echo-dedup"):
        last = {}
        for n, v in fields:
            last[n.lower()] = (n, v)
        fields = list(last.values())
    if bug("echo-sorted"):
        fields = sorted(fields, key=lambda f: f[0].lower())
    out = []
    for n, v in fields:
        if bug("echo-lower"):
            n = n.lower()
        out.append(f"{n}: {v}\n")
    return Response(200, "".join(out).encode("latin-1"))


def cookies(req):
    out = []
    for header in req.values("Cookie"):
        for pair in header.split(";"):
            name, eq, value = pair.strip().partition("=")
            if not eq:
                continue
            name, value = name.strip(), value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"' and not bug("cookie-quoted"):
                value = value[1:-1]
            out.append((name, value))
    return out


async def cookie(req):
    return Response(200, "".join(f"{n}={v}\n" for n, v in cookies(req)).encode("latin-1"))


async def plaintext(req):
    return Response(200, b"Hello, World!")


async def json_endpoint(req):
    return Response(200, b'{"message":"Hello, World!"}', ctype="application/json")


async def args(req):
    out, _, _ = form_args(req)
    return json_response(out)


async def form(req):
    fields, files = body_form(req)
    return json_response({"fields": fields, "files": files})


async def path_args(req, a, b):
    if bug("path-undecoded"):
        return json_response([a, b])
    return json_response([pct_decode(a), pct_decode(b)])


async def named(req, first, second):
    if bug("path-undecoded"):
        return json_response({"first": first, "second": second})
    return json_response({"first": pct_decode(first), "second": pct_decode(second)})


async def status(req, code):
    n = int(code)
    if n < 200:
        raise HTTPError(400, "no interim status as a final answer")
    return Response(n, b"")


async def bytes_endpoint(req, n):
    n = int(n)
    if n > MAX_BODY:
        raise HTTPError(400, "too many bytes asked")
    if bug("bytes-short") and n > 0:
        n -= 1
    body = (PATTERN * (n // 16 + 1))[:n]
    return Response(200, body, ctype="application/octet-stream")


async def stream(req, n):
    n = int(n)
    if n > 100000:
        raise HTTPError(400, "too many lines asked")
    start = 1 if bug("stream-count") else 0
    return Stream([b"chunk %d\n" % i for i in range(start, n)])


def accepts_gzip(req):
    if bug("gzip-always"):
        return True
    star = None
    for item in req.values("Accept-Encoding"):
        for element in item.split(","):
            coding, *params = [p.strip() for p in element.split(";")]
            coding = coding.lower()
            q = 1.0
            for p in params:
                k, _, v = p.partition("=")
                if k.strip().lower() == "q":
                    try:
                        q = float(v)
                    except ValueError:
                        q = 0.0
            if bug("gzip-q0"):
                q = 1.0
            if coding in ("gzip", "x-gzip"):
                return q > 0
            if coding == "*":
                star = q > 0
    return bool(star)


async def gzip_endpoint(req):
    fields = [] if bug("no-vary") else [("Vary", "Accept-Encoding")]
    if accepts_gzip(req):
        resp = Response(200, gzip.compress(GZIP_TEXT, mtime=0), fields=fields + [("Content-Encoding", "gzip")])
        if bug("gzip-cl"):
            resp.length = len(GZIP_TEXT)
        return resp
    return Response(200, GZIP_TEXT, fields=fields)


async def redirect(req, n):
    n = int(n)
    if n == 0:
        return Response(200, b"OK")
    to = n if bug("redirect-self") else n - 1
    return Response(302, b"", fields=[("Location", f"/redirect/{to}")])


async def slow(req, ms):
    seconds = min(int(ms), 30000) / 1000
    if bug("slow-blocks"):
        time.sleep(seconds)
    else:
        await asyncio.sleep(seconds)
    return Response(200, b"OK")


async def error(req):
    raise RuntimeError("intentional failure of /error")


async def httperror(req, code):
    n = int(code)
    if n < 200:
        raise HTTPError(400, "no interim status as a final answer")
    return Response(n, f"{n} {reason(n)}\n".encode())


async def upload(req, pieces, chunked=False):
    h = hashlib.sha256() if not bug("upload-empty") else None
    n = 0
    async for piece in pieces:
        if h is None:
            h = hashlib.sha256()
        if bug("upload-chunked-sha") and chunked:
            h.update(b"%x\r\n" % len(piece))
        h.update(piece)
        n += len(piece)
    return Response(200, json.dumps({"bytes": n, "sha256": h.hexdigest() if h else None}).encode(),
                    ctype="application/json; charset=UTF-8")


ANY = None
ROUTES = [(re.compile(p), m, h) for p, m, h in (
    (r"/", ROOT_METHODS, root),
    (r"/echo", ANY, echo),
    (r"/cookie", ANY, cookie),
    (r"/plaintext", ("GET",), plaintext),
    (r"/json", ("GET",), json_endpoint),
    (r"/args", ("GET", "POST"), args),
    (r"/form", ("POST",), form),
    (r"/path/([^/]+)/([0-9]+)", ("GET",), path_args),
    (r"/named/(?P<first>[^/]+)/(?P<second>[^/]+)", ("GET",), named),
    (r"/status/([0-9]{3})", ("GET",), status),
    (r"/bytes/([0-9]+)", ("GET",), bytes_endpoint),
    (r"/stream/([0-9]+)", ("GET",), stream),
    (r"/gzip", ("GET",), gzip_endpoint),
    (r"/redirect/([0-9]+)", ("GET",), redirect),
    (r"/slow/([0-9]+)", ("GET",), slow),
    (r"/error", ("GET",), error),
    (r"/httperror/([0-9]{3})", ("GET",), httperror),
    (r"/upload", ("PUT",), upload),
)]


# ---- pipelined requests out of order (defect pipeline-order) ---------------------------------

class OutOfOrder(Connection):
    """The defect pipeline-order: every complete request already buffered is handled at once,
    each answer written as soon as it is ready."""

    async def serve(self):
        tasks = []
        try:
            while True:
                try:
                    req = await self.read_head()
                except HTTPError as e:
                    await asyncio.gather(*tasks)
                    await self.send_error(e.status, None)
                    break
                if req is None:
                    break
                try:
                    framing = body_framing(req)
                except HTTPError as e:
                    await asyncio.gather(*tasks)
                    await self.send_error(e.status, req)
                    break
                if framing or req.values("Expect") or self.app.route(req)[0] is upload:   # in order, as correct
                    await asyncio.gather(*tasks)
                    tasks = []
                    if not await self.process(req):
                        break
                    continue
                tasks.append(asyncio.ensure_future(self.answer(req)))
                if not self.keep_alive(req):
                    break
            await asyncio.gather(*tasks)
        except (Closed, HTTPError):
            pass
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            await self.close(True)

    async def answer(self, req):
        handler, args = self.app.route(req)
        try:
            resp = await handler(req, *args)
        except HTTPError as e:
            resp = Response(e.status, b"")
        except Exception:
            resp = Response(500, b"Internal Server Error")
        if isinstance(resp, Stream):
            await self.send_stream(req, resp, self.keep_alive(req))
        else:
            await self.send(req, resp, self.keep_alive(req))


# ---- main ----------------------------------------------------------------------------------------

async def main_async(a):
    app = App(a.catch_all, a.idle_timeout, a.header_timeout, a.body_timeout)
    conns = set()
    kind = OutOfOrder if bug("pipeline-order") else Connection

    async def on_connect(reader, writer):
        task = asyncio.current_task()
        conns.add(task)
        try:
            await kind(app, reader, writer).serve()
        finally:
            conns.discard(task)

    server = await asyncio.start_server(on_connect, "127.0.0.1", a.port, limit=1 << 20, backlog=128)
    port = server.sockets[0].getsockname()[1]
    print(f"port={port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    parent = os.getppid()

    async def orphaned():   # the driver died without stopping us: stop too
        while os.getppid() == parent:
            await asyncio.sleep(1.0)
        stop.set()
    watchdog = asyncio.ensure_future(orphaned())
    await stop.wait()
    watchdog.cancel()
    server.close()
    for t in list(conns):
        t.cancel()
    await asyncio.gather(*conns, return_exceptions=True)


def main(argv=None):
    global D
    p = argparse.ArgumentParser(description="Contract §1 server app of the mutation harness")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: the kernel chooses; port=N is printed)")
    p.add_argument("--catch-all", action="store_true", help="serve unmatched paths with the / handler")
    p.add_argument("--idle-timeout", type=float, default=60.0)
    p.add_argument("--header-timeout", type=float, default=30.0)
    p.add_argument("--body-timeout", type=float, default=60.0)
    p.add_argument("--defect", help="switch on one defect (--list-defects)")
    p.add_argument("--list-defects", action="store_true")
    a = p.parse_args(argv)
    if a.list_defects:
        print(json.dumps({k: {"class": c, "description": d, "imitates": i} for k, (c, d, i) in DEFECTS.items()},
                         indent=1))
        return 0
    if a.defect is not None:
        if a.defect not in DEFECTS:
            p.error(f"unknown defect {a.defect!r} (--list-defects)")
        D = a.defect
    asyncio.run(main_async(a))
    return 0


if __name__ == "__main__":
    sys.exit(main())
