#!/usr/bin/env bash
# The short fuzz pass of CI: builds every libFuzzer target with clang (ASan + UBSan) via
# fuzz/build.sh (within ci/test.sh a no-op: its stage 3 built them meanwhile), then runs
# each for FUZZ_SECONDS (default 30) with fuzz/run.sh, one per core at a time, which prints
# the table and exits non-zero on any crash, leak or timeout (copied to fuzz/findings/ for
# triage). 10 targets x 30 s two at a time + the build stays under ~4 minutes on 2 cores.
# The seeds and crash regressions themselves are replayed by ci/test.sh (CTest's
# fuzz_replay_* tests, in the release and the sanitizer builds).
set -euo pipefail
cd "$(dirname "$0")/.."

ci/setup.sh
echo "== fuzz build (clang, libFuzzer, ASan + UBSan)"
fuzz/build.sh
echo "== fuzz run (${FUZZ_SECONDS:-30} s per target)"
fuzz/run.sh "${FUZZ_SECONDS:-30}"

# Differential fuzzing over the wire (fuzz/wire/README.md): its unit tests; the reference
# against Tornado for WIRE_SECONDS (default 60) with a fixed seed, where a boundary
# disagreement involving the reference that fuzz/wire/explained.json does not explain fails;
# the proxy mode, nginx in front of the reference for WIRE_PROXY_SECONDS (default 30), where
# a boundary disagreement (a request smuggled through the front) not explained fails. The
# three mostly wait on sockets (a 20 s run: ~2 s of CPU), so they run at the same time, each
# against servers of its own; their outputs are printed in that order, and all three always
# run: any failure fails the script.
[[ -x build/release/reference/squall-contract-app ]] || ci/build.sh release
rm -rf build/wire-findings build/wire-proxy-findings
# shellcheck source=ci/background.sh
. ci/background.sh
background tests /usr/bin/python3 -m unittest discover -s fuzz/wire/tests -q
background wire timeout -k 10 $(( ${WIRE_SECONDS:-60} + 120 )) /usr/bin/python3 -m squall_wire \
  --impl reference,tornado --seconds "${WIRE_SECONDS:-60}" --seed 1 --fail-on-boundary --quiet \
  --out build/wire-findings --json build/wire-findings/report.json --html build/wire-findings/report.html
background proxy timeout -k 10 $(( ${WIRE_PROXY_SECONDS:-30} + 60 )) /usr/bin/python3 -m squall_wire --proxy nginx \
  --backend reference --seconds "${WIRE_PROXY_SECONDS:-30}" --seed 1 --fail-on-boundary --quiet \
  --out build/wire-proxy-findings --json build/wire-proxy-findings/report.json \
  --html build/wire-proxy-findings/report.html
status=0
echo "== wire fuzzing's unit tests (fuzz/wire/tests)"
finish tests || status=$?
echo "== wire differential fuzzing: reference vs tornado (${WIRE_SECONDS:-60} s)"
finish wire || status=$?
echo "== wire proxy fuzzing: nginx in front of the reference (${WIRE_PROXY_SECONDS:-30} s)"
finish proxy || status=$?
exit "$status"
