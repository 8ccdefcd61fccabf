#!/usr/bin/python3
"""A deliberately naive front for the proxy mode's tests: it relays each client connection
byte for byte to the upstream, adding the marker field after the first line only, as a
front that took the whole connection for one message would. What it forwards therefore
holds every pipelined request, hidden from the marker count: a request smuggled through it.

    naive_front.py --port PORT --upstream-port PORT
"""
import argparse
import socket
import threading

MARKER = b"X-Squall-Front: 1\r\n"


def pump(src, dst, first=None):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if first is not None and not first["done"] and b"\r\n" in data:
                line, rest = data.split(b"\r\n", 1)
                data, first["done"] = line + b"\r\n" + MARKER + rest, True
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def serve(client, upstream_port):
    with client, socket.create_connection(("127.0.0.1", upstream_port)) as up:
        back = threading.Thread(target=pump, args=(up, client), daemon=True)
        back.start()
        pump(client, up, {"done": False})
        back.join(timeout=5)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream-port", type=int, required=True)
    a = p.parse_args()
    with socket.create_server(("127.0.0.1", a.port)) as s:
        while True:
            c, _ = s.accept()
            threading.Thread(target=serve, args=(c, a.upstream_port), daemon=True).start()


if __name__ == "__main__":
    main()
