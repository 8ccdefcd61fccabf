"""Squall's load runner (squall-loadrun, run.py): implementations under load, scenario by
scenario, with wrk, squall-load or Locust; the reliability suite (reliability/); the
engines (engines/). In a clone this folder is the package squall_load through the link
of that name in the clone's root. See README.md."""
