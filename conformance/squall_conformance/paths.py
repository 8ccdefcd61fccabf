"""Where the harness finds what it runs: one place for a clone and for an installed package.

In a clone the suite's files lie beside this package, in conformance/ (implementations/,
peers/, probes/, adapters/, mutants/, outside/, expectations/), the test certificates'
script in reference/tests/tls/, and Squall's programs in build/release/reference/.
Installed (pyproject.toml), the same files are inside the package, in suite/ (and
suite/tls/make_certs.sh), and Squall's programs are on PATH: `cmake --install` puts
squall-contract-app and the others in PREFIX/bin.
"""
from __future__ import annotations

import os
import shutil

# realpath: from the clone's root the package may be reached through the squall_conformance
# link, and the suite's files are found from where the package really is.
PACKAGE = os.path.dirname(os.path.realpath(__file__))
_INSTALLED_SUITE = os.path.join(PACKAGE, "suite")
INSTALLED = os.path.isdir(_INSTALLED_SUITE)
SUITE = _INSTALLED_SUITE if INSTALLED else os.path.dirname(PACKAGE)
# The clone's root (None when installed): {repo} in descriptions, build/ and reference/.
REPO = None if INSTALLED else os.path.dirname(SUITE)
MAKE_CERTS = (os.path.join(SUITE, "tls", "make_certs.sh") if INSTALLED
              else os.path.join(REPO, "reference", "tests", "tls", "make_certs.sh"))
# The folder a Python program of the suite (a peer) imports squall_conformance from: the
# one this process imported it from, whatever the program's own folder is.
IMPORT_ROOT = os.path.dirname(PACKAGE)
# A program every build of Squall's contract programs has: how they are found on PATH.
MARKER_PROGRAM = "squall-contract-app"


def suite(*parts: str) -> str:
    """A file or folder of the suite: suite("implementations", "reference.toml")."""
    return os.path.join(SUITE, *parts)


def default_squall_bin() -> str:
    """Where Squall's programs are when no --squall-bin is given: $SQUALL_BIN, else the
    clone's release build when it has one, else the folder on PATH holding
    squall-contract-app, else (so that the error names a place) the clone's release build
    or the current folder."""
    if os.environ.get("SQUALL_BIN"):
        return os.path.abspath(os.environ["SQUALL_BIN"])
    build = os.path.join(REPO, "build", "release", "reference") if REPO else None
    if build and os.path.isfile(os.path.join(build, MARKER_PROGRAM)):
        return build
    found = shutil.which(MARKER_PROGRAM)
    if found:
        return os.path.dirname(os.path.abspath(found))
    return build or os.getcwd()


def child_env(extra: dict | None = None) -> dict:
    """The environment of a program the suite starts: this one, plus `extra`, plus
    squall_conformance importable for the suite's own Python programs."""
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (IMPORT_ROOT, env.get("PYTHONPATH")) if p)
    return env
