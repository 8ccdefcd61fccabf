#!/usr/bin/python3
"""Client adapter (CONTRACTS.md §4) for aiohttp's ClientSession.

Same command line as squall-fetch: fetch URL [--method M] [--header 'K: V']... ...
[--ca-certs FILE] [--insecure] (ssl=False, or an SSLContext trusting that file).
Connection errors, timeouts and protocol errors are reported as 599 with a short error.
"""
import asyncio
import ssl

import _args  # this folder (Python puts a script's own folder first on sys.path)

import aiohttp


async def fetch(a):
    timeout = aiohttp.ClientTimeout(total=a.request_timeout, sock_connect=a.connect_timeout,
                                    connect=a.connect_timeout)
    headers = [(k, v) for k, v in a.headers]
    tls = False if a.insecure else (ssl.create_default_context(cafile=a.ca_certs) if a.ca_certs else None)
    try:
        async with aiohttp.ClientSession(timeout=timeout, auto_decompress=a.decompress) as s:
            async with s.request(a.method, a.url, headers=headers, data=a.body,
                                 allow_redirects=not a.no_follow and a.max_redirects > 0,
                                 # aiohttp raises on the max_redirects-th redirect; the contract's
                                 # N is the number of redirects followed
                                 max_redirects=max(a.max_redirects, 0) + 1, ssl=tls) as r:
                body = bytearray()
                async for chunk in r.content.iter_any():
                    body += chunk
                    if a.max_body_size is not None and len(body) > a.max_body_size:
                        raise ValueError(f"body larger than --max-body-size {a.max_body_size}")
                hdrs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in r.raw_headers]
                _args.emit(r.status, r.reason or "", hdrs, bytes(body), str(r.url), None)
    except aiohttp.TooManyRedirects as e:
        h = e.history[-1] if e.history else None
        if h is not None:
            hdrs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in h.raw_headers]
            _args.emit(h.status, h.reason or "", hdrs, b"", str(h.url), "too many redirects")
        else:
            _args.emit(599, "Unknown", [], b"", a.url, "too many redirects")
    except asyncio.TimeoutError:
        _args.emit(599, "Unknown", [], b"", a.url, "Timeout")
    except Exception as e:  # noqa: BLE001
        _args.emit(599, "Unknown", [], b"", a.url, _args.short(e))


def main():
    asyncio.run(fetch(_args.parse()))


if __name__ == "__main__":
    main()
