"""Differential fuzzing over the wire (squall-wire, run.py): any described HTTP/1.1 server's
parser against the reference's, directly or behind proxy fronts. In a clone this folder is
the package squall_wire through the link of that name in the clone's root. See README.md."""
