#!/usr/bin/env bash
# Configures and builds one flavour of the tree.
#   ci/build.sh release   -> build/release  (Release, benchmarks included)
#   ci/build.sh asan      -> build/asan     (Debug + AddressSanitizer + UBSan)
set -euo pipefail
cd "$(dirname "$0")/.."

flavour=${1:-release}
case "$flavour" in
  release) flags=(-DCMAKE_BUILD_TYPE=Release) ;;
  asan) flags=(-DCMAKE_BUILD_TYPE=Debug -DSQUALL_SANITIZE=ON -DSQUALL_BUILD_BENCH=OFF) ;;
  *) echo "usage: ci/build.sh [release|asan]" >&2; exit 2 ;;
esac

echo "== build ($flavour)"
cmake -S . -B "build/$flavour" -G Ninja -DSQUALL_WERROR=ON "${flags[@]}" >/dev/null
# ninja prints one status line per step: the progress of the build.
ninja -C "build/$flavour"
