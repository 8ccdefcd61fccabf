"""What a server understood of a request stream, and how two understandings disagree.

The differential wire fuzzer (fuzz/wire) and the cases promoted from its findings
(cases/promoted.py) send a stream of requests on one connection, each to an endpoint that
shows what the server understood (`POST /` echoes the body: where the message ended;
`/echo` lists the header fields as delivered), and read every response. An Interpretation
is that: the final responses in order and how the connection ended.

classify() compares two interpretations of the same bytes, in order of severity:
  boundary       the servers split the bytes into different messages: another number of
                 messages, or another body length (request smuggling, desynchronisation)
  content        the same messages, read differently (other fields, values or target)
  accept/reject  one serves what the other refuses
  liveness       one hangs, dies or stops answering where the other answers
A server whose endpoints cannot show what it understood (a static server: every answer is
"OK") is compared on the number and kind of its answers only.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import core

BOUNDARY, CONTENT, ACCEPT_REJECT, LIVENESS = "boundary", "content", "accept/reject", "liveness"
CLASSES = (BOUNDARY, CONTENT, ACCEPT_REJECT, LIVENESS)


@dataclass
class Interpretation:
    responses: list = field(default_factory=list)   # [(status, body)] of the final responses
    end: str = "closed"      # closed | reset | open | hang | dead | error
    error: str = ""

    def to_json(self):
        return {"responses": [[s, b.decode("latin-1")] for s, b in self.responses], "end": self.end,
                "error": self.error}

    @classmethod
    def from_json(cls, d):
        return cls([(s, b.encode("latin-1")) for s, b in d["responses"]], d["end"], d.get("error", ""))

    def summary(self, limit=40):
        parts = [f"{s} {b[:limit]!r}" for s, b in self.responses]
        return "; ".join(parts + [self.end]) if parts else self.end


def observe(server, pieces, methods, timeout=2.0, pause=0.002) -> Interpretation:
    """Send `pieces` (one write each) to a running server and read what comes back."""
    ex = core.exchange(server, list(pieces), methods=tuple(methods), expect=len(methods), timeout=timeout,
                       linger=0.05, pause=pause if len(pieces) > 1 else 0.0)
    if ex.error:
        return Interpretation([], "error", ex.error)
    finals = [(r.status, r.body) for r in ex.finals]
    if ex.reset:
        end = "reset"
    elif ex.closed:
        end = "closed"
    elif ex.timed_out and len(finals) < len(methods):
        end = "hang"
    else:
        end = "open"
    if not server.alive():
        end = "dead"
    return Interpretation(finals, end)


def split_pieces(data: bytes, lengths) -> list[bytes]:
    """data cut into consecutive pieces of the given lengths (the writes of a finding)."""
    out, off = [], 0
    for n in lengths:
        out.append(data[off:off + n])
        off += n
    return out


def _echo_fields(body: bytes):
    """An /echo body as the fields it lists: names lower-cased, values as shown."""
    out = []
    for line in body.split(b"\n"):
        if line.strip():
            name, _, value = line.partition(b":")
            out.append((name.strip().lower(), value.strip()))
    return out


def _ok(status):
    return 200 <= status < 400


def classify(ref: Interpretation, other: Interpretation, requests, opaque=False):
    """How `other` disagrees with `ref` on the same bytes, as (class, detail), or None.
    `requests` are (method, target) of the messages sent; `opaque`: either server cannot
    show what it understood (compare counts and kinds of answers only)."""
    for who, x in (("the first", ref), ("the second", other)):
        if x.end == "dead":
            return LIVENESS, f"{who} server died"
    a, b = ref.responses, other.responses
    n = len(requests)
    # Reading more messages than were sent is a boundary disagreement only if the other
    # side did not read the same ones: both may split a malformed stream alike.
    extra_a, extra_b = (len([1 for s, _ in x if _ok(s)]) > n for x in (a, b))
    if extra_a != extra_b or (extra_a and len(a) != len(b)):
        return BOUNDARY, f"more answers than the {n} requests sent ({len(a)} vs {len(b)})"
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        if x is not None and y is not None:
            if not _ok(x[0]) or not _ok(y[0]):
                if _ok(x[0]) != _ok(y[0]):
                    return ACCEPT_REJECT, f"message {i + 1}: {x[0]} vs {y[0]}"
                return None            # both refused: they agree on what matters
            if opaque or x[1] == y[1]:
                continue
            method, target = requests[i] if i < n else ("?", "?")
            if target == "/echo" and method != "POST":
                if _echo_fields(x[1]) != _echo_fields(y[1]):
                    return CONTENT, f"message {i + 1}: /echo shows other fields"
                continue
            if len(x[1]) != len(y[1]) and target == "/" and method in ("POST", "PUT", "PATCH"):
                return BOUNDARY, f"message {i + 1}: body of {len(x[1])} vs {len(y[1])} bytes"
            return CONTENT, f"message {i + 1}: other answer bodies"
        # One side has a response here and the other has none.
        present, silent = (x, other) if x is not None else (y, ref)
        if not _ok(present[0]):
            return None                # a refusal against a close: both refused
        if silent.end in ("hang", "open") and opaque:
            return None                # a static answer needs no body: nothing to compare
        if silent.end in ("hang", "open"):
            return BOUNDARY, (f"message {i + 1}: one answered, the other still waits for the end of a message "
                              f"({len(a)} vs {len(b)} answers)")
        if silent.end == "error":
            return LIVENESS, f"message {i + 1}: {silent.error}"
        return ACCEPT_REJECT, f"message {i + 1}: one answered, the other closed the connection"
    if (ref.end == "hang") != (other.end == "hang") and len(a) == len(b) < n:
        return LIVENESS, f"after {len(a)} answers one hangs, the other {'closed' if ref.end != 'hang' else other.end}"
    return None
