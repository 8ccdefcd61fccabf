"""Tests of squall-load (reference/apps/squall_load.cc) and its engine in the runner: the
request it sends comes from the one scenario definition; its histogram reads back in
Python with the same percentiles; open loop measures a known stall as the arithmetic says
(and closed loop, for contrast, does not); every framing the scenarios use (pipelined,
chunked, a body, a connection per request, TLS) is timed per response without errors;
a refused port is a connect error, not a hang; load/run.py --engine squall-load --curve
writes the curve table and plot.

Programs run on 127.0.0.1 for a second or two each (about 30 s in all), every one stopped
by PID. squall-load comes from $SQUALL_BIN (default build/release/reference); the tests
that need it are skipped when it is not built. Run:
    /usr/bin/python3 -m unittest discover -s load/tests -p 'test_squall_load.py'
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

LOAD = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(LOAD)

from squall_load import stall_check
from squall_load.engines import hdr, request  # noqa: E402
from squall_load.scenarios import BY_NAME, ECHO_BODY  # noqa: E402

PY = "/usr/bin/python3"
SQUALL_BIN = os.path.abspath(os.environ.get("SQUALL_BIN") or os.path.join(REPO, "build", "release", "reference"))
BINARY = os.path.join(SQUALL_BIN, "squall-load")
CONTRACT_APP = os.path.join(SQUALL_BIN, "squall-contract-app")
MAKE_CERTS = os.path.join(REPO, "reference", "tests", "tls", "make_certs.sh")
LIMIT = 60   # seconds: a squall-load that hangs fails the test instead of blocking CI
NAN = re.compile(r"\bnan\b", re.IGNORECASE)

built = os.access(BINARY, os.X_OK) and os.access(CONTRACT_APP, os.X_OK)
WHY_NOT = f"needs {BINARY} and {CONTRACT_APP} (ninja squall-load squall-contract-app)"


def squall_load(*argv):
    """squall-load's JSON (it must exit 0 and print exactly one JSON object)."""
    p = subprocess.run([BINARY, *argv], capture_output=True, text=True, timeout=LIMIT)
    if p.returncode != 0:
        raise AssertionError(f"squall-load {argv} exited {p.returncode}: {p.stderr[-500:]}")
    assert not NAN.search(p.stdout), p.stdout
    return json.loads(p.stdout)


class Server:
    """A program printing port=N once listening; stopped by PID."""

    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                     start_new_session=True)
        line = self.proc.stdout.readline()
        if not line.startswith("port="):
            self.stop()
            raise AssertionError(f"{argv[0]} printed {line!r}")
        self.port = int(line[5:])

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc.stdout.close()


class OneDefinition(unittest.TestCase):
    """What squall-load and Locust send is derived from load/scenarios.py and the wrk scripts."""

    def test_requests_follow_the_scenarios(self):
        self.assertEqual(request.of(BY_NAME["plaintext"]).path, "/plaintext")
        self.assertEqual(request.of(BY_NAME["pipeline"]).pipeline, 16)           # SQUALL_PIPELINE
        close = request.of(BY_NAME["connection_close"])
        self.assertTrue(close.close)                                            # its script's header
        self.assertIn(("Connection", "close"), close.headers)
        echo = request.of(BY_NAME["post_echo"])
        self.assertEqual((echo.method, echo.path, echo.body), ("POST", "/", ECHO_BODY))
        self.assertIn(("Content-Type", "application/octet-stream"), echo.headers)
        self.assertEqual(request.of(BY_NAME["many_connections"]).connections, 1000)
        self.assertEqual(request.of(BY_NAME["stream"]).path, "/stream/10")

    def test_the_cli_squall_load_reads(self):
        p = subprocess.run([PY, os.path.join(LOAD, "engines", "request.py"), "post_echo"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[:3], ["method POST", "path /", "header Content-Type: application/octet-stream"])
        self.assertIn(f"body-hex {ECHO_BODY.hex()}", lines)
        bad = subprocess.run([PY, os.path.join(LOAD, "engines", "request.py"), "memory"], capture_output=True,
                             text=True, timeout=30)
        self.assertEqual(bad.returncode, 2)


class HistogramInPython(unittest.TestCase):
    """engines/hdr.py reads the C++ serialisation (the literal of hdr_histogram_test.cc)."""

    def test_known_encoding(self):
        h = hdr.Histogram.parse("squall-hdr-1 1 3600000000000 3 1 3 7 19 AQIBBA==")
        self.assertEqual((h.total, h.min, h.max, h.sum), (3, 1, 3, 7.0))
        self.assertEqual(h.counts[1], 1)
        self.assertEqual(h.counts[3], 2)
        self.assertEqual(h.value_at_percentile(50), 3)
        self.assertEqual(h.value_at_percentile(0), 1)

    def test_same_percentiles_as_the_cpp_tests(self):
        h = hdr.Histogram()
        for v in range(1, 100001):
            h.record(v)
        self.assertEqual([h.value_at_percentile(p) for p in (50, 90, 99, 99.9, 99.99)],
                         [50015, 90047, 99007, 99903, 100000])
        a, b = hdr.Histogram(), hdr.Histogram()
        for v in range(1, 100001):
            (a if v <= 50000 else b).record(v)
        self.assertEqual(a.merged(b).counts, h.counts)

    def test_malformed(self):
        for text in ("", "squall-hdr-2 1 3600000000000 3 1 3 7 19 AQIBBA==", "squall-hdr-1 1 3600000000000 3 1 3 7 19 gA=="):
            with self.assertRaises(ValueError):
                hdr.Histogram.parse(text)


@unittest.skipUnless(built, WHY_NOT)
class AgainstAStall(unittest.TestCase):
    """stall_server.py stops for 0.5 s, 1 s into a 3 s run: at 400 req/s open loop the
    tail is S - (1 - q) D (p99 = 470 ms, p99.9 = 497 ms, max = 500 ms); closed loop sees it
    only in its max."""

    def run_against_stall(self, rate):
        proc, port = stall_check.start_server(1.0, 0.5, ",".join(map(str, sorted(os.sched_getaffinity(0)))))
        try:
            return squall_load("--rate", str(rate), "-c", "16", "-d", "3", f"http://127.0.0.1:{port}/plaintext")
        finally:
            stall_check.stop(proc)

    def test_open_loop_measures_the_stall(self):
        r = self.run_against_stall(400)
        self.assertEqual(r["mode"], "open-loop")
        self.assertEqual(r["errors_total"], 0, r["first_errors"])
        self.assertEqual(r["requests"], 1200)
        lat = r["latency_us"]
        for name, expect in (("p99", 470_000), ("p99.9", 497_000), ("max", 500_000)):
            self.assertAlmostEqual(lat[name], expect, delta=60_000, msg=f"{name}: {lat}")
        self.assertLess(lat["p50"], 50_000)
        # The histogram reads back with the same figures.
        h = hdr.Histogram.parse(r["histogram"])
        self.assertEqual(h.total, r["requests"])
        for name in ("p50", "p99", "p99.9", "max"):
            self.assertAlmostEqual(h.percentiles_us()[name], lat[name], places=2)
        self.assertAlmostEqual(h.count_above(250_000_000), 100, delta=25)   # R x S / 2

    def test_closed_loop_hides_it_but_in_the_max(self):
        r = self.run_against_stall(0)
        self.assertEqual(r["mode"], "closed-loop")
        self.assertEqual(r["errors_total"], 0, r["first_errors"])
        self.assertGreater(r["latency_us"]["max"], 400_000)
        self.assertLess(r["latency_us"]["p99"], 100_000)
        self.assertLessEqual(hdr.Histogram.parse(r["histogram"]).count_above(250_000_000), 16)   # in flight


@unittest.skipUnless(built, WHY_NOT)
class AgainstTheReference(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server([CONTRACT_APP, "--port", "0", "--log-level", "warning"])
        cls.url = f"http://127.0.0.1:{cls.server.port}"

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def check(self, r):
        self.assertEqual(r["errors_total"], 0, r["first_errors"])
        self.assertGreater(r["requests"], 0)
        self.assertEqual(r["statuses"], {"200": r["requests"]})
        self.assertEqual(hdr.Histogram.parse(r["histogram"]).total, r["requests"])
        for k in ("p50", "p90", "p99", "p99.9", "p99.99", "max"):
            self.assertGreater(r["latency_us"][k], 0)

    def test_every_framing_of_the_scenarios_by_name(self):
        for name, expect in (("pipeline", {"pipeline": 16}), ("stream", {}), ("post_echo", {}),
                             ("connection_close", {"close": True})):
            with self.subTest(name):
                r = squall_load("--scenario", name, "-c", "8", "-d", "1", "--load-dir", LOAD, self.url)
                self.check(r)
                for k, v in expect.items():
                    self.assertEqual(r[k], v)
                if name == "connection_close":
                    self.assertGreaterEqual(r["connections_opened"], r["requests"])
                    self.assertEqual(r["latency_from"], "connect start (the request's connection)")

    def test_open_loop_keeps_the_rate(self):
        r = squall_load("--rate", "500", "-c", "8", "-d", "2", "--warmup", "0.5", self.url + "/plaintext")
        self.check(r)
        self.assertEqual(r["requests"], 1000)
        self.assertAlmostEqual(r["achieved_rate"], 500, delta=25)
        self.assertEqual(r["send_lag_us"]["count"], 1000)

    def test_a_refused_port_is_a_connect_error(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]   # nobody listens once this closes
        r = squall_load("-c", "2", "-d", "1", "--timeout", "1", f"http://127.0.0.1:{port}/")
        self.assertEqual(r["requests"], 0)
        self.assertGreater(r["errors"]["connect"], 0)
        self.assertIn("refused", r["first_errors"]["connect"].lower())

    @unittest.skipUnless(shutil.which("openssl"), "needs openssl for the test certificates")
    def test_tls_validated_against_the_ca(self):
        d = tempfile.mkdtemp(prefix="squall-load-tls-")
        self.addCleanup(shutil.rmtree, d, True)
        subprocess.run(["sh", MAKE_CERTS, d], check=True, timeout=60, capture_output=True)
        srv = Server([CONTRACT_APP, "--port", "0", "--log-level", "warning", "--certfile",
                      os.path.join(d, "server.pem"), "--keyfile", os.path.join(d, "server.key")])
        self.addCleanup(srv.stop)
        url = f"https://127.0.0.1:{srv.port}/plaintext"
        r = squall_load("-c", "4", "-d", "1", "--ca-file", os.path.join(d, "ca.pem"), url)
        self.check(r)
        self.assertTrue(r["tls"])
        bad = squall_load("-c", "1", "-d", "1", "--timeout", "1", "--ca-file", os.path.join(d, "other-ca.pem"), url)
        self.assertEqual(bad["requests"], 0)
        self.assertIn("certificate verify failed", bad["first_errors"]["connect"])


@unittest.skipUnless(built and os.access("/usr/bin/wrk", os.X_OK) and len(os.sched_getaffinity(0)) >= 2,
                     WHY_NOT + ", wrk and two CPUs")
class RunnerCurve(unittest.TestCase):
    def test_curve_table_and_plot(self):
        out = tempfile.mkdtemp(prefix="squall-load-curve-")
        self.addCleanup(shutil.rmtree, out, True)
        p = subprocess.run([PY, "-m", "squall_load", "--impl", "reference", "--curve", "--curve-steps",
                            "50,110", "--duration", "1", "--warmup", "0", "--open-loop-warmup", "0.5",
                            "--p99-threshold-ms", "5", "--squall-bin", SQUALL_BIN, "--out", out],
                           capture_output=True, text=True, timeout=180, cwd=REPO)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        with open(os.path.join(out, "results.json")) as f:
            data = json.load(f)
        self.assertEqual(data["meta"]["engine"], "squall-load")
        row = data["results"][0]
        self.assertEqual((row["impl"], row["scenario"], row["engine"], row["status"]),
                         ("reference", "plaintext", "squall-load", "ok"))
        points = row["curve"]["points"]
        self.assertEqual([q["percent"] for q in points], [50, 110])
        for q in points:
            self.assertGreater(q["achieved_rate"], 0, q)
            self.assertIn("p99.9", q["latency_us"])
            self.assertAlmostEqual(q["offered_rate"], row["rps"] * q["percent"] / 100, delta=1)
        with open(os.path.join(out, "results.md")) as f:
            md = f.read()
        self.assertIn("## Latency against throughput (squall-load, open loop)", md)
        self.assertIn("p99 ≤ 5 ms up to", md)
        self.assertIn("| plaintext | reference | squall-load | ok |", md)
        with open(os.path.join(out, "curves.png"), "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        self.assertFalse(NAN.search(md))


if __name__ == "__main__":
    unittest.main()
