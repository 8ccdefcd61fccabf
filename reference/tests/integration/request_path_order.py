#!/usr/bin/env python3
"""The linked program lays out the request path as reference/request_path.ld lists it.

The script names functions by their mangled names, which a change to the code can retire:
a name the build no longer has matches nothing and its function falls back among the rest.
This fails when more than a fifth of the listed names are gone (regenerate the script with
load/profiling/request_path_order.py), or when a listed function that the program has lies
outside the script's output section (the script was not applied).

    request_path_order.py PROGRAM SCRIPT   (the program, or libsquall.so in a shared build)
"""
import re
import subprocess
import sys

SECTION = ".text.squall_request_path"
MAX_STALE_SHARE = 0.2


def listed_names(script: str) -> set[str]:
    with open(script) as f:
        return set(re.findall(r"\.text\.hot\.(\S+)", f.read()))


def section_range(program: str) -> tuple[int, int] | None:
    out = subprocess.run(["readelf", "-SW", program], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if SECTION + " " in line:
            fields = line.split(SECTION, 1)[1].split()  # type, address, offset, size, ...
            start, size = int(fields[1], 16), int(fields[3], 16)
            return start, start + size
    return None


def symbol_addresses(program: str) -> dict[str, list[int]]:
    out = subprocess.run(["nm", "--defined-only", program], capture_output=True, text=True, check=True).stdout
    found: dict[str, list[int]] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwW":
            found.setdefault(parts[2], []).append(int(parts[0], 16))
    return found


def main() -> int:
    program, script = sys.argv[1], sys.argv[2]
    names = listed_names(script)
    if not names:
        print(f"{script}: no function listed")
        return 1
    span = section_range(program)
    if span is None:
        print(f"{program}: no {SECTION} section: the linker did not apply {script}")
        return 1
    symbols = symbol_addresses(program)
    present = [n for n in names if n in symbols]
    outside = [n for n in present if not any(span[0] <= a < span[1] for a in symbols[n])]
    stale = len(names) - len(present)
    print(f"{len(names)} functions listed, {stale} no longer in the program, {len(outside)} outside "
          f"{SECTION} ({(span[1] - span[0]) / 1024:.0f} KiB)")
    if outside:
        print("listed but laid out elsewhere:", *sorted(outside)[:10], sep="\n  ")
        return 1
    if stale > MAX_STALE_SHARE * len(names):
        print(f"more than {MAX_STALE_SHARE:.0%} of the listed functions are gone: regenerate the script "
              "with load/profiling/request_path_order.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
