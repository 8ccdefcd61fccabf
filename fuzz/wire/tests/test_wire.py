"""Tests of the wire fuzzer: mutations are reproducible and do change the bytes, the
minimiser shrinks, the oracle classifies, and a short run against two real servers on
127.0.0.1 (the reference and the Node.js contract server) writes its report.
Run: /usr/bin/python3 -m unittest discover -s fuzz/wire/tests"""
import contextlib
import io
import json
import os
import random
import tempfile
import unittest

WIRE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(os.path.dirname(WIRE))

from squall_conformance.oracle import (ACCEPT_REJECT, BOUNDARY, CONTENT, LIVENESS, Interpretation,
                                       classify)
from squall_wire import findings, messages, mutate, promote, run
from squall_wire.minimize import minimize

POST_THEN_ECHO = [("POST", "/"), ("GET", "/echo")]


class Mutations(unittest.TestCase):
    def test_same_seed_same_inputs(self):
        def inputs(seed):
            rng = random.Random(seed)
            return [mutate.mutate(rng, s).to_bytes() for s in messages.seeds() * 3]
        self.assertEqual(inputs(7), inputs(7))
        self.assertNotEqual(inputs(7), inputs(8))

    def test_every_operator_changes_some_seed(self):
        rng = random.Random(1)
        for name, (fn, rule) in mutate.OPERATORS.items():
            with self.subTest(operator=name):
                self.assertTrue(rule.startswith("RFC"))
                changed = False
                for _ in range(40):
                    seed = messages.seeds()[rng.randrange(len(messages.seeds()))]
                    s = seed.clone()
                    what = fn(rng, s)
                    if what and (s.to_bytes() != seed.to_bytes() or s.splits):
                        changed = True
                        break
                self.assertTrue(changed, f"{name} never changed an input")

    def test_pieces_join_to_the_bytes(self):
        s = messages.Stream([messages.post_cl(b"hello"), messages.get_echo()], splits=[3, 40, 41])
        self.assertEqual(b"".join(s.pieces()), s.to_bytes())
        self.assertEqual(len(s.pieces()), 4)


class Minimiser(unittest.TestCase):
    def test_shrinks_to_what_the_predicate_needs(self):
        pieces = [b"aaaa", b"XY", b"Zbbbbbbbb"]
        small, checks = minimize(pieces, lambda p: b"XYZ" in b"".join(p))
        self.assertEqual(b"".join(small), b"XYZ")
        self.assertLessEqual(checks, 150)

    def test_keeps_a_needed_split(self):
        small, _ = minimize([b"xxA", b"Byy"], lambda p: len(p) == 2 and p[0].endswith(b"A") and p[1].startswith(b"B"))
        self.assertEqual(small, [b"A", b"B"])


class Oracle(unittest.TestCase):
    def test_agreement(self):
        a = Interpretation([(200, b"hello"), (200, b"Host: x\nX-Probe: 1\n")], "open")
        b = Interpretation([(200, b"hello"), (200, b"host: x\nx-probe: 1\n")], "closed")
        self.assertIsNone(classify(a, b, POST_THEN_ECHO))
        self.assertIsNone(classify(Interpretation([(400, b"")], "closed"), Interpretation([(501, b"")], "closed"),
                                   POST_THEN_ECHO))

    def test_classes(self):
        ref = Interpretation([(200, b"hello"), (200, b"Host: x\n")], "open")
        self.assertEqual(classify(ref, Interpretation([(200, b""), (400, b"")], "closed"), POST_THEN_ECHO)[0],
                         BOUNDARY)
        self.assertEqual(classify(ref, Interpretation([(200, b"hello"), (200, b"Host: y\n")], "open"),
                                  POST_THEN_ECHO)[0], CONTENT)
        self.assertEqual(classify(ref, Interpretation([(400, b"")], "closed"), POST_THEN_ECHO)[0], ACCEPT_REJECT)
        self.assertEqual(classify(ref, Interpretation([(200, b"hello")], "hang"), POST_THEN_ECHO)[0], BOUNDARY)
        self.assertEqual(classify(ref, Interpretation([], "dead"), POST_THEN_ECHO)[0], LIVENESS)
        three = Interpretation([(200, b"a"), (200, b"b"), (200, b"c")], "open")
        self.assertEqual(classify(ref, three, POST_THEN_ECHO)[0], BOUNDARY)
        self.assertEqual(classify(three, Interpretation(three.responses + [(200, b"d")], "open"),
                                  POST_THEN_ECHO)[0], BOUNDARY)

    def test_the_same_extra_messages_are_no_disagreement(self):
        three = Interpretation([(200, b"a"), (200, b"b"), (200, b"c")], "open")
        self.assertIsNone(classify(three, Interpretation(list(three.responses), "closed"), POST_THEN_ECHO))
        other = Interpretation([(200, b"a"), (200, b"b"), (200, b"x")], "open")
        self.assertEqual(classify(three, other, POST_THEN_ECHO)[0], CONTENT)

    def test_opaque_servers_are_compared_on_answers_only(self):
        ref = Interpretation([(200, b"hello"), (200, b"Host: x\n")], "open")
        static = Interpretation([(200, b"OK"), (200, b"OK")], "open")
        self.assertEqual(classify(ref, static, POST_THEN_ECHO)[0], BOUNDARY)
        self.assertIsNone(classify(ref, static, POST_THEN_ECHO, opaque=True))


class RealServers(unittest.TestCase):
    def test_short_run_replay_and_promotion(self):
        with tempfile.TemporaryDirectory() as tmp:
            out, report = os.path.join(tmp, "findings"), os.path.join(tmp, "report.json")
            argv = ["--impl", "reference," + os.path.join(REPO, "conformance/outside/node/node.toml"), "--count", "40",
                    "--seconds", "10", "--seed", "3", "--out", out, "--json", report, "--quiet"]
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                self.assertEqual(run.main(argv), 0)
            with open(report) as f:
                doc = json.load(f)
            self.assertEqual(doc["meta"]["inputs"], 40)
            self.assertEqual([m["name"] for m in doc["meta"]["implementations"]], ["reference", "node"])
            # A finding file (made here, so that the test does not depend on what was found) replays
            # and promotes.
            f = findings.make(BOUNDARY, "message 1: body of 5 vs 0 bytes", ("reference", "node"),
                              [messages.Stream([messages.post_cl(b"hello"), messages.get_echo()]).to_bytes()],
                              POST_THEN_ECHO, [("body_length", "test")], ["RFC 9112 §6.3"],
                              {"reference": Interpretation([(200, b"hello"), (200, b"Host: 127.0.0.1\n")], "open"),
                               "node": Interpretation([(200, b"")], "closed")}, 1, 3)
            path = findings.save(os.path.join(tmp, "made"), f)
            with contextlib.redirect_stdout(io.StringIO()) as text:
                self.assertEqual(run.main(["--impl", argv[1], "--replay", os.path.dirname(path), "--quiet"]), 1)
            self.assertIn("not reproduced (now: they agree)", text.getvalue())
            cases = os.path.join(tmp, "cases")
            with contextlib.redirect_stdout(io.StringIO()):
                self.assertEqual(promote.main([path, "--id", "WIRE-999", "--title", "test", "--out", cases]), 0)
            with open(os.path.join(cases, "WIRE-999.json")) as c:
                case = json.load(c)
            self.assertEqual((case["source"], case["expected"]["responses"][0]), ("RFC 9112 §6.3", [200, "hello"]))


if __name__ == "__main__":
    unittest.main()
