"""Load engines: the programs that put load on a server and what each measures.

    wrk.py          wrk 4.1 (Debian's), closed loop, the Lua scenarios in load/scenarios/
    squall_load.py  squall-load (reference/apps/squall_load.cc): open loop at a rate, or
                    closed loop, a latency per response, HDR histogram
    locust.py       Locust 2.12 (Debian's python3-locust): a master and N workers, scale-out
    request.py      a scenario of load/scenarios.py as one HTTP request (method, path,
                    headers, body, pipelining, connection per request): what squall-load
                    and Locust send, derived from the one scenario definition
    hdr.py          reads squall-load's serialised histograms (percentiles, merges)
    common.py       running a client pinned and bounded, the result shape below
    compare.py      squall-load against wrk, closed loop, same server and core (is it the bottleneck?)

Each engine module has run(...) returning the same result dict (requests, duration_us,
bytes, errors, latency_us, client CPU) so that load/run.py and load/report.py treat
every figure alike and name the engine that produced it.
"""
