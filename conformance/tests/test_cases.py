"""Unit tests of the server-layer case helpers and of cases judged against tiny scripted
servers on 127.0.0.1 (no implementation is started): a static responder that answers without
reading bodies is n/a for body-framing cases, never blamed; a server that closes as announced
is not blamed for the requests after; a reset is not a missing answer; a 1xx, an Expect and a
stream are judged on what arrived when.
Run: /usr/bin/python3 -m unittest discover -s conformance/tests"""
import os
import socket
import threading
import time
import unittest

CONFORMANCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from squall_conformance import core, launch, wire
from squall_conformance.cases import _helpers, connection, web  # noqa: F401

BY_ID = {c.id: c for c in core.REGISTRY}


def response(body=b"OK", extra=b""):
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


class Scripted:
    """A TCP server on 127.0.0.1 that runs `handler(conn)` for each connection, in a thread."""

    def __init__(self, handler):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.stop = False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        try:
            conn.settimeout(5)
            self.handler(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()

    def ctx(self, features):
        return core.Ctx(server=launch.Server("scripted", "127.0.0.1", self.port, frozenset(features)))


def read_head(conn):
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = conn.recv(65536)
        if not d:
            break
        buf += d
    return buf


def static_close(conn):
    """Answers every request at once without reading its body, then closes (lighttpd's static
    files)."""
    read_head(conn)
    conn.sendall(response(extra=b"Connection: close\r\n"))


def run(case_id, ctx):
    return core.at_level(BY_ID[case_id].level, BY_ID[case_id].fn(ctx))


class StaticResponder(unittest.TestCase):
    def setUp(self):
        self.srv = Scripted(static_close)
        self.addCleanup(self.srv.close)

    def test_body_framing_cases_are_na(self):
        for cid in ("FRM-034", "FRM-039", "FRM-031", "FRM-037", "SMG-040", "SMG-043"):
            v = run(cid, self.srv.ctx({"root-get", "plaintext", "json"}))
            self.assertEqual(v.verdict, core.NA, f"{cid}: {v.reason}")
            self.assertIn("without reading its body", v.reason)

    def test_sequences_closed_as_announced_warn(self):
        v = run("CON-002", self.srv.ctx({"root-get", "plaintext"}))
        self.assertEqual(v.verdict, core.WARN, v.reason)
        self.assertIn("RFC 9112 §9.3", v.reason)


class Sequences(unittest.TestCase):
    def ex(self, raw, closed, n=3):
        e = wire.Exchange(methods=("GET",) * n, received=raw, closed=closed)
        e.responses = wire.parse_responses(raw, ["GET"] * n, closed)[0]
        return e

    def test_prefix_then_open_fails(self):
        v = _helpers.judge_sequence(self.ex(response(b"a"), closed=False), [b"a", b"b", b"c"])
        self.assertEqual(v.verdict, core.FAIL)
        self.assertIn("never answered", v.reason)

    def test_prefix_then_unannounced_close_warns_only_when_prompt(self):
        e = self.ex(response(b"a"), closed=True)
        e.close_after = 0.05            # closed at once: a decision, allowed (RFC 9112 §9.6)
        self.assertEqual(_helpers.judge_sequence(e, [b"a", b"b"]).verdict, core.WARN)
        e.close_after = 5.0             # held the request until a timer closed: never answered
        v = _helpers.judge_sequence(e, [b"a", b"b"])
        self.assertEqual(v.verdict, core.FAIL)
        self.assertIn("held them 5.0 s", v.reason)

    def test_wrong_order_fails(self):
        v = _helpers.judge_sequence(self.ex(response(b"b") + response(b"a"), closed=True, n=2), [b"a", b"b"])
        self.assertEqual(v.verdict, core.FAIL)
        self.assertIn("#1", v.reason)

    def test_announces_close(self):
        r = wire.Response(version="HTTP/1.0", status=200)
        self.assertTrue(_helpers.announces_close(r))
        r.headers = [("Connection", "Keep-Alive")]
        self.assertFalse(_helpers.announces_close(r))
        self.assertTrue(_helpers.announces_close(wire.Response(version="HTTP/1.1", headers=[("connection", "x, Close")])))


class Timing(unittest.TestCase):
    def test_expect_without_100_fails_and_with_100_passes(self):
        def waits(conn):        # never sends 100: reads the whole request, then echoes
            buf = read_head(conn)
            while not buf.endswith(b"continued body"):
                buf += conn.recv(65536)
            conn.sendall(response(b"continued body", b"Connection: close\r\n"))

        def continues(conn):
            read_head(conn)
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = b""
            while len(body) < len(b"continued body"):
                body += conn.recv(65536)
            conn.sendall(response(body, b"Connection: close\r\n"))
        for handler, verdict in ((waits, core.FAIL), (continues, core.PASS)):
            srv = Scripted(handler)
            try:
                v = run("CON-016", srv.ctx({"echo"}))
            finally:
                srv.close()
            self.assertEqual(v.verdict, verdict, v.reason)

    def test_stream_lines_share_a_chunk_warns(self):
        lines = [b"chunk %d\n" % i for i in range(12)]

        def merged(conn):
            read_head(conn)
            body = b"".join(b"%x\r\n%s\r\n" % (len(x), x) for x in (lines[0] + lines[1], *lines[2:]))
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + body
                         + b"0\r\n\r\n")

        srv = Scripted(merged)
        try:
            v = run("WEB-065", srv.ctx({"stream"}))
        finally:
            srv.close()
        self.assertEqual(v.verdict, core.WARN, v.reason)
        self.assertIn("[0]", v.reason)

    def test_reset_is_not_a_missing_answer(self):
        def reset(conn):
            conn.recv(1024)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

        srv = Scripted(reset)
        try:
            v = run("LIM-004", srv.ctx({"root-get"}))
        finally:
            srv.close()
        self.assertEqual(v.verdict, core.WARN, v.reason)
        self.assertIn("TCP reset problem", v.reason)

    def test_interim_without_final_warns(self):
        def early_hints(conn):
            read_head(conn)
            conn.sendall(b"HTTP/1.1 103 Early Hints\r\n\r\n")
            time.sleep(4)

        srv = Scripted(early_hints)
        try:
            v = run("WEB-074", srv.ctx({"status"}))
        finally:
            srv.close()
        self.assertEqual(v.verdict, core.WARN, v.reason)


class Levels(unittest.TestCase):
    def test_sources_and_levels(self):
        for c in core.REGISTRY:
            if c.layer != "server":
                continue
            self.assertIn(c.level, core.LEVELS, c.id)
            self.assertTrue(c.source.startswith(("RFC", "contracts.md", core.TORNADO)), f"{c.id}: {c.source}")

    def test_lenient_chunk_grammar_is_should_overflow_is_must(self):
        for cid in ("FRM-034", "FRM-035", "FRM-036", "FRM-039", "FRM-040", "FRM-041", "FRM-042", "FRM-043", "FRM-044"):
            self.assertEqual(BY_ID[cid].level, "SHOULD", cid)
        for cid in ("FRM-037", "FRM-038", "SMG-049", "CON-016"):
            self.assertEqual(BY_ID[cid].level, "MUST", cid)


if __name__ == "__main__":
    unittest.main()
