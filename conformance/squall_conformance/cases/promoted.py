"""Cases promoted from wire-fuzzing findings (fuzz/wire/promote.py), one JSON file each in
cases/promoted/: the exact bytes and writes of the finding, and the reference's
interpretation of them, which the RFC section named in the file supports.

A server passes when it reads the bytes as the reference does (oracle.classify finds no
disagreement); it fails when it splits them into other messages (boundary: a consequence,
at any level) and warns for a content or accept/reject difference.
"""
import base64
import json
import os

from .. import oracle
from ._helpers import case, consequence, ok, warn

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "promoted")


def promoted_case(d):
    requests = [tuple(r) for r in d["requests"]]
    expected = oracle.Interpretation.from_json(d["expected"])

    @case(d["id"], d.get("area", "smuggling"), d["title"], d["source"], d["level"], needs=("echo", "echo-headers"))
    def run(ctx):
        pieces = oracle.split_pieces(base64.b64decode(d["bytes_b64"]), d["pieces"])
        got = oracle.observe(ctx.server, pieces, [m for m, _ in requests], timeout=2.0)
        ctx.log(f"expected: {expected.summary()}\ngot: {got.summary()}")
        c = oracle.classify(expected, got, requests)
        if c is None:
            return ok(f"read as the reference reads it: {got.summary(20)}")
        cls, detail = c
        if cls == oracle.LIVENESS and got.end in ("closed", "reset") and expected.end == "hang":
            return ok(f"closed where the reference waits for more: {got.summary(20)}")
        if cls == oracle.BOUNDARY:
            return consequence(f"other message boundaries than the reference: {detail}")
        return warn(f"{cls}: {detail}")
    return run


for name in sorted(os.listdir(HERE)) if os.path.isdir(HERE) else []:
    if name.endswith(".json"):
        with open(os.path.join(HERE, name)) as f:
            promoted_case(json.load(f))
