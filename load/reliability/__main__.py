"""python3 -m squall_load.reliability: the reliability suite (run.py), as squall-reliability."""
import sys

from .run import main

sys.exit(main())
