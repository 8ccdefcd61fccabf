"""Expectations: a CI gate on regressions, not on known failures.

`run.py --write-expect FILE` records every verdict of the run; `run.py --expect FILE` then
fails only for a case that got worse than recorded, or that vanished from the suite, and
reports what improved. The file is JSON, meant to be committed and edited by hand:

    {"format": "squall-expect/1",
     "implementations": {"mine": {"SYN-001": "pass", "FRM-052": "fail", ...}}}

Worse means: pass -> warn, fail or error; warn -> fail or error; fail -> error; and pass or
warn -> n/a (the case no longer checks anything); n/a -> fail or error (newly checked and
failing). Implementations absent from the file are judged by their required cases as usual.
"""
from __future__ import annotations

import json

from .core import ERROR, FAIL, NA, PASS, VERDICTS, WARN

FORMAT = "squall-expect/1"
RANK = {PASS: 0, NA: 0, WARN: 1, FAIL: 2, ERROR: 3}


class ExpectError(ValueError):
    pass


def write(path, cases, names, results):
    data = {"format": FORMAT, "implementations": {
        i: {c.id: results[(c.id, i)]["verdict"] for c in cases} for i in names}}
    with open(path, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")


def read(path) -> dict:
    """{implementation: {case id: verdict}}; a malformed file is an ExpectError."""
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as e:
        raise ExpectError(f"{path}: {e.strerror}") from None
    except ValueError as e:
        raise ExpectError(f"{path}: not JSON: {e}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ExpectError(f"{path}: not an expectations file (\"format\" must be \"{FORMAT}\")")
    impls = data.get("implementations")
    if not isinstance(impls, dict):
        raise ExpectError(f"{path}: \"implementations\" must be an object")
    for name, verdicts in impls.items():
        if not isinstance(verdicts, dict):
            raise ExpectError(f"{path}: implementations.{name} must be an object of case id -> verdict")
        for cid, v in verdicts.items():
            if v not in VERDICTS:
                raise ExpectError(f"{path}: implementations.{name}.{cid}: {v!r} is not a verdict "
                                  f"(one of {', '.join(VERDICTS)})")
    return impls


def worse(old: str, new: str) -> bool:
    if old == NA:
        return new in (FAIL, ERROR)
    if new == NA:
        return old in (PASS, WARN)
    return RANK[new] > RANK[old]


def compare(expected: dict, cases, names, results, known_ids):
    """(regressions, improvements, vanished): lists of (impl, case id, old, new); vanished
    are recorded cases the suite no longer has (None as new)."""
    regressions, improvements, vanished = [], [], []
    selected = {c.id for c in cases}
    for impl, verdicts in expected.items():
        if impl not in names:
            continue
        for cid, old in verdicts.items():
            if cid not in known_ids:
                vanished.append((impl, cid, old, None))
            elif cid in selected:
                new = results[(cid, impl)]["verdict"]
                if worse(old, new):
                    regressions.append((impl, cid, old, new))
                elif RANK[new] < RANK[old] or (old == NA and new != NA and not worse(old, new)):
                    improvements.append((impl, cid, old, new))
    return regressions, improvements, vanished
