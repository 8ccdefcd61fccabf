#!/usr/bin/python3
"""Client adapter (CONTRACTS.md §4) for Tornado's simple client (tornado.simple_httpclient).

    python3 tornado_fetch.py fetch URL [--method M] [--header 'K: V']... [--body-file F]
        [--connect-timeout S] [--request-timeout S] [--max-redirects N | --no-follow]
        [--decompress | --no-decompress] [--max-body-size B] [--ca-certs FILE] [--insecure]
"""

import _args  # this folder (Python puts a script's own folder first on sys.path)

from tornado import httputil, ioloop
from tornado.httpclient import AsyncHTTPClient, HTTPRequest


async def fetch(a):
    kw = {}
    if a.max_body_size is not None:
        kw["max_body_size"] = a.max_body_size
    AsyncHTTPClient.configure("tornado.simple_httpclient.SimpleAsyncHTTPClient", **kw)
    client = AsyncHTTPClient(force_instance=True)
    headers = httputil.HTTPHeaders()
    for k, v in a.headers:
        headers.add(k, v)
    body = a.body
    if body is None and a.method in ("POST", "PUT", "PATCH"):
        body = b""
    req = HTTPRequest(a.url, method=a.method, headers=headers, body=body,
                      connect_timeout=a.connect_timeout, request_timeout=a.request_timeout,
                      follow_redirects=not a.no_follow, max_redirects=a.max_redirects,
                      decompress_response=a.decompress, allow_nonstandard_methods=True,
                      ca_certs=a.ca_certs, validate_cert=not a.insecure)
    try:
        r = await client.fetch(req, raise_error=False)
    except Exception as e:  # noqa: BLE001 - errors raised before a response exists
        _args.emit(599, "Unknown", [], b"", a.url, _args.short(e))
        return
    finally:
        client.close()
    err = _args.short(r.error) if r.code == 599 and r.error else None
    _args.emit(r.code, r.reason, list(r.headers.get_all()), r.body if r.code != 599 else b"",
               r.effective_url, err)


def main():
    a = _args.parse()
    ioloop.IOLoop.current().run_sync(lambda: fetch(a))


if __name__ == "__main__":
    main()
