"""The client adapter command line of CONTRACTS.md §4, shared by the Python adapters: the
required flags, the optional TLS flags the suite's tls-* cases use (as squall-fetch's):
--ca-certs FILE (the CAs to trust for https instead of the system store) and -k/--insecure
(no validation), and the JSON object every adapter prints (always: --json is accepted and
ignored, for older command lines)."""
import argparse
import base64
import json
import sys


def parse(argv=None):
    p = argparse.ArgumentParser(description="client adapter (conformance/CONTRACTS.md §4): prints one JSON object")
    p.add_argument("command", choices=["fetch"])
    p.add_argument("url")
    p.add_argument("--json", action="store_true", help="accepted and ignored: the output is always the JSON object")
    p.add_argument("--method", "-X", default=None, help="request method (default GET, or POST with --body-file)")
    p.add_argument("--header", "-H", action="append", default=[])
    p.add_argument("--body-file")
    p.add_argument("--connect-timeout", type=float, default=20.0)
    p.add_argument("--request-timeout", type=float, default=20.0)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--max-redirects", type=int, default=5)
    g.add_argument("--no-follow", action="store_true")
    d = p.add_mutually_exclusive_group()
    d.add_argument("--decompress", dest="decompress", action="store_true", default=True)
    d.add_argument("--no-decompress", dest="decompress", action="store_false")
    p.add_argument("--max-body-size", type=int, default=None)
    p.add_argument("--ca-certs", help="PEM file of CAs to trust for https (default: the system store)")
    p.add_argument("--insecure", "-k", action="store_true", help="https: accept any certificate (no validation)")
    a = p.parse_args(argv)
    a.body = None
    if a.body_file:
        with open(a.body_file, "rb") as f:
            a.body = f.read()
    if a.method is None:
        a.method = "POST" if a.body is not None else "GET"
    a.method = a.method.upper()
    a.headers = []
    for h in a.header:
        k, _, v = h.partition(":")
        a.headers.append((k.strip(), v.strip()))
    return a


def emit(code, reason, headers, body, effective_url, error):
    json.dump({"code": code, "reason": reason, "headers": [[n, v] for n, v in headers],
               "body_b64": base64.b64encode(body or b"").decode(), "effective_url": effective_url,
               "error": error}, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()


def short(e):
    s = f"{type(e).__name__}: {e}".strip()
    return s[:200]
