"""Findings: the disagreements worth keeping, one file each, reproducible and promotable.

A finding is the bytes (and the writes they were cut into), each target's interpretation,
the class, the pairs of targets that disagree that way (`pair`: the first of them, which
replay and minimisation use), who reads the bytes otherwise than the oracle (`odd`), the
mutations that made the input and the RFC sections those govern. Findings are deduplicated
by class, `odd` and the set of mutation operators: the first one seen is kept, replaced
only by a smaller input of the same key.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os

from squall_conformance.oracle import split_pieces
from squall_conformance.report import show_bytes

FORMAT = "squall-wire-finding/1"


def key(cls, odd, ops):
    """What makes two findings the same: the class, who reads the bytes otherwise than the
    oracle, and the mutation operators that made the input."""
    return (cls, tuple(odd), tuple(sorted({name for name, _ in ops})))


def make(cls, detail, pair, pieces, requests, ops, rules, interps, iteration, seed, found_after=None, pairs=None,
         odd=None):
    data = b"".join(pieces)
    return {
        "format": FORMAT, "class": cls, "detail": detail, "pair": list(pair),
        "pairs": [list(p) for p in (pairs or [pair])], "odd": list(odd or pair),
        "bytes_b64": base64.b64encode(data).decode(), "bytes": show_bytes(data, limit=len(data)),
        "pieces": [len(p) for p in pieces], "requests": [list(r) for r in requests],
        "ops": [[name, what] for name, what in ops], "operators": sorted({name for name, _ in ops}), "rules": rules,
        "interpretations": {name: i.to_json() for name, i in interps.items()},
        "iteration": iteration, "seed": seed, "found_after_seconds": found_after,
    }


def outcome(f, c):
    """What a replay of finding f shows, c being its classification now (or None)."""
    return "reproduced" if c and c[0] == f["class"] else f"not reproduced (now: {c[0] if c else 'they agree'})"


def pieces_of(f):
    return split_pieces(base64.b64decode(f["bytes_b64"]), f["pieces"])


def file_name(f):
    digest = hashlib.sha1(base64.b64decode(f["bytes_b64"]) + "/".join(f["pair"]).encode()).hexdigest()[:10]
    view = f"proxy-{f['view']}-" if f.get("mode") == "proxy" else ""   # a proxy-mode finding (proxy.py)
    return f"{view}{f['class'].replace('/', '-')}-{'-'.join(f['pair'])}-{digest}.json"


def save(directory, f):
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, file_name(f))
    with open(path, "w") as out:
        json.dump(f, out, indent=1)
        out.write("\n")
    return path


def load_dir(directory):
    """Every finding file in directory (a malformed one is reported, not fatal)."""
    found, bad = [], []
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".json"):
            continue
        path = os.path.join(directory, name)
        try:
            with open(path) as f:
                d = json.load(f)
            if d.get("format") != FORMAT:
                raise ValueError(f"not a finding (format {d.get('format')!r})")
            pieces_of(d)
            found.append((path, d))
        except (OSError, ValueError, KeyError) as e:
            bad.append((path, str(e)))
    return found, bad
