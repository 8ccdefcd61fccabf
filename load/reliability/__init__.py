"""The reliability suite (squall-reliability, run.py): servers under abuse, bounds checked. See README.md."""
