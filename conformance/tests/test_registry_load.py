"""Tests of the optional [load] table of a description (what the load suite measures an
implementation on; load/run.py checks the scenario names). No program is started.
Run: /usr/bin/python3 -m unittest discover -s conformance/tests"""
import os
import tempfile
import unittest

CONFORMANCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from squall_conformance import registry

SERVER = "name = 'x'\n[server]\ncommand = ['srv', '{port}']\n"


def describe(text):
    """Parse a description given as TOML text (written to a temporary file)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "x.toml")
        with open(path, "w") as f:
            f.write(text)
        return registry.load(path)


class LoadTable(unittest.TestCase):
    def test_absent_means_every_scenario(self):
        self.assertIsNone(describe(SERVER).load)
        self.assertIsNone(registry.load("reference").load)

    def test_scenarios_reason_and_skip_are_read(self):
        d = describe(SERVER + "[load]\nscenarios = ['plaintext', 'pipeline']\nreason = 'canned reply'\n"
                     "skip = { memory = 'fixed buffers' }\n")
        self.assertEqual(d.load.scenarios, ("plaintext", "pipeline"))
        self.assertEqual(d.load.reason, "canned reply")
        self.assertEqual(d.load.skip, {"memory": "fixed buffers"})
        only_skip = describe(SERVER + "[load]\nskip = { memory = 'no' }\n").load
        self.assertIsNone(only_skip.scenarios)
        self.assertEqual(only_skip.reason, "")

    def test_bad_load_tables_name_the_field(self):
        bad = {
            "[load]\nscenario = ['plaintext']\n": "load: unknown field(s) scenario",
            "[load]\nscenarios = 'plaintext'\n": "load.scenarios: must be a list of strings",
            "[load]\nscenarios = []\n": "load.scenarios: must not be empty",
            "[load]\nscenarios = ['plain text']\n": "load.scenarios: 'plain text' is not a scenario name",
            "[load]\nscenarios = ['plaintext']\nreason = 3\n": "load.reason: must be a non-empty string",
            "[load]\nscenarios = ['plaintext']\nreason = ' '\n": "load.reason: must be a non-empty string",
            "[load]\nreason = 'why'\n": "load.reason: says why scenarios are left out",
            "[load]\nskip = { memory = '' }\n": "load.skip.memory: give the reason",
            "[load]\nskip = { memory = 1 }\n": "load.skip.memory: give the reason",
            "[load]\nskip = ['memory']\n": "load.skip: must be a table",
            "load = 1\n": "load: must be a table",
        }
        for text, message in bad.items():
            with self.subTest(text=text):
                with self.assertRaises(registry.DescriptionError) as cm:
                    describe(_top(text))
                self.assertIn("x.toml", str(cm.exception))
                self.assertIn(message, str(cm.exception))

    def test_load_needs_a_server(self):
        with self.assertRaises(registry.DescriptionError) as cm:
            describe("name = 'x'\n[client]\ncommand = ['c']\n[load]\nskip = { memory = 'no' }\n")
        self.assertIn("load: needs a [server] table", str(cm.exception))


def _top(text):
    """SERVER with `text` added: top-level keys before the [server] table, tables after."""
    if text.startswith("["):
        return SERVER + text
    return "name = 'x'\n" + text + "[server]\ncommand = ['srv', '{port}']\n"


if __name__ == "__main__":
    unittest.main()
