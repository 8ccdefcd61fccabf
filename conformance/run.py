#!/usr/bin/python3
"""The conformance driver from a clone: `python3 conformance/run.py ARGS` is
`squall-conformance ARGS` (squall_conformance/cli.py; see conformance/README.md).
Python puts this folder first on sys.path, and squall_conformance is in it."""
import sys

from squall_conformance.cli import main

if __name__ == "__main__":
    sys.exit(main())
