"""Tests of the reliability suite's --reference-bin: the program, or the build directory
holding it; anything else is a usage error that says what is wrong.
Run: /usr/bin/python3 -m unittest discover -s load/tests
"""
import os
import stat
import tempfile
import unittest

from squall_load.reliability import run


class UsageError(Exception):
    pass


def fail(message):
    raise UsageError(message)


class ReferenceProgram(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.program = os.path.join(self.dir.name, "squall-contract-app")

    def tearDown(self):
        self.dir.cleanup()

    def make_program(self, executable=True):
        with open(self.program, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(self.program, stat.S_IRWXU if executable else stat.S_IRUSR | stat.S_IWUSR)

    def test_the_program_itself_is_taken_as_it_is(self):
        self.make_program()
        self.assertEqual(run.reference_program(self.program, fail), self.program)

    def test_a_build_directory_stands_for_the_program_in_it(self):
        self.make_program()
        self.assertEqual(run.reference_program(self.dir.name, fail), self.program)

    def test_a_directory_without_the_program_is_refused_by_name(self):
        with self.assertRaisesRegex(UsageError, "a directory without squall-contract-app"):
            run.reference_program(self.dir.name, fail)

    def test_a_missing_program_is_refused(self):
        with self.assertRaisesRegex(UsageError, "no such program"):
            run.reference_program(self.program, fail)

    def test_a_program_that_cannot_run_is_refused(self):
        self.make_program(executable=False)
        with self.assertRaisesRegex(UsageError, "not executable"):
            run.reference_program(self.program, fail)


if __name__ == "__main__":
    unittest.main()
