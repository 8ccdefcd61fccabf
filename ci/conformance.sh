#!/usr/bin/env bash
# The conformance suite, all four layers (contracts.md §1-§4: server, loop, stream, client),
# against the reference and the Tornado peers: one command, one report.
# First the driver's unit tests (conformance/tests). Fails when the reference or the Tornado
# peer fails (or errors on) a case required for it: for the reference every MUST case; for
# the Tornado peer the MUST cases of Tornado semantics and of the contracts (its RFC failures
# are reported, not gated).
# Reports: build/conformance/conformance.{json,xml,html} (one section / JUnit testsuite per layer).
#   ci/conformance.sh [extra run.py args, e.g. --layers stream or --area smuggling]
# Every peer: /usr/bin/python3 conformance/run.py --impl reference,tornado,aiohttp,curl,nginx,h2o --html build/conformance/all.html
set -euo pipefail
cd "$(dirname "$0")/.."

build=build/release
report=${SQUALL_CONFORMANCE_REPORT:-build/conformance/conformance}
missing=()
for bin in squall-contract-app squall-loop-probe squall-stream-probe squall-fetch; do
  [[ -x "$build/reference/$bin" ]] || missing+=("$bin")
done
if (( ${#missing[@]} )); then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  ninja -C "$build" "${missing[@]}"
fi
mkdir -p "$(dirname "$report")"
/usr/bin/python3 -m unittest discover -s conformance/tests -q
exec timeout -k 10 240 /usr/bin/python3 conformance/run.py \
  --impl reference,tornado --layers server,loop,stream,client \
  --reference-bin "$build/reference/squall-contract-app" --reference-dir "$build/reference" \
  --required-for reference,tornado --quiet \
  --json "$report.json" --junit "$report.xml" --html "$report.html" "$@"
