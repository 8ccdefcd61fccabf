"""The harness's tools as pyproject.toml declares them: every console entry point has a
parser() whose --help names each option's default, and --version prints the one version,
the project's (CMakeLists.txt)."""
import contextlib
import importlib
import io
import os
import re
import tomllib
import unittest

import squall_conformance
from squall_conformance import helpformat

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def entry_points():
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]["scripts"]


class Tools(unittest.TestCase):
    def test_version_is_the_projects(self):
        with open(os.path.join(REPO, "CMakeLists.txt")) as f:
            cmake = re.search(r"project\(squall VERSION (\S+)", f.read()).group(1)
        self.assertEqual(squall_conformance.__version__, cmake)

    def test_every_entry_point_documents_its_defaults_and_version(self):
        scripts = entry_points()
        self.assertIn("squall-conformance", scripts)
        for name, target in scripts.items():
            with self.subTest(name=name):
                module, _, func = target.partition(":")
                mod = importlib.import_module(module)
                self.assertTrue(callable(getattr(mod, func)))
                p = mod.parser()
                self.assertEqual(p.prog, name)
                self.assertEqual(helpformat.undocumented_defaults(p), [])
                out = io.StringIO()
                with contextlib.redirect_stdout(out), self.assertRaises(SystemExit) as stop:
                    p.parse_args(["--version"])
                self.assertEqual(stop.exception.code, 0)
                self.assertEqual(out.getvalue().strip(), f"{name} {squall_conformance.__version__}")
                formatter = p._get_formatter()
                for action in p._actions:
                    if action.option_strings and action.dest not in ("help", "version"):
                        self.assertIn("default", formatter._get_help_string(action), action.option_strings)

    def test_the_umbrella_runs_every_other_entry_point(self):
        from squall_conformance import umbrella
        others = {target for name, target in entry_points().items() if name != "squall"}
        self.assertEqual({f"{module}:main" for module in umbrella.TOOLS.values()}, others)
        out = io.StringIO()
        with contextlib.redirect_stdout(out), self.assertRaises(SystemExit) as stop:
            umbrella.main(["conformance", "--version"])
        self.assertEqual(stop.exception.code, 0)
        self.assertEqual(out.getvalue().strip(), f"squall-conformance {squall_conformance.__version__}")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.assertEqual(umbrella.main(["conformance", "--list", "--layers", "loop"]), 0)
        self.assertRegex(out.getvalue(), r"\n\d+ cases\n$")


if __name__ == "__main__":
    unittest.main()
