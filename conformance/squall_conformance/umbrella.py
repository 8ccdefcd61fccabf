"""squall: the harness's tools behind one command, a thin dispatcher.

    squall conformance ARGS    is  squall-conformance ARGS   (the conformance suite)
    squall mutants ARGS        is  squall-mutants ARGS       (the suite's mutation harness)
    squall loadrun ARGS        is  squall-loadrun ARGS       (the load runner)
    squall reliability ARGS    is  squall-reliability ARGS   (servers under abuse)
    squall wire ARGS           is  squall-wire ARGS          (differential fuzzing over the wire)

Each tool keeps its own options and --help; this only picks the tool.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from . import helpformat

# subcommand -> the module whose main(argv) it runs (pyproject.toml names the same ones)
TOOLS = {
    "conformance": "squall_conformance.cli",
    "mutants": "squall_conformance.mutants",
    "loadrun": "squall_load.run",
    "reliability": "squall_load.reliability.run",
    "wire": "squall_wire.run",
}


def parser() -> argparse.ArgumentParser:
    p = helpformat.parser("squall", "Squall's harness: one command for its tools (`squall TOOL --help` for a "
                          "tool's options).")
    p.add_argument("tool", choices=sorted(TOOLS), help="the tool to run")
    p.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    return p


def main(argv=None) -> int:
    a = parser().parse_args(argv)
    return importlib.import_module(TOOLS[a.tool]).main(a.args)


if __name__ == "__main__":
    sys.exit(main())
