"""Squall's conformance suite: the server, loop, stream and client layers (contracts §1-§4)."""

# The harness's version, the one every tool's --version prints and pyproject.toml reads:
# the project's, as CMakeLists.txt's project(squall VERSION ...) says (a test checks it).
__version__ = "0.1.0"
