#!/usr/bin/env python3
"""Runs one example of reference/examples and checks what it says or serves (CTest).

  examples_test.py hello HELLO_SERVER          GET / and /?greeting=Salut over loopback
  examples_test.py fetch FETCH HELLO_SERVER    the client example fetches from the server
  examples_test.py chain COROUTINE_CHAIN       the chain's sum and its timed-out step

Servers listen on 127.0.0.1 port 0 (they print port=N), are stopped with SIGTERM by PID,
and must exit 0. Every wait is bounded. Exit status 0 when every check passed.
"""
import contextlib
import signal
import subprocess
import sys
import urllib.request

TIMEOUT = 10  # seconds, for any one step


def fail(message: str) -> None:
    print(f"FAIL: {message}")
    sys.exit(1)


@contextlib.contextmanager
def hello_server(binary: str):
    """Starts the hello server on a free loopback port; yields its base URL."""
    proc = subprocess.Popen([binary, "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()  # the server prints it before serving
        if not line.startswith("port="):
            fail(f"expected port=N from {binary}, got {line!r}")
        yield f"http://127.0.0.1:{int(line[5:])}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            status = proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            fail("the hello server did not stop on SIGTERM")
    if status != 0:
        fail(f"the hello server exited with {status} after SIGTERM")


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        return response.read()


def check_hello(server: str) -> None:
    with hello_server(server) as base:
        for path, want in (("/", b"Hello, friendly user!"), ("/?greeting=Salut", b"Salut, friendly user!")):
            got = get(base + path)
            if got != want:
                fail(f"GET {path}: {got!r}, want {want!r}")
            print(f"GET {path}: {got.decode()}")


def check_fetch(fetch: str, server: str) -> None:
    with hello_server(server) as base:
        body = get(base + "/?greeting=Bonjour")
        run = subprocess.run([fetch, base + "/?greeting=Bonjour"], capture_output=True, text=True, timeout=TIMEOUT)
        want = f"response.length = {len(body)}"
        if run.returncode != 0 or run.stdout.strip() != want:
            fail(f"fetch printed {run.stdout!r} (status {run.returncode}, stderr {run.stderr!r}), want {want!r}")
        print(run.stdout.strip())
    # Nothing listens on the port any more: the example reports the failure with status 1.
    run = subprocess.run([fetch, base + "/"], capture_output=True, text=True, timeout=TIMEOUT)
    if run.returncode != 1 or "error:" not in run.stderr:
        fail(f"fetch of a closed port: status {run.returncode}, stderr {run.stderr!r}")


def check_chain(chain: str) -> None:
    n = 100000
    run = subprocess.run([chain, str(n)], capture_output=True, text=True, timeout=TIMEOUT)
    want = [f"sum of squares 1..{n} = {sum(i * i for i in range(1, n + 1))}",
            "slow step: timed out after 50 ms"]
    if run.returncode != 0 or run.stdout.splitlines() != want:
        fail(f"chain printed {run.stdout!r} (status {run.returncode}, stderr {run.stderr!r}), want {want!r}")
    print("\n".join(want))


def main() -> None:
    commands = {"hello": (check_hello, 1), "fetch": (check_fetch, 2), "chain": (check_chain, 1)}
    if len(sys.argv) < 2 or sys.argv[1] not in commands or len(sys.argv) != 2 + commands[sys.argv[1]][1]:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    check, _ = commands[sys.argv[1]]
    check(*sys.argv[2:])
    print("ok")


if __name__ == "__main__":
    main()
