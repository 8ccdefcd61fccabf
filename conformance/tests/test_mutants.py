"""Unit tests of the mutation harness (conformance/mutants): the baseline of its unmutated
programs has no failure on a required MUST case, and three mutants (one server, two client)
are killed when run through the harness's own functions. The mutant runs are limited to
the areas and cases that matter, so that the whole test takes about 20-30 s.
Run: /usr/bin/python3 -m unittest conformance/tests/test_mutants.py"""
import os
import shutil
import tempfile
import tomllib
import unittest

CONFORMANCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from squall_conformance import core, registry
from squall_conformance import mutants as harness



class Offline(unittest.TestCase):
    """What needs no program: the catalogue, the descriptions, the judgement."""

    def test_catalogue(self):
        mutants = harness.all_mutants()
        server = [m for m in mutants if m["program"] == "server"]
        client = [m for m in mutants if m["program"] == "client"]
        self.assertGreaterEqual(len(server), 30)
        self.assertGreaterEqual(len(client), 12)
        self.assertEqual(len({m["name"] for m in server}), len(server))
        for m in mutants:
            self.assertTrue(m["description"] and m["class"], m)
        short = harness.select(mutants, short=True)
        self.assertEqual(sorted(m["name"] for m in short if m["program"] == "server"), sorted(harness.SHORT["server"]))
        self.assertEqual(sorted(m["name"] for m in short if m["program"] == "client"), sorted(harness.SHORT["client"]))
        with self.assertRaises(SystemExit):
            harness.select(mutants, only=["no-such-mutant"])

    def test_descriptions_load(self):
        work = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, work, True)
        base = registry.load(harness.describe(work, "server"))
        self.assertEqual(base.layers, ("server",))
        self.assertNotIn("--defect", base.server.command)
        m = registry.load(harness.describe(work, "client", "no-max-body"))
        self.assertEqual(m.layers, ("client",))
        self.assertEqual(m.client.command[-2:], ("--defect", "no-max-body"))
        self.assertTrue(os.path.isabs(m.client.command[1]))
        with open(harness.DESCRIPTION, "rb") as f:
            self.assertEqual(registry.parse(tomllib.load(f), harness.DESCRIPTION).name, "mutant")

    def test_judge_uses_the_expectations_rule(self):
        base = {"verdicts": {"A": core.PASS, "B": core.PASS, "C": core.WARN, "D": core.NA, "E": core.PASS},
                "levels": {"A": "MUST", "B": "SHOULD", "C": "MUST", "D": "MUST", "E": "MAY"}}
        got = harness.judge(base, {"A": core.PASS, "B": core.WARN, "C": core.FAIL, "D": core.NA, "E": core.FAIL})
        self.assertEqual([(c, t) for c, _, _, t in got], [("C", "MUST fail"), ("E", "SHOULD/MAY fail"), ("B", "warn")])
        self.assertEqual(harness.judge(base, {"A": core.PASS}), [])   # a case not run is not a detection


class ThroughTheSuite(unittest.TestCase):
    """The baseline and three mutants, through the suite (a snapshot of it). The client
    baseline and the client mutants run while the server baseline does (two suite runs at
    a time); the mutant runs are limited to the cases that matter, without the recheck."""

    MUTANTS = [("te-cl-uses-cl", None, ["smuggling"]),
               ("post-303-kept", ["client-redirect-*"], None),
               ("no-max-body", ["client-body-*"], None)]

    @classmethod
    def setUpClass(cls):
        from concurrent.futures import ThreadPoolExecutor
        cls.work = tempfile.mkdtemp(prefix="squall-mutants-test-")
        cls.root = harness.snapshot(cls.work)
        cls.base = {}
        by_name = {m["name"]: m for m in harness.all_mutants()}

        def baseline(program):
            b = harness.run_suite(harness.describe(cls.work, program, root=cls.root), [harness.LAYER[program]],
                                  cls.work, None, None, 120.0, cls.root)
            b["desc"] = harness.describe(cls.work, program, root=cls.root)
            harness.settle_baseline(b, [harness.LAYER[program]], cls.work, 120.0, cls.root, progress=lambda m: None)
            cls.base[program] = b

        def mutant(name, cases, areas):
            return harness.run_mutant(by_name[name], cls.base, cls.work, 120.0, cases, areas, cls.root, confirm=False)

        def client_side():
            baseline("client")
            return [mutant(*m) for m in cls.MUTANTS if by_name[m[0]]["program"] == "client"]

        with ThreadPoolExecutor(max_workers=2) as pool:
            server_base = pool.submit(baseline, "server")
            client = pool.submit(client_side)
            server_base.result()
            server = [mutant(*m) for m in cls.MUTANTS if by_name[m[0]]["program"] == "server"]
            cls.results = {r["name"]: r for r in server + client.result()}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    def test_baseline_has_no_required_failure(self):
        for program, b in self.base.items():
            self.assertFalse(b.get("problem"), b.get("problem"))
            self.assertGreater(len(b["verdicts"]), 50, program)
            self.assertEqual(harness.baseline_problems(b), [], program)

    def test_mutants_are_killed(self):
        self.assertEqual(sorted(self.results), sorted(m[0] for m in self.MUTANTS))
        for r in self.results.values():
            with self.subTest(mutant=r["name"]):
                self.assertTrue(r["judged_ok"], r["problem"])
                self.assertTrue(r["killed"], r)
                self.assertEqual(r["level"], "MUST fail")
        self.assertIn("client-redirect-303-post", [c["id"] for c in self.results["post-303-kept"]["cases"]])
        self.assertIn("client-body-max-size-cl", [c["id"] for c in self.results["no-max-body"]["cases"]])
        self.assertTrue(any(c["id"].startswith("SMG-") for c in self.results["te-cl-uses-cl"]["cases"]))


if __name__ == "__main__":
    unittest.main()
