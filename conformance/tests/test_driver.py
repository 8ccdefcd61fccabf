"""Unit tests of the driver's case registry, required rule, n/a handling, reports and TLS
transport (no implementation is started; the TLS tests run `openssl` once for the test
certificates and serve from a thread). Run: /usr/bin/python3 -m unittest discover -s conformance/tests"""
import contextlib
import io
import json
import os
import shutil
import socket
import threading
import unittest
import xml.dom.minidom

CONFORMANCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from squall_conformance import cli as run
from squall_conformance import core, launch, registry, report, tls, wire
from squall_conformance.targets import Target

BY_ID = {c.id: c for c in core.REGISTRY}


class Registry(unittest.TestCase):
    def test_every_layer_has_cases(self):
        self.assertEqual(len(BY_ID), len(core.REGISTRY))
        for layer in core.LAYERS:
            self.assertTrue(any(c.layer == layer for c in core.REGISTRY), layer)
        self.assertTrue(all(c.source for c in core.REGISTRY))

    def test_required_rule(self):
        rfc_must = BY_ID["SYN-005"]           # RFC MUST: implementations claiming "rfc"
        tornado = BY_ID["loop-callback_fifo"]  # Tornado semantics: those claiming "tornado"
        contract = BY_ID["stream-bytes-one-write"]  # contract MUST: everyone
        should = BY_ID["stream-buffer-close-over-limit"]
        both, rfc, tornado_only = ("rfc", "tornado"), ("rfc",), ("tornado",)
        self.assertEqual([rfc_must.required_for(p) for p in (both, tornado_only, rfc)], [True, False, True])
        self.assertEqual([tornado.required_for(p) for p in (both, tornado_only, rfc)], [True, True, False])
        self.assertEqual([tornado.applies_to(p) for p in (both, tornado_only, rfc)], [True, True, False])
        self.assertTrue(rfc_must.applies_to(tornado_only))
        self.assertTrue(contract.required_for(tornado_only))
        self.assertFalse(should.required_for(both))


    def test_should_and_may_never_fail_unless_harm_is_shown(self):
        self.assertEqual(core.at_level("SHOULD", core.fail("x")).verdict, core.WARN)
        self.assertEqual(core.at_level("MAY", core.fail("x")).reason, "MAY not met: x")
        self.assertEqual(core.at_level("SHOULD", core.consequence("SMUGGLED")).verdict, core.FAIL)
        self.assertEqual(core.at_level("MUST", core.fail("x")).verdict, core.FAIL)


class Reports(unittest.TestCase):
    def setUp(self):
        self.cases = [BY_ID[i] for i in ("SYN-005", "loop-callback_fifo", "stream-buffer-close-over-limit")]
        self.impls = ["reference", "tornado", "nginx"]
        nginx = Target(registry.load("nginx"))
        self.profiles = {i: registry.load(i).profiles for i in self.impls}
        self.results = {}
        for c in self.cases:
            for i in self.impls:
                if i == "nginx" and c.layer != "server":
                    self.results[(c.id, i)] = run.run_case(c, nginx)  # no loop/stream probe: n/a, nothing started
                else:
                    v = core.warn("differs on purpose") if (i, c.layer) == ("reference", "stream") else core.ok()
                    self.results[(c.id, i)] = {"verdict": v.verdict, "reason": v.reason, "absent": False,
                                               "required": c.required_for(self.profiles[i]), "seconds": 0.0, "exchanges": [],
                                               "transcript": "trace"}

    def test_missing_layer_is_na(self):
        r = self.results[("loop-callback_fifo", "nginx")]
        self.assertEqual((r["verdict"], r["absent"]), (core.NA, True))
        self.assertIn("no loop probe", r["reason"])

    def test_one_section_per_layer(self):
        out = io.StringIO()
        meta = {"started": "now", "seconds": 0, "command": "test", "transport": "tcp",
                "implementations": [Target(registry.load(i)).about() for i in self.impls]}
        report.console(self.cases, self.impls, self.results, out, meta)
        text = out.getvalue()
        self.assertRegex(text, r"\nnginx +- +conformance/implementations/nginx.toml +rfc\n")
        self.assertEqual(text.count("\n=== "), 3)
        self.assertRegex(text, r"\nnginx +n/a: nginx has no stream probe \(contract §2\) \(conformance/implementations/nginx.toml\)\n")
        self.assertIn("stream-buffer-close-over-limit (SHOULD, contracts.md §2) — implementations differ", text)
        self.assertIn("note: Tornado 6.2 answers ok with the first 1536 bytes", text)
        suites = xml.dom.minidom.parseString(report.junit(self.cases, self.impls, self.results, meta))
        self.assertEqual([s.getAttribute("name") for s in suites.getElementsByTagName("testsuite")],
                         ["conformance.server", "conformance.loop", "conformance.stream"])
        self.assertEqual([p.getAttribute("name") for p in suites.getElementsByTagName("testsuite")[0]
                          .getElementsByTagName("property")], self.impls)
        doc = json.loads(json.dumps(report.to_json(self.cases, self.impls, self.results, meta)))
        self.assertEqual(doc["layers"], ["server", "loop", "stream"])
        self.assertEqual(doc["layer_summary"]["stream"]["reference"]["warn"], 1)
        page = report.html_report(self.cases, self.impls, self.results, meta)
        self.assertEqual(page.count("<h2 id='layer-"), 3)
        self.assertIn("<td>conformance/implementations/nginx.toml</td>", page)
        for v in (core.PASS, core.NA, core.WARN):   # compact cells (many implementations) keep their verdict
            cell = report.html_cell({"verdict": v, "reason": "why", "required": False}, compact=True)
            self.assertIn(f">{v}<", cell)


class Transport(unittest.TestCase):
    def test_tls_report(self):
        c = [BY_ID["SYN-005"]]
        results = {("SYN-005", "reference"): {"verdict": core.PASS, "reason": "ok", "absent": False, "required": True,
                                              "seconds": 0.0, "exchanges": [], "transcript": ""}}
        out = io.StringIO()
        meta = {"started": "now", "seconds": 0, "command": "t", "transport": "tls"}
        report.console(c, ["reference"], results, out, meta)
        self.assertIn("\ntransport: tls (", out.getvalue())
        self.assertIn("=== HTTP server layer (contract §1: raw request bytes, exact responses) over TLS: 1 cases",
                      out.getvalue())
        suites = xml.dom.minidom.parseString(report.junit(c, ["reference"], results, meta))
        self.assertEqual(suites.getElementsByTagName("testsuite")[0].getAttribute("name"), "conformance.tls.server")
        page = report.html_report(c, ["reference"], results, meta)
        self.assertIn("<h1>Squall conformance over TLS: server</h1>", page)

    def test_url_scheme_must_match_tls(self):
        with contextlib.redirect_stderr(io.StringIO()) as err:
            for argv in (["--tls", "--url", "http://127.0.0.1:1"], ["--url", "https://127.0.0.1:1"]):
                with self.assertRaises(SystemExit):
                    run.main(argv)
        self.assertIn("give https:// URLs with --tls", err.getvalue())

    def test_https_url_target(self):
        srv = launch.attach("https://127.0.0.1:8443")
        self.assertEqual((srv.url, srv.tls.cafile), ("https://127.0.0.1:8443", None))
        self.assertEqual(launch.attach("http://127.0.0.1:8080").tls, None)


class LongAnswer(unittest.TestCase):
    """wire.exchange reading a long Content-Length body in many pieces, from a server in a
    thread on 127.0.0.1."""

    BODY = bytes(range(256)) * (4 * 4096)  # 4 MiB

    def serve(self, head: bytes):
        ls = socket.create_server(("127.0.0.1", 0))

        def run_():
            with ls:
                c, _ = ls.accept()
                with c:
                    c.recv(65536)
                    c.sendall(head)
                    for at in range(0, len(self.BODY), 32768):  # in pieces, as a server writes them
                        c.sendall(self.BODY[at:at + 32768])
                    c.recv(1)  # until the client closes
        t = threading.Thread(target=run_, daemon=True)
        t.start()
        return ls.getsockname()[1], t

    def test_the_body_is_not_parsed_again_at_every_read(self):
        port, t = self.serve(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(self.BODY))
        parses = []
        real = wire.parse_responses

        def counted(*args):
            parses.append(1)
            return real(*args)
        wire.parse_responses = counted
        try:
            ex = wire.exchange("127.0.0.1", port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=10, linger=0.05)
        finally:
            wire.parse_responses = real
        t.join(5)
        self.assertEqual((ex.first.status, ex.first.complete, ex.timed_out), (200, True, False))
        self.assertEqual(ex.first.body, self.BODY)
        self.assertLessEqual(len(parses), 6)  # head, then once the body is in, and the end's

    def test_bytes_owed(self):
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
        self.assertEqual(wire.bytes_owed(head + b"abc"), 7)
        self.assertEqual(wire.bytes_owed(b"HTTP/1.1 200 OK\r\nContent-Len"), 0)  # head not in: parse at once
        self.assertEqual(wire.bytes_owed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n"), 0)
        self.assertEqual(wire.bytes_owed(b"HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\n"), 0)
        self.assertEqual(wire.bytes_owed(b"HTTP/1.1 200 OK\nContent-Length: 10\n\nab\r\n\r\n"), 0)  # bare LFs


@unittest.skipUnless(shutil.which("openssl"), "openssl is not installed")
class TLSWire(unittest.TestCase):
    """wire.exchange over TLS against a Python ssl server in a thread, on 127.0.0.1."""

    @classmethod
    def setUpClass(cls):
        cls.certs = tls.certs()

    def serve(self, cert, respond):
        """One connection: records what each recv() got until close_notify/FIN (or a whole
        head), then sends `respond`. Returns (port, pieces received, thread)."""
        ls = socket.create_server(("127.0.0.1", 0))
        ctx = launch.server_context(*self.certs.pair(cert))
        got = []

        def run_():
            with ls:
                c, _ = ls.accept()
                try:
                    with ctx.wrap_socket(c, server_side=True) as s:
                        while not b"".join(got).endswith(b"\r\n\r\n") or respond is None:
                            d = s.recv(65536)
                            if not d:
                                break
                            got.append(d)
                        s.sendall(respond or b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                except OSError:
                    pass
        t = threading.Thread(target=run_, daemon=True)
        t.start()
        return ls.getsockname()[1], got, t

    def test_pieces_are_records_and_half_close_reads_on(self):
        port, got, t = self.serve("server", None)
        ex = wire.exchange("127.0.0.1", port, [b"GET / HT", b"TP/1.1\r\nHost: x\r\n\r\n"], pause=0.1,
                           shut_write=True, tls=launch.client_context(self.certs.ca))
        t.join(5)
        self.assertIsNone(ex.error)
        self.assertEqual(got, [b"GET / HT", b"TP/1.1\r\nHost: x\r\n\r\n"])  # one record per piece
        self.assertEqual((ex.first.status, ex.first.body, ex.closed), (200, b"ok", True))

    def test_certificate_is_validated(self):
        port, got, t = self.serve("wronghost", b"")
        ex = wire.exchange("127.0.0.1", port, b"GET / HTTP/1.1\r\n\r\n", tls=launch.client_context(self.certs.ca))
        t.join(5)
        self.assertRegex(ex.error, r"^TLS handshake failed: .*certificate verify failed")
        self.assertEqual(got, [])


if __name__ == "__main__":
    unittest.main()
