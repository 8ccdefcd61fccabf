#!/usr/bin/env bash
# The conformance suite, all four layers (contracts.md §1-§4: server, loop, stream, client),
# against the reference and the Tornado peers, then the Node.js programs: one command, three runs.
# The driver's unit tests (conformance/tests), then
#   1. all four layers over plain TCP (the client layer includes its TLS certificate cases);
#   2. the server layer again over TLS (run.py --tls: both serve HTTPS with a test
#      certificate made with openssl; the driver speaks TLS 1.2+ and validates it).
# Each fails when the reference or the Tornado peer fails (or errors on) a case required for
# it: for the reference every MUST case; for the Tornado peer the MUST cases of Tornado
# semantics and of the contracts (its RFC failures are reported, not gated).
#   3. the Node.js contract programs (conformance/outside/node), through their description
#      file, gated on conformance/expectations/node.json: only a regression fails.
# The three runs are independent (each starts its own servers on ports the kernel picks) and
# spend most of their time waiting on sockets, so they run at the same time; each one's output
# goes to a file, printed in the order above as the runs end. All three always run; the exit
# status is non-zero if any failed.
# Reports: build/conformance/conformance.{json,xml,html} (one section / JUnit testsuite per
# layer), build/conformance/conformance-tls.{json,xml,html} (testsuite conformance.tls.server)
# and build/conformance/conformance-node.{json,xml,html}.
#   ci/conformance.sh [extra run.py args, e.g. --layers stream or --area smuggling]
# Extra arguments go to every run; the TLS run is skipped when they select no server-layer
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
# The unit tests run first, on their own: they keep the CPU busy, and beside the runs they
# slowed the plain run (the longest) by about what they saved (135 s in all, 138 s first).
/usr/bin/python3 -m unittest discover -s conformance/tests -q

# Run time alone: ~80 s plain, ~35 s TLS, ~30 s Node.js (2 cores); the limit leaves room for
# the runs sharing the cores.
run() {  # report path, then run.py arguments
  local out=$1
  shift
  timeout -k 10 360 /usr/bin/python3 conformance/run.py \
    --impl reference,reference-tornado,tornado \
    --reference-bin "$build/reference/squall-contract-app" --reference-dir "$build/reference" \
    --gate reference,reference-tornado,tornado --quiet \
    --json "$out.json" --junit "$out.xml" --html "$out.html" "$@"
}

# shellcheck source=ci/background.sh
. ci/background.sh
background plain run "$report" --layers server,loop,stream,client "$@"
tls_cases=$(/usr/bin/python3 conformance/run.py --list --tls "$@" 2>/dev/null | tail -n 1 | cut -d' ' -f1) || tls_cases=0
tls=0
if [[ ${SQUALL_CONFORMANCE_TLS:-1} != 0 && ${tls_cases:-0} -gt 0 ]]; then
  tls=1
  background tls run "$report-tls" --tls --layers server "$@"
fi
# The recipe of conformance/README.md, as a user runs it: an implementation the driver knows
# only from its description file, gated on its recorded expectations (regressions only).
background node timeout -k 10 360 /usr/bin/python3 conformance/run.py --impl conformance/outside/node/node.toml \
  --expect conformance/expectations/node.json --quiet \
  --json "$report-node.json" --junit "$report-node.xml" --html "$report-node.html" "$@"

status=0
failed=()
# Waits for one run and prints its output; a run that failed is named again at the end.
collect() {  # name, heading
  echo; echo "=== conformance: $2"
  local rc=0
  finish "$1" || rc=$?
  if (( rc )); then
    status=$rc
    failed+=("$1 (exit status $rc)")
  fi
}
collect plain "server, loop, stream and client layers, plain TCP"
if (( tls )); then
  collect tls "server layer over TLS"
fi
collect node "Node.js contract programs through their description, against their expectations"
# The runs' tables are long and a CI log is often read from its tail: each failed run's
# verdict lines come last (run.py's exit status 124 is timeout's: the run took over 360 s).
for run in "${failed[@]}"; do
  echo; echo "=== conformance FAILED: the $run run; its failures:"
  grep -m 40 -E "^(REQUIRED FAILURES|REGRESSION|VANISHED|ERROR)|\((required)\):|^Traceback|^[[:alnum:]_.-]+: error:|^[[:alpha:].]+(Error|Exception):" \
    "$background_outputs/${run%% *}" | cut -c1-400 || echo "(no verdict lines: see the run's output above)"
done
exit "$status"
