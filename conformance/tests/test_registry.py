"""Tests of the implementation registry (descriptions), the launcher's bounds, the
pre-flight, the exit status and --expect. The last two classes start real programs on
127.0.0.1 (Python's http.server and tests/fixtures/partial_server.py) and stop them by PID.
Run: /usr/bin/python3 -m unittest discover -s conformance/tests"""
import contextlib
import io
import json
import os
import subprocess
import tempfile
import unittest

CONFORMANCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from squall_conformance import cli as run
from squall_conformance import core, expect, launch, registry

FIXTURES = os.path.join(CONFORMANCE, "tests", "fixtures")


def describe(text):
    """Parse a description given as TOML text (written to a temporary file)."""
    with tempfile.NamedTemporaryFile("w", suffix=".toml", dir=FIXTURES, delete=False) as f:
        f.write(text)
    try:
        return registry.load(f.name)
    finally:
        os.unlink(f.name)


def quiet_main(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = run.main(argv)
        except SystemExit as e:
            status = e.code
    return status, out.getvalue(), err.getvalue()


class Descriptions(unittest.TestCase):
    def test_builtin_peers_are_descriptions(self):
        names = registry.builtin_names()
        for name in ("reference", "tornado", "aiohttp", "nginx", "h2o", "curl"):
            self.assertIn(name, names)
            d = registry.load(name)
            self.assertEqual(d.name, name)
            self.assertTrue(d.layers)
        self.assertEqual(registry.load("curl").layers, ("client",))
        self.assertEqual(registry.load("tornado").profiles, ("tornado",))
        self.assertIn("404", registry.load("nginx").server.endpoints)

    def test_errors_name_the_file_and_field(self):
        bad = {
            "name = ": "not valid TOML",
            "title = 'x'\n[client]\ncommand = ['x']": "name: missing",
            "name = 'a b'\n[client]\ncommand = ['x']": "is not a name",
            "name = 'x'\ncolour = 1\n[client]\ncommand = ['x']": "unknown field(s) colour",
            "name = 'x'\n[client]\ncommand = 'x'": "client.command: must be a list of strings",
            "name = 'x'\nprofiles = ['rfcs']\n[client]\ncommand = ['x']": "unknown profile 'rfcs'",
            "name = 'x'": "describes no layer",
            "name = 'x'\n[server]\ncommand = ['srv']": "{port} appears neither",
            "name = 'x'\n[server]\ncommand = ['srv', '{port}']\nendpoints = ['plaintxt']": "unknown endpoint(s) plaintxt",
            "name = 'x'\n[server]\ncommand = ['srv', '{port}']\nfiles = { 'a.conf' = 'missing.tmpl' }": "not found",
            "name = 'x'\n[stream]\ncommand = ['probe']": "stream.command: must contain {port}",
            "name = 'x'\n[server]\ncommand = ['s', '{port}']\n[server.timeouts]\nidel = []": "server.timeouts: unknown",
        }
        for text, message in bad.items():
            with self.subTest(text=text):
                with self.assertRaises(registry.DescriptionError) as cm:
                    describe(text)
                self.assertIn(FIXTURES, str(cm.exception))
                self.assertIn(message, str(cm.exception))

    def test_running_server_by_url(self):
        d = describe("name = 'mine'\n[server]\nurl = 'http://127.0.0.1:8080'\nendpoints = ['plaintext']")
        self.assertEqual((d.server.url, d.server.endpoints, d.layers), ("http://127.0.0.1:8080",
                                                                         frozenset({"plaintext"}), ("server",)))
        for text, message in {"url = 'ftp://x'": "give http://HOST:PORT",
                              "url = 'http://127.0.0.1:1'\ncatch_all = []": "catch_all: not for a server given by url"
                              }.items():
            with self.assertRaises(registry.DescriptionError) as cm:
                describe("name = 'mine'\n[server]\n" + text)
            self.assertIn(message, str(cm.exception))

    def test_unknown_description_lists_the_builtins(self):
        with self.assertRaises(registry.DescriptionError) as cm:
            registry.load("nginxx")
        self.assertIn("nginx", str(cm.exception).split("one of:")[1])

    def test_unknown_placeholder_is_an_error(self):
        d = describe("name = 'x'\n[server]\ncommand = ['{pyhton}', '{port}']")
        with self.assertRaises(registry.DescriptionError) as cm:
            launch.start_server(d)
        self.assertIn("unknown placeholder {pyhton}", str(cm.exception))

    def test_rendered_files_keep_conditional_lines(self):
        text = "a {port}\n#if tls: b {certfile}\n#if !tls: c\n  #if catch_all: d\n{ not a placeholder }\n"
        self.assertEqual(registry.render_file(text, {"port": 1}, {"tls": False, "catch_all": True}, "t"),
                         "a 1\nc\nd\n{ not a placeholder }\n")

    def test_relative_program_paths_start_at_the_description(self):
        d = registry.load(os.path.join(FIXTURES, "partial.toml"))
        argv = registry.program(d, ("./x", "{here}"), {"here": d.here}, "t")
        self.assertEqual(argv, [os.path.join(FIXTURES, "x"), FIXTURES])


class CommandLine(unittest.TestCase):
    def test_names_may_start_with_http(self):
        self.assertEqual(run.parse_named("httpd=http://127.0.0.1:1", "--url"), ("httpd", "http://127.0.0.1:1"))
        self.assertEqual(run.parse_named("http://127.0.0.1:1/?a=b", "--url"), (None, "http://127.0.0.1:1/?a=b"))

    def test_misspelt_catch_all_name_is_refused(self):
        status, _, err = quiet_main(["--url", "mine=http://127.0.0.1:1", "--catch-all-url", "mien=http://127.0.0.1:2"])
        self.assertEqual(status, 2)
        self.assertIn("no --url named 'mien'", err)

    def test_bad_description_is_refused(self):
        status, _, err = quiet_main(["--impl", "no-such-impl"])
        self.assertEqual(status, 2)
        self.assertIn("no such description", err)

    def test_gate_names_must_be_under_test(self):
        status, _, err = quiet_main(["--impl", "curl", "--gate", "curl,nginx"])
        self.assertEqual(status, 2)
        self.assertIn("nginx not under test", err)


class Launcher(unittest.TestCase):
    def test_garbage_instead_of_a_port_line_is_an_error(self):
        d = describe("name = 'garbage'\n[stream]\ncommand = ['{python}', '-c', "
                     "'import sys; sys.stdout.write(\"x\" * 10**6); sys.stdout.flush(); import time; time.sleep(60)', "
                     "'{port}']\nannounce_port = true")
        with self.assertRaises(launch.LaunchError) as cm:
            launch.start_probe(d, "stream")
        self.assertIn("without a port=N line", str(cm.exception))

    def test_a_program_that_exits_is_an_error_with_its_output(self):
        d = describe("name = 'dies'\n[server]\ncommand = ['{python}', '-c', "
                     "'import sys; print(\"bad flag\", file=sys.stderr); sys.exit(3)', '{port}']\nannounce_port = true")
        with self.assertRaises(launch.LaunchError) as cm:
            launch.start_server(d)
        self.assertIn("bad flag", str(cm.exception))

    def test_a_missing_program_is_an_error(self):
        d = describe("name = 'missing'\n[server]\ncommand = ['./no-such-program', '{port}']")
        with self.assertRaises(launch.LaunchError) as cm:
            launch.start_server(d)
        self.assertIn("could not run", str(cm.exception))


    def test_runs_are_bounded_in_time_and_output(self):
        endless = launch.run_bounded([registry.PYTHON, "-c", "import sys\nwhile 1: sys.stdout.write('x' * 65536)"],
                                     20.0, limit=1 << 20)
        self.assertEqual((endless.problem, endless.returncode), (f"printed more than {1 << 20} bytes", None))
        self.assertLessEqual(len(endless.stdout), 1 << 20)
        hung = launch.run_bounded(["sleep", "30"], 0.5)
        self.assertEqual(hung.problem, "timed out after 0.5 s")
        ok = launch.run_bounded(["echo", "hi"], 5.0)
        self.assertEqual((ok.returncode, ok.stdout, ok.problem), (0, b"hi\n", None))


class Expectations(unittest.TestCase):
    def test_worse_better_and_vanished(self):
        self.assertTrue(expect.worse("pass", "warn"))
        self.assertTrue(expect.worse("warn", "fail"))
        self.assertTrue(expect.worse("pass", "n/a"))
        self.assertTrue(expect.worse("n/a", "fail"))
        self.assertFalse(expect.worse("fail", "fail"))
        self.assertFalse(expect.worse("fail", "pass"))
        self.assertFalse(expect.worse("n/a", "warn"))
        cases = [c for c in core.REGISTRY if c.id in ("SYN-005", "SYN-006")]
        results = {("SYN-005", "x"): {"verdict": "fail"}, ("SYN-006", "x"): {"verdict": "pass"}}
        reg, imp, van = expect.compare({"x": {"SYN-005": "pass", "SYN-006": "fail", "GONE-1": "pass"}},
                                       cases, ["x"], results, {c.id for c in core.REGISTRY})
        self.assertEqual(reg, [("x", "SYN-005", "pass", "fail")])
        self.assertEqual(imp, [("x", "SYN-006", "fail", "pass")])
        self.assertEqual(van, [("x", "GONE-1", "pass", None)])

    def test_malformed_file_is_refused(self):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump({"format": "squall-expect/1", "implementations": {"x": {"SYN-005": "passed"}}}, f)
        try:
            with self.assertRaises(expect.ExpectError) as cm:
                expect.read(f.name)
            self.assertIn("implementations.x.SYN-005: 'passed' is not a verdict", str(cm.exception))
        finally:
            os.unlink(f.name)


class RealServers(unittest.TestCase):
    """Real programs on 127.0.0.1, started and stopped by the driver."""

    def test_unreachable_url_is_one_error_and_exit_2(self):
        port = launch.free_port()  # nothing listens there
        status, out, _ = quiet_main(["--url", f"dead=http://127.0.0.1:{port}", "--case", "SYN-00*", "--quiet"])
        self.assertEqual(status, 2)
        self.assertIn(f"ERROR: could not start dead: http://127.0.0.1:{port} does not answer", out)
        self.assertNotIn("stopped answering", out)

    def test_static_server_gets_na_for_what_it_lacks(self):
        status, out, err = quiet_main(["--impl", os.path.join(FIXTURES, "static.toml"), "--area", "web,connection",
                                       "--gate", "none", "--json", os.devnull, "--quiet"])
        self.assertIn("pystatic: pre-flight found", err)
        self.assertIn("bytes", err.split("pre-flight found")[1].splitlines()[0])
        self.assertEqual(status, 0)
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            quiet_main(["--impl", os.path.join(FIXTURES, "static.toml"), "--area", "web", "--gate", "none",
                        "--json", f.name, "--quiet"])
            doc = json.load(f)
        by_id = {c["id"]: c for c in doc["cases"]}
        for c in doc["cases"]:
            r = c["results"]["pystatic"]
            if any(n in c["needs"] for n in ("plaintext", "json", "echo", "upload", "form", "status", "root-get")):
                self.assertEqual(r["verdict"], "n/a", (c["id"], r["reason"]))
        self.assertIn("does not claim this profile", by_id["WEB-033"]["results"]["pystatic"]["reason"])
        self.assertEqual(doc["meta"]["implementations"][0]["description"], "conformance/tests/fixtures/static.toml")
        self.assertTrue(doc["meta"]["implementations"][0]["version"].startswith("Python 3"))

    def test_an_adapter_that_prints_without_end_is_cut_off(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "noisy.toml")
            with open(path, "w") as f:
                f.write("name = 'noisy'\n[client]\ncommand = ['{python}', '-c', "
                        "'import sys; [sys.stdout.write(\"x\" * 65536) for _ in iter(int, 1)]']\n")
            out = os.path.join(tmp, "out.json")
            status, _, _ = quiet_main(["--impl", path, "--case", "client-cl-basic", "--quiet", "--json", out])
            with open(out) as f:
                r = json.load(f)["cases"][0]["results"]["noisy"]
        self.assertEqual(status, 1)
        self.assertIn("printed more than", r["reason"])

    def test_expect_gates_on_regressions_only(self):
        partial = os.path.join(FIXTURES, "partial.toml")
        cases = ["--case", "CON-00*", "--quiet"]
        with tempfile.TemporaryDirectory() as tmp:
            exp = os.path.join(tmp, "expect.json")
            status, out, _ = quiet_main(["--impl", partial, "--write-expect", exp] + cases)
            with open(exp) as f:
                self.assertEqual(json.load(f)["implementations"]["partial"]["CON-002"], "pass")
            # The same server again: no regression, so success even if some required case fails.
            status, out, _ = quiet_main(["--impl", partial, "--expect", exp] + cases)
            self.assertEqual(status, 0, out)
            self.assertIn("0 regression(s)", out)
            # The same server with a defect (it closes every connection): CON-002 (two requests
            # on one connection) got worse.
            defective = os.path.join(tmp, "defective.toml")
            with open(partial) as f:
                text = f.read().replace('"--port", "{port}"]', '"--port", "{port}", "--defect", "close"]')
            with open(defective, "w") as f:
                f.write(text.replace(f"{{here}}", FIXTURES))
            status, out, _ = quiet_main(["--impl", defective, "--expect", exp] + cases)
            self.assertEqual(status, 1, out)
            self.assertRegex(out, r"REGRESSION: partial CON-002: pass -> (warn|fail)")


if __name__ == "__main__":
    unittest.main()
