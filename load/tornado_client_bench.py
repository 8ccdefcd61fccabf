#!/usr/bin/python3
"""Tornado's HTTP client under the same load as squall-client-bench, for load/client_bench.py.

    /usr/bin/python3 load/tornado_client_bench.py --url http://127.0.0.1:PORT/plaintext
        [--concurrency 64] [--duration 5] [--requests N]

C coroutines each loop `await client.fetch(url)` on one
tornado.simple_httpclient.SimpleAsyncHTTPClient(max_clients=C) until the duration has
passed or N fetches have been started (N = 0: no count limit); each finishes the fetch it
has in flight. Note that Tornado's simple client does not keep connections alive: it sends
`Connection: close` and opens a connection per request. Prints one JSON line with the same
fields as squall-client-bench: requests (200 responses), seconds, req_per_s, errors,
cpu_seconds (this process, over the run), first_error. Exit status 0 when every fetch
succeeded.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from tornado.simple_httpclient import SimpleAsyncHTTPClient


class Run:
    def __init__(self, url: str, deadline: float, max_requests: int):
        self.url, self.deadline, self.max_requests = url, deadline, max_requests
        self.started = self.ok = self.errors = 0
        self.first_error = None

    def more(self) -> bool:
        return time.monotonic() < self.deadline and (self.max_requests == 0 or self.started < self.max_requests)

    def fail(self, why: str) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = why


async def fetch_loop(client: SimpleAsyncHTTPClient, run: Run) -> None:
    while run.more():
        run.started += 1
        try:
            response = await client.fetch(run.url, raise_error=False)
            if response.code == 200:
                run.ok += 1
            else:
                run.fail(f"HTTP {response.code}: {response.error}")
        except Exception as e:  # noqa: BLE001  (counted, the loop goes on)
            run.fail(repr(e))


async def main_async(args) -> dict:
    client = SimpleAsyncHTTPClient(force_instance=True, max_clients=args.concurrency)
    cpu0, t0 = time.process_time(), time.monotonic()
    run = Run(args.url, t0 + args.duration, args.requests)
    try:
        # Bounded: a fetch in flight at the deadline ends within Tornado's default
        # request_timeout (20 s).
        await asyncio.wait_for(asyncio.gather(*(fetch_loop(client, run) for _ in range(args.concurrency))),
                               args.duration + 30)
    except asyncio.TimeoutError:
        run.fail("run: timed out")
    seconds = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    client.close()
    return {"requests": run.ok, "seconds": round(seconds, 4),
            "req_per_s": round(run.ok / seconds, 1) if seconds > 0 else 0.0, "errors": run.errors,
            "cpu_seconds": round(cpu, 4), "concurrency": args.concurrency, "first_error": run.first_error}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--concurrency", "-c", type=int, default=64)
    ap.add_argument("--duration", "-d", type=float, default=5.0)
    ap.add_argument("--requests", "-n", type=int, default=0)
    args = ap.parse_args()
    result = asyncio.run(main_async(args))
    print(json.dumps(result), flush=True)
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
