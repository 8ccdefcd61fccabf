"""python3 -m squall_wire: the wire fuzzer (run.py), as squall-wire."""
import sys

from .run import main

sys.exit(main())
