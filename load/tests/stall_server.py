#!/usr/bin/python3
"""A tiny HTTP/1.1 server that stalls once: every request gets the same 200 "Hello, World!"
on a keep-alive connection, except that the whole server stops for --stall seconds once,
--stall-at seconds after its first request (it sleeps in the middle of handling a request:
nothing is accepted, read or written meanwhile). It is load/stall_check.py's known truth:
a stall of a known length at a known moment.

    /usr/bin/python3 load/tests/stall_server.py --stall-at 4 --stall 1 [--port 0]

Prints `port=N` once listening, and `stall start=<t> end=<t>` (time.monotonic(), the
clock squall-load's steady_clock reads too) when the stall is over. One thread, selectors;
bounded: requests beyond 64 KiB of unparsed bytes close the connection. SIGTERM ends it.
"""
import argparse
import os
import selectors
import signal
import socket
import sys
import time

BODY = b"Hello, World!"
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + str(len(BODY)).encode()
            + b"\r\nServer: stall\r\n\r\n" + BODY)
MAX_PENDING = 64 * 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--stall-at", type=float, default=4.0, help="seconds after the first request")
    ap.add_argument("--stall", type=float, default=1.0, help="seconds the whole server stops")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, args.port))
    listener.listen(1024)
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)
    print(f"port={listener.getsockname()[1]}", flush=True)

    pending: dict[socket.socket, bytes] = {}
    first = None
    stalled = False
    while True:
        for key, _ in sel.select():
            if key.data is None:
                while True:
                    try:
                        conn, _ = listener.accept()
                    except BlockingIOError:
                        break
                    conn.setblocking(False)
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    pending[conn] = b""
                    sel.register(conn, selectors.EVENT_READ, "conn")
                continue
            conn = key.fileobj
            try:
                data = conn.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(conn)
                pending.pop(conn, None)
                conn.close()
                continue
            buf = pending[conn] + data
            n = buf.count(b"\r\n\r\n")
            if n:
                buf = buf[buf.rfind(b"\r\n\r\n") + 4:]
                now = time.monotonic()
                if first is None:
                    first = now
                if not stalled and now - first >= args.stall_at:
                    stalled = True
                    time.sleep(args.stall)   # the whole server stops here
                    print(f"stall start={now:.6f} end={time.monotonic():.6f}", flush=True)
                try:
                    conn.sendall(RESPONSE * n)   # small: the socket buffer takes it
                except OSError:
                    sel.unregister(conn)
                    pending.pop(conn, None)
                    conn.close()
                    continue
            if len(buf) > MAX_PENDING:
                sel.unregister(conn)
                pending.pop(conn, None)
                conn.close()
                continue
            pending[conn] = buf


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        os._exit(0)
