"""python3 -m squall_load: the load runner (run.py), as squall-loadrun."""
import sys

from .run import main

sys.exit(main())
