"""python3 -m squall_conformance: the conformance driver (cli.py), as squall-conformance."""
import sys

from .cli import main

sys.exit(main())
