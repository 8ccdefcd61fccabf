#!/usr/bin/env bash
# Conformance suite (HTTP server layer) against the reference and the Tornado peer.
# Fails when the reference fails a MUST case or a "Tornado semantics" case, or when the
# Tornado peer fails a "Tornado semantics" case. Reports: build/conformance/{json,xml,html}.
#   ci/conformance.sh [extra run.py args, e.g. --area smuggling]
# The five-way comparison: /usr/bin/python3 conformance/run.py --impl reference,tornado,aiohttp,nginx,h2o --html build/conformance/all.html
set -euo pipefail
cd "$(dirname "$0")/.."

bin=build/release/reference/squall-contract-app
if [[ ! -x "$bin" ]]; then
  cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  ninja -C build/release squall-contract-app
fi
mkdir -p build/conformance
exec timeout 240 /usr/bin/python3 conformance/run.py \
  --impl reference,tornado --reference-bin "$bin" --required-for reference,tornado --quiet \
  --json build/conformance/conformance.json --junit build/conformance/conformance.xml \
  --html build/conformance/conformance.html "$@"
