"""Tests of the response linter (squall_conformance/lint.py) on exact bytes, and end to end:
the partial server's single defects in what it sends each fail at least one case.
Run: /usr/bin/python3 -m unittest discover -s conformance/tests"""
import contextlib
import io
import json
import os
import tempfile
import unittest

CONFORMANCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from squall_conformance import cli as run
from squall_conformance import lint, wire

FIXTURES = os.path.join(CONFORMANCE, "tests", "fixtures")
DATE = b"Date: Sat, 05 Dec 2026 05:00:00 GMT\r\n"
OK = b"HTTP/1.1 200 OK\r\n" + DATE + b"Content-Length: 2\r\n\r\nOK"


def findings(received, methods=("GET",), closed=True, sent=b"GET / HTTP/1.1\r\n\r\n", reset=False, timed_out=False):
    ex = wire.Exchange(sent=sent, methods=tuple(methods), received=received, closed=closed, reset=reset,
                       timed_out=timed_out)
    return [(f.level, f.rule, f.what) for f in lint.lint(ex)]


def musts(*args, **kw):
    return [what for level, _, what in findings(*args, **kw) if level == "MUST"]


class Lint(unittest.TestCase):
    def test_well_formed_responses_have_no_findings(self):
        chunked = (b"HTTP/1.1 200 OK\r\n" + DATE + b"Transfer-Encoding: chunked\r\n\r\n"
                   b"2;ext=1\r\nOK\r\n0\r\nX-Trailer: yes\r\n\r\n")
        head = b"HTTP/1.1 200 OK\r\n" + DATE + b"Content-Length: 2\r\n\r\n"
        no_content = b"HTTP/1.1 204 No Content\r\n" + DATE + b"\r\n"
        interim = b"HTTP/1.1 100 Continue\r\n\r\n"
        self.assertEqual(findings(OK + chunked, methods=("GET", "GET")), [])
        self.assertEqual(findings(head + OK, methods=("HEAD", "GET"), sent=b"HEAD / HTTP/1.1\r\n\r\n"), [])
        self.assertEqual(findings(interim + no_content + b"HTTP/1.1 304 Not Modified\r\n" + DATE + b"\r\n",
                                  methods=("GET", "GET")), [])
        self.assertEqual(findings(b"HTTP/1.0 200 OK\r\n" + DATE + b"\r\nclose-delimited"), [])
        self.assertEqual(findings(OK[:-1], closed=False), [])   # still arriving: nothing to judge
        self.assertEqual(findings(OK[:-1], reset=True), [])     # a reset may have eaten bytes

    def test_framing_defects(self):
        self.assertIn("Content-Length 2 but the connection closed after 1 body bytes", musts(OK[:-1]))
        self.assertIn("malformed chunk size line",
                      musts(b"HTTP/1.1 200 OK\r\n" + DATE + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nOK\r\n0\r\n\r\n"))
        self.assertIn("chunk data not followed by CRLF",
                      musts(b"HTTP/1.1 200 OK\r\n" + DATE + b"Transfer-Encoding: chunked\r\n\r\n2\r\nOKX0\r\n\r\n"))
        self.assertIn("the connection closed inside a 5-byte chunk",
                      musts(b"HTTP/1.1 200 OK\r\n" + DATE + b"Transfer-Encoding: chunked\r\n\r\n5\r\nOK"))
        self.assertIn("both Transfer-Encoding and Content-Length",
                      musts(b"HTTP/1.1 200 OK\r\n" + DATE + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"0\r\n\r\n"))
        self.assertIn("invalid or conflicting Content-Length",
                      musts(b"HTTP/1.1 200 OK\r\n" + DATE + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\nOK"))

    def test_bodiless_responses(self):
        self.assertIn("content in a response to HEAD",
                      musts(OK + OK, methods=("HEAD", "GET"), sent=b"HEAD / HTTP/1.1\r\n\r\n"))
        self.assertIn("content in a 204 response", musts(b"HTTP/1.1 204 No Content\r\n" + DATE + b"\r\nOK"))
        self.assertIn("Content-Length in a 204 response",
                      musts(b"HTTP/1.1 204 No Content\r\n" + DATE + b"Content-Length: 0\r\n\r\n"))
        # A HEAD the case did not declare: boundaries unknown, nothing judged.
        self.assertEqual(findings(OK + OK, sent=b"HEAD / HTTP/1.1\r\n\r\n"), [])

    def test_syntax_and_connection_defects(self):
        self.assertIn("malformed status line", musts(b"HTTP/1.1 200\r\n" + DATE + b"Content-Length: 0\r\n\r\n"))
        self.assertIn("malformed field line", musts(b"HTTP/1.1 200 OK\r\n" + DATE + b"Bad Field: x\r\n\r\n"))
        self.assertIn("obsolete line folding in a response",
                      musts(b"HTTP/1.1 200 OK\r\n" + DATE + b"X-A: 1\r\n  2\r\nContent-Length: 0\r\n\r\n"))
        self.assertIn("response head ends with bare LF line endings",
                      musts(b"HTTP/1.1 200 OK\n" + DATE.replace(b"\r", b"") + b"Content-Length: 0\n\n"))
        self.assertIn("Transfer-Encoding in a response to an HTTP/1.0 request",
                      musts(b"HTTP/1.1 200 OK\r\n" + DATE + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                            sent=b"GET / HTTP/1.0\r\n\r\n"))
        closing = b"HTTP/1.1 200 OK\r\n" + DATE + b"Connection: close\r\nContent-Length: 2\r\n\r\nOK"
        self.assertIn("another response after one with Connection: close",
                      musts(closing + OK, methods=("GET", "GET")))
        self.assertIn("the connection stayed open after a response with Connection: close",
                      musts(closing, closed=False, timed_out=True))

    def test_missing_date_is_a_note(self):
        self.assertEqual(findings(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
                         [("NOTE", lint.R_DATE, "no Date field in a 400 response (MUST for a server with a clock)")])


class Defects(unittest.TestCase):
    """The partial server with one defect in what it sends fails at least one case."""

    def run_with(self, defect):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "defective.toml")
            with open(path, "w") as f:
                f.write(f'name = "defective"\n[server]\ncommand = ["{{python}}", "{FIXTURES}/partial_server.py", '
                        f'"--port", "{{port}}", "--defect", "{defect}"]\nannounce_port = true\n'
                        'endpoints = ["root-get", "plaintext", "404"]\n')
            out = os.path.join(tmp, "out.json")
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                run.main(["--impl", path, "--case", "SYN-00*,CON-003,CON-01*", "--gate", "none", "--quiet", "--json", out])
            with open(out) as f:
                doc = json.load(f)
        return [c["id"] for c in doc["cases"] if c["results"]["defective"]["verdict"] == "fail"
                and any(x["level"] == "MUST" for x in c["results"]["defective"]["lint"])]

    def test_each_defect_fails_a_case_through_the_linter(self):
        for defect in ("short-body", "bad-chunk", "head-body", "chunked-to-10"):
            with self.subTest(defect=defect):
                self.assertTrue(self.run_with(defect), f"no case failed on the {defect} defect")


if __name__ == "__main__":
    unittest.main()
