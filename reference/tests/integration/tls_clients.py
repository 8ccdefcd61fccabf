#!/usr/bin/env python3
"""The contract app over HTTPS under TLS clients no one here wrote: curl (OpenSSL via
libcurl), Python's ssl + http.client, and wrk. Generates a CA and a certificate for
127.0.0.1/localhost with tests/tls/make_certs.sh into a temp dir, starts
squall-contract-app --certfile/--keyfile on 127.0.0.1 with a free port, checks
validation, versions, ALPN, keep-alive, large bodies both ways, clean shutdown
(close_notify both ways), that plaintext sent to the TLS port fails only that
connection, and a few seconds of wrk with zero errors. Stops the server by PID.

usage: tls_clients.py PATH/TO/squall-contract-app PATH/TO/make_certs.sh [--wrk-seconds N]
"""
import argparse
import hashlib
import http.client
import json
import os
import socket
import ssl
import subprocess
import tempfile

# this folder's contract_app_clients.py (Python puts a script's own folder first on sys.path)
from contract_app_clients import check, exit_with_summary, start_server, stop_server, wrk_checks


def curl(url, *args):
    """(exit status, HTTP code, body, stderr) of one curl run."""
    cmd = ["curl", "-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}", *args, url]
    p = subprocess.run(cmd, capture_output=True, check=False)
    body, _, code = p.stdout.rpartition(b"\n")
    return p.returncode, int(code or 0), body, p.stderr.decode("utf-8", "replace")


def curl_checks(port, certs):
    ca = os.path.join(certs, "ca.pem")
    base = f"https://127.0.0.1:{port}"
    rc, code, body, _ = curl(base + "/plaintext", "--cacert", ca)
    check("curl: GET /plaintext over https, validated by IP (SAN)", (rc, code, body) == (0, 200, b"Hello, World!"),
          f"{rc} {code} {body[:80]!r}")
    rc, code, body, _ = curl(f"https://localhost:{port}/json", "--cacert", ca)
    check("curl: GET /json validated by name", rc == 0 and code == 200
          and json.loads(body) == {"message": "Hello, World!"}, f"{rc} {code}")
    trace = subprocess.run(["curl", "-sS", "-v", "--cacert", ca, "-o", "/dev/null", base + "/"],
                           capture_output=True, text=True).stderr
    check("curl: TLS 1.3 negotiated", "TLSv1.3" in trace, trace[-600:])
    check("curl: ALPN http/1.1 accepted by the server", "ALPN: server accepted http/1.1" in trace
          or "ALPN, server accepted to use http/1.1" in trace, trace[-600:])
    rc, code, body, _ = curl(base + "/plaintext", "--cacert", ca, "--tlsv1.2", "--tls-max", "1.2")
    check("curl: TLS 1.2 works too", (rc, code) == (0, 200), f"{rc} {code}")
    rc, code, _, err = curl(base + "/plaintext", "--tlsv1.1", "--tls-max", "1.1", "--cacert", ca,
                            "--ciphers", "DEFAULT@SECLEVEL=0")
    check("curl: TLS 1.1 is refused (minimum 1.2)", rc != 0, f"{rc} {code} {err}")
    rc, code, _, err = curl(base + "/plaintext")
    check("curl: the test CA is not trusted by default (exit 60)", rc == 60, f"{rc} {err}")
    rc, code, body, _ = curl(base + "/plaintext", "-k")
    check("curl -k accepts it", (rc, code) == (0, 200))
    rc, code, body, _ = curl(base + "/bytes/5000000", "--cacert", ca)
    check("curl: 5 MB download", rc == 0 and code == 200 and len(body) == 5000000, f"{rc} {code} {len(body)}")
    payload = os.urandom(4 * 1024 * 1024)
    with tempfile.NamedTemporaryFile() as f:
        f.write(payload)
        f.flush()
        rc, code, body, _ = curl(base + "/upload", "--cacert", ca, "-T", f.name)
    answer = json.loads(body) if code == 200 else {}
    check("curl: 4 MiB upload streamed and hashed", answer.get("bytes") == len(payload)
          and answer.get("sha256") == hashlib.sha256(payload).hexdigest(), f"{rc} {code} {body[:200]!r}")
    rc, code, body, _ = curl(base + "/redirect/2", "--cacert", ca, "-L")
    check("curl: redirects followed over https", (rc, code) == (0, 200))
    # Plain HTTP to the TLS port: that connection fails, the next one is served.
    rc, code, _, err = curl(f"http://127.0.0.1:{port}/plaintext")
    check("curl: plain http to the TLS port fails", rc != 0 or code != 200, f"{rc} {code}")
    rc, code, body, _ = curl(base + "/plaintext", "--cacert", ca)
    check("curl: served again right after", (rc, code, body) == (0, 200, b"Hello, World!"))


def python_checks(port, certs):
    ca = os.path.join(certs, "ca.pem")
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(["http/1.1"])
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)
    for i in range(3):
        conn.request("GET", "/plaintext")
        resp = conn.getresponse()
        check(f"python ssl: keep-alive request {i + 1}", resp.status == 200 and resp.read() == b"Hello, World!")
    sock = conn.sock
    check("python ssl: ALPN selected http/1.1", sock.selected_alpn_protocol() == "http/1.1",
          sock.selected_alpn_protocol())
    check("python ssl: TLSv1.3", sock.version() == "TLSv1.3", sock.version())
    check("python ssl: server certificate is CN=localhost",
          dict(x[0] for x in sock.getpeercert()["subject"]).get("commonName") == "localhost")
    body = os.urandom(2 * 1024 * 1024)
    conn.request("POST", "/", body=body, headers={"Content-Type": "application/octet-stream"})
    resp = conn.getresponse()
    check("python ssl: POST 2 MiB echoed", resp.status == 200 and resp.read() == body)
    conn.request("HEAD", "/")
    resp = conn.getresponse()
    check("python ssl: HEAD has headers only", resp.status == 200 and resp.read() == b"")
    # Clean shutdown: our close_notify, then the server's (unwrap waits for it).
    try:
        plain = sock.unwrap()
        plain.close()
        check("python ssl: close_notify answered with close_notify (unwrap)", True)
    except (ssl.SSLError, OSError) as e:
        check("python ssl: close_notify answered with close_notify (unwrap)", False, repr(e))
    conn.close()

    # Validation failures are the client's, and clear.
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ssl.create_default_context().wrap_socket(raw, server_hostname="localhost"):
                pass
        check("python ssl: unknown CA rejected", False, "handshake succeeded")
    except ssl.SSLCertVerificationError as e:
        check("python ssl: unknown CA rejected", "unable to get local issuer certificate" in str(e), str(e))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ssl.create_default_context(cafile=ca).wrap_socket(raw, server_hostname="wrong.example"):
                pass
        check("python ssl: wrong host name rejected", False, "handshake succeeded")
    except ssl.SSLCertVerificationError as e:
        check("python ssl: wrong host name rejected", "Hostname mismatch" in str(e), str(e))

    # The server closes with close_notify when it is done with a connection.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            clean = False
            try:
                while True:
                    chunk = tls.recv(65536)
                    if not chunk:
                        clean = True  # SSL_ERROR_ZERO_RETURN: close_notify received
                        break
                    data += chunk
            except ssl.SSLEOFError:
                clean = False  # TCP closed without close_notify
            check("python ssl: Connection: close ends with the server's close_notify",
                  clean and data.endswith(b"Hello, World!"), repr(data[-60:]))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("make_certs")
    parser.add_argument("--wrk-seconds", type=int, default=3)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="squall-tls-") as certs:
        subprocess.run(["/bin/sh", opts.make_certs, certs], check=True, stdout=subprocess.DEVNULL)
        proc, port = start_server(opts.binary, ["--certfile", os.path.join(certs, "server.pem"),
                                                "--keyfile", os.path.join(certs, "server.key")])
        try:
            curl_checks(port, certs)
            python_checks(port, certs)
            wrk_checks(port, opts.wrk_seconds, scheme="https", connections=16)
        finally:
            stop_server(proc)
    exit_with_summary()


if __name__ == "__main__":
    main()
