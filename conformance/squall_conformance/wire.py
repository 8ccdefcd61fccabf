"""Raw HTTP/1.x over TCP: exact bytes out, exact bytes in, responses parsed leniently.

The parser here is the driver's *observer*: it must understand whatever a server sends
(including broken framing) well enough to count and judge responses, so it never raises;
it records what it could not make sense of in ``Response.problems``.
"""
from __future__ import annotations

import select
import socket
import time
from dataclasses import dataclass, field


@dataclass
class Response:
    version: str = ""
    status: int = 0
    reason: str = ""
    headers: list = field(default_factory=list)   # [(name, value)] as str (latin-1), order kept
    body: bytes = b""
    raw: bytes = b""
    chunked: bool = False
    chunks: list = field(default_factory=list)    # data chunk sizes, when chunked
    trailers: list = field(default_factory=list)
    complete: bool = True                         # framing fully received
    problems: list = field(default_factory=list)

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def has_token(self, name, token):
        token = token.lower()
        return any(token == t.strip().lower() for v in self.header_all(name) for t in v.split(","))

    @property
    def interim(self):
        return 100 <= self.status < 200 and self.status != 101

    def summary(self):
        return f"{self.status} {self.reason}".strip()


@dataclass
class Exchange:
    sent: bytes = b""
    received: bytes = b""
    responses: list = field(default_factory=list)   # final and interim, in order
    closed: bool = False       # the server closed (FIN) the connection
    reset: bool = False        # ... or reset it
    timed_out: bool = False    # stopped waiting before the server finished
    elapsed: float = 0.0
    close_after: float | None = None   # seconds from last send to the server's close
    error: str | None = None
    note: str = ""

    @property
    def finals(self):
        return [r for r in self.responses if not r.interim]

    @property
    def first(self):
        f = self.finals
        return f[0] if f else None

    def status(self):
        f = self.first
        return f.status if f else None

    def describe(self):
        parts = [", ".join(r.summary() for r in self.responses) or "no response"]
        if self.reset:
            parts.append("connection reset")
        elif self.closed:
            parts.append("connection closed")
        elif self.timed_out:
            parts.append("connection left open")
        return "; ".join(parts)


def _find_line(buf, pos):
    i = buf.find(b"\n", pos)
    return i


def parse_responses(buf: bytes, methods, closed: bool):
    """Parse consecutive responses from buf. methods[i] is the method of the i-th request
    (to know which final response answers a HEAD). Returns (responses, leftover)."""
    out = []
    pos = 0
    finals = 0
    while pos < len(buf):
        end = buf.find(b"\r\n\r\n", pos)
        lf_end = buf.find(b"\n\n", pos)
        if end < 0 and lf_end < 0:
            if closed and buf[pos:].strip():
                r = Response(raw=buf[pos:], complete=False, problems=["truncated head"])
                _parse_head(r, buf[pos:])
                out.append(r)
                pos = len(buf)
            break
        if end < 0 or (0 <= lf_end < end):
            head_end, sep = lf_end, 2
        else:
            head_end, sep = end, 4
        r = Response()
        _parse_head(r, buf[pos:head_end])
        body_start = head_end + sep
        method = methods[finals] if finals < len(methods) else "GET"
        te = r.header("transfer-encoding")
        cl = r.header("content-length")
        p = body_start
        if r.status == 0:
            r.problems.append("not an HTTP response")
            r.body = buf[pos:]
            r.raw = buf[pos:]
            out.append(r)
            pos = len(buf)
            break
        if r.interim or r.status in (204, 304) or method == "HEAD":
            pass
        elif te and "chunked" in te.lower():
            r.chunked = True
            body = bytearray()
            ok = False
            while True:
                nl = buf.find(b"\n", p)
                if nl < 0:
                    break
                line = buf[p:nl].rstrip(b"\r")
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    r.problems.append(f"bad chunk size line {line[:40]!r}")
                    p = len(buf)
                    break
                if size == 0:
                    q = nl + 1
                    while True:
                        nl2 = buf.find(b"\n", q)
                        if nl2 < 0:
                            q = -1
                            break
                        tl = buf[q:nl2].rstrip(b"\r")
                        q = nl2 + 1
                        if not tl:
                            break
                        k, _, v = tl.partition(b":")
                        r.trailers.append((k.decode("latin-1"), v.strip().decode("latin-1")))
                    if q >= 0:
                        p = q
                        ok = True
                    break
                if nl + 1 + size + 2 > len(buf):
                    break
                body += buf[nl + 1:nl + 1 + size]
                r.chunks.append(size)
                p = nl + 1 + size
                if buf[p:p + 2] == b"\r\n":
                    p += 2
                elif buf[p:p + 1] == b"\n":
                    p += 1
                else:
                    r.problems.append("chunk not followed by CRLF")
            r.body = bytes(body)
            if not ok:
                r.complete = False
                if not closed:
                    break
                p = len(buf)
        elif cl is not None:
            try:
                n = int(cl.strip())
            except ValueError:
                n = None
                r.problems.append(f"bad Content-Length {cl!r}")
            if n is None:
                r.body = buf[p:]
                p = len(buf)
            elif p + n > len(buf):
                if not closed:
                    break
                r.body = buf[p:]
                r.complete = False
                p = len(buf)
            else:
                r.body = buf[p:p + n]
                p += n
        else:
            # Delimited by close.
            if not closed:
                r.complete = False
                r.body = buf[p:]
                r.raw = buf[pos:]
                out.append(r)
                return out, b"", True
            r.body = buf[p:]
            p = len(buf)
        r.raw = buf[pos:p]
        out.append(r)
        pos = p
        if not r.interim:
            finals += 1
    return out, buf[pos:], False


def _parse_head(r, head: bytes):
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    first = lines[0].decode("latin-1")
    parts = first.split(" ", 2)
    if len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit():
        r.version, r.status = parts[0], int(parts[1])
        r.reason = parts[2] if len(parts) > 2 else ""
    for line in lines[1:]:
        if not line:
            continue
        k, sep, v = line.partition(b":")
        if not sep:
            r.problems.append(f"header line without colon {line[:40]!r}")
            continue
        r.headers.append((k.decode("latin-1"), v.strip().decode("latin-1")))


def count_finals(responses):
    return sum(1 for r in responses if not r.interim)


def exchange(host, port, pieces, *, methods=("GET",), expect=1, timeout=3.0, linger=0.25,
             pause=0.0, shut_write=False, wait_close=None, connect_timeout=3.0, on_response=None):
    """Send `pieces` (bytes or list of bytes, `pause` seconds apart) and read responses.

    Stops when `expect` final responses are complete and nothing more arrived for
    `linger` seconds, when the server closes, or after `timeout` seconds. With
    `wait_close` set, keeps reading until the server closes (or `wait_close` seconds).
    `on_response(ex, sock)` is called once each time a new response completes (used to
    send a body after 100 Continue)."""
    if isinstance(pieces, (bytes, bytearray)):
        pieces = [bytes(pieces)]
    ex = Exchange()
    t0 = time.monotonic()
    try:
        s = socket.create_connection((host, port), timeout=connect_timeout)
    except OSError as e:
        ex.error = f"connect failed: {e}"
        return ex
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setblocking(False)
    buf = b""
    last_send = t0
    seen = 0
    try:
        for i, p in enumerate(pieces):
            if i and pause:
                # Read while pausing so early answers/closes are seen.
                end = time.monotonic() + pause
                while time.monotonic() < end and not ex.closed:
                    r, _, _ = select.select([s], [], [], max(0.0, end - time.monotonic()))
                    if r:
                        try:
                            d = s.recv(65536)
                        except ConnectionResetError:
                            ex.reset = ex.closed = True
                            break
                        if not d:
                            ex.closed = True
                            break
                        buf += d
                if ex.closed:
                    break
            try:
                s.setblocking(True)
                s.settimeout(timeout)
                s.sendall(p)
                s.setblocking(False)
            except (BrokenPipeError, ConnectionResetError):
                ex.reset = True
                ex.closed = True
                break
            except socket.timeout:
                ex.note = "send blocked (server stopped reading)"
                break
            ex.sent += p
            last_send = time.monotonic()
        if shut_write and not ex.closed:
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        deadline = time.monotonic() + (wait_close if wait_close is not None else timeout)
        quiet_since = None
        while not ex.closed:
            now = time.monotonic()
            if now >= deadline:
                ex.timed_out = True
                break
            resps, _, _ = parse_responses(buf, methods, False)
            done = [r for r in resps if r.complete]
            if on_response and len(done) > seen:
                seen = len(done)
                on_response(ex, s, done)
            if wait_close is None and count_finals(done) >= expect:
                if quiet_since is None:
                    quiet_since = now
                if now - quiet_since >= linger:
                    break
                wait = min(deadline, quiet_since + linger) - now
            else:
                wait = deadline - now
            r, _, _ = select.select([s], [], [], max(0.0, wait))
            if not r:
                continue
            try:
                d = s.recv(65536)
            except ConnectionResetError:
                ex.reset = ex.closed = True
                break
            if not d:
                ex.closed = True
                break
            quiet_since = None
            buf += d
        if ex.closed:
            ex.close_after = time.monotonic() - last_send
    finally:
        s.close()
    ex.received = buf
    ex.responses, _, _ = parse_responses(buf, list(methods), ex.closed)
    ex.elapsed = time.monotonic() - t0
    return ex
