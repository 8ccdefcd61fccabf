"""Tests of interleaved rounds (load/interleave.py, --interleave): the order rotates from
round to round; the ratio quoted is the median of per-round ratios (not the ratio of the
medians); a run that raises drops only its implementation; the default follows --repeat;
the report's table; and a real run of the reference beside `bare` (about 15 s, every
program on 127.0.0.1 and stopped by PID). Run:
    /usr/bin/python3 -m unittest discover -s load/tests -p 'test_interleave.py'
"""
import os
import re
import statistics
import unittest

from squall_load import interleave, report, run
from test_run import SQUALL_BIN, WHY_NOT, can_measure, run_load

has_bare = can_measure and os.access(os.path.join(SQUALL_BIN, "squall-bare-server"), os.X_OK)


def result(rps, server_cpu_s=None, seconds=1.0, errors=0, other=None, p99_us=None):
    """A fake run result with the fields interleave.ratio_medians reads."""
    return {"rps": rps, "requests": int(rps * seconds), "server_cpu_s": server_cpu_s,
            "socket_errors": errors, "non_2xx": 0, "foreign_cpu_share": other,
            "latency_us": None if p99_us is None else {"p50": p99_us // 2, "p99": p99_us}}


class Rotation(unittest.TestCase):
    def test_each_round_starts_one_further(self):
        self.assertEqual([interleave.rotation(3, r) for r in range(4)],
                         [[0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 1, 2]])

    def test_every_implementation_leads_once_in_n_rounds(self):
        for n in (1, 2, 5):
            firsts = [interleave.rotation(n, r)[0] for r in range(n)]
            self.assertEqual(sorted(firsts), list(range(n)))
            for r in range(n):
                self.assertEqual(sorted(interleave.rotation(n, r)), list(range(n)))

    def test_runs_follow_the_rotation(self):
        calls = []
        rounds, failures = interleave.run_rounds(["a", "b", "c"], 3, lambda name, r: calls.append(name) or r)
        self.assertEqual(calls, ["a", "b", "c", "b", "c", "a", "c", "a", "b"])
        self.assertEqual(rounds, [{"a": 0, "b": 0, "c": 0}, {"a": 1, "b": 1, "c": 1}, {"a": 2, "b": 2, "c": 2}])
        self.assertEqual(failures, {})

    def test_a_run_that_raises_drops_only_its_implementation(self):
        calls = []

        def run_one(name, r):
            calls.append((name, r))
            if (name, r) == ("b", 1):
                raise OSError("gone")
            return r
        rounds, failures = interleave.run_rounds(["a", "b"], 3, run_one)
        self.assertEqual(calls, [("a", 0), ("b", 0), ("b", 1), ("a", 1), ("a", 2)])
        self.assertEqual(list(failures), ["b"])
        self.assertIsInstance(failures["b"], OSError)
        self.assertEqual(rounds, [{"a": 0, "b": 0}, {"a": 1}, {"a": 2}])


class PerRoundRatios(unittest.TestCase):
    def test_median_of_per_round_ratios_not_ratio_of_medians(self):
        base = [100, 200, 150]     # the machine drifts: round 2 is fast for both
        other = [110, 180, 195]    # per round: 1.1, 0.9, 1.3 -> median 1.1 (medians: 180/150 = 1.2)
        rounds = [{"ref": result(b, b / 50_000, other=0.01), "x": result(o, o / 40_000, other=0.02 * i)}
                  for i, (b, o) in enumerate(zip(base, other))]
        [entry] = interleave.ratio_medians("plaintext", rounds, "ref", ["ref", "x"])
        self.assertEqual((entry["scenario"], entry["impl"], entry["baseline"], entry["rounds"]),
                         ("plaintext", "x", "ref", 3))
        self.assertEqual(entry["rps"]["per_round"], [1.1, 0.9, 1.3])
        self.assertAlmostEqual(entry["rps"]["median"], 1.1)
        # Requests per server-CPU-second: 40,000 against 50,000 in every round.
        self.assertAlmostEqual(entry["rps_per_server_cpu_s"]["median"], 0.8, places=3)
        # Each round's other load is the noisier of its two runs'.
        self.assertEqual(entry["other_load"], [0.01, 0.02, 0.04])

    def test_rounds_without_a_figure_are_left_out(self):
        rounds = [{"ref": result(100, 0.01), "x": result(200, 0.01)},
                  {"ref": result(100, 0.01), "x": result(300, None)},       # no CPU time read
                  {"ref": result(100, 0.01), "x": result(900, 0.01, errors=3)},   # errors
                  {"ref": result(100, 0.01)}]                                 # x did not run
        [entry] = interleave.ratio_medians("json", rounds, "ref", ["ref", "x"])
        self.assertEqual(entry["rps"]["per_round"], [2.0, 3.0, None, None])
        self.assertEqual(entry["rps"]["median"], 2.5)
        self.assertEqual(entry["rounds"], 2)
        self.assertEqual(entry["rps_per_server_cpu_s"]["per_round"], [2.0, None, None, None])
        self.assertEqual(entry["other_load"], [None] * 4)   # not read: unknown, not zero

    def test_p99_as_the_baselines_over_the_implementations_within_each_round(self):
        # Round 2 is slow for both: compared within the round, x's tail is the lower one in
        # both rounds with a figure (ratio > 1), though its slow round's p99 is above ref's
        # fast rounds'. Rounds 3 (no percentiles) and 4 (errors) give none.
        rounds = [{"ref": result(100, p99_us=1000), "x": result(100, p99_us=800)},
                  {"ref": result(100, p99_us=3000), "x": result(100, p99_us=2500)},
                  {"ref": result(100, p99_us=1100), "x": result(100)},          # no percentiles
                  {"ref": result(100, p99_us=1000), "x": result(100, p99_us=1250, errors=1)}]
        [entry] = interleave.ratio_medians("plaintext", rounds, "ref", ["ref", "x"])
        self.assertEqual(entry["p99"]["per_round"], [1.25, 1.2, None, None])
        self.assertAlmostEqual(entry["p99"]["median"], 1.225)
        [back] = interleave.ratio_medians("plaintext", rounds, "x", ["ref", "x"])
        self.assertEqual(back["p99"]["per_round"], [0.8, 0.8333, None, None])

    def test_every_other_implementation_against_the_baseline(self):
        rounds = [{"a": result(100), "b": result(50), "c": result(200)}]
        entries = interleave.ratio_medians("plaintext", rounds, "b", ["a", "b", "c"])
        self.assertEqual([(e["impl"], e["rps"]["median"]) for e in entries], [("a", 2.0), ("c", 4.0)])
        self.assertEqual(interleave.ratio_medians("plaintext", rounds, "z", ["a", "b"]), [])


class Report(unittest.TestCase):
    def test_table_of_medians_with_ranges(self):
        entry = {"scenario": "connection_close", "impl": "nginx", "baseline": "reference", "rounds": 3,
                 "rps": {"median": 1.05, "per_round": [1.05, 0.98, 1.12]},
                 "rps_per_server_cpu_s": {"median": None, "per_round": [None, None, None]},
                 "p99": {"median": 0.91, "per_round": [0.91, 0.85, 1.02]},
                 "other_load": [0.02, 0.31, None]}
        md = "\n".join(report.interleaved_ratios({"interleaved_ratios": [entry]}))
        self.assertIn("## Ratios from interleaved rounds (median of per-round ratios)", md)
        self.assertIn("to **reference**", md)
        self.assertIn("| connection_close | nginx | 3 | ×1.05 (0.98–1.12) | n/a | ×0.91 (0.85–1.02) | 2%–31% |", md)
        self.assertIn("as reference's ÷ the implementation's", md)
        # A results file from before p99 was compared round by round still renders.
        del entry["p99"]
        md = "\n".join(report.interleaved_ratios({"interleaved_ratios": [entry]}))
        self.assertIn("| connection_close | nginx | 3 | ×1.05 (0.98–1.12) | n/a | n/a | 2%–31% |", md)
        self.assertEqual(report.interleaved_ratios({"results": []}), [])


class Default(unittest.TestCase):
    def parse(self, *argv):
        return run.parse_args(["--impl", "reference,bare", "--squall-bin", SQUALL_BIN, *argv])

    def test_on_with_repeats_off_with_one_run_or_when_asked(self):
        self.assertTrue(self.parse("--repeat", "2").interleave)
        self.assertFalse(self.parse().interleave)
        self.assertFalse(self.parse("--repeat", "3", "--no-interleave").interleave)
        self.assertTrue(self.parse("--interleave").interleave)

    @unittest.skipUnless(os.access(os.path.join(SQUALL_BIN, "squall-load"), os.X_OK), "needs squall-load")
    def test_not_with_a_curve_and_it_says_so(self):
        args = self.parse("--curve", "--repeat", "3", "--interleave")
        self.assertFalse(args.interleave)
        self.assertIn("--curve", args.interleave_note)


@unittest.skipUnless(has_bare, WHY_NOT + ", and squall-bare-server")
class RealRun(unittest.TestCase):
    def test_reference_and_bare_in_rotating_rounds(self):
        status, out, err, data, md = run_load("--impl", "reference,bare", "--scenario", "plaintext,memory",
                                              "--repeat", "2", "--interleave", "--idle-connections", "20")
        self.assertEqual(status, 0, err[-2000:])
        order = re.findall(r"(reference|bare) +plaintext +round (\d)/2:", err)
        self.assertEqual(order, [("reference", "1"), ("bare", "1"), ("bare", "2"), ("reference", "2")], err)
        self.assertIn("memory: not interleaved (measured once, on a fresh instance", err)
        self.assertTrue(data["meta"]["interleave"])
        rows = {(r["impl"], r["scenario"]): r for r in data["results"]}
        self.assertTrue(rows[("reference", "memory")]["instance"].startswith("fresh instance"))
        ref, bare = rows[("reference", "plaintext")], rows[("bare", "plaintext")]
        self.assertEqual([len(ref["runs"]), len(bare["runs"])], [2, 2])
        [entry] = data["interleaved_ratios"]
        self.assertEqual((entry["scenario"], entry["impl"], entry["baseline"], entry["rounds"]),
                         ("plaintext", "bare", "reference", 2))
        # Each round's ratio pairs the two runs of that round.
        per_round = [b["rps"] / r["rps"] for r, b in zip(ref["runs"], bare["runs"])]
        for got, want in zip(entry["rps"]["per_round"], per_round):
            self.assertAlmostEqual(got, want, delta=0.001)
        self.assertAlmostEqual(entry["rps"]["median"], statistics.median(per_round), delta=0.001)
        self.assertIsNotNone(entry["rps_per_server_cpu_s"]["median"])
        # p99 likewise, the other way up: the reference's p99 over bare's, round by round.
        p99 = [r["p99_us"] / b["p99_us"] for r, b in zip(ref["runs"], bare["runs"])]
        for got, want in zip(entry["p99"]["per_round"], p99):
            self.assertAlmostEqual(got, want, delta=0.001)
        self.assertIn("## Ratios from interleaved rounds (median of per-round ratios)", md)
        self.assertRegex(md, r"\| plaintext \| bare \| 2 \| ×[\d.]+ \([\d.]+–[\d.]+\) \| ×[\d.]+ .* \| ×[\d.]+ .* \| \d+%–\d+% \|")


if __name__ == "__main__":
    unittest.main()
