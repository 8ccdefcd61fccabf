#!/usr/bin/python3
"""aiohttp contract app (contracts.md §1): every endpoint of the server contract.

    /usr/bin/python3 aiohttp_app.py --port N [--catch-all] [--idle-timeout S] [--certfile F --keyfile F]

Binds 127.0.0.1 only, prints ``port=NNNNN`` once listening and exits 0 on SIGTERM.
With --certfile it serves HTTPS (TLS 1.2+, TCPSite's ssl_context).
Response formats follow the reference app (see tornado_app.py).
"""
import argparse
import asyncio
import hashlib
import json
import signal
import sys

# squall_conformance: PYTHONPATH names it (launch.spawn: paths.child_env)
from squall_conformance.launch import server_context

from aiohttp import web

PATTERN = b"0123456789abcdef"
GZIP_BODY = "Squall compresses this line when the client accepts gzip.\n" * 200
ROOT_READ = ("GET", "HEAD", "OPTIONS")
ROOT_WRITE = ("POST", "PUT", "PATCH")


def text(body, status=200):
    return web.Response(body=body.encode() if isinstance(body, str) else body, status=status,
                        content_type="text/plain")


def as_json(obj):
    return web.Response(body=json.dumps(obj).encode(), content_type="application/json")


async def root(request):
    if request.method in ROOT_READ:
        return text("OK")
    if request.method in ROOT_WRITE:
        return web.Response(body=await request.read(), content_type="application/octet-stream")
    raise web.HTTPMethodNotAllowed(request.method, ROOT_READ + ROOT_WRITE)


async def echo(request):
    return text(b"".join(k + b": " + v.strip(b" \t") + b"\n" for k, v in request.raw_headers))


async def cookie(request):
    return text("".join(f"{k}={v}\n" for k, v in request.cookies.items()))


async def plaintext(request):
    return text("Hello, World!")


async def json_(request):
    return web.Response(body=b'{"message":"Hello, World!"}', content_type="application/json")


def multi(md):
    out = {}
    for k, v in md.items():
        if isinstance(v, web.FileField):
            continue
        out.setdefault(k, []).append(v if isinstance(v, str) else v.decode("utf-8", "replace"))
    return out


async def args(request):
    out = multi(request.query)
    if request.method == "POST":
        for k, vs in multi(await request.post()).items():
            out.setdefault(k, []).extend(vs)
    return as_json(out)


async def form(request):
    post = await request.post()
    files = []
    for k, v in post.items():
        if isinstance(v, web.FileField):
            files.append({"name": k, "filename": v.filename, "content_type": v.content_type,
                          "size": len(v.file.read())})
    return as_json({"fields": multi(post), "files": files})


async def path(request):
    return as_json([request.match_info["a"], request.match_info["b"]])


async def named(request):
    return as_json({"first": request.match_info["first"], "second": request.match_info["second"]})


async def status(request):
    code = int(request.match_info["code"])
    if code < 100:
        raise web.HTTPBadRequest()
    return web.Response(status=code, reason=None)


async def bytes_(request):
    n = int(request.match_info["n"])
    if n > 64 << 20:
        raise web.HTTPBadRequest()
    return web.Response(body=(PATTERN * (n // 16 + 1))[:n], content_type="application/octet-stream")


async def stream(request):
    resp = web.StreamResponse()
    resp.content_type = "text/plain"
    if request.version >= (1, 1):
        resp.enable_chunked_encoding()
    await resp.prepare(request)
    for i in range(int(request.match_info["n"])):
        await resp.write(f"chunk {i}\n".encode())
    await resp.write_eof()
    return resp


async def gzip_(request):
    resp = text(GZIP_BODY)
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        resp.enable_compression(web.ContentCoding.gzip)
    return resp


async def redirect(request):
    n = int(request.match_info["n"])
    if n == 0:
        return text("OK")
    raise web.HTTPFound(f"/redirect/{n - 1}")


async def slow(request):
    await asyncio.sleep(min(int(request.match_info["ms"]), 60000) / 1000.0)
    return text("OK")


async def error(request):
    raise RuntimeError("intentional failure in /error (this detail must not reach the client)")


async def httperror(request):
    code = int(request.match_info["code"])
    return web.Response(status=code if code >= 100 else 400, text=f"{code}")


async def upload(request):
    count, digest = 0, hashlib.sha256()
    async for chunk in request.content.iter_any():
        count += len(chunk)
        digest.update(chunk)
    return as_json({"bytes": count, "sha256": digest.hexdigest()})


def make_app(catch_all=False):
    app = web.Application(client_max_size=100 * 1024 * 1024)
    r = app.router
    r.add_route("*", "/", root)
    r.add_route("*", "/echo", echo)
    r.add_route("*", "/cookie", cookie)
    r.add_get("/plaintext", plaintext)
    r.add_get("/json", json_)
    r.add_get("/args", args)
    r.add_post("/args", args)
    r.add_post("/form", form)
    r.add_get(r"/path/{a:[^/]+}/{b:[0-9]+}", path)
    r.add_get(r"/named/{first:[^/]+}/{second:[^/]+}", named)
    r.add_get(r"/status/{code:[0-9]{3}}", status)
    r.add_get(r"/bytes/{n:[0-9]+}", bytes_)
    r.add_get(r"/stream/{n:[0-9]+}", stream)
    r.add_get("/gzip", gzip_)
    r.add_get(r"/redirect/{n:[0-9]+}", redirect)
    r.add_get(r"/slow/{ms:[0-9]+}", slow)
    r.add_get("/error", error)
    r.add_get(r"/httperror/{code:[0-9]{3}}", httperror)
    r.add_put("/upload", upload)
    if catch_all:
        r.add_route("*", r"/{tail:.*}", root)
    return app


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--catch-all", action="store_true")
    p.add_argument("--idle-timeout", type=float, default=75.0, help="keep-alive idle timeout, seconds")
    p.add_argument("--certfile", help="PEM certificate: serve HTTPS")
    p.add_argument("--keyfile", help="PEM key of --certfile (default: in that file)")
    p.add_argument("--log-level", default="warning")
    a = p.parse_args()
    ssl_context = server_context(a.certfile, a.keyfile) if a.certfile else None
    import logging
    logging.basicConfig(level=getattr(logging, a.log_level.upper(), logging.WARNING), stream=sys.stderr)

    async def run():
        runner = web.AppRunner(make_app(a.catch_all), access_log=None, keepalive_timeout=a.idle_timeout)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", a.port, ssl_context=ssl_context)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        print(f"port={port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
