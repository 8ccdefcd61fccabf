#!/bin/sh
# Loop and stream conformance (contracts.md §2, §3) of the reference and Tornado.
#
#   ci/conformance-layers.sh [extra runner arguments, e.g. --area loop]
#
# Assumes the release build exists (build/release, e.g. from ci/build.sh release) with the
# probes squall-loop-probe and squall-stream-probe in it. Fails if the reference or Tornado fails a MUST case. Bounded to ~2 min.
# Writes build/release/conformance-layers.json.
set -eu
cd "$(dirname "$0")/.."
BUILD=build/release
for probe in squall-loop-probe squall-stream-probe; do
  if [ ! -x "$BUILD/reference/$probe" ]; then
    echo "missing $BUILD/reference/$probe: run ci/build.sh release first" >&2
    exit 2
  fi
done
exec timeout -k 10 300 /usr/bin/python3 -m conformance.layers --impl reference,tornado \
  --reference-dir "$BUILD/reference" --json "$BUILD/conformance-layers.json" "$@"
