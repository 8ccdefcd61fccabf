"""Squall's conformance suite for the HTTP server layer (contract §1)."""
