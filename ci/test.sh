#!/usr/bin/env bash
# Sets up the machine, then runs every test, each stage with a heading:
#   1. unit tests (GoogleTest, plus replay of every fuzz seed and regression), Release
#   2. the same under AddressSanitizer + UndefinedBehaviorSanitizer + LeakSanitizer, and
#      the tests that cross threads under ThreadSanitizer (ci/tsan.sh)
#   3. conformance, all four layers (server, loop, stream, client): the reference (strict
#      and --lenient) and the Tornado peers, failing on any required case; the Node.js
#      contract programs against their expectations; beside them, the harness pip-installed
#      into a venv and run from outside the clone (ci/package-test.sh); then the suite's own
#      mutants (short form). These mostly wait on sockets, so stage 5's fuzz build runs
#      meanwhile at low priority (nice), on the CPU they leave idle; the stage waits for
#      the build to end, so stage 4's load runs have the machine to themselves.
#   4. load smoke run (wrk, squall-load, Locust; TLS scenarios), then the reliability
#      suite's short form (the reference under abuse, bounds checked)
#   5. fuzzing: every libFuzzer target for FUZZ_SECONDS (default 20) under ASan + UBSan,
#      one per core at a time, then 60 s of differential fuzzing over the wire (reference
#      vs Tornado) and 30 s through nginx
# A step run in the background has its output printed, in one piece, when it is waited for.
# Any failure stops the run with a non-zero status (once the background steps have ended).
set -euo pipefail
cd "$(dirname "$0")/.."

ci/setup.sh
jobs=$(nproc)
started=$SECONDS
current_stage="set-up"
stage() { current_stage=$1; echo; echo "=== $1 ($((SECONDS - started)) s elapsed)"; }
# A failure's cause is printed last: CI often shows only a log's tail, and a stage's own
# output can be long (the conformance tables). The steps below print their own summaries
# of what failed just before they return.
trap 'status=$?; echo; echo "=== FAILED in stage $current_stage after $((SECONDS - started)) s: \"$BASH_COMMAND\" exited with $status"' ERR

# shellcheck source=ci/background.sh
. ci/background.sh  # background, finish: steps run beside others (stage 3)

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
background fuzz-build nice -n 10 fuzz/build.sh
background package-test ci/package-test.sh
ci/conformance.sh
echo
finish package-test
timeout -k 10 600 /usr/bin/python3 -m squall_conformance.mutants --short --require-all
echo "== stage 5's fuzz build (clang, libFuzzer, ASan + UBSan), run during this stage"
finish fuzz-build

stage "4/5 load smoke; reliability (short form)"
ci/load-smoke.sh
timeout -k 10 600 /usr/bin/python3 -m squall_load.reliability --short --impl reference

stage "5/5 fuzzing: libFuzzer targets, then over the wire"
FUZZ_SECONDS=${FUZZ_SECONDS:-20} ci/fuzz.sh

stage "all stages passed"
