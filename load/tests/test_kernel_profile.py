"""Tests of load/profiling/kernel_profile.py's reading of `perf report` and its table (the
sampling itself needs perf and a CPU to sample; these need neither).
Run: /usr/bin/python3 -m unittest discover -s load/tests
"""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "profiling"))
import kernel_profile  # noqa: E402

# What `perf report -F period,pid,dso,sym -q --stdio` prints (columns padded as perf does;
# a comm with a space, a kworker with a dash, an unresolved user address).
REPORT = """\
      12750000    16029:squall-contract  [kernel.kallsyms]      [k] ___slab_alloc
        750000    16029:squall-contract  [kernel.kallsyms]      [k] ___sys_sendmsg
       2500000    16029:squall-contract  squall-contract-app    [.] squall::IOStream::handle_events(unsigned int)
       1000000    16029:squall-contract  libc.so.6              [.] __memmove_avx_unaligned_erms
        250000    16029:squall-contract  [vdso]                 [.] 0x0000000000000a3d
       5250000       14:ksoftirqd/0      [kernel.kallsyms]      [k] __slab_free
       3000000    16031:nginx: worker    [kernel.kallsyms]      [k] tcp_poll
       4000000    16031:nginx: worker    nginx                  [.] ngx_http_process_request_line
        500000    16040:kworker/u8:4-kv  [kernel.kallsyms]      [k] tcp_poll
"""


class ParseReport(unittest.TestCase):
    def test_only_the_given_processes_are_counted_kernel_by_function_user_by_object(self):
        spent = kernel_profile.parse_report(REPORT, {16029})
        self.assertEqual(spent, {
            ("kernel", "___slab_alloc"): 12750000,
            ("kernel", "___sys_sendmsg"): 750000,
            ("user", "squall-contract-app"): 2500000,
            ("user", "libc.so.6"): 1000000,
            ("user", "vdso"): 250000,
        })

    def test_a_command_name_with_a_space_is_read_and_functions_add_up_across_processes(self):
        spent = kernel_profile.parse_report(REPORT, {16031, 16040})
        self.assertEqual(spent[("kernel", "tcp_poll")], 3500000)
        self.assertEqual(spent[("user", "nginx")], 4000000)

    def test_lines_that_are_not_samples_are_ignored(self):
        text = "# comment\n\n  Warning: something\n" + REPORT
        self.assertEqual(kernel_profile.parse_report(text, {14}), {("kernel", "__slab_free"): 5250000})

    def test_per_request_divides_and_a_run_without_requests_gives_nothing(self):
        self.assertEqual(kernel_profile.per_request({("kernel", "x"): 3000}, 1000), {("kernel", "x"): 3.0})
        self.assertEqual(kernel_profile.per_request({("kernel", "x"): 3000}, 0), {})


# What `perf script -F pid,event,trace` prints for raw_syscalls:sys_enter.
SCRIPT = """\
 16029 raw_syscalls:sys_enter: NR 43 (3, 7ffd, 7ffd, 80800, 0, 0)
 16029 raw_syscalls:sys_enter: NR 0 (7, 55d0, 800, 0, 0, 0)
 16029 raw_syscalls:sys_enter: NR 0 (8, 55d0, 800, 0, 0, 0)
 16031 raw_syscalls:sys_enter: NR 232 (5, 7ffd, 200, ffffffff, 0, 0)
 16029 raw_syscalls:sys_enter: NR 999 (0, 0, 0, 0, 0, 0)
"""


class Syscalls(unittest.TestCase):
    def test_calls_of_the_given_processes_are_counted_by_name_and_unknown_numbers_kept(self):
        names = {0: "read", 43: "accept", 232: "epoll_wait"}
        self.assertEqual(kernel_profile.count_syscalls(SCRIPT, {16029}, names), {"accept": 1, "read": 2, "#999": 1})
        self.assertEqual(kernel_profile.count_syscalls(SCRIPT, {16031}, names), {"epoll_wait": 1})

    def test_names_come_from_the_kernel_header(self):
        with tempfile.NamedTemporaryFile("w", suffix=".h") as header:
            header.write("#define __NR_read 0\n#define __NR_write 1\n#define __NR_syscalls 3 /* not a call */\n")
            header.flush()
            self.assertEqual(kernel_profile.syscall_names(header.name), {0: "read", 1: "write", 3: "syscalls"})
        self.assertEqual(kernel_profile.syscall_names("/nonexistent/unistd_64.h"), {})

    def test_table_lists_the_most_frequent_first_and_the_sum(self):
        rows = kernel_profile.syscall_table({"a": {"read": 1.0, "close": 0.5}, "b": {"read": 1.0, "close": 2.0}}).splitlines()
        self.assertEqual(rows[2:], ["| close | 0.50 | 2.00 |", "| read | 1.00 | 1.00 |", "| **all** | 1.50 | 3.00 |"])

    def test_events_per_wait_averages_the_epoll_waits_results_of_the_given_processes(self):
        names = {0: "read", 232: "epoll_wait", 281: "epoll_pwait"}
        exits = (SCRIPT + " 16029  raw_syscalls:sys_exit: NR 232 = 3\n"
                 " 16029  raw_syscalls:sys_exit: NR 281 = 1\n"
                 " 16029  raw_syscalls:sys_exit: NR 232 = -4\n"      # EINTR: no count of ready descriptors
                 " 16029  raw_syscalls:sys_exit: NR 0 = 512\n"       # a read's bytes, not a wait's
                 " 16031  raw_syscalls:sys_exit: NR 232 = 8\n")
        self.assertEqual(kernel_profile.events_per_wait(exits, {16029}, names), 2.0)
        self.assertEqual(kernel_profile.events_per_wait(exits, {16031}, names), 8.0)
        self.assertIsNone(kernel_profile.events_per_wait(exits, {14}, names))
        # The exits are not counted as calls.
        self.assertEqual(kernel_profile.count_syscalls(exits, {16031}, names), {"epoll_wait": 1})

    def test_table_ends_with_the_events_per_wait_where_given(self):
        rows = kernel_profile.syscall_table({"a": {"read": 1.0}, "b": {"read": 1.0}}, {"a": 2.5, "b": None}).splitlines()
        self.assertEqual(rows[-1], "| ready descriptors per epoll wait | 2.50 | n/a |")


class Table(unittest.TestCase):
    def test_kernel_total_top_functions_and_the_rest_add_up(self):
        columns = {
            "a": {("user", "app"): 900.0, ("kernel", "f"): 300.0, ("kernel", "g"): 100.0, ("kernel", "h"): 50.0},
            "b": {("user", "app"): 800.0, ("kernel", "f"): 100.0, ("kernel", "h"): 400.0},
        }
        rows = kernel_profile.table(columns, top=2).splitlines()
        self.assertEqual(rows[0], "| ns per request | a | b |")
        self.assertIn("| user: app | 900 | 800 |", rows)
        self.assertIn("| **kernel, all** | 450 | 500 |", rows)
        # h (400 in b) and f (300 in a) are the two costliest anywhere; g is in the rest.
        kernel_rows = [r for r in rows if r.startswith("| kernel: ")]
        self.assertEqual(kernel_rows, ["| kernel: h | 50 | 400 |", "| kernel: f | 300 | 100 |",
                                       "| kernel: the rest | 100 | 0 |"])


if __name__ == "__main__":
    unittest.main()
