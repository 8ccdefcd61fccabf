#!/usr/bin/env bash
# Sets up the machine, then runs every test, each stage with a heading:
#   1. unit tests (GoogleTest, plus replay of every fuzz seed and regression), Release
#   2. the same under AddressSanitizer + UndefinedBehaviorSanitizer + LeakSanitizer, and
#      the tests that cross threads under ThreadSanitizer (ci/tsan.sh)
#   3. conformance, all four layers (server, loop, stream, client): the reference (strict
#      and --lenient) and the Tornado peers, failing on any required case; the Node.js
#      contract programs against their expectations; the harness pip-installed into a
#      venv and run from outside the clone (ci/package-test.sh); the suite's own mutants
#      (short form)
#   4. load smoke run (wrk, squall-load, Locust; TLS scenarios), then the reliability
#      suite's short form (the reference under abuse, bounds checked)
#   5. fuzzing: every libFuzzer target for FUZZ_SECONDS (default 20) under ASan + UBSan,
#      then 60 s of differential fuzzing over the wire (reference vs Tornado)
# Any failure stops the run with a non-zero status.
set -euo pipefail
cd "$(dirname "$0")/.."

ci/setup.sh
jobs=$(nproc)
started=$SECONDS
stage() { echo; echo "=== $1 ($((SECONDS - started)) s elapsed)"; }

stage "1/5 unit tests, release build"
ci/build.sh release
ctest --test-dir build/release --output-on-failure -j "$jobs" --timeout 120

stage "2/5 unit tests, sanitizer build"
ci/build.sh asan
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build/asan --output-on-failure -j "$jobs" --timeout 300
unset ASAN_OPTIONS UBSAN_OPTIONS
ci/tsan.sh

stage "3/5 conformance: server, loop, stream and client layers; the suite's mutants"
ci/conformance.sh
ci/package-test.sh
timeout -k 10 600 /usr/bin/python3 -m squall_conformance.mutants --short --require-all

stage "4/5 load smoke; reliability (short form)"
ci/load-smoke.sh
timeout -k 10 600 /usr/bin/python3 -m squall_load.reliability --short --impl reference

stage "5/5 fuzzing: libFuzzer targets, then over the wire"
FUZZ_SECONDS=${FUZZ_SECONDS:-20} ci/fuzz.sh

stage "all stages passed"
