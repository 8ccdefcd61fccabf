"""Tests of load/profiling/hot_pages.py's reading of a callgrind profile (--dump-instr=yes)
and its count of the lines and pages a request's code covers.
Run: /usr/bin/python3 -m unittest discover -s load/tests
"""
import io
import os
import sys
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "profiling"))
import hot_pages  # noqa: E402

# Four requests, so at the default threshold (0.5 per request) a cost of 2 counts and 1 does
# not. `serve` runs 4 instructions twice each, the third 64 bytes on (a second line, same
# page), then calls `parse`, whose inclusive cost (1000) must not count as serve's own;
# `parse` runs 2 instructions twice on another page; start-up code runs once; libc's memcpy
# twice on one line.
PROFILE = """\
# callgrind format
version: 1
positions: instr line
events: Ir

ob=(1) /bin/app
fl=(1) app.cc
fn=(1) serve
0x1000 10 2
+4 * 2
+60 * 2
cfn=(2) parse
calls=2 0x3000 20
* * 1000
+2 * 2
fn=(2)
0x3000 20 2
+0x10 21 2
fn=(3) start_up
0x5000 30 1
ob=(2) /lib/libc.so.6
fl=(2) memcpy.S
fn=(4) memcpy
0x200 1 2
"""


class ReadProfile(unittest.TestCase):
    def setUp(self):
        self.profile = hot_pages.read_profile(io.StringIO(PROFILE))

    def test_positions_absolute_relative_and_the_call_cost_line_skipped(self):
        cost = self.profile.cost
        self.assertEqual(cost[("/bin/app", 0x1000)], 2)
        self.assertEqual(cost[("/bin/app", 0x1004)], 2)
        self.assertEqual(cost[("/bin/app", 0x1040)], 2)
        self.assertEqual(cost[("/bin/app", 0x1042)], 2)  # after the call; its 1000 not serve's
        self.assertNotIn(1000, cost.values())
        self.assertEqual(cost[("/bin/app", 0x3010)], 2)  # hex relative step
        self.assertEqual(self.profile.function[("/bin/app", 0x3000)], "parse")  # "(2)" resolved

    def test_footprint_counts_lines_and_pages_of_hot_instructions_per_object(self):
        table = hot_pages.footprint(self.profile, requests=4, threshold=0.5)
        app = table["/bin/app"]
        self.assertEqual((app.lines, app.pages), (3, 2))  # 0x1000, 0x1040, 0x3000 lines; start_up too cold
        self.assertEqual(app.instructions, 3.0)
        self.assertEqual((table["/lib/libc.so.6"].lines, table["/lib/libc.so.6"].pages), (1, 1))

    def test_a_lower_threshold_takes_the_start_up_code_in(self):
        table = hot_pages.footprint(self.profile, requests=4, threshold=0.25)
        self.assertEqual(table["/bin/app"].pages, 3)

    def test_widest_functions_rank_by_lines(self):
        ranked = hot_pages.widest_functions(self.profile, requests=4, threshold=0.5, count=2)
        self.assertEqual(ranked, [(2, "serve"), (1, "parse")])


class Main(unittest.TestCase):
    def test_a_profile_without_addresses_is_a_clear_error(self):
        with tempfile.NamedTemporaryFile("w", suffix=".callgrind") as f:
            f.write("events: Ir\nfn=(1) main\n")
            f.flush()
            with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()) as err:
                self.assertEqual(hot_pages.main([f.name, "10"]), 1)
            self.assertIn("--dump-instr=yes", err.getvalue())


if __name__ == "__main__":
    unittest.main()
