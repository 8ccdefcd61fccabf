#!/usr/bin/python3
"""Client adapter (CONTRACTS.md §4) wrapping /usr/bin/curl.

curl -sS writes the headers of every response (1xx, redirects, final) with -D; the last block
is reported. -w gives the effective URL and code. A non-zero curl exit (timeouts, connection
errors, protocol errors, --max-filesize) is reported as 599 with curl's message as the error,
except too many redirects (47), reported as the last 3xx with an error.
"""
import os
import subprocess
import tempfile

import _args  # this folder (Python puts a script's own folder first on sys.path)

CURL = "/usr/bin/curl"


def parse_blocks(raw):
    blocks, cur = [], None
    for line in raw.split(b"\r\n") if b"\r\n" in raw else raw.split(b"\n"):
        line = line.rstrip(b"\r")
        if line.startswith(b"HTTP/"):
            cur = [line, []]
            blocks.append(cur)
        elif line and cur is not None:
            if line[:1] in (b" ", b"\t") and cur[1]:
                n, v = cur[1][-1]
                cur[1][-1] = (n, v + " " + line.strip().decode("latin-1"))
            elif b":" in line:
                n, _, v = line.partition(b":")
                cur[1].append((n.decode("latin-1"), v.strip().decode("latin-1")))
    return blocks


def main():
    a = _args.parse()
    with tempfile.TemporaryDirectory() as d:
        hfile, bfile = os.path.join(d, "h"), os.path.join(d, "b")
        cmd = [CURL, "-sS", "-D", hfile, "-o", bfile, "-w", "%{http_code} %{url_effective}",
               "--connect-timeout", str(a.connect_timeout), "--max-time", str(a.request_timeout)]
        if a.method == "HEAD":
            cmd += ["-I"]
        elif a.method != ("POST" if a.body is not None else "GET"):
            cmd += ["-X", a.method]
        for k, v in a.headers:
            cmd += ["-H", f"{k}: {v}"]
        if a.body is not None:
            cmd += ["--data-binary", "@" + a.body_file]
        if not a.no_follow:
            cmd += ["-L", "--max-redirs", str(a.max_redirects)]
        if a.decompress:
            cmd += ["--compressed"]
        if a.max_body_size is not None:
            cmd += ["--max-filesize", str(a.max_body_size)]
        if a.ca_certs:
            cmd += ["--cacert", a.ca_certs]
        if a.insecure:
            cmd += ["--insecure"]
        cmd += ["--", a.url]
        p = subprocess.run(cmd, capture_output=True)
        raw = open(hfile, "rb").read() if os.path.exists(hfile) else b""
        body = open(bfile, "rb").read() if os.path.exists(bfile) else b""
    out = p.stdout.decode("latin-1")
    code_s, _, eff = out.partition(" ")
    err = p.stderr.decode("latin-1").strip().splitlines()
    # curl's own "curl: (N) ..." line, not the advice that follows some (certificate errors)
    err = next((e for e in err if e.startswith("curl: (")), err[-1] if err else f"curl exit {p.returncode}")[:200]
    blocks = [b for b in parse_blocks(raw) if not b[0].split(b" ")[1:2] or not b[0].split(b" ")[1].startswith(b"1")]
    status, headers = (blocks[-1] if blocks else (b"", []))
    parts = status.split(b" ", 2)
    reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
    if p.returncode == 47 and blocks:
        _args.emit(int(code_s or 0), reason, headers, b"", eff or a.url, err)
    elif p.returncode != 0:
        _args.emit(599, "Unknown", [], b"", eff or a.url, err)
    else:  # with -I (HEAD) curl writes the headers to -o as well: there is no body
        _args.emit(int(code_s), reason, headers, b"" if a.method == "HEAD" else body, eff, None)


if __name__ == "__main__":
    main()
