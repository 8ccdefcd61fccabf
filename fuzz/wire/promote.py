#!/usr/bin/python3
"""Promote a wire-fuzzing finding to a conformance case, in one command.

    /usr/bin/python3 -m squall_wire.promote build/wire-findings/boundary-reference-tornado-....json \\
        --id WIRE-001 --title "Transfer-Encoding with an empty list element first" [--source "RFC 9110 §5.6.1"]

Writes conformance/squall_conformance/cases/promoted/<ID>.json: the finding's bytes and
writes, and the reference's interpretation as the expected one. The case then runs in
every conformance run (cases/promoted.py). Only a finding involving the reference can be
promoted: the reference's reading is the expectation.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys

from squall_conformance import core, paths
from squall_conformance import cases  # noqa: F401  (registers the cases: ids must be new)

from . import findings

OUT = os.path.join(paths.PACKAGE, "cases", "promoted")   # conformance's promoted cases


def main(argv=None):
    p = argparse.ArgumentParser(description="promote a wire-fuzzing finding to a conformance case")
    p.add_argument("finding", help="a finding file written by squall-wire")
    p.add_argument("--id", required=True, help="the new case id, e.g. WIRE-001")
    p.add_argument("--title", required=True, help="what the case checks, one line")
    p.add_argument("--source", help="the rule (default: the first RFC section of the finding's mutations)")
    p.add_argument("--level", default="MUST", choices=core.LEVELS)
    p.add_argument("--area", default="smuggling", choices=core.SERVER_AREAS)
    p.add_argument("--oracle", default="reference", help="whose reading is expected (default reference)")
    p.add_argument("--out", default=OUT, help="where the case file goes (default: conformance's cases/promoted)")
    a = p.parse_args(argv)
    if not re.fullmatch(r"[A-Z]+-[0-9]{3}", a.id):
        p.error(f"--id {a.id}: give LETTERS-NNN, e.g. WIRE-001")
    if any(c.id == a.id for c in core.REGISTRY):
        p.error(f"--id {a.id}: a case with that id exists")
    try:
        with open(a.finding) as f:
            d = json.load(f)
        findings.pieces_of(d)
    except (OSError, ValueError, KeyError) as e:
        p.error(f"{a.finding}: not a readable finding ({e})")
    if a.oracle not in d["interpretations"]:
        p.error(f"{a.finding}: {a.oracle} is not in this finding (pair: {' vs '.join(d['pair'])})")
    case = {"id": a.id, "title": a.title, "source": a.source or (d["rules"][0].split(";")[0] if d["rules"] else
                                                                  "RFC 9112"),
            "level": a.level, "area": a.area, "bytes_b64": d["bytes_b64"], "bytes": d["bytes"],
            "pieces": d["pieces"], "requests": d["requests"], "expected": d["interpretations"][a.oracle],
            "from": {"class": d["class"], "pair": d["pair"], "detail": d["detail"], "ops": d["ops"]}}
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, f"{a.id}.json")
    with open(path, "w") as f:
        json.dump(case, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.relpath(path)}: run it with conformance/run.py --case {a.id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
