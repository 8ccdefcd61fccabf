"""Shared building blocks for the case modules."""
from ..core import (ERROR, FAIL, NA, PASS, TORNADO, WARN, case, chunked, codes, error, exchange,  # noqa: F401
                    consequence, fail, judge_reject, judge_status, na, ok, req, warn)

CLOSE = "Connection: close"


def echo_lines(r):
    """The /echo body as [(name, value)] (names lower-cased)."""
    out = []
    for line in r.body.decode("latin-1").split("\n"):
        if line:
            k, _, v = line.partition(":")
            out.append((k.strip().lower(), v.strip()))
    return out


def reject_case(id, area, title, source, level, raw, ok_codes=(400,), weak=(), close_only=WARN,
                must_close=False, needs=("root-get",), catch_all=False, accept=None):
    """A request that must be refused. `accept(ex)` may return a verdict for a 2xx answer
    that is allowed (e.g. a MAY-lenient parse) instead of failing it."""
    method = raw.split(b" ", 1)[0].decode("latin-1") if b" " in raw[:20] else "GET"

    @case(id, area, title, source, level, needs=needs, catch_all=catch_all)
    def run(ctx):
        ex = ctx.send(raw, methods=(method, "GET"), expect=1, timeout=3.0, linger=0.3)
        r = ex.first
        if accept is not None and r is not None and r.status < 400:
            return accept(ex)
        return judge_reject(ex, ok_codes, weak, close_only, must_close)
    return run


def lenient_ok(reason):
    """For `accept=`: a 2xx answer is allowed but the stricter answer is a rejection."""
    def judge(ex):
        return warn(f"{ex.first.summary()}: {reason}")
    return judge


def accepted_ok(reason):
    def judge(ex):
        return ok(f"{ex.first.summary()}: {reason}")
    return judge
