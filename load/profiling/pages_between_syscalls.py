#!/usr/bin/python3
"""Distinct 4 KiB pages a request's code and data touch between two system calls.

On a host that empties the TLB on every system call (PVM here), each distinct page
touched after a call costs a page walk; a dependent load on a new page costs 12-14 ns
(load/performance.md, Session 15). This counts those pages for the
reference: squall-contract-app runs under valgrind's lackey (every instruction and data
access) with its system calls traced on the same stream, while wrk sends requests; each
stretch between two calls (clock_gettime excluded: the vDSO answers it outside valgrind)
counts each page once. Printed per request (one send per keep-alive response), from the
steady middle of the run (40-95 % of its system calls), by mapping.

  load/profiling/pages_between_syscalls.py BIN_DIR [--path /plaintext] [--lua SCRIPT]
      [--seconds 4] [--connections 64] [--keep LOG]

Only runs compare in one sitting: how many requests valgrind's slowed server gathers per
epoll_wait changes the calls per request, and so the stretches. Needs valgrind, wrk, curl.
"""
import argparse
import bisect
import collections
import os
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args, log):
    port = free_port()
    server = subprocess.Popen(
        ["valgrind", "--tool=lackey", "--trace-mem=yes", "--trace-syscalls=yes", f"--log-file={log}",
         os.path.join(args.bin_dir, "squall-contract-app"), "--port", str(port), "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}{args.path}"
        for _ in range(150):
            if subprocess.run(["curl", "-s", "-o", "/dev/null", url]).returncode == 0:
                break
            time.sleep(0.2)
        else:
            sys.exit("pages_between_syscalls: the server did not answer")
        print(f"lackey: wrk -t1 -c{args.connections} -d{args.seconds} {url}", file=sys.stderr)
        subprocess.run(["wrk", "-t1", f"-c{args.connections}", f"-d{args.seconds}",
                        *(["-s", args.lua] if args.lua else []), url],
                       stdout=subprocess.DEVNULL, check=True)
        with open(f"/proc/{server.pid}/maps") as f:
            maps = f.read().splitlines()
    finally:
        server.send_signal(2)
        server.wait(timeout=60)
    return maps


def mapping_names(maps, program):
    """(start, end, name) per mapping; the program's named by what its permissions hold."""
    out, program_ro = [], 0
    for line in maps:
        f = line.split()
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        path = f[5] if len(f) > 5 else ""
        if path.endswith("/" + program):
            if f[1] == "r-xp":
                name = "program code"
            elif f[1] == "rw-p":
                name = "program .data"
            else:
                program_ro += 1
                name = {1: "program headers", 2: "program rodata"}.get(program_ro, "program relro (vtables)")
        elif path:
            name = os.path.basename(path)
        elif out and out[-1][2] == "program .data" and out[-1][1] == lo:
            name = "program .bss"
        else:
            name = f"anonymous at {lo:#x}"  # the heap, the stack, the thread's TLS block: one sitting tells which
        out.append((lo, hi, name))
    return sorted(out)


def is_call(line):
    # "SYSCALL[pid,tid](nr) sys_name ( ... )"; the second line of a blocking call ("...") and
    # clock_gettime (a vDSO read outside valgrind) do not start a stretch.
    return line.startswith("SYSCALL[") and not line.split(")", 1)[1].startswith(" ...") and "clock_gettime" not in line


def steady_stretches(log):
    """Each stretch between two system calls in the run's steady middle (40-95 % of its
    calls): (the log line of the call that ends it, the addresses of its instructions in the
    order first run, the addresses its loads and stores touched)."""
    with open(log, errors="replace") as f:
        calls = sum(1 for line in f if is_call(line))
    lo, hi = int(calls * 0.4), int(calls * 0.95)
    code, data = {}, set()  # code: a dict, keys in first-run order
    n = 0
    with open(log, errors="replace") as f:
        for line in f:
            if line.startswith("SYSCALL["):
                if not is_call(line):
                    continue
                if lo <= n < hi:
                    yield line, code, data
                code, data = {}, set()
                n += 1
                continue
            if not lo <= n < hi or len(line) < 4:
                continue
            kind = line[:2]
            try:
                if kind == "I ":
                    code.setdefault(int(line[3:].split(",", 1)[0], 16))
                elif kind in (" L", " S", " M"):
                    data.add(int(line[3:].split(",", 1)[0], 16))
            except ValueError:
                pass


def count(log, maps):
    starts = [m[0] for m in maps]

    def name(page):
        i = bisect.bisect_right(starts, page << 12) - 1
        return maps[i][2] if i >= 0 and (page << 12) < maps[i][1] else "anonymous, mapped after the run"

    per = {"code": collections.Counter(), "data": collections.Counter()}
    stretches, responses = 0, 0
    for call, code, data in steady_stretches(log):
        stretches += 1
        for p in {address >> 12 for address in code}:
            per["code"][name(p)] += 1
        for p in {address >> 12 for address in data}:
            per["data"][name(p)] += 1
        responses += "sys_sendto" in call or "sys_write (" in call
    return stretches, responses, per


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bin_dir")
    ap.add_argument("--path", default="/plaintext")
    ap.add_argument("--lua")
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--connections", type=int, default=64, help="wrk's connections")
    ap.add_argument("--keep", help="keep lackey's log here (it is hundreds of MB)")
    args = ap.parse_args()
    log = args.keep or tempfile.mktemp(prefix="lackey.", dir="/tmp")
    try:
        maps = mapping_names(run(args, log), "squall-contract-app")
        print("counting (a minute per GB of log)", file=sys.stderr)
        calls, responses, per = count(log, maps)
    finally:
        if not args.keep and os.path.exists(log):
            os.unlink(log)
    if not responses:
        sys.exit("pages_between_syscalls: no response in the counted window")
    print(f"responses {responses}, system calls per response {calls / responses:.2f}\n")
    print("| pages touched per response | code | data |\n|---|---:|---:|")
    names = sorted(set(per["code"]) | set(per["data"]), key=lambda k: -(per["code"][k] + per["data"][k]))
    for k in names:
        if per["code"][k] + per["data"][k] < 0.05 * responses:
            continue
        print(f"| {k} | {per['code'][k] / responses:.1f} | {per['data'][k] / responses:.1f} |")
    print(f"| **all** | {sum(per['code'].values()) / responses:.1f} | {sum(per['data'].values()) / responses:.1f} |")


if __name__ == "__main__":
    main()
