"""Shrink an input to a small byte string that still shows the same disagreement.

Delta debugging over the bytes of a request stream and its split points: remove ever
smaller ranges of bytes while `still(pieces)` holds, keeping the writes' boundaries where
they fall in what is left. Bounded in checks and seconds: a flaky disagreement simply stops
shrinking, it never loops.
"""
from __future__ import annotations

import time


def _pieces(data: bytes, cuts):
    cuts = sorted({c for c in cuts if 0 < c < len(data)})
    return [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]


def _without(data: bytes, cuts, start: int, size: int):
    """data with [start, start+size) removed, and the cuts moved with the bytes after it."""
    kept = data[:start] + data[start + size:]
    moved = [c if c <= start else c - size for c in cuts if not start < c < start + size]
    return kept, moved


def minimize(pieces, still, max_checks=150, max_seconds=30.0):
    """The smallest pieces found for which still(pieces) is true (starting from pieces,
    for which it is assumed true), and the number of checks made."""
    data = b"".join(pieces)
    cuts, off = [], 0
    for p in pieces[:-1]:
        off += len(p)
        cuts.append(off)
    checks, deadline = 0, time.monotonic() + max_seconds

    def ok(d, c):
        nonlocal checks
        checks += 1
        return still(_pieces(d, c))

    if cuts and ok(data, []):
        cuts = []
    size = max(1, len(data) // 2)
    while size >= 1 and checks < max_checks and time.monotonic() < deadline:
        start, shrunk = 0, False
        while start < len(data) and checks < max_checks and time.monotonic() < deadline:
            d, c = _without(data, cuts, start, size)
            if d and ok(d, c):
                data, cuts, shrunk = d, c, True
            else:
                start += size
        if not shrunk:
            size //= 2
    return _pieces(data, cuts), checks
