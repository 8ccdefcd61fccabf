"""Conformance cases for the loop (contracts.md §3) and stream (§2) layers.

Each case is a `Case`: id, area ("loop" or "stream"), title, source ("Tornado semantics" or a
contract section), level (MUST/SHOULD/MAY) and `fn(target) -> (verdict, reason, transcript)`,
where `target` is a started implementation (`runner.Target`). Verdict names are those of
conformance/squall_conformance/core.py: pass, warn, fail, n/a, error.

Run: /usr/bin/python3 -m conformance.layers --impl reference,tornado [--area loop|stream]
"""
from dataclasses import dataclass, field

PASS, WARN, FAIL, NA, ERROR = "pass", "warn", "fail", "n/a", "error"
VERDICTS = (PASS, WARN, FAIL, NA, ERROR)
LEVELS = ("MUST", "SHOULD", "MAY")
TORNADO = "Tornado semantics"
REQUIRED_IMPLS = ("reference", "tornado")


@dataclass
class Case:
    id: str
    area: str
    title: str
    source: str
    level: str
    fn: object
    note: str = ""          # why the level is below MUST, or what differs between peers
    slow: bool = False

    def required_for(self, impl):
        """A MUST case is required of the reference and of Tornado (the yardstick)."""
        return self.level == "MUST" and impl in REQUIRED_IMPLS

    @property
    def tornado(self):
        return self.source == TORNADO


def mismatch(level):
    """The verdict for an implementation that does not produce the expected outcome."""
    return FAIL if level == "MUST" else WARN
