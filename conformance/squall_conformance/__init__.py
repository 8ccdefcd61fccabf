"""Squall's conformance suite: the server, loop, stream and client layers (contracts §1-§4)."""
