"""Tests of the load runner (load/run.py) with implementations as data: a description file the
load suite never saw measured beside the reference in one run, and a server the test starts
itself measured by --url beside an --impl, its CPU affinity put back afterwards.

The last two classes run load/run.py for about a second per scenario against programs on
127.0.0.1 (the reference from $SQUALL_BIN or build/release/reference, and
conformance/tests/fixtures/partial_server.py: GET / and /plaintext only); every program is
stopped by PID. Run: /usr/bin/python3 -m unittest discover -s load/tests
"""
import json
import os
import re
import selectors
import signal
import subprocess
import tempfile
import time
import unittest

LOAD = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(LOAD)

from squall_conformance import launch
from squall_load import impls
from squall_load.scenarios import BY_NAME, SCENARIOS, TLS_SCENARIOS

PY = "/usr/bin/python3"
RUN = ["-m", "squall_load"]   # the load runner, from the clone's root (cwd=REPO)
FIXTURES = os.path.join(REPO, "conformance", "tests", "fixtures")
PARTIAL_TOML = os.path.join(FIXTURES, "partial.toml")
PARTIAL_SERVER = os.path.join(FIXTURES, "partial_server.py")
SQUALL_BIN = os.path.abspath(os.environ.get("SQUALL_BIN") or os.path.join(REPO, "build", "release", "reference"))
RUN_LIMIT = 180  # seconds: a runner that hangs fails the test instead of blocking CI
NAN = re.compile(r"\bnan\b", re.IGNORECASE)

can_measure = (os.access(os.path.join(SQUALL_BIN, "squall-contract-app"), os.X_OK)
               and os.access("/usr/bin/wrk", os.X_OK) and len(os.sched_getaffinity(0)) >= 2)
WHY_NOT = (f"needs {SQUALL_BIN}/squall-contract-app (ninja -C build/release), /usr/bin/wrk "
           "and two CPUs (server and wrk are pinned apart)")


def run_load(*argv):
    """load/run.py with argv into a fresh directory: (exit status, stdout, stderr, results, markdown)."""
    out = tempfile.mkdtemp(prefix="squall-load-test-")
    p = subprocess.run([PY, *RUN, "--duration", "1", "--warmup", "0", "--no-plots", "--squall-bin", SQUALL_BIN,
                        "--out", out, *argv], capture_output=True, text=True, timeout=RUN_LIMIT, cwd=REPO)
    data, md = None, ""
    if os.path.exists(os.path.join(out, "results.json")):
        with open(os.path.join(out, "results.json")) as f:
            text = f.read()
        data = json.loads(text)
        with open(os.path.join(out, "results.md")) as f:
            md = f.read()
        assert not NAN.search(text), "results.json holds NaN"
    subprocess.run(["rm", "-rf", out], check=False)
    return p.returncode, p.stdout, p.stderr, data, md


class Descriptions(unittest.TestCase):
    """What is measured is read from descriptions (no program started)."""

    def test_every_scenario_names_its_endpoint(self):
        for sc in SCENARIOS + TLS_SCENARIOS:
            self.assertIn(sc.name, impls.SCENARIO_ENDPOINTS)

    def test_bare_is_a_description_restricted_by_its_load_table(self):
        bare = impls.resolve("bare")
        self.assertTrue(bare.path.endswith("load/implementations/bare.toml"))
        for name in ("plaintext", "pipeline", "connection_close", "many_connections"):
            self.assertIsNone(impls.unserved(bare, BY_NAME[name]), name)
        self.assertIn("[load] scenarios", impls.unserved(bare, BY_NAME["json"]))
        self.assertIn("16 KiB buffer", impls.unserved(bare, BY_NAME["memory"]))
        self.assertIn("[load]", impls.unserved(bare, BY_NAME["tls_plaintext"]))
        self.assertEqual(impls.workers_used(bare, 4), 1)

    def test_endpoints_and_tls_come_from_the_description(self):
        nginx = impls.resolve("nginx")
        self.assertIn("echo endpoint", impls.unserved(nginx, BY_NAME["post_echo"]))
        self.assertIn("slow endpoint", impls.unserved(nginx, BY_NAME["slow"]))
        self.assertIsNone(impls.unserved(nginx, BY_NAME["json"]))
        self.assertIsNone(impls.unserved(nginx, BY_NAME["tls_plaintext"]))
        self.assertEqual(impls.workers_used(nginx, 2), 2)
        partial = impls.resolve(PARTIAL_TOML)   # endpoints found by the pre-flight
        self.assertIsNone(impls.unserved(partial, BY_NAME["json"]))
        self.assertIn("[server] tls is absent", impls.unserved(partial, BY_NAME["tls_plaintext"]))
        self.assertEqual(impls.workers_used(partial, 2), 1)

    def test_unknown_scenario_in_a_load_table_names_the_field(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "mine.toml")
            with open(path, "w") as f:
                f.write("name = 'mine'\n[server]\ncommand = ['srv', '{port}']\n[load]\nscenarios = ['plaintxt']\n")
            with self.assertRaises(impls.DescriptionError) as cm:
                impls.resolve(path)
        self.assertIn("load.scenarios: unknown scenario 'plaintxt'", str(cm.exception))
        self.assertIn(path, str(cm.exception))

    def test_unknown_name_lists_both_folders(self):
        with self.assertRaises(impls.DescriptionError) as cm:
            impls.resolve("nginxx")
        self.assertIn("bare", str(cm.exception))
        self.assertIn("nginx", str(cm.exception))


def numbers(row):
    return row["status"] == "ok" and row["rps"] > 0 and row["requests"] > 0


@unittest.skipUnless(can_measure, WHY_NOT)
class DescriptionBesideReference(unittest.TestCase):
    def test_a_new_description_and_the_reference_in_one_run(self):
        status, out, err, data, md = run_load("--impl", f"reference,{PARTIAL_TOML}",
                                              "--scenario", "plaintext,json")
        self.assertEqual(status, 0, err[-2000:])
        self.assertFalse(NAN.search(out) or NAN.search(err) or NAN.search(md), "NaN printed")
        rows = {(r["impl"], r["scenario"]): r for r in data["results"]}
        for impl in ("reference", "partial"):
            r = rows[(impl, "plaintext")]
            self.assertTrue(numbers(r), r)
            self.assertEqual(r["engine"], "wrk")
            self.assertGreater(r["server_cpu_s"], 0)
            # The split of that time per request adds up to it.
            user, kernel = r["server_user_us_per_request"], r["server_kernel_us_per_request"]
            self.assertGreaterEqual(user, 0)
            self.assertGreater(user + kernel, 0)
            self.assertAlmostEqual((user + kernel) * r["requests"] / 1e6, r["server_cpu_s"], delta=0.02)
            self.assertTrue(r["pinned"]["pids"], r)
            info = data["meta"]["implementations"][impl]
            self.assertTrue(info["version"])
            self.assertTrue(info["description"])
            self.assertEqual(info["workers"], 1)
        self.assertEqual(data["meta"]["implementations"]["partial"]["description"],
                         "conformance/tests/fixtures/partial.toml")
        self.assertTrue(numbers(rows[("reference", "json")]))
        self.assertIn("## CPU per request (server user + kernel µs", md)
        lacking = rows[("partial", "json")]
        self.assertEqual(lacking["status"], "n/a")
        self.assertIn("/json", lacking["reason"])
        self.assertRegex(md, r"\| plaintext \| [\d,]+ \(×1\.00\) \| [\d,]+ \(×[\d.e-]+\) \|")
        self.assertIn("partial / json: GET /json -> 404", md)
        self.assertIn("conformance/tests/fixtures/partial.toml", md)
        self.assertIn(data["meta"]["wrk"], md)


@unittest.skipUnless(can_measure, WHY_NOT)
class UrlBesideImpl(unittest.TestCase):
    def start_partial(self):
        """partial_server.py --port 0, started by this test; (pid, port). Stopped by PID."""
        proc = subprocess.Popen([PY, PARTIAL_SERVER, "--port", "0"], stdout=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        self.addCleanup(self.stop, proc)
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 15
        line = b""
        while time.monotonic() < deadline and not line.endswith(b"\n"):
            if sel.select(timeout=0.2):
                chunk = os.read(proc.stdout.fileno(), 64)
                if not chunk:
                    break
                line += chunk
        sel.close()
        self.assertTrue(line.startswith(b"port="), f"partial_server.py printed {line!r}")
        return proc.pid, int(line[5:].strip())

    @staticmethod
    def stop(proc):
        launch.stop_process(proc, grace=5.0)
        proc.stdout.close()

    def test_url_and_impl_side_by_side_and_affinity_restored(self):
        pid, port = self.start_partial()
        before = os.sched_getaffinity(pid)
        url = f"http://127.0.0.1:{port}"
        status, out, err, data, md = run_load(
            "--impl", "reference", "--url", f"partial={url}", "--server-pid", f"partial={pid}",
            "--url", f"nopid={url}", "--scenario", "plaintext,memory", "--idle-connections", "20")
        self.assertEqual(status, 0, err[-2000:])
        self.assertEqual(os.sched_getaffinity(pid), before, "the --url server's affinity was not restored")
        self.assertFalse(NAN.search(out) or NAN.search(err) or NAN.search(md), "NaN printed")
        rows = {(r["impl"], r["scenario"]): r for r in data["results"]}
        self.assertEqual(data["meta"]["impls"], ["reference", "partial", "nopid"])
        for impl in ("reference", "partial", "nopid"):
            self.assertTrue(numbers(rows[(impl, "plaintext")]), rows[(impl, "plaintext")])
        # With its PID: pinned (its tree named), CPU time read, affinity put back.
        partial = rows[("partial", "plaintext")]
        self.assertIn(pid, partial["pinned"]["pids"])
        self.assertEqual(partial["pinned"]["cpus"], [0])
        self.assertGreater(partial["server_cpu_s"], 0)
        info = data["meta"]["implementations"]["partial"]
        self.assertTrue(info["affinity_restored"])
        self.assertEqual(set(info["affinity_after"]), before)
        self.assertEqual(rows[("partial", "memory")]["status"], "ok")
        # A server the runner started is measured for memory on an instance of its own; a
        # --url server where it is.
        memory = rows[("reference", "memory")]
        self.assertEqual(memory["status"], "ok", memory)
        self.assertTrue(memory["instance"].startswith("fresh instance"), memory)
        self.assertNotEqual(memory["server_pids"], rows[("reference", "plaintext")]["server_pids"])
        self.assertNotIn("instance", rows[("partial", "memory")])
        # Without a PID: not pinned, no server figures, each n/a with the reason.
        nopid = rows[("nopid", "plaintext")]
        self.assertIsNone(nopid["pinned"])
        self.assertIn("without --server-pid", nopid["not_pinned"])
        for fig in ("server_cpu_s", "rps_per_server_cpu_s", "peak_rss_kb"):
            self.assertIsNone(nopid[fig])
            self.assertIn("without --server-pid", nopid["unmeasured"][fig])
        self.assertEqual(rows[("nopid", "memory")]["status"], "n/a")
        self.assertIn("not pinned (a --url server without --server-pid)", md)
        self.assertIn("nopid: server CPU s, req/CPU-s, peak RSS, other (plaintext)", md)

    def test_bad_server_pid_is_refused_before_anything_runs(self):
        pid, port = self.start_partial()
        other = subprocess.Popen(["sleep", "60"], start_new_session=True)   # listens on nothing
        self.addCleanup(lambda: (other.kill(), other.wait()))
        status, out, err, data, md = run_load("--url", f"partial=http://127.0.0.1:{port}",
                                              "--server-pid", f"partial={other.pid}", "--scenario", "plaintext")
        self.assertEqual(status, 2)
        self.assertIn(f"do not listen on port {port}", err)
        self.assertIsNone(data)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


@unittest.skipUnless(can_measure, WHY_NOT)
class Terminated(unittest.TestCase):
    def test_sigterm_stops_the_servers_and_writes_what_was_measured(self):
        out = tempfile.mkdtemp(prefix="squall-load-test-")
        self.addCleanup(subprocess.run, ["rm", "-rf", out], check=False)
        proc = subprocess.Popen([PY, *RUN, "--impl", "reference", "--scenario", "plaintext", "--repeat", "5",
                                 "--duration", "2", "--warmup", "0", "--no-plots", "--squall-bin", SQUALL_BIN,
                                 "--out", out], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        lines, deadline = [], time.monotonic() + RUN_LIMIT
        while time.monotonic() < deadline and not any("round 1/5" in x for x in lines):
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
        self.assertTrue(any("round 1/5" in x for x in lines), "".join(lines))
        with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
            children = [int(c) for c in f.read().split()]
        self.assertTrue(children)
        self.addCleanup(lambda: [os.kill(c, signal.SIGKILL) for c in children if alive(c)])
        proc.terminate()
        err = proc.stderr.read()
        proc.stderr.close()
        self.assertEqual(proc.wait(timeout=60), 130, err[-2000:])
        self.assertEqual([c for c in children if alive(c)], [], "servers left running after SIGTERM")
        self.assertTrue(os.path.exists(os.path.join(out, "results.json")))


if __name__ == "__main__":
    unittest.main()
