#!/usr/bin/env bash
# The conformance suite, all four layers (contracts.md §1-§4: server, loop, stream, client),
# against the reference and the Tornado peers: one command, two runs.
# First the driver's unit tests (conformance/tests). Then
#   1. all four layers over plain TCP (the client layer includes its TLS certificate cases);
#   2. the server layer again over TLS (run.py --tls: both serve HTTPS with a test
#      certificate made with openssl; the driver speaks TLS 1.2+ and validates it).
# Each fails when the reference or the Tornado peer fails (or errors on) a case required for
# it: for the reference every MUST case; for the Tornado peer the MUST cases of Tornado
# semantics and of the contracts (its RFC failures are reported, not gated). Both runs always
# run; the exit status is non-zero if either failed.
#   3. the Node.js contract programs (conformance/outside/node), through their description
#      file, gated on conformance/expectations/node.json: only a regression fails.
# Reports: build/conformance/conformance.{json,xml,html} (one section / JUnit testsuite per
# layer), build/conformance/conformance-tls.{json,xml,html} (testsuite conformance.tls.server)
# and build/conformance/conformance-node.{json,xml,html}.
#   ci/conformance.sh [extra run.py args, e.g. --layers stream or --area smuggling]
# Extra arguments go to both runs; the TLS run is skipped when they select no server-layer
# case, or with SQUALL_CONFORMANCE_TLS=0.
# Every peer: /usr/bin/python3 conformance/run.py --impl reference,tornado,aiohttp,curl,nginx,h2o --html build/conformance/all.html
#             /usr/bin/python3 conformance/run.py --tls --impl reference,tornado,aiohttp,nginx,h2o
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

run() {  # report path, then run.py arguments
  local out=$1
  shift
  timeout -k 10 240 /usr/bin/python3 conformance/run.py \
    --impl reference,reference-tornado,tornado \
    --reference-bin "$build/reference/squall-contract-app" --reference-dir "$build/reference" \
    --gate reference,reference-tornado,tornado --quiet \
    --json "$out.json" --junit "$out.xml" --html "$out.html" "$@"
}

status=0
echo "=== conformance: server, loop, stream and client layers, plain TCP"
run "$report" --layers server,loop,stream,client "$@" || status=$?

tls_cases=$(/usr/bin/python3 conformance/run.py --list --tls "$@" 2>/dev/null | tail -n 1 | cut -d' ' -f1) || tls_cases=0
if [[ ${SQUALL_CONFORMANCE_TLS:-1} != 0 && ${tls_cases:-0} -gt 0 ]]; then
  echo; echo "=== conformance: server layer over TLS"
  run "$report-tls" --tls --layers server "$@" || status=$?
fi

# The recipe of conformance/README.md, as a user runs it: an implementation the driver knows
# only from its description file, gated on its recorded expectations (regressions only).
echo; echo "=== conformance: Node.js contract programs through their description, against their expectations"
timeout -k 10 240 /usr/bin/python3 conformance/run.py --impl conformance/outside/node/node.toml \
  --expect conformance/expectations/node.json --quiet \
  --json "$report-node.json" --junit "$report-node.xml" --html "$report-node.html" "$@" || status=$?
exit "$status"
