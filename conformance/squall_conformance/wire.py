"""Raw HTTP/1.x over TCP or TLS: exact bytes out, exact bytes in, responses parsed leniently.

Over TLS (`exchange(..., tls=context)`) the same bytes go inside TLS records: each piece
sent is written on its own (one record, or several for pieces above 16 KiB), so
fragmentation shows up as record boundaries; a half-close is close_notify then FIN, and
reading goes on after it.

The parser here is the driver's *observer*: it must understand whatever a server sends
(including broken framing) well enough to count and judge responses, so it never raises;
it records what it could not make sense of in ``Response.problems``.
"""
from __future__ import annotations

import select
import socket
import ssl
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
    methods: tuple = ("GET",)  # the method of each request sent, in order (HEAD has no body)
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


def parse_responses(buf: bytes, methods, closed: bool):
    """Parse consecutive responses from buf. methods[i] is the method of the i-th request
    (to know which final response answers a HEAD); `closed`: the server has closed, so a
    response cut short is kept (complete=False) instead of waited for. Returns
    (responses, leftover, open_ended): leftover is the bytes after the last response
    parsed; open_ended is True when the last response is delimited by the close that has
    not come yet (then it is in responses with complete=False and leftover is empty)."""
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


def bytes_owed(leftover: bytes) -> int:
    """How many more bytes the response begun in `leftover` (parse_responses' leftover) needs
    before it can be complete: known when its head is in and frames the body by
    Content-Length, else 0. Reading that many before parsing again spares a parse of all
    that came before at every read (a 10 MiB body read 64 KiB at a time: 160 parses, each
    searching the whole buffer, where 2 do)."""
    end = leftover.find(b"\r\n\r\n")
    if end < 0 or leftover.find(b"\n\n", 0, end) >= 0:  # no head yet, or one ended by bare LFs
        return 0
    r = Response()
    _parse_head(r, leftover[:end])
    if r.status == 0 or r.interim or r.header("transfer-encoding") is not None:
        return 0
    try:
        length = int(r.header("content-length", "").strip())
    except ValueError:
        return 0
    return max(0, end + 4 + length - len(leftover))


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


class TLSSocket:
    """The client end of a TLS connection over a connected TCP socket, driven through memory
    BIOs: every sendall() is its own TLS write; recv() never blocks once select() said the
    socket is readable, returns every whole record that arrived (None: only part of one) and
    b"" at close_notify or FIN; shutdown(SHUT_WR) sends close_notify and FIN while reading
    goes on (TLS 1.3 half-close)."""

    def __init__(self, sock, context, server_hostname, timeout):
        self.sock = sock
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname=server_hostname)
        self.eof = False
        self.error = None   # a TLS error that ended the reading (reported as a close)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([sock], [], [], left)[0]:
                    raise socket.timeout("TLS handshake timed out")
                data = sock.recv(65536)
                if not data:
                    raise ConnectionResetError("the server closed the connection during the TLS handshake")
                self.incoming.write(data)
        self._flush()

    def fileno(self):
        return self.sock.fileno()

    def buffered(self):
        """Something to report without waiting on the socket (the close, decrypted bytes)."""
        return self.eof or self.tls.pending() > 0

    def setblocking(self, flag):
        self.sock.setblocking(flag)

    def settimeout(self, t):
        self.sock.settimeout(t)

    def _flush(self):
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def sendall(self, data):
        self.tls.write(data)
        self._flush()

    def _read(self):
        """One record's bytes; None: no whole record left; b"": the stream ended."""
        try:
            return self.tls.read(65536)
        except ssl.SSLWantReadError:
            return None
        except ssl.SSLZeroReturnError:     # close_notify
            return b""
        except ssl.SSLError as e:          # FIN without close_notify, an alert, a bad record
            if not isinstance(e, ssl.SSLEOFError):
                self.error = f"TLS: {e}"
            return b""

    def recv(self, n=65536):
        if not self.eof:
            try:
                raw = self.sock.recv(65536)
            except BlockingIOError:
                raw = None
            if raw:
                self.incoming.write(raw)
            elif raw == b"":
                self.incoming.write_eof()
        out = bytearray()
        while not self.eof:
            d = self._read()
            if d is None:
                break
            if not d:
                self.eof = True
            out += d
        try:
            self._flush()                  # post-handshake messages may need an answer
        except OSError:
            pass
        return bytes(out) if out or self.eof else None

    def shutdown(self, how):
        if how in (socket.SHUT_WR, socket.SHUT_RDWR):
            try:
                self.tls.unwrap()          # queues close_notify; the peer's is not awaited
            except ssl.SSLError:
                pass
            self._flush()
        self.sock.shutdown(how)

    def close(self):
        self.sock.close()


def connect(host, port, timeout, tls=None, server_hostname=None):
    """A connected socket, or a TLSSocket after the handshake when `tls` (an SSLContext) is
    given. Raises OSError (ssl.SSLError for a failed handshake)."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return TLSSocket(s, tls, server_hostname or host, timeout) if tls is not None else s
    except BaseException:
        s.close()
        raise


def readable(s, wait):
    """Whether s has bytes to read within `wait` seconds (TLS: decrypted bytes count)."""
    if isinstance(s, TLSSocket) and s.buffered():
        return True
    return bool(select.select([s], [], [], max(0.0, wait))[0])


def receive(s, ex):
    """One read from a readable s: bytes read (b"" when nothing complete arrived); sets ex.closed/ex.reset at the end."""
    try:
        d = s.recv(65536)
    except ConnectionResetError:
        ex.reset = ex.closed = True
        return b""
    if d is None:
        return b""
    if not d:
        ex.closed = True
        if getattr(s, "error", None):
            ex.note = s.error
    return d


def count_finals(responses):
    return sum(1 for r in responses if not r.interim)


def exchange(host, port, pieces, *, methods=("GET",), expect=1, timeout=3.0, linger=0.25,
             pause=0.0, shut_write=False, wait_close=None, connect_timeout=3.0,
             tls=None, server_hostname=None):
    """Send `pieces` (bytes or list of bytes, `pause` seconds apart, reading meanwhile) and
    read responses. With `tls` (an ssl.SSLContext), over TLS to `server_hostname` (default
    `host`). `shut_write`: half-close after the last piece.

    Reading stops when `expect` final responses are complete and nothing more arrived for
    `linger` seconds, when the server closes, or `timeout` seconds after the last piece
    was sent (`timeout` also bounds each send: a server that stops reading ends the
    sending with ex.note set). With `wait_close` set, reading goes on until the server
    closes, for at most `wait_close` seconds after the last piece. A failed connect or
    handshake is ex.error (not raised), a reset while sending ex.reset."""
    if isinstance(pieces, (bytes, bytearray)):
        pieces = [bytes(pieces)]
    ex = Exchange(methods=tuple(methods))
    t0 = time.monotonic()
    try:
        s = connect(host, port, connect_timeout, tls, server_hostname)
    except ssl.SSLError as e:
        ex.error = f"TLS handshake failed: {e}"
        return ex
    except OSError as e:
        ex.error = f"connect failed: {e}"
        return ex
    s.setblocking(False)
    buf = bytearray()  # appended to in place: a long answer read in pieces is not copied per piece
    last_send = t0
    try:
        for i, p in enumerate(pieces):
            if i and pause:
                # Read while pausing so early answers/closes are seen.
                end = time.monotonic() + pause
                while time.monotonic() < end and not ex.closed:
                    if readable(s, end - time.monotonic()):
                        buf += receive(s, ex)
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
        finals = 0
        unparsed, awaited = 0, 0  # bytes read since the last parse; bytes it found still owed
        while not ex.closed:
            now = time.monotonic()
            if now >= deadline:
                ex.timed_out = True
                break
            if unparsed >= awaited:
                resps, leftover, _ = parse_responses(bytes(buf), methods, False)
                finals = count_finals([r for r in resps if r.complete])
                unparsed, awaited = 0, bytes_owed(leftover)
            if wait_close is None and finals >= expect:
                if quiet_since is None:
                    quiet_since = now
                if now - quiet_since >= linger:
                    break
                wait = min(deadline, quiet_since + linger) - now
            else:
                wait = deadline - now
            if not readable(s, wait):
                continue
            d = receive(s, ex)
            if d:
                quiet_since = None
                buf += d
                unparsed += len(d)
        if ex.closed:
            ex.close_after = time.monotonic() - last_send
    finally:
        s.close()
    ex.received = bytes(buf)
    ex.responses, _, _ = parse_responses(ex.received, list(methods), ex.closed)
    ex.elapsed = time.monotonic() - t0
    return ex
