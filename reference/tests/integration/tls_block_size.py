#!/usr/bin/env python3
"""The library's static thread-local block stays small.

Every request reads a few per-thread values (the current loop, the pools' free lists, the
cached Date and default heads). They share the thread's static TLS block with whatever
else the library declares thread_local, so a large thread_local array (spare buffers, a
scratch record) would spread them over several pages, and on a host that empties the TLB
on every system call each page a request touches costs a page walk (load/performance.md,
Session 15). Large per-thread storage lives on the heap instead
(detail/small_pool.h's SpareBuffers).

    tls_block_size.py PROGRAM   (the program, or libsquall.so in a shared build)
"""
import subprocess
import sys

# Bytes. The block held 1,544 when this check was written; 48 KiB before.
MAX_TLS_BYTES = 4096


def tls_size(program: str) -> int:
    out = subprocess.run(["readelf", "-lW", program], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0] == "TLS":  # Type Offset VirtAddr PhysAddr FileSiz MemSiz Flg Align
            return int(fields[5], 16)
    return 0


def main() -> int:
    size = tls_size(sys.argv[1])
    print(f"static TLS block: {size} bytes (at most {MAX_TLS_BYTES})")
    if size > MAX_TLS_BYTES:
        print("a thread_local of several KiB sits among the per-request values; keep it on the heap", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
