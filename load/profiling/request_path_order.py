#!/usr/bin/python3
"""Writes reference/request_path.ld: the program's functions a request runs, in the order it
first runs them, for the linker to lay out together.

On a host that empties the TLB on every system call (PVM here; load/performance.md), each
distinct page of code run between two calls costs a page walk. SQUALL_HOT gathers the hot
functions, but in the source files' order, over ~110 KB; the stretch between a request's
recv and its send touches 26 of those pages and 11 more outside them (the standard
library's template instances, a thunk, the application's handler), while the functions it
runs would fit in about 19. Laid out in the order a request runs them, a plaintext
response touches 32 pages of the program's code instead of 50.

How: squall-contract-app runs under valgrind's lackey (as in pages_between_syscalls.py)
once per scenario (plaintext, JSON, a connection per request); in the steady middle of each
run, the functions touched in at least 5 % of the stretches between two system calls are
listed by first touch. The scenarios' lists are joined in that order (a function already
listed keeps its place). Each function becomes a line of a GNU ld / lld linker script that
puts its section (-ffunction-sections; a template instance's comdat section has its name
anyway) into one output section ahead of .text. A function the build no longer has is
skipped by the linker; the ctest request_path_order says when too many went stale.

  load/profiling/request_path_order.py BIN_DIR [--out reference/request_path.ld] [--seconds 4]

BIN_DIR holds a Release squall-contract-app (any build: the names do not depend on the
order). Needs valgrind, wrk, curl, nm and c++filt.
"""
import argparse
import bisect
import collections
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pages_between_syscalls as pages  # noqa: E402  (the lackey run and its log's syntax)

PROGRAM = "squall-contract-app"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
# (name, path, wrk script): the scenarios whose functions are laid out, in this order
SCENARIOS = [
    ("plaintext", "/plaintext", None),
    ("json", "/json", None),
    ("a connection per request", "/plaintext", os.path.join(REPO, "load", "scenarios", "connection_close.lua")),
]
MIN_SHARE = 0.05  # of the stretches a function must be touched in


def functions(program_path):
    """(start addresses, [(start, size, [names at that address])]) of the program's code."""
    out = subprocess.run(["nm", "-S", "--defined-only", program_path], capture_output=True, text=True,
                         check=True).stdout
    by_address = collections.defaultdict(lambda: [0, []])
    for line in out.splitlines():
        f = line.split()
        if len(f) == 4 and f[2] in "tTwW":
            entry = by_address[int(f[0], 16)]
            entry[0] = max(entry[0], int(f[1], 16))
            entry[1].append(f[3])  # aliases (a constructor's C1 and C2) share an address
    table = sorted((start, size, names) for start, (size, names) in by_address.items())
    return [t[0] for t in table], table


def load_base(maps, program):
    """Where the program's file offset 0 lies in the run's address space (a PIE)."""
    for line in maps:
        f = line.split()
        if len(f) > 5 and f[5].endswith("/" + program) and int(f[2], 16) == 0:
            return int(f[0].split("-")[0], 16)
    sys.exit(f"request_path_order: {program} not found in the run's mappings")


def first_touch_order(log, base, starts, table):
    """The functions touched in >= MIN_SHARE of the steady window's stretches, by first touch."""
    first, touched, stretches = {}, collections.Counter(), 0
    for _, code, _ in pages.steady_stretches(log):
        functions_run = set()
        for address in code:
            address -= base
            i = bisect.bisect_right(starts, address) - 1
            if i >= 0 and address < table[i][0] + max(table[i][1], 1):
                functions_run.add(i)
                first.setdefault(i, len(first))
        if functions_run:
            stretches += 1
            touched.update(functions_run)
    if not stretches:
        sys.exit("request_path_order: no system call in the counted window")
    return [i for i in sorted(first, key=first.get) if touched[i] >= MIN_SHARE * stretches]


def demangled(names):
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def script(order, table):
    lines = [
        "/* The functions a request runs, in the order it first runs them: made by",
        "   load/profiling/request_path_order.py from a profile of squall-contract-app (plaintext,",
        "   JSON, a connection per request); do not edit by hand. Each line places one function's",
        "   section (compiled with -ffunction-sections), under any of its names; a name the build",
        "   no longer has matches nothing. INSERT keeps the linker's default script for the rest. */",
        "SECTIONS",
        "{",
        "  .text.squall_request_path :",
        "  {",
    ]
    placed = []  # per function, its names; a cold part lies apart and is left out
    for i in order:
        names = [n for n in table[i][2] if not n.endswith(".cold")]
        if names:
            placed.append(names)
    for names, readable in zip(placed, demangled([names[0] for names in placed])):
        comment = readable.replace("*/", "* /")[:110]
        patterns = " ".join(f".text.hot.{n} .text.{n}" for n in names)
        lines.append(f"    /* {comment} */")
        lines.append(f"    *({patterns})")
    lines += ["  }", "}", "INSERT BEFORE .text;", ""]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bin_dir")
    ap.add_argument("--out", default=os.path.join(REPO, "reference", "request_path.ld"))
    ap.add_argument("--seconds", type=int, default=4)
    args = ap.parse_args()
    starts, table = functions(os.path.join(args.bin_dir, PROGRAM))
    order, listed = [], set()
    for number, (title, path, lua) in enumerate(SCENARIOS, 1):
        print(f"[{number}/{len(SCENARIOS)}] {title}: {PROGRAM} under lackey", file=sys.stderr)
        run_args = argparse.Namespace(bin_dir=args.bin_dir, path=path, lua=lua, seconds=args.seconds,
                                      connections=64)
        fd, log = tempfile.mkstemp(prefix="lackey.", dir="/tmp")
        os.close(fd)
        try:
            maps = pages.run(run_args, log)
            found = first_touch_order(log, load_base(maps, PROGRAM), starts, table)
        finally:
            os.unlink(log)
        new = [i for i in found if i not in listed]
        order += new
        listed.update(new)
        print(f"    {len(found)} functions on its path, {len(new)} not listed before", file=sys.stderr)
    with open(args.out, "w") as f:
        f.write(script(order, table))
    size = sum(table[i][1] for i in order)
    print(f"wrote {args.out}: {len(order)} functions, {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
