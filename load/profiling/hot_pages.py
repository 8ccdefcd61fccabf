#!/usr/bin/env python3
"""How much code a request walks through: distinct cache lines and pages per program object.

Reads a callgrind profile taken with `--dump-instr=yes` (callgrind_requests.sh does so when
CALLGRIND_OPTS asks for it) and counts, among the instructions that ran at least THRESHOLD
times per request, the 64-byte lines and the 4 KiB pages they lie in, per object (the
program, libc, ...). Pages matter on virtual machines where every system call empties the
instruction TLB (load/performance.md): each page of code a request touches after a call
costs a page walk. Lines matter everywhere: each is an instruction-cache fill when cold.

    load/profiling/hot_pages.py CALLGRIND_OUT REQUESTS [--threshold 0.5] [--functions N]

Prints a table (instructions per request, lines, pages, object) and, with --functions, the
N functions that spread over the most lines.
"""
from __future__ import annotations

import argparse
import collections
import re
import sys
from dataclasses import dataclass, field

LINE = 64
PAGE = 4096
_NAMED = re.compile(r"\((\d+)\)(?: (.*))?$")
# callgrind's name spaces: objects, functions and files, each named where defined or called
_NAMESPACE = {"ob": "ob", "cob": "ob", "fn": "fn", "cfn": "fn",
              "fl": "fl", "fi": "fl", "fe": "fl", "cfi": "fl", "cfl": "fl"}


@dataclass
class Profile:
    """Instructions run per (object, address), and the function each address belongs to."""
    cost: collections.Counter = field(default_factory=collections.Counter)
    function: dict = field(default_factory=dict)


def _resolve(names: dict, kind: str, spec: str) -> str:
    # callgrind's name compression: "(12) name" defines id 12, a later "(12)" refers to it
    match = _NAMED.match(spec)
    if not match:
        return spec
    key = (kind, match.group(1))
    if match.group(2) is not None:
        names[key] = match.group(2)
    return names.get(key, spec)


def _step(address: int, token: str) -> int:
    # positions are absolute (0x...), relative (+n / -n, decimal or hex) or unchanged (*)
    if token.startswith("0x"):
        return int(token, 16)
    if token[0] in "+-":
        magnitude = token[1:]
        delta = int(magnitude, 16) if magnitude.startswith("0x") else int(magnitude)
        return address + delta if token[0] == "+" else address - delta
    return address


def read_profile(lines) -> Profile:
    """Self cost per instruction address; a call's inclusive cost line is skipped."""
    profile = Profile()
    names: dict = {}
    obj = fn = None
    address = 0
    call_cost_next = False
    for raw in lines:
        line = raw.rstrip("\n")
        if not line:
            continue
        key, _, value = line.partition("=")
        if key in _NAMESPACE:
            name = _resolve(names, _NAMESPACE[key], value)
            if key == "ob":
                obj = name
            elif key == "fn":
                fn = name
        elif key == "calls":
            call_cost_next = True
        elif line[0] in "0123456789+-*":
            parts = line.split()
            address = _step(address, parts[0])
            if call_cost_next:  # the line after calls= is the callee's inclusive cost
                call_cost_next = False
                continue
            if len(parts) > 2:
                profile.cost[(obj, address)] += int(parts[2])
                profile.function[(obj, address)] = fn
    return profile


@dataclass
class Footprint:
    instructions: float
    lines: int
    pages: int


def hot(profile: Profile, requests: int, threshold: float):
    """(object, address, count) of the instructions run at least `threshold` times per request."""
    for (obj, address), count in profile.cost.items():
        if count >= threshold * requests:
            yield obj, address, count


def footprint(profile: Profile, requests: int, threshold: float) -> dict[str, Footprint]:
    """Per object: instructions per request, and the lines and pages of the hot ones."""
    lines = collections.defaultdict(set)
    pages = collections.defaultdict(set)
    run = collections.Counter()
    for obj, address, count in hot(profile, requests, threshold):
        lines[obj].add(address // LINE)
        pages[obj].add(address // PAGE)
        run[obj] += count
    return {obj: Footprint(run[obj] / requests, len(lines[obj]), len(pages[obj])) for obj in run}


def widest_functions(profile: Profile, requests: int, threshold: float, count: int) -> list[tuple[int, str]]:
    """The `count` functions whose hot instructions cover the most lines, widest first."""
    spread = collections.defaultdict(set)
    for obj, address, _ in hot(profile, requests, threshold):
        spread[profile.function[(obj, address)]].add(address // LINE)
    ranked = sorted(((len(lines), name or "?") for name, lines in spread.items()), reverse=True)
    return ranked[:count]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", help="callgrind output taken with --dump-instr=yes")
    parser.add_argument("requests", type=int, help="requests the profile served")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="count instructions run at least this many times per request (0.5)")
    parser.add_argument("--functions", type=int, default=0, help="also list the N widest functions")
    args = parser.parse_args(argv)
    if args.requests <= 0:
        parser.error("requests must be positive")
    with open(args.profile, encoding="utf-8", errors="replace") as f:
        profile = read_profile(f)
    if not profile.cost:
        print(f"hot_pages: no instruction addresses in {args.profile} (take it with --dump-instr=yes)",
              file=sys.stderr)
        return 1
    table = footprint(profile, args.requests, args.threshold)
    print(f"{'instr/request':>13} {'lines':>6} {'pages':>6}  object")
    for obj, fp in sorted(table.items(), key=lambda item: -item[1].instructions):
        print(f"{fp.instructions:13.0f} {fp.lines:6d} {fp.pages:6d}  {obj}")
    total = Footprint(sum(f.instructions for f in table.values()), sum(f.lines for f in table.values()),
                      sum(f.pages for f in table.values()))
    print(f"{total.instructions:13.0f} {total.lines:6d} {total.pages:6d}  all (instructions run >= "
          f"{args.threshold:g} times per request)")
    for lines, name in widest_functions(profile, args.requests, args.threshold, args.functions):
        print(f"{lines:6d} lines  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
