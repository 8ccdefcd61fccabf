"""Run a probe or adapter once, bounded in time and in output.

Every program the suite runs to completion (a loop probe's scenario, a client adapter's
fetch, a version or --help command) goes through run_bounded(): a program that hangs is
killed at its timeout, one that prints without end is killed once it passed the limit, and
neither costs the driver more than the limit in memory.
"""
from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass

OUTPUT_LIMIT = 16 << 20      # bytes of output (stdout and stderr together) a run may print


@dataclass
class Completed:
    """What run_bounded() saw: the exit status (None: killed), output, and why it was cut."""
    returncode: int | None
    stdout: bytes
    stderr: bytes
    problem: str | None = None     # "timed out after S s" or "printed more than N bytes"


def run_bounded(argv, timeout: float, limit: int = OUTPUT_LIMIT, stdin=subprocess.DEVNULL) -> Completed:
    """Run a probe or adapter once, bounded in time and in output: a program that hangs is
    killed at `timeout`, one that prints more than `limit` bytes (stdout and stderr
    together) is killed then; neither costs more than `limit` bytes of memory."""
    try:
        proc = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
    except OSError as e:
        return Completed(None, b"", b"", f"could not run {argv[0]}: {e.strerror}")
    out = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    sel = selectors.DefaultSelector()
    for stream in out:
        sel.register(stream, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    problem = None
    try:
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                problem = f"timed out after {timeout:g} s"
                break
            for key, _ in sel.select(timeout=min(left, 0.5)):
                chunk = os.read(key.fileobj.fileno(), 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                out[key.fileobj] += chunk
            if sum(len(b) for b in out.values()) > limit:
                problem = f"printed more than {limit} bytes"
                break
    finally:
        sel.close()
        if problem:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        try:
            rc = proc.wait(timeout=max(0.1, deadline - time.monotonic()) if not problem else 5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            rc = proc.wait()
            problem = problem or f"timed out after {timeout:g} s"
        proc.stdout.close()
        proc.stderr.close()
    return Completed(None if problem else rc, bytes(out[proc.stdout][:limit]), bytes(out[proc.stderr][:limit]), problem)
