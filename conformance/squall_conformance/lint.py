"""The response linter: every response of every server case, checked strictly.

wire.py reads responses leniently, so that a case can judge what the server meant; this
module reads the same bytes strictly, as a careful client would, and reports what the
server *sent* wrong, whatever the case was about: the status line and field syntax, exactly
one framing and a body that matches it (byte counts, chunk syntax, the last chunk, trailers,
CRLFs), no body and no forbidden framing fields for HEAD, 1xx, 204 and 304, no chunked
coding to an HTTP/1.0 request, no response after `Connection: close`, and a Date field.

Each finding names its rule and level and the offending bytes. run.py applies them to the
case's verdict: a MUST finding fails a case that passed or warned, a SHOULD finding warns
a case that passed. A NOTE is recorded in the reports without changing the verdict: a
missing Date (a MUST only for a server with a clock, which the suite cannot know) is judged
once, by its own case (WEB-060), rather than in every case that provokes an error answer. What the linter cannot pair with certainty (a HEAD request it was not
told about, bytes lost to a connection reset) it does not judge.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from . import core

TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
STATUS_LINE = re.compile(rb"HTTP/[0-9]\.[0-9] [0-9]{3} [\t \x21-\x7e\x80-\xff]*\Z")
FIELD_LINE = re.compile(rb"(" + TOKEN + rb"):[ \t]*([\x21-\x7e\x80-\xff]([\t \x21-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?[ \t]*\Z")
CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]+)[ \t]*(;[\t !-~\x80-\xff]*)?\Z")
REQUEST_LINE = re.compile(rb"^[A-Z]+ [^ \r\n]+ HTTP/([0-9]\.[0-9])\r?$", re.M)
SHOWN = 60

R_SYNTAX = "RFC 9110 §2.2 (senders MUST NOT generate what the grammar does not allow)"
R_STATUS = "RFC 9112 §4"
R_FIELD = "RFC 9112 §5"
R_FOLD = "RFC 9112 §5.2"
R_CRLF = "RFC 9112 §2.1"
R_CL_TE = "RFC 9112 §6.2"
R_CL = "RFC 9110 §8.6"
R_TE_1XX_204 = "RFC 9112 §6.1"
R_TE_10 = "RFC 9112 §6.1"
R_CHUNK = "RFC 9112 §7.1"
R_INCOMPLETE = "RFC 9112 §8"
R_HEAD = "RFC 9110 §9.3.2"
R_NO_CONTENT = "RFC 9110 §15.3.5, §15.4.5"
R_CLOSE = "RFC 9112 §9.6"
R_DATE = "RFC 9110 §6.6.1"


@dataclass(frozen=True)
class Finding:
    level: str      # "MUST", "SHOULD" or "NOTE"
    rule: str
    what: str
    excerpt: bytes = b""

    def text(self):
        shown = f": {self.excerpt[:SHOWN]!r}" if self.excerpt else ""
        return f"{self.what} ({self.rule}, {self.level}){shown}"


def lint(ex) -> list[Finding]:
    """Findings for one wire.Exchange (empty when nothing can be judged)."""
    if ex.error or not ex.received:
        return []
    methods = [m.upper() for m in (ex.methods or ("GET",))]
    sent_versions = [v.decode() for v in REQUEST_LINE.findall(ex.sent)]
    if re.search(rb"^HEAD ", ex.sent, re.M) and "HEAD" not in methods:
        return []   # a HEAD the case did not declare: response boundaries are unknown
    only_10 = bool(sent_versions) and all(v == "1.0" for v in sent_versions)
    return _Reader(ex, methods, only_10).run()


class _Reader:
    def __init__(self, ex, methods, only_10):
        self.buf = ex.received
        self.clean_close = ex.closed and not ex.reset
        self.waited_out = ex.timed_out
        self.methods = methods
        self.only_10 = only_10
        self.out: list[Finding] = []

    def add(self, level, rule, what, excerpt=b""):
        self.out.append(Finding(level, rule, what, excerpt))

    def run(self):
        pos, finals, closing = 0, 0, False
        while pos < len(self.buf):
            if closing:
                self.add("MUST", R_CLOSE, "another response after one with Connection: close", self.buf[pos:])
                break
            nxt = self.response(pos, self.methods[finals] if finals < len(self.methods) else "GET")
            if nxt is None:
                break
            pos, status, fields = nxt
            if not 100 <= status < 200 or status == 101:
                finals += 1
                closing = any(n == b"connection" and b"close" in [t.strip().lower() for t in v.split(b",")]
                              for n, v in fields)
        if closing and self.waited_out and pos >= len(self.buf):
            self.add("MUST", R_CLOSE, "the connection stayed open after a response with Connection: close")
        return self.out

    def response(self, pos, method):
        """Check the response at pos; its end, status and fields, or None to stop."""
        buf = self.buf
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            lf = buf.find(b"\n\n", pos)
            if lf >= 0:
                self.add("MUST", R_CRLF, "response head ends with bare LF line endings", buf[pos:lf + 2])
            elif self.clean_close:
                if buf[pos:pos + 5] == b"HTTP/":
                    self.add("MUST", R_INCOMPLETE, "the connection closed inside a response head", buf[pos:])
                else:
                    self.add("MUST", R_SYNTAX, "bytes that are not an HTTP response", buf[pos:])
            return None
        head = buf[pos:end]
        if not head.startswith(b"HTTP/"):
            self.add("MUST", R_SYNTAX, "bytes that are not an HTTP response", buf[pos:])
            return None
        lines = head.split(b"\r\n")
        for line in lines:
            if b"\n" in line or b"\r" in line:
                self.add("MUST", R_CRLF, "a bare LF or CR inside the response head", line)
                return None
        if not STATUS_LINE.match(lines[0]):
            self.add("MUST", R_STATUS, "malformed status line", lines[0])
        status = int(lines[0][9:12]) if lines[0][9:12].isdigit() else 0
        fields = self.fields(lines[1:])
        return self.body(end + 4, status, fields, method)

    def fields(self, lines, rule=R_FIELD):
        out = []
        for line in lines:
            if line[:1] in (b" ", b"\t"):
                self.add("MUST", R_FOLD, "obsolete line folding in a response", line)
                continue
            m = FIELD_LINE.match(line)
            if not m:
                self.add("MUST", rule, "malformed field line", line)
                continue
            out.append((m.group(1).lower(), (m.group(2) or b"")))
        return out

    def body(self, start, status, fields, method):
        get = lambda name: [v for n, v in fields if n == name]  # noqa: E731
        te, cl = get(b"transfer-encoding"), get(b"content-length")
        interim = 100 <= status < 200
        if status == 101:
            return None   # the connection speaks another protocol from here on
        if 200 <= status < 500 and not get(b"date"):
            self.add("NOTE", R_DATE, f"no Date field in a {status} response (MUST for a server with a clock)")
        if te and cl:
            self.add("MUST", R_CL_TE, "both Transfer-Encoding and Content-Length",
                     b"Transfer-Encoding: " + te[0] + b" / Content-Length: " + cl[0])
        if (interim or status == 204) and (te or cl):
            self.add("MUST", R_CL if cl else R_TE_1XX_204,
                     f"{'Content-Length' if cl else 'Transfer-Encoding'} in a {status} response")
        if te and self.only_10:
            self.add("MUST", R_TE_10, "Transfer-Encoding in a response to an HTTP/1.0 request", te[0])
        if interim or status in (204, 304) or method == "HEAD":
            return self.bodiless(start, status, method, fields)
        if te:
            codings = [c.strip().lower() for v in te for c in v.split(b",")]
            if codings and codings[-1] == b"chunked":
                return self.chunked(start, status, fields)
            return self.until_close(start, status, fields)
        if cl:
            values = {x.strip() for v in cl for x in v.split(b",")}
            if len(values) != 1 or not next(iter(values)).isdigit():
                self.add("MUST", R_CL, "invalid or conflicting Content-Length", b", ".join(cl))
                return None
            n = int(next(iter(values)))
            if start + n > len(self.buf):
                if self.clean_close:
                    self.add("MUST", R_INCOMPLETE, f"Content-Length {n} but the connection closed after "
                             f"{len(self.buf) - start} body bytes")
                return None
            return start + n, status, fields
        return self.until_close(start, status, fields)

    def bodiless(self, start, status, method, fields):
        rest = self.buf[start:]
        if rest and not rest.startswith(b"HTTP/"):
            rule, what = ((R_HEAD, "content in a response to HEAD") if method == "HEAD" and not 100 <= status < 200
                          else (R_NO_CONTENT, f"content in a {status} response"))
            self.add("MUST", rule, what, rest)
            return None
        return start, status, fields

    def until_close(self, start, status, fields):
        """A body delimited by the close of the connection: the rest of what arrived."""
        return len(self.buf), status, fields

    def chunked(self, pos, status, fields):
        buf = self.buf
        while True:
            nl = buf.find(b"\r\n", pos)
            if nl < 0:
                if self.clean_close:
                    self.add("MUST", R_INCOMPLETE, "the connection closed inside a chunked body", buf[pos:])
                return None
            m = CHUNK_LINE.match(buf[pos:nl])
            if not m or b"\n" in buf[pos:nl]:
                self.add("MUST", R_CHUNK, "malformed chunk size line", buf[pos:nl + 2])
                return None
            size = int(m.group(1), 16)
            pos = nl + 2
            if size == 0:
                break
            if pos + size + 2 > len(buf):
                if self.clean_close:
                    self.add("MUST", R_INCOMPLETE, f"the connection closed inside a {size}-byte chunk")
                return None
            if buf[pos + size:pos + size + 2] != b"\r\n":
                self.add("MUST", R_CHUNK, "chunk data not followed by CRLF", buf[pos + size:pos + size + 10])
                return None
            pos += size + 2
        trailers = []
        while True:
            nl = buf.find(b"\r\n", pos)
            if nl < 0:
                if self.clean_close:
                    self.add("MUST", R_INCOMPLETE, "the connection closed before the end of the trailer section",
                             buf[pos:])
                return None
            line = buf[pos:nl]
            pos = nl + 2
            if not line:
                break
            trailers.append(line)
        self.fields(trailers, R_CHUNK)
        return pos, status, fields


def judged(v, found):
    """A case's verdict with the findings of its responses applied: a MUST finding fails a
    case that passed or warned, a SHOULD finding warns a case that passed; NOTEs change
    nothing. The reason names the worst finding (and how many more there were)."""
    found = [f for f in found if f.level != "NOTE"]
    if not found or v.verdict not in (core.PASS, core.WARN, core.FAIL):
        return v
    must = [f for f in found if f.level == "MUST"]
    worst = must[0] if must else found[0]
    text = f"response lint: {worst.text()}" + (f" (+{len(found) - 1} more)" if len(found) > 1 else "")
    if v.verdict == core.FAIL:
        return core.fail(f"{v.reason}; {text}")
    if must:
        return core.fail(f"{text}; the case itself: {v.verdict}: {v.reason}")
    if v.verdict == core.PASS:
        return core.warn(f"{text}; the case itself passed: {v.reason}")
    return core.warn(f"{v.reason}; {text}")
