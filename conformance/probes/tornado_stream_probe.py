#!/usr/bin/python3
"""Tornado stream probe (CONTRACTS.md §2): the Tornado 6.2 peer of squall-stream-probe.

    tornado_stream_probe.py --port N [--max-buffer-size B]

Listens on 127.0.0.1 (prints "port=N"), and per connection reads one command line, performs
exactly one tornado.iostream operation, writes the outcome, and reads the next command:
`bytes N`, `partial N`, `until <hex-delim> <max>`, `regex <hex-pattern> <max>`, `close`
(<max> may be "-" for no limit). Replies `ok <len>\\n` + bytes; `err unsatisfiable\\n`, and
the optional precise replies of CONTRACTS.md §2 `err closed\\n`, `err buffer-full\\n`,
`err command\\n`, each followed by a close. Exits 0 on SIGTERM.

Why the spare socket: Tornado's IOStream has no half-close mode. On EOF from the peer it
closes the stream, socket included (which is how read_until_close completes), and an
unsatisfiable read closes it too. So the probe dup()s every connection's socket when it
arrives; a reply that has to be sent after the stream closed itself goes out through a
new IOStream on that duplicate (the connection stays open while one descriptor of it is).
"""
import argparse
import re
import signal
import socket
import sys

from tornado import gen
from tornado.ioloop import IOLoop
from tornado.iostream import (IOStream, StreamBufferFullError, StreamClosedError,
                              UnsatisfiableReadError)
from tornado.tcpserver import TCPServer


def failure(exc):
    seen = 0
    while exc is not None and seen < 4:
        if isinstance(exc, UnsatisfiableReadError):
            return b"err unsatisfiable\n"
        if isinstance(exc, StreamBufferFullError):
            return b"err buffer-full\n"
        if isinstance(exc, StreamClosedError):
            exc = exc.real_error
            seen += 1
            continue
        break
    return b"err closed\n"


class StreamProbe(TCPServer):
    async def handle_stream(self, stream, address):
        spare = stream.socket.dup()
        try:
            while True:
                try:
                    line = await stream.read_until(b"\n", 4096)
                except Exception:
                    break
                words = line[:-1].decode("latin-1").split()
                reply, close_after = await self.one(stream, words)
                if not stream.closed():
                    await stream.write(reply)
                elif spare is not None:
                    s = IOStream(spare)
                    spare = None
                    try:
                        await s.write(reply)
                    finally:
                        s.close()
                if close_after:
                    break
        except StreamClosedError:
            pass
        finally:
            if spare is not None:
                spare.close()
            stream.close()

    async def one(self, stream, words):
        try:
            verb = words[0] if words else ""
            if verb in ("bytes", "partial") and len(words) == 2 and words[1].isdigit():
                data = await stream.read_bytes(int(words[1]), partial=verb == "partial")
            elif verb in ("until", "regex") and len(words) == 3:
                try:
                    pattern = bytes.fromhex(words[1])
                    limit = None if words[2] == "-" else int(words[2])
                except ValueError:
                    return b"err command\n", True
                if verb == "until":
                    data = await stream.read_until(pattern, max_bytes=limit)
                else:
                    data = await stream.read_until_regex(pattern, max_bytes=limit)
            elif verb == "close" and len(words) == 1:
                data = await stream.read_until_close()
            else:
                return b"err command\n", True
        except Exception as e:
            return failure(e), True
        return b"ok %d\n" % len(data) + data, verb == "close"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--max-buffer-size", type=int, default=100 * 1024 * 1024)
    a = p.parse_args()
    loop = IOLoop.current()
    server = StreamProbe(max_buffer_size=a.max_buffer_size)
    sockets = server.listen(a.port, address="127.0.0.1") or server._sockets
    port = list(server._sockets.values())[0].getsockname()[1]
    print("port=%d" % port, flush=True)

    def stop(*_):
        loop.add_callback_from_signal(lambda: (server.stop(), loop.stop()))

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    loop.start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
