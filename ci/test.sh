#!/usr/bin/env bash
# Sets up the machine, then runs every test, each stage with a heading:
#   1. unit tests (GoogleTest, plus replay of every fuzz seed and regression), Release
#   2. the same under AddressSanitizer + UndefinedBehaviorSanitizer + LeakSanitizer
#   3. conformance, all four layers (server, loop, stream, client): reference and the
#      Tornado peers, failing on any required case
#   4. load smoke run: reference and Tornado, 1 s per scenario; TLS scenarios (wrk over
#      HTTPS): reference and nginx; outputs checked
#   5. fuzzing: every libFuzzer target for FUZZ_SECONDS (default 20) under ASan + UBSan
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

stage "3/5 conformance: server, loop, stream and client layers"
ci/conformance.sh

stage "4/5 load smoke"
ci/load-smoke.sh

stage "5/5 fuzzing"
FUZZ_SECONDS=${FUZZ_SECONDS:-20} ci/fuzz.sh

stage "all stages passed"
