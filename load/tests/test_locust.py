"""Tests of the Locust engine (load/engines/locust.py): the locustfile is generated from the
one scenario definition; load/run.py --engine locust starts a Locust master and two
workers on 127.0.0.1 for a few seconds against the reference, and Locust's statistics
land in the same JSON and Markdown as the other engines, named as Locust's; pipelining,
which Locust cannot do, is n/a with the reason; no Locust process outlives the run (every
one is stopped by PID).

Needs Debian's python3-locust (ci/setup.sh) and the reference's contract app
($SQUALL_BIN, default build/release/reference). About 15 s. Run:
    /usr/bin/python3 -m unittest discover -s load/tests -p 'test_locust.py'
"""
import ast
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

LOAD = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(LOAD)

from squall_load.engines import locust
from squall_load.scenarios import BY_NAME, ECHO_BODY  # noqa: E402

PY = "/usr/bin/python3"
SQUALL_BIN = os.path.abspath(os.environ.get("SQUALL_BIN") or os.path.join(REPO, "build", "release", "reference"))
NAN = re.compile(r"\bnan\b", re.IGNORECASE)

can_run = (locust.available() is None and os.access(os.path.join(SQUALL_BIN, "squall-contract-app"), os.X_OK)
           and os.access("/usr/bin/wrk", os.X_OK) and len(os.sched_getaffinity(0)) >= 2)
WHY_NOT = "needs python3-locust, $SQUALL_BIN/squall-contract-app, wrk (warm-up) and two CPUs"


def locust_processes() -> list[int]:
    """PIDs of processes running a locustfile this engine generated."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if b"squall-locust-" in cmd and b"locust" in cmd:
            pids.append(int(pid))
    return pids


class Locustfile(unittest.TestCase):
    def test_generated_from_the_scenario(self):
        tree = ast.parse(locust.locustfile(BY_NAME["post_echo"]))
        consts = {t.id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                  for t in node.targets if isinstance(t, ast.Name)}
        self.assertEqual((consts["METHOD"], consts["PATH"], consts["BODY"]), ("POST", "/", ECHO_BODY))
        self.assertEqual(consts["HEADERS"], {"Content-Type": "application/octet-stream"})
        close = locust.locustfile(BY_NAME["connection_close"])
        self.assertIn("HEADERS = {'Connection': 'close'}", close)
        self.assertIn("load scenario 'connection_close'", close)

    def test_pipelining_is_not_locusts(self):
        self.assertIn("no pipelining", locust.unsupported(BY_NAME["pipeline"]))
        self.assertIsNone(locust.unsupported(BY_NAME["plaintext"]))

    def test_failures_are_sorted_by_kind(self):
        self.assertEqual(locust.classify("HTTPError('404 Client Error: Not Found for url: /x')"), "status")
        self.assertEqual(locust.classify("ConnectionRefusedError(111, 'Connection refused')"), "connect")
        self.assertEqual(locust.classify("timeout('timed out')"), "timeout")
        self.assertEqual(locust.classify("RemoteDisconnected('closed')"), "read")


@unittest.skipUnless(can_run, WHY_NOT)
class MasterAndTwoWorkers(unittest.TestCase):
    def test_numbers_land_in_the_report(self):
        out = tempfile.mkdtemp(prefix="squall-locust-test-")
        self.addCleanup(shutil.rmtree, out, True)
        before = set(locust_processes())
        p = subprocess.run([PY, "-m", "squall_load", "--impl", "reference", "--engine", "locust",
                            "--locust-workers", "2", "--scenario", "plaintext,pipeline", "--duration", "3",
                            "--warmup", "0", "--squall-bin", SQUALL_BIN, "--out", out],
                           capture_output=True, text=True, timeout=150, cwd=REPO)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        self.assertEqual(set(locust_processes()) - before, set(), "a Locust process outlived the run")
        self.assertRegex(p.stderr, r"locust master pid \d+ on 127\.0\.0\.1:\d+, local workers pids \d+, \d+")
        with open(os.path.join(out, "results.json")) as f:
            text = f.read()
        self.assertFalse(NAN.search(text))
        data = json.loads(text)
        self.assertEqual(data["meta"]["engine"], "locust")
        self.assertIn("Locust 2.12", data["meta"]["engines"]["locust"])
        self.assertEqual(data["meta"]["locust"]["workers"], 2)
        rows = {r["scenario"]: r for r in data["results"]}
        r = rows["plaintext"]
        self.assertEqual((r["engine"], r["status"]), ("locust", "ok"), r)
        self.assertGreater(r["requests"], 100)
        self.assertGreater(r["rps"], 0)
        self.assertEqual(r["locust_workers"], 2)
        self.assertEqual(sum(r["errors"].values()), 0)
        for k in ("p50", "p90", "p99", "max"):
            self.assertIsNotNone(r["latency_us"][k])
        self.assertGreater(r["latency_us"]["max"], 0)
        self.assertGreater(r["server_cpu_s"], 0)
        self.assertEqual(rows["pipeline"]["status"], "n/a")
        self.assertIn("no pipelining", rows["pipeline"]["reason"])
        with open(os.path.join(out, "results.md")) as f:
            md = f.read()
        self.assertIn("engine Locust, 2 local worker(s)", md)
        self.assertRegex(md, r"\| plaintext \| reference \| locust \| ok \| 64 \| [\d,]+ \|")
        self.assertIn("reference / pipeline: locust: Locust sends one request per round trip", md)
        for png in ("throughput.png", "latency.png"):
            with open(os.path.join(out, png), "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


if __name__ == "__main__":
    unittest.main()
