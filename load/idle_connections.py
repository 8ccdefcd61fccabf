#!/usr/bin/python3
"""Holds N idle keep-alive connections to a server (the memory scenario's client).

Opens N connections to HOST:PORT, sends one keep-alive `GET PATH` on each and reads its
response (so every connection is a real, finished HTTP/1.1 exchange the server keeps
open), then prints one JSON line {"opened": n, "failed": k, "seconds": t} and holds the
connections open until stdin closes, SIGTERM, or --hold seconds pass. The runner samples
the server's RSS while the connections are held.

Connections are opened in batches (connect all, write all, read all) with a deadline, so
10,000 connections take a few seconds. Raises its own RLIMIT_NOFILE as needed.
"""
from __future__ import annotations

import argparse
import json
import selectors
import signal
import socket
import sys
import time

import procstat  # this folder: run.py runs this file as a program, and Python puts its folder first on sys.path


def open_batch(host, port, count, request, deadline):
    socks, failed = [], 0
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect_ex((host, port))
        except OSError:
            s.close()
            failed += 1
            continue
        socks.append(s)
    sel = selectors.DefaultSelector()
    pending = {}
    for s in socks:
        sel.register(s, selectors.EVENT_WRITE)
        pending[s] = b""
    done = []
    while pending and time.monotonic() < deadline:
        for key, ev in sel.select(timeout=0.5):
            s = key.fileobj
            try:
                if ev & selectors.EVENT_WRITE:
                    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        raise OSError("connect failed")
                    s.send(request)
                    sel.modify(s, selectors.EVENT_READ)
                    continue
                data = s.recv(65536)
                if not data:
                    raise OSError("closed")
                buf = pending[s] + data
                pending[s] = buf
                head_end = buf.find(b"\r\n\r\n")
                if head_end < 0:
                    continue
                if not buf.startswith(b"HTTP/1.1 2"):
                    raise OSError("bad status")
                length = 0
                for line in buf[:head_end].split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                if len(buf) - head_end - 4 < length:
                    continue
                sel.unregister(s)
                del pending[s]
                done.append(s)
            except OSError:
                sel.unregister(s)
                del pending[s]
                s.close()
                failed += 1
    for s in list(pending):
        s.close()
        failed += 1
    sel.close()
    return done, failed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--path", default="/plaintext")
    ap.add_argument("--batch", type=int, default=100,
                    help="connections opened at once (stay below the listen backlog)")
    ap.add_argument("--timeout", type=float, default=60.0, help="deadline for opening all")
    ap.add_argument("--hold", type=float, default=30.0, help="longest time to hold them")
    args = ap.parse_args()

    procstat.raise_nofile(args.connections + 64)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    request = (f"GET {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
               "Connection: keep-alive\r\n\r\n").encode()
    start = time.monotonic()
    deadline = start + args.timeout
    held, failed = [], 0
    while len(held) + failed < args.connections and time.monotonic() < deadline:
        n = min(args.batch, args.connections - len(held) - failed)
        socks, bad = open_batch(args.host, args.port, n, request, deadline)
        held += socks
        failed += bad
    failed += args.connections - len(held) - failed
    print(json.dumps({"opened": len(held), "failed": failed,
                      "seconds": round(time.monotonic() - start, 3)}), flush=True)
    # Hold until the runner closes our stdin (or kills us), bounded by --hold.
    sel = selectors.DefaultSelector()
    try:
        sel.register(sys.stdin, selectors.EVENT_READ)
        sel.select(timeout=args.hold)
    except (ValueError, OSError):
        time.sleep(args.hold)
    for s in held:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
