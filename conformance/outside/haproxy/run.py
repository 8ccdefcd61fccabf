#!/usr/bin/python3
"""HAProxy (Debian's haproxy 2.6) as a reverse proxy in front of the in-tree Node.js contract
server (conformance/outside/node/server.js): one contract §1 server app made of two programs.

    run.py --port N [--catch-all] [--header-timeout S]

Starts `node server.js --port 0` (and `--catch-all`), reads its `port=N` line, renders
haproxy.cfg next to it in the current directory (the suite's work directory), runs
`haproxy -db -f haproxy.cfg` listening on 127.0.0.1:N, and stays in the foreground. On SIGTERM
it stops both by PID and exits 0; if either dies, it stops the other and exits 1.
"""
import argparse
import os
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_SERVER = os.path.join(HERE, "..", "node", "server.js")


def stop(procs):
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    end = time.monotonic() + 4.0
    for p in procs:
        try:
            p.wait(max(0.1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--catch-all", action="store_true")
    ap.add_argument("--header-timeout", default="10")
    a = ap.parse_args()

    node = subprocess.Popen(["node", NODE_SERVER, "--port", "0"] + (["--catch-all"] if a.catch_all else []),
                            stdout=subprocess.PIPE, stderr=sys.stderr)
    procs = [node]
    backend = None
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        line = node.stdout.readline()
        if not line:
            break
        if line.startswith(b"port="):
            backend = int(line[5:].strip())
            break
    if backend is None:
        stop(procs)
        sys.exit("run.py: the Node server did not announce its port")

    # Whatever Node prints after its port line goes to our stderr (a full pipe would stall it).
    threading.Thread(target=lambda: [sys.stderr.buffer.write(x) for x in node.stdout], daemon=True).start()

    with open(os.path.join(HERE, "haproxy.cfg.template"), encoding="utf-8") as f:
        cfg = f.read()
    for k, v in (("port", a.port), ("backend_port", backend), ("header_timeout", f"{a.header_timeout}s")):
        cfg = cfg.replace("{" + k + "}", str(v))
    with open("haproxy.cfg", "w", encoding="utf-8") as f:
        f.write(cfg)
    procs.append(subprocess.Popen(["/usr/sbin/haproxy", "-db", "-f", "haproxy.cfg"], stdout=sys.stderr))

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    while not stopping and all(p.poll() is None for p in procs):
        time.sleep(0.1)
    stop(procs)
    sys.exit(0 if stopping else 1)


if __name__ == "__main__":
    main()
