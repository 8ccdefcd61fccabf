#!/usr/bin/env python3
"""The contract app (contract §1) under clients no one here wrote: curl, Python's
http.client and wrk. Starts squall-contract-app on 127.0.0.1 with a free port, checks
every endpoint with curl, a keep-alive exchange with http.client, then 10 s of wrk with
zero errors allowed. Stops the server by PID.

usage: contract_app_clients.py PATH/TO/squall-contract-app [--wrk-seconds N]
"""
import argparse
import gzip
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

failures = []


def check(name, condition, detail=""):
    print(f"{'ok  ' if condition else 'FAIL'} {name}" + (f": {detail}" if detail and not condition else ""))
    if not condition:
        failures.append(name)


def start_server(binary, extra_args=()):
    proc = subprocess.Popen([binary, "--port", "0", "--log-level", "warning", *extra_args],
                            stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        match = re.match(r"port=(\d+)", line or "")
        if match:
            return proc, int(match.group(1))
        if proc.poll() is not None:
            break
    proc.kill()
    sys.exit("contract app did not report its port")


def curl(port, path, *args, raw=False):
    cmd = ["curl", "-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}", *args,
           f"http://127.0.0.1:{port}{path}"]
    out = subprocess.run(cmd, capture_output=True, check=False).stdout
    body, _, code = out.rpartition(b"\n")
    return int(code or 0), body if raw else body.decode("latin-1")


def curl_checks(port):
    check("GET /", curl(port, "/") == (200, "OK"))
    check("OPTIONS /", curl(port, "/", "-X", "OPTIONS") == (200, "OK"))
    check("POST / echoes", curl(port, "/", "--data-binary", "posted bytes") == (200, "posted bytes"))
    code, body = curl(port, "/", "-X", "PUT", "-H", "Transfer-Encoding: chunked", "--data-binary", "chunked body")
    check("PUT / de-chunks and echoes", (code, body) == (200, "chunked body"), body)
    code, body = curl(port, "/echo", "-H", "X-Probe: one")
    check("/echo lists request headers", code == 200 and "X-Probe: one" in body, body)
    code, body = curl(port, "/cookie", "-H", "Cookie: a=1; b=2")
    check("/cookie parses cookies", code == 200 and body.split() == ["a=1", "b=2"], body)
    check("/plaintext", curl(port, "/plaintext") == (200, "Hello, World!"))
    code, body = curl(port, "/json")
    check("/json", code == 200 and json.loads(body) == {"message": "Hello, World!"}, body)
    code, body = curl(port, "/args?a=1&a=2&b=", "--data", "c=3")
    args = json.loads(body) if code == 200 else {}
    check("/args merges query and form", args.get("a") == ["1", "2"] and args.get("c") == ["3"], body)
    with tempfile.NamedTemporaryFile(suffix=".txt") as f:
        f.write(b"file content")
        f.flush()
        code, body = curl(port, "/form", "-F", "field=value", "-F", f"upload=@{f.name};type=text/plain")
    check("/form sees fields and files", code == 200 and "value" in body and "text/plain" in body, body)
    code, body = curl(port, "/path/h%C3%A9llo/42")
    check("/path decodes positional args", code == 200 and json.loads(body) == ["h\u00e9llo", "42"], body)
    code, body = curl(port, "/named/x%20y/z")
    check("/named decodes named args", code == 200 and json.loads(body) == {"first": "x y", "second": "z"}, body)
    check("/status/418", curl(port, "/status/418")[0] == 418)
    check("/status/204 has no body", curl(port, "/status/204") == (204, ""))
    code, body = curl(port, "/bytes/100000", raw=True)
    check("/bytes/N", code == 200 and len(body) == 100000)
    trace = subprocess.run(["curl", "-sS", "-D", "-", "-o", "/dev/null", f"http://127.0.0.1:{port}/stream/5"],
                           capture_output=True, text=True).stdout.lower()
    check("/stream/N is chunked", "transfer-encoding: chunked" in trace, trace)
    code, body = curl(port, "/gzip", "--compressed")
    check("/gzip decodes", code == 200 and len(body) > 0)
    raw = subprocess.run(["curl", "-sS", "-H", "Accept-Encoding: gzip", f"http://127.0.0.1:{port}/gzip"],
                         capture_output=True).stdout
    check("/gzip is gzip-encoded when accepted", gzip.decompress(raw).decode() == body)
    code, body = curl(port, "/redirect/3", "-L")
    check("/redirect/3 followed to the end", code == 200)
    check("/redirect/1 is a 302", curl(port, "/redirect/1")[0] == 302)
    started = time.monotonic()
    check("/slow/200", curl(port, "/slow/200")[0] == 200 and time.monotonic() - started >= 0.2)
    code, body = curl(port, "/error")
    check("/error is a plain 500 without the exception's text",
          code == 500 and "intentional failure" not in body and "runtime_error" not in body, body)
    check("/httperror/403", curl(port, "/httperror/403")[0] == 403)
    payload = os.urandom(3 * 1024 * 1024)
    with tempfile.NamedTemporaryFile() as f:
        f.write(payload)
        f.flush()
        code, body = curl(port, "/upload", "-T", f.name)
    answer = json.loads(body) if code == 200 else {}
    check("/upload streams and hashes", answer.get("bytes") == len(payload)
          and answer.get("sha256") == hashlib.sha256(payload).hexdigest(), body)
    check("OPTIONS *", curl(port, "", "-X", "OPTIONS", "--request-target", "*")[0] == 200)
    check("unknown path is 404", curl(port, "/no/such/path")[0] == 404)
    check("known path, unsupported method is 405", curl(port, "/plaintext", "-X", "DELETE")[0] == 405)


def http_client_checks(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for i in range(3):
        conn.request("GET", "/plaintext")
        resp = conn.getresponse()
        check(f"http.client keep-alive request {i + 1}", resp.status == 200 and resp.read() == b"Hello, World!")
    conn.request("HEAD", "/")
    resp = conn.getresponse()
    check("http.client HEAD / has headers only", resp.status == 200 and resp.read() == b""
          and resp.getheader("Content-Length") == "2")
    conn.request("POST", "/", body=b"x" * 70000, headers={"Content-Type": "application/octet-stream"})
    resp = conn.getresponse()
    check("http.client POST 70 KB echoed", resp.read() == b"x" * 70000)
    conn.close()


def wrk_checks(port, seconds, scheme="http", connections=32):
    if shutil.which("wrk") is None:
        check("wrk is installed (ci/setup.sh installs it)", False)
        return
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"{scheme}://127.0.0.1:{port}/plaintext"],
                         capture_output=True, text=True, timeout=seconds + 30).stdout
    total = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    check(f"wrk {scheme} {seconds} s: requests served", total is not None and int(total.group(1)) > 0, out)
    check(f"wrk {scheme} {seconds} s: zero socket errors and non-2xx", errors is None and non2xx is None, out)
    if total:
        print(f"     wrk: {int(total.group(1)) / seconds:,.0f} requests/s over {seconds} s, {connections} connections")


def exit_with_summary():
    print(f"{len(failures)} failed")
    sys.exit(1 if failures else 0)


def stop_server(proc):
    """SIGTERM by PID; checks that the server exits 0."""
    proc.send_signal(signal.SIGTERM)
    try:
        status = proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        status = None
    check("SIGTERM stops the server with status 0", status == 0, f"status {status}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--wrk-seconds", type=int, default=10)
    opts = parser.parse_args()
    proc, port = start_server(opts.binary)
    try:
        curl_checks(port)
        http_client_checks(port)
        wrk_checks(port, opts.wrk_seconds)
    finally:
        stop_server(proc)
    exit_with_summary()


if __name__ == "__main__":
    main()
