"""Tests of the wire fuzzer's proxy mode: the recording tap relays and records per upstream
connection, the forwarded-vs-understood oracle classifies, the fronts' descriptions load and
render, a naive front's smuggling is found through real processes, and a short run through
a real nginx front writes its report.
Run: /usr/bin/python3 -m unittest discover -s fuzz/wire/tests"""
import contextlib
import io
import json
import os
import socket
import tempfile
import threading
import unittest

WIRE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(os.path.dirname(WIRE))
TESTS = os.path.join(WIRE, "tests")

from squall_conformance import launch, registry
from squall_conformance.oracle import ACCEPT_REJECT, BOUNDARY, LIVENESS, Interpretation
from squall_wire import forwarded, proxy, run
from squall_wire.tap import Tap, Upstream

MARKED = b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Squall-Front: 1\r\n\r\n"
LISTING = b"Host: a\nX-Squall-Front: 1\n"


class EchoBackend:
    """A loopback back-end that answers every chunk it reads with `got N` and, when the
    other side stops writing, says `bye` and closes."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.answer, args=(c,), daemon=True).start()

    @staticmethod
    def answer(c):
        with c:
            while True:
                data = c.recv(4096)
                if not data:
                    c.sendall(b"bye")
                    return
                c.sendall(b"got %d;" % len(data))


def read_until(s, want, limit=2.0):
    s.settimeout(limit)
    buf = b""
    while want not in buf:
        d = s.recv(4096)
        if not d:
            break
        buf += d
    return buf


class TapTests(unittest.TestCase):
    def setUp(self):
        self.backend = EchoBackend()
        self.tap = Tap(lambda: ("127.0.0.1", self.backend.port))

    def tearDown(self):
        self.tap.close()
        self.backend.sock.close()

    def test_records_each_upstream_connection_apart_and_relays_answers(self):
        self.tap.begin()
        a = socket.create_connection(("127.0.0.1", self.tap.port))
        b = socket.create_connection(("127.0.0.1", self.tap.port))
        a.sendall(b"first")
        self.assertEqual(read_until(a, b"got 5;"), b"got 5;")
        b.sendall(b"second!")
        self.assertEqual(read_until(b, b"got 7;"), b"got 7;")
        a.sendall(b"more")
        read_until(a, b"got 4;")
        ups = self.tap.settle(quiet=0.1)
        self.assertEqual(sorted(bytes(u.forwarded) for u in ups), [b"firstmore", b"second!"])
        self.assertEqual(sorted(bytes(u.answered) for u in ups), [b"got 5;got 4;", b"got 7;"])
        a.close()
        b.close()

    def test_keeps_reading_answers_after_the_front_stops_writing(self):
        self.tap.begin()
        a = socket.create_connection(("127.0.0.1", self.tap.port))
        a.sendall(b"x")
        read_until(a, b";")
        a.shutdown(socket.SHUT_WR)
        self.assertTrue(read_until(a, b"bye").endswith(b"bye"))
        (up,) = self.tap.settle(quiet=0.1)
        self.assertEqual((bytes(up.answered), up.front_closed, up.backend_closed), (b"got 1;bye", True, True))
        a.close()

    def test_the_end_of_an_epoch_cuts_open_connections_and_the_next_starts_empty(self):
        self.tap.begin()
        a = socket.create_connection(("127.0.0.1", self.tap.port))
        a.sendall(b"x")
        read_until(a, b";")
        self.assertEqual([bytes(u.forwarded) for u in self.tap.settle(quiet=0.05)], [b"x"])
        self.assertEqual(read_until(a, b"never"), b"")     # cut: the front sees the close
        self.tap.begin()
        self.assertEqual(self.tap.settle(quiet=0.05), [])
        a.close()

    def test_an_unreachable_back_end_is_recorded(self):
        port = launch.free_port()          # nothing listens there
        tap = Tap(lambda: ("127.0.0.1", port))
        try:
            tap.begin()
            with socket.create_connection(("127.0.0.1", tap.port)) as a:
                self.assertEqual(read_until(a, b"x"), b"")
            (up,) = tap.settle(quiet=0.1)
            self.assertIn("unreachable", up.error)
            self.assertEqual(forwarded.classify_forwarded([up])[0], LIVENESS)
        finally:
            tap.close()


def answered(*responses, closed=False):
    return b"".join(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s" % (s, len(b), b) for s, b in responses), closed


def upstream(forwarded_bytes, answers):
    data, closed = answers
    return Upstream(bytearray(forwarded_bytes), bytearray(data), backend_closed=closed)


class ForwardedOracle(unittest.TestCase):
    def test_marker_count_is_the_messages_the_front_meant(self):
        self.assertEqual(forwarded.meant(MARKED * 2 + b"GET / HTTP/1.1\r\nx-squall-front:1\r\n\r\n"), 3)
        self.assertEqual(forwarded.meant(b"GET / HTTP/1.1\r\nX-Squall-Front-Other: 1\r\n\r\n"), 0)

    def test_an_answer_to_head_has_no_body_even_right_after_a_body(self):
        fwd = (b"POST / HTTP/1.1\r\nX-Squall-Front: 1\r\nContent-Length: 5\r\n\r\nhello"
               b"HEAD /echo HTTP/1.1\r\nX-Squall-Front: 1\r\n\r\n")
        data = (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
                b"HTTP/1.1 200 OK\r\nContent-Length: 45\r\n\r\n")
        self.assertEqual(forwarded.methods(fwd), ["POST", "HEAD"])
        hidden = fwd.replace(b"hello", b"GET /x HTTP/1.1\r\n\r\n").replace(b"Length: 5", b"Length: 21")
        self.assertEqual(forwarded.methods(hidden), ["POST", "HEAD"])   # a request line in a body is no head
        self.assertIsNone(forwarded.classify_forwarded([upstream(fwd, (data, False))]))

    def test_a_front_still_streaming_its_last_body_is_no_disagreement(self):
        head = b"POST / HTTP/1.1\r\nX-Squall-Front: 1\r\nContent-Length: 9\r\n\r\n"
        self.assertIsNone(forwarded.classify_forwarded([upstream(head + b"hello", answered())]))
        gave_up = upstream(head + b"hello", answered(closed=True))   # the client left, the front too
        self.assertIsNone(forwarded.classify_forwarded([gave_up]))
        self.assertEqual(forwarded.classify_forwarded([upstream(head + b"123456789", answered())])[0], BOUNDARY)
        chunked = b"POST / HTTP/1.1\r\nX-Squall-Front: 1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
        self.assertIsNone(forwarded.classify_forwarded([upstream(chunked, answered())]))
        self.assertEqual(forwarded.classify_forwarded([upstream(chunked + b"0\r\n\r\n", answered())])[0], BOUNDARY)

    def test_agreement(self):
        both = answered((200, LISTING), (200, LISTING))
        self.assertIsNone(forwarded.classify_forwarded([upstream(MARKED * 2, both)]))

    def test_more_answers_than_messages_forwarded_is_smuggling(self):
        up = upstream(MARKED + b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n", answered((200, LISTING), (200, LISTING)))
        self.assertEqual(forwarded.classify_forwarded([up])[0], BOUNDARY)

    def test_a_listing_without_the_marker_is_a_request_the_front_did_not_send(self):
        up = upstream(MARKED * 2, answered((200, b"Host: a\nX-Hidden: 1\n"), (200, LISTING)))
        c = forwarded.classify_forwarded([up])
        self.assertEqual(c[0], BOUNDARY)
        self.assertIn("did not forward as one", c[1])

    def test_waiting_for_more_after_fewer_answers_is_a_longer_message(self):
        up = upstream(MARKED * 2, answered((200, LISTING)))
        self.assertEqual(forwarded.classify_forwarded([up])[0], BOUNDARY)

    def test_refusals_and_closes(self):
        refused = upstream(MARKED * 2, answered((400, b"bad"), closed=True))
        self.assertEqual(forwarded.classify_forwarded([refused])[0], ACCEPT_REJECT)
        closed = upstream(MARKED * 2, answered((200, LISTING), closed=True))
        self.assertEqual(forwarded.classify_forwarded([closed])[0], ACCEPT_REJECT)

    def test_the_connection_that_disagrees_is_named(self):
        good = upstream(MARKED, answered((200, LISTING)))
        bad = upstream(MARKED, answered((200, LISTING), (200, LISTING)))
        self.assertEqual(forwarded.classify_forwarded([good, bad])[2], 1)

    def test_proxy_fields_do_not_count_as_content(self):
        reqs = [("GET", "/echo")]
        direct = Interpretation([(200, b"Host: a\nX-A: 1\nX-A: 2\nX-B: 3\n")], "open")
        front = Interpretation([(200, b"X-B: 3\nHost: a\nX-A: 1, 2\nVia: 1.1 x\nX-Squall-Front: 1\n"
                                      b"X-Forwarded-For: 127.0.0.1\nConnection: keep-alive\n")], "open")
        self.assertEqual(forwarded.strip_proxy_fields(direct, reqs).responses,
                         forwarded.strip_proxy_fields(front, reqs).responses)
        other = Interpretation([(200, b"Host: a\nX-A: 1, 3\nX-B: 3\n")], "open")
        self.assertNotEqual(forwarded.strip_proxy_fields(direct, reqs).responses,
                            forwarded.strip_proxy_fields(other, reqs).responses)


class FrontDescriptions(unittest.TestCase):
    def test_every_front_loads_and_renders_its_upstream(self):
        for name in proxy.front_names():
            with self.subTest(front=name), tempfile.TemporaryDirectory() as tmp:
                desc = proxy.load_front(name)
                bound = proxy.with_upstream(desc, {"upstream_host": "127.0.0.1", "upstream_port": 4567}, tmp)
                text = " ".join(bound.server.command)
                for template in bound.server.files.values():
                    with open(template) as f:
                        text += f.read()
                self.assertIn("127.0.0.1:4567" if name != "h2o" else "http://127.0.0.1:4567/", text)
                self.assertNotIn("{upstream_port}", text)
                self.assertIn("x-squall-front", text.lower())

    def test_a_description_that_does_not_forward_is_refused(self):
        with self.assertRaisesRegex(registry.DescriptionError, "upstream_port"):
            proxy.load_front(registry.resolve("nginx"))   # the static nginx of conformance
        with self.assertRaisesRegex(registry.DescriptionError, "no such front"):
            proxy.load_front("no-such-front")


class RealFronts(unittest.TestCase):
    def test_a_request_smuggled_through_a_naive_front_is_found(self):
        backend = launch.start_server(registry.load("reference"), catch_all=True)
        front = proxy.Front(proxy.load_front(os.path.join(TESTS, "naive_front.toml")),
                            lambda: (backend.host, backend.port))
        try:
            pipelined = [b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"
                         b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"]
            client, ups = front.run(pipelined, ["POST", "GET"])
            self.assertEqual([s for s, _ in client.responses], [200, 200])
            cls, detail, n = forwarded.classify_forwarded(ups)
            self.assertEqual(cls, BOUNDARY, detail)
            one = [b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"]
            client, ups = front.run(one, ["GET"])
            self.assertIsNone(forwarded.classify_forwarded(ups))
        finally:
            front.stop()
            backend.stop()

    def test_findings_through_a_naive_front_are_written_gated_and_replayed(self):
        naive = os.path.join(TESTS, "naive_front.toml")
        with tempfile.TemporaryDirectory() as tmp:
            out, report = os.path.join(tmp, "findings"), os.path.join(tmp, "report.json")
            argv = ["--proxy", naive, "--count", "12", "--seconds", "8", "--seed", "1", "--out", out,
                    "--json", report, "--fail-on-boundary", "--quiet"]
            with contextlib.redirect_stdout(io.StringIO()) as text, contextlib.redirect_stderr(io.StringIO()):
                self.assertEqual(run.main(argv), 1)      # smuggling through it: unexplained boundaries
            self.assertIn("UNEXPLAINED BOUNDARY DISAGREEMENT: naive vs reference", text.getvalue())
            with open(report) as f:
                kept = json.load(f)["findings"]
            boundary = [f for f in kept if f["view"] == "forwarded" and f["class"] == BOUNDARY]
            self.assertTrue(boundary)
            self.assertTrue(all(f["upstream"][f["upstream_index"]]["meant"] == 1 for f in boundary))
            os.remove(report)
            with contextlib.redirect_stdout(io.StringIO()) as text, contextlib.redirect_stderr(io.StringIO()):
                self.assertEqual(run.main(["--proxy", naive, "--replay", out, "--quiet"]), 0, text.getvalue())
            self.assertIn("proxy-forwarded-boundary-naive-reference", text.getvalue())

    def test_short_run_through_nginx(self):
        with tempfile.TemporaryDirectory() as tmp:
            out, report = os.path.join(tmp, "findings"), os.path.join(tmp, "report.json")
            argv = ["--proxy", "nginx", "--backend", "reference", "--count", "12", "--seconds", "12", "--seed", "5",
                    "--out", out, "--json", report, "--html", os.path.join(tmp, "r.html"), "--quiet"]
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                self.assertEqual(run.main(argv), 0)
            with open(report) as f:
                doc = json.load(f)
            self.assertEqual((doc["meta"]["mode"], doc["meta"]["inputs"]), ("proxy", 12))
            self.assertEqual([f["name"] for f in doc["meta"]["fronts"]], ["nginx"])
            self.assertTrue(all(f["mode"] == "proxy" and f["front"] == "nginx" for f in doc["findings"]))


if __name__ == "__main__":
    unittest.main()
