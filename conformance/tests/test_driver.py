"""Unit tests of the driver's case registry, required rule, n/a handling and reports
(no process is started). Run: /usr/bin/python3 -m unittest discover -s conformance/tests"""
import io
import json
import os
import sys
import unittest
import xml.dom.minidom

CONFORMANCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, CONFORMANCE)

import run  # noqa: E402
from squall_conformance import core, report  # noqa: E402
from squall_conformance.targets import Target  # noqa: E402

BY_ID = {c.id: c for c in core.REGISTRY}


class Registry(unittest.TestCase):
    def test_every_layer_has_cases(self):
        self.assertEqual(len(BY_ID), len(core.REGISTRY))
        for layer in core.LAYERS:
            self.assertTrue(any(c.layer == layer for c in core.REGISTRY), layer)
        self.assertTrue(all(c.source for c in core.REGISTRY))

    def test_required_rule(self):
        rfc_must = BY_ID["SYN-005"]           # RFC MUST: everyone but the Tornado peer
        tornado = BY_ID["loop-callback_fifo"]  # Tornado semantics: reference and tornado
        contract = BY_ID["stream-bytes-one-write"]  # contract MUST: everyone
        should = BY_ID["stream-buffer-surplus-bytes"]
        self.assertEqual([rfc_must.required_for(i) for i in ("reference", "tornado", "aiohttp")], [True, False, True])
        self.assertEqual([tornado.required_for(i) for i in ("reference", "tornado", "curl")], [True, True, False])
        self.assertTrue(contract.required_for("tornado"))
        self.assertFalse(should.required_for("reference"))


class Reports(unittest.TestCase):
    def setUp(self):
        self.cases = [BY_ID[i] for i in ("SYN-005", "loop-callback_fifo", "stream-buffer-surplus-bytes")]
        self.impls = ["reference", "tornado", "nginx"]
        nginx = Target("nginx", impl="nginx")
        self.results = {}
        for c in self.cases:
            for i in self.impls:
                if i == "nginx" and c.layer != "server":
                    self.results[(c.id, i)] = run.run_case(c, nginx)  # no loop/stream probe: n/a, nothing started
                else:
                    v = core.warn("differs on purpose") if (i, c.layer) == ("reference", "stream") else core.ok()
                    self.results[(c.id, i)] = {"verdict": v.verdict, "reason": v.reason, "absent": False,
                                               "required": c.required_for(i), "seconds": 0.0, "exchanges": [],
                                               "transcript": "trace"}

    def test_missing_layer_is_na(self):
        r = self.results[("loop-callback_fifo", "nginx")]
        self.assertEqual((r["verdict"], r["absent"]), (core.NA, True))
        self.assertIn("no loop probe", r["reason"])

    def test_one_section_per_layer(self):
        out = io.StringIO()
        report.console(self.cases, self.impls, self.results, out)
        text = out.getvalue()
        self.assertEqual(text.count("\n=== "), 3)
        self.assertRegex(text, r"\nnginx +n/a: nginx has no stream probe \(contract §2\)\n")
        self.assertIn("stream-buffer-surplus-bytes (SHOULD, Tornado semantics) — implementations differ", text)
        self.assertIn("note: the reference reads the socket", text)
        suites = xml.dom.minidom.parseString(report.junit(self.cases, self.impls, self.results))
        self.assertEqual([s.getAttribute("name") for s in suites.getElementsByTagName("testsuite")],
                         ["conformance.server", "conformance.loop", "conformance.stream"])
        meta = {"started": "now", "seconds": 0, "command": "test"}
        doc = json.loads(json.dumps(report.to_json(self.cases, self.impls, self.results, meta)))
        self.assertEqual(doc["layers"], ["server", "loop", "stream"])
        self.assertEqual(doc["layer_summary"]["stream"]["reference"]["warn"], 1)
        page = report.html_report(self.cases, self.impls, self.results, meta)
        self.assertEqual(page.count("<h2 id='layer-"), 3)


if __name__ == "__main__":
    unittest.main()
