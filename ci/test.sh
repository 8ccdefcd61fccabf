#!/usr/bin/env bash
# Sets up the machine, then builds and runs every test: the unit tests twice, in the
# Release build and in the sanitizer build (ASan + UBSan + LeakSanitizer).
set -euo pipefail
cd "$(dirname "$0")/.."

ci/setup.sh
jobs=$(nproc)

ci/build.sh release
echo "== unit tests (release)"
ctest --test-dir build/release --output-on-failure -j "$jobs" --timeout 120

ci/build.sh asan
echo "== unit tests (asan + ubsan)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build/asan --output-on-failure -j "$jobs" --timeout 300
