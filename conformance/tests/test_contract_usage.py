"""The suite speaks exactly what conformance/CONTRACTS.md says.

Each test parses a table or list of CONTRACTS.md and checks the suite against it: every flag
the client layer passes to an adapter is documented (and the required/optional split is the
document's); every client case, run against a strict fake adapter whose parser knows only the
documented flags, gets its JSON read (so no undocumented flag such as --json slips in); the
stream layer's option and err replies, the loop scenarios and the server endpoint names are
all in the document. Run: /usr/bin/python3 -m unittest discover -s conformance/tests
"""
import json
import os
import re
import shutil
import tempfile
import textwrap
import unittest

CONFORMANCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from squall_conformance import core
from squall_conformance.cases import client, loop, stream  # noqa: F401  (importing registers every layer)

CONTRACTS = os.path.join(CONFORMANCE, "CONTRACTS.md")
PYTHON = "/usr/bin/python3"
FLAG_ROW = re.compile(r"^\| `(--[a-z0-9-]+)([^`]*)` \| (\*\*required\*\*|optional) \|", re.M)


def section(n):
    """The text of section n ("## n. ...") of CONTRACTS.md, up to the next "## " heading."""
    with open(CONTRACTS, encoding="utf-8") as f:
        text = f.read()
    parts = re.split(r"^## ", text, flags=re.M)
    found = [p for p in parts if p.startswith(f"{n}. ")]
    assert len(found) == 1, f"CONTRACTS.md has no single section {n}"
    return found[0]


def documented_flags(n):
    """{flag: (status, takes_value)} from the flag tables of section n."""
    return {m.group(1): ("required" if m.group(3).startswith("**") else "optional", bool(m.group(2).strip()))
            for m in FLAG_ROW.finditer(section(n))}


def flags_in(argv, known):
    """The flags of an adapter command line after `fetch URL`, values skipped; a token that
    is not a documented flag (or a value) is returned as is, so that the test names it."""
    out, rest = [], list(argv)
    while rest:
        tok = rest.pop(0)
        out.append(tok)
        if tok in known and known[tok][1]:
            rest.pop(0)
    return out


class ClientFlags(unittest.TestCase):
    def setUp(self):
        self.doc = documented_flags(4)

    def test_the_flag_lists_are_the_documents(self):
        self.assertEqual({f for f, (st, _) in self.doc.items() if st == "required"}, set(client.REQUIRED_FLAGS))
        self.assertEqual({f for f, (st, _) in self.doc.items() if st == "optional"}, set(client.OPTIONAL_FLAGS))
        self.assertNotIn("--json", self.doc)

    def test_every_case_passes_documented_flags_only(self):
        for spec in client.SPECS:
            cid, args = spec[0], spec[5]
            argv = client.fetch_argv(["ADAPTER"], "http://127.0.0.1:1/x",
                                     client.adapter_args(args, "/tmp/body", "/tmp/ca.pem"))
            self.assertEqual(argv[:3], ["ADAPTER", "fetch", "http://127.0.0.1:1/x"], cid)
            flags = flags_in(argv[3:], self.doc)
            undocumented = [f for f in flags if f not in self.doc]
            self.assertEqual(undocumented, [], f"client-{cid} passes {undocumented}")
            optional = [f for f in flags if self.doc[f][0] == "optional"]
            if optional:  # only the tls-* cases, which are n/a unless --help lists them
                self.assertTrue(any(a.startswith("@tls=") for a in args), f"client-{cid} uses {optional} ungated")
            if "--body-file" in flags:
                self.assertIn("--method", flags, f"client-{cid}: --body-file without --method")


FAKE_ADAPTER = textwrap.dedent('''\
    """A strict client adapter: it knows only the flags of CONTRACTS.md §4 (given as JSON in
    $FAKE_FLAGS), logs its argv to $FAKE_LOG and prints a 599 object without fetching."""
    import argparse, json, os, sys
    flags = json.loads(os.environ["FAKE_FLAGS"])
    p = argparse.ArgumentParser(allow_abbrev=False)
    p.add_argument("command", choices=["fetch"])
    p.add_argument("url")
    for flag, (status, takes_value) in flags.items():
        if takes_value:
            p.add_argument(flag, action="append")
        else:
            p.add_argument(flag, action="store_true")
    a = p.parse_args()
    with open(os.environ["FAKE_LOG"], "a") as f:
        f.write(json.dumps(sys.argv[1:]) + "\\n")
    print(json.dumps({"code": 599, "reason": "Unknown", "headers": [], "body_b64": "",
                      "effective_url": a.url, "error": "fake adapter: nothing fetched"}))
''')


class FakeTarget:
    """Just what a client case asks of a target: the adapter command and its --help."""
    name = "fake"

    def __init__(self, cmd, supported):
        self.cmd, self.supported = cmd, supported

    def command(self, layer):
        return list(self.cmd)

    def supports(self, layer, option):
        return option in self.supported


class StrictAdapter(unittest.TestCase):
    """Every client case run against the strict fake adapter: each gets its JSON read."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="squall-contract-usage-")
        cls.script = os.path.join(cls.dir, "fake_fetch.py")
        with open(cls.script, "w") as f:
            f.write(FAKE_ADAPTER)
        cls.log = os.path.join(cls.dir, "argv.log")
        cls.doc = documented_flags(4)
        os.environ["FAKE_FLAGS"] = json.dumps(cls.doc)
        os.environ["FAKE_LOG"] = cls.log

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)
        os.environ.pop("FAKE_FLAGS", None)
        os.environ.pop("FAKE_LOG", None)

    def run_cases(self, supported):
        target = FakeTarget([PYTHON, self.script], supported)
        results = {}
        for c in core.REGISTRY:
            if c.layer == "client":
                results[c.id] = c.fn(core.Ctx(target=target))
        argvs = []
        if os.path.exists(self.log):  # none when the adapter refused every command line
            with open(self.log) as f:
                argvs = [json.loads(line) for line in f]
            os.unlink(self.log)
        return results, argvs

    def test_no_case_passes_an_undocumented_flag(self):
        with_tls = shutil.which("openssl") is not None
        supported = client.OPTIONAL_FLAGS if with_tls else ()
        results, argvs = self.run_cases(supported)
        ran = [cid for cid, v in results.items() if v.verdict != core.NA]
        for cid, v in results.items():
            self.assertNotIn("without JSON", v.reason, f"{cid}: the strict adapter refused its command line")
            self.assertNotIn("lacks", v.reason, cid)
        self.assertEqual(len(argvs), len(ran))  # one fetch per case that ran
        for argv in argvs:
            self.assertEqual(argv[0], "fetch")
            self.assertNotIn("--json", argv)
        if with_tls:
            self.assertTrue(any("--ca-certs" in a for a in argvs) and any("--insecure" in a for a in argvs))

    def test_tls_cases_are_na_without_the_optional_flags(self):
        results, argvs = self.run_cases(())
        tls_cases = [cid for cid in results if cid.startswith("client-tls-")]
        self.assertEqual(len(tls_cases), 8)
        for cid in tls_cases:
            self.assertEqual(results[cid].verdict, core.NA, cid)
        self.assertFalse(any(f in a for a in argvs for f in client.OPTIONAL_FLAGS))

    def test_an_object_missing_a_member_is_refused(self):
        self.assertIsNone(client.check_json({"code": 200, "reason": "OK", "headers": [["A", "b"]], "body_b64": "aGk=",
                                             "effective_url": "http://127.0.0.1:1/", "error": None}))
        self.assertIn("lacks error", client.check_json({"code": 200, "reason": "OK", "headers": [], "body_b64": "",
                                                        "effective_url": "http://127.0.0.1:1/"}))
        self.assertIn("code", client.check_json({"code": "200", "reason": "OK", "headers": [], "body_b64": "",
                                                 "effective_url": "u", "error": None}))


class StreamReplies(unittest.TestCase):
    def test_the_option_is_documented_as_optional(self):
        self.assertEqual(documented_flags(2), {stream.BUFFER_OPTIONS[0]: ("optional", True)})

    def test_every_err_reply_the_cases_expect_is_documented(self):
        text = section(2)
        for reason in stream.REASONS:
            self.assertIn(f"`err {reason}\\n`", text, reason)
        expected = []
        for spec in stream.SPECS + stream.BUFFER_SPECS:
            for step in spec[4]:
                if step[0] in ("expect", "names") and step[1].startswith(b"err "):
                    expected.append(step[1].decode().strip()[4:])
        self.assertTrue(expected)
        self.assertEqual(sorted(set(expected) - set(stream.REASONS)), [])


class LoopScenarios(unittest.TestCase):
    def test_the_scenario_list_is_the_suites(self):
        text = section(3)
        listed = text[text.index("The scenarios"):text.index("What each scenario does")]
        names = set(re.findall(r"`([a-z_]+)`", listed))
        suite = set(loop.SCENARIOS) | {spec[0] for spec in loop.EXTRA.values()}
        self.assertEqual(names, suite)


class ServerEndpoints(unittest.TestCase):
    def test_every_feature_a_case_needs_is_documented(self):
        text = section(1)
        table = text[text.index("| feature | request | answer |"):]
        documented = set(re.findall(r"^\| `([a-z0-9-]+)` \|", table, re.M))
        needed = set().union(*(c.needs for c in core.REGISTRY))
        self.assertEqual(needed, documented)


if __name__ == "__main__":
    unittest.main()
