"""The recording back-end of the proxy mode: a loopback relay that records what a front
forwarded, per upstream connection, and what the real back-end answered on it.

A front (nginx, HAProxy...) is configured to forward to the tap; the tap connects each
upstream connection it accepts to the back-end and copies bytes both ways, keeping a copy:
`forwarded` (front -> back-end, exactly as the front wrote them) and `answered` (back-end ->
front). The back-end answers, not the tap, so the front gets real answers and the tap needs
no HTTP parser of its own. When the front closes its side, the tap half-closes towards the
back-end and keeps reading what it still answers (a request smuggled at the end of the
forwarded bytes is answered after the front stopped writing).

Recording is per epoch: `begin()` starts one, and `settle()` waits until nothing has moved
for a quiet period, returns the connections of the epoch and cuts every one still open (so
no upstream connection, and no back-end's half-read message, carries over to the next
input; the front sees the close before the next input arrives). Bounded: at most
MAX_CONNECTIONS per epoch and MAX_RECORD bytes kept per direction of a connection (what
goes beyond is still relayed, and counted).
"""
from __future__ import annotations

import selectors
import socket
import threading
import time
from dataclasses import dataclass, field

MAX_CONNECTIONS = 64
MAX_RECORD = 1 << 20
CHUNK = 65536


@dataclass
class Upstream:
    """One upstream connection the front opened, as recorded."""
    forwarded: bytearray = field(default_factory=bytearray)   # what the front sent
    answered: bytearray = field(default_factory=bytearray)    # what the back-end sent back
    front_closed: bool = False       # the front closed its side
    backend_closed: bool = False     # the back-end closed its side (or could not be reached)
    error: str = ""                  # why the back-end could not be reached
    dropped: int = 0                 # bytes relayed beyond MAX_RECORD, not kept

    def keep(self, buf: bytearray, data: bytes):
        room = MAX_RECORD - len(buf)
        buf += data[:max(0, room)]
        self.dropped += max(0, len(data) - max(0, room))


class _Pair:
    def __init__(self, front, backend, record):
        self.front, self.backend, self.record = front, backend, record


class Tap:
    """Listens on 127.0.0.1 (`port`), relays to the back-end at `upstream()` (a callable, so
    that a restarted back-end on a new port is found), records per epoch."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.listener, selectors.EVENT_READ, None)
        self.lock = threading.Lock()
        self.pairs = []                 # open _Pair
        self.epoch = []                 # Upstream records of this epoch
        self.last_move = time.monotonic()
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, name=f"tap:{self.port}", daemon=True)
        self.thread.start()

    # ---- the caller's side ----

    def begin(self):
        """A new epoch: the records start empty (any connection still open is cut)."""
        with self.lock:
            for p in list(self.pairs):
                self._drop(p)
            self.epoch = []
            self.last_move = time.monotonic()

    def settle(self, quiet=0.1, limit=1.5):
        """Wait until nothing moved for `quiet` seconds (at most `limit`); the epoch's records.
        Every connection still open is cut."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            with self.lock:
                idle = time.monotonic() - self.last_move
            if idle >= quiet:
                break
            time.sleep(min(quiet - idle, max(0.0, deadline - time.monotonic())) + 0.005)
        with self.lock:
            records = [Upstream(bytearray(u.forwarded), bytearray(u.answered), u.front_closed, u.backend_closed,
                                u.error, u.dropped) for u in self.epoch]
            for p in list(self.pairs):
                self._drop(p)
            return records

    def close(self):
        self.stopping = True
        self.thread.join(timeout=2.0)
        with self.lock:
            for p in list(self.pairs):
                self._drop(p)
        self.sel.close()
        self.listener.close()

    # ---- the relay thread ----

    def _loop(self):
        while not self.stopping:
            for key, _ in self.sel.select(timeout=0.05):
                with self.lock:
                    if key.data is None:
                        self._accept()
                    elif key.data[0] in self.pairs:
                        self._move(*key.data)

    def _accept(self):
        try:
            front, _ = self.listener.accept()
        except OSError:
            return
        record = Upstream()
        self.last_move = time.monotonic()
        if len(self.epoch) >= MAX_CONNECTIONS:
            front.close()
            return
        self.epoch.append(record)
        try:
            backend = socket.create_connection(self.upstream(), timeout=1.0)
        except OSError as e:
            record.error, record.backend_closed = f"back-end unreachable: {e}", True
            front.close()
            return
        for s in (front, backend):
            s.setblocking(False)
        p = _Pair(front, backend, record)
        self.pairs.append(p)
        self.sel.register(front, selectors.EVENT_READ, (p, "front"))
        self.sel.register(backend, selectors.EVENT_READ, (p, "backend"))

    def _move(self, p, side):
        src, dst = (p.front, p.backend) if side == "front" else (p.backend, p.front)
        try:
            data = src.recv(CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        self.last_move = time.monotonic()
        if not data:
            self.sel.unregister(src)
            if side == "front":
                p.record.front_closed = True
                _shutdown(p.backend)          # the back-end still answers what it read
            else:
                p.record.backend_closed = True
                _shutdown(p.front)
            if p.record.front_closed and p.record.backend_closed:
                self._drop(p)
            return
        p.record.keep(p.record.forwarded if side == "front" else p.record.answered, data)
        try:
            dst.setblocking(True)
            dst.settimeout(1.0)
            dst.sendall(data)
        except OSError:
            pass                              # the other side went away: what it sent is kept
        finally:
            try:
                dst.setblocking(False)
            except OSError:
                pass

    def _drop(self, p):
        for s in (p.front, p.backend):
            try:
                self.sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()
        if p in self.pairs:
            self.pairs.remove(p)


def _shutdown(s):
    try:
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass
