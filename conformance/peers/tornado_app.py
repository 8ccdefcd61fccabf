#!/usr/bin/python3
"""Tornado 6.2 contract app (contracts.md §1): every endpoint of the server contract.

    /usr/bin/python3 tornado_app.py --port N [--catch-all] [--idle-timeout S]
        [--body-timeout S] [--max-header-size B] [--max-body-size B] [--certfile F --keyfile F]

Binds 127.0.0.1 only, prints ``port=NNNNN`` once listening and exits 0 on SIGTERM.
With --certfile it serves HTTPS (TLS 1.2+, HTTPServer's ssl_options).
Response formats where the contract leaves a choice follow the reference app:
/form -> {"fields": {...}, "files": [...]}, /upload -> {"bytes", "sha256"},
/bytes/N -> "0123456789abcdef" repeated, /stream/N -> N chunks "chunk <i>\\n".
"""
import argparse
import asyncio
import hashlib
import json
import signal
import sys

# squall_conformance: PYTHONPATH names it (launch.spawn: paths.child_env)
from squall_conformance.launch import server_context

import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.web

PATTERN = b"0123456789abcdef"
GZIP_BODY = "Squall compresses this line when the client accepts gzip.\n" * 200


class RootHandler(tornado.web.RequestHandler):
    SUPPORTED_METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH")

    def get(self, *args, **kwargs):
        self.set_header("Content-Type", "text/plain")
        self.write("OK")

    head = options = get

    def post(self, *args, **kwargs):
        self.set_header("Content-Type", "application/octet-stream")
        self.write(self.request.body)

    put = patch = post


class AsteriskHandler(tornado.web.RequestHandler):
    SUPPORTED_METHODS = ("OPTIONS",)

    def options(self):
        self.set_header("Content-Type", "text/plain")
        self.write("OK")


class AnyMethodHandler(tornado.web.RequestHandler):
    # Any token is a method for these two; Tornado checks SUPPORTED_METHODS first.
    class _Any(tuple):
        def __contains__(self, item):
            return True

    SUPPORTED_METHODS = _Any(("GET",))

    def prepare(self):
        self.set_header("Content-Type", "text/plain")
        self.finish(self.render_body())


class EchoHeadersHandler(AnyMethodHandler):
    def render_body(self):
        # Tornado decodes header bytes as Latin-1: encode back to give the exact bytes.
        return "".join(f"{k}: {v}\n" for k, v in self.request.headers.get_all()).encode("latin-1")


class CookieHandler(AnyMethodHandler):
    def render_body(self):
        return "".join(f"{k}={m.value}\n" for k, m in self.request.cookies.items()).encode("latin-1", "replace")


class PlaintextHandler(tornado.web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "text/plain")
        self.write("Hello, World!")


class JsonHandler(tornado.web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "application/json")
        self.write('{"message":"Hello, World!"}')


def args_json(arguments):
    return {k: [v.decode("utf-8", "replace") for v in vs] for k, vs in arguments.items()}


class ArgsHandler(tornado.web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps(args_json(self.request.arguments)))

    post = get


class FormHandler(tornado.web.RequestHandler):
    def post(self):
        files = [
            {"name": name, "filename": f.filename, "content_type": f.content_type, "size": len(f.body)}
            for name, fs in self.request.files.items()
            for f in fs
        ]
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps({"fields": args_json(self.request.body_arguments), "files": files}))


class PathHandler(tornado.web.RequestHandler):
    def get(self, first, second):
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps([first, second]))


class NamedHandler(tornado.web.RequestHandler):
    def get(self, first, second):
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps({"first": first, "second": second}))


class StatusHandler(tornado.web.RequestHandler):
    def get(self, code):
        code = int(code)
        if code < 100:
            raise tornado.web.HTTPError(400)
        self.set_status(code, None if code in tornado.httputil.responses else "Unknown")


class BytesHandler(tornado.web.RequestHandler):
    def get(self, n):
        n = int(n)
        if n > 64 << 20:
            raise tornado.web.HTTPError(400)
        self.set_header("Content-Type", "application/octet-stream")
        self.write((PATTERN * (n // 16 + 1))[:n])


class StreamHandler(tornado.web.RequestHandler):
    async def get(self, n):
        self.set_header("Content-Type", "text/plain")
        for i in range(int(n)):
            self.write(f"chunk {i}\n")
            await self.flush()


class GzipHandler(tornado.web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "text/plain")
        self.write(GZIP_BODY)


class RedirectHandler(tornado.web.RequestHandler):
    def get(self, n):
        n = int(n)
        if n == 0:
            self.set_header("Content-Type", "text/plain")
            self.write("OK")
        else:
            self.redirect(f"/redirect/{n - 1}")


class SlowHandler(tornado.web.RequestHandler):
    async def get(self, ms):
        await asyncio.sleep(min(int(ms), 60000) / 1000.0)
        self.set_header("Content-Type", "text/plain")
        self.write("OK")


class ErrorHandler(tornado.web.RequestHandler):
    def get(self):
        raise RuntimeError("intentional failure in /error (this detail must not reach the client)")


class HTTPErrorHandler(tornado.web.RequestHandler):
    def get(self, code):
        code = int(code)
        raise tornado.web.HTTPError(code if code >= 100 else 400,
                                    reason=None if code in tornado.httputil.responses else "Unknown")


@tornado.web.stream_request_body
class UploadHandler(tornado.web.RequestHandler):
    def prepare(self):
        self.count = 0
        self.digest = hashlib.sha256()

    def data_received(self, chunk):
        self.count += len(chunk)
        self.digest.update(chunk)

    def put(self):
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps({"bytes": self.count, "sha256": self.digest.hexdigest()}))


def make_app(catch_all=False):
    routes = [
        (r"/", RootHandler),
        (r"\*", AsteriskHandler),
        (r"/echo", EchoHeadersHandler),
        (r"/cookie", CookieHandler),
        (r"/plaintext", PlaintextHandler),
        (r"/json", JsonHandler),
        (r"/args", ArgsHandler),
        (r"/form", FormHandler),
        (r"/path/([^/]+)/([0-9]+)", PathHandler),
        (r"/named/(?P<first>[^/]+)/(?P<second>[^/]+)", NamedHandler),
        (r"/status/([0-9]{3})", StatusHandler),
        (r"/bytes/([0-9]+)", BytesHandler),
        (r"/stream/([0-9]+)", StreamHandler),
        (r"/gzip", GzipHandler),
        (r"/redirect/([0-9]+)", RedirectHandler),
        (r"/slow/([0-9]+)", SlowHandler),
        (r"/error", ErrorHandler),
        (r"/httperror/([0-9]{3})", HTTPErrorHandler),
        (r"/upload", UploadHandler),
    ]
    settings = {"compress_response": True}
    if catch_all:
        settings["default_handler_class"] = RootHandler
    return tornado.web.Application(routes, **settings)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--catch-all", action="store_true")
    p.add_argument("--idle-timeout", type=float, default=None, help="idle and header timeout, seconds")
    p.add_argument("--body-timeout", type=float, default=None)
    p.add_argument("--max-header-size", type=int, default=None)
    p.add_argument("--max-body-size", type=int, default=None)
    p.add_argument("--certfile", help="PEM certificate: serve HTTPS")
    p.add_argument("--keyfile", help="PEM key of --certfile (default: in that file)")
    p.add_argument("--log-level", default="warning")
    a = p.parse_args()
    ssl_options = server_context(a.certfile, a.keyfile) if a.certfile else None

    import logging
    logging.basicConfig(level=getattr(logging, a.log_level.upper(), logging.WARNING), stream=sys.stderr)

    async def run():
        server = tornado.httpserver.HTTPServer(
            make_app(a.catch_all),
            idle_connection_timeout=a.idle_timeout,
            body_timeout=a.body_timeout,
            max_header_size=a.max_header_size,
            max_body_size=a.max_body_size,
            ssl_options=ssl_options,
        )
        sockets = tornado.netutil.bind_sockets(a.port, "127.0.0.1")
        server.add_sockets(sockets)
        print(f"port={sockets[0].getsockname()[1]}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        server.stop()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
