#!/usr/bin/env bash
# The Python harness as a user installs it (pyproject.toml): a venv made with
# --system-site-packages (Debian's python3-tornado, -aiohttp, -matplotlib, -locust stay
# visible), `pip install --no-deps --no-build-isolation` (nothing downloaded), then, from
# a folder outside the clone and with the venv's bin first on PATH:
#   - every console entry point pyproject.toml declares: --version prints the project's
#     version, --help its usage (conformance/tests/test_tools.py checks that it names
#     every option's default);
#   - the tools are imported from the venv, not from the clone;
#   - real runs: the conformance suite's loop and stream layers and a few server cases over
#     TLS against the reference, the Tornado peer and the Node.js programs (the installed
#     descriptions, peers, probes, certificates script and outside/ programs), a 1 s
#     load run of the reference (the installed Lua scenarios) and 40 wire-fuzzing inputs
#     against the reference and Tornado (the installed explained.json).
# Squall's programs are found on PATH, as after `cmake --install`: $SQUALL_BIN (default
# build/release/reference) is put there. Writes only under a temporary folder, removed at
# exit. About 30 s.
#   ci/package-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

repo=$PWD
bin=$(realpath "${SQUALL_BIN:-build/release/reference}")
if [[ ! -x $bin/squall-contract-app ]]; then
  echo "package-test: $bin/squall-contract-app is missing (ci/build.sh release)" >&2
  exit 1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/squall-package-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
step() { echo "-- package test: $1"; }
# quietly LOG CMD...: runs CMD with its output in LOG, shown only when it fails.
quietly() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 || { local status=$?; cat "$log" >&2; echo "package-test: $* exited $status" >&2; exit 1; }
}

# The build runs in a copy of the files git knows: setuptools writes build/ and
# *.egg-info next to pyproject.toml, and the clone's build/ is CMake's.
step "copy of the clone's files in $work/src"
mkdir "$work/src"
git ls-files -co --exclude-standard -z | tar --null -cf - -T - | tar -xf - -C "$work/src"

step "venv (--system-site-packages), pip install --no-deps --no-build-isolation"
/usr/bin/python3 -m venv --system-site-packages "$work/venv"
"$work/venv/bin/pip" install --quiet --no-deps --no-build-isolation --no-index "$work/src"

mkdir "$work/outside"
cd "$work/outside"
export PATH="$work/venv/bin:$bin:$PATH"
unset SQUALL_BIN PYTHONPATH
py=$work/venv/bin/python

step "imported from the venv"
"$py" - "$work/venv" <<'PYEOF'
import sys
import squall_conformance, squall_load, squall_wire
for mod in (squall_conformance, squall_load, squall_wire):
    assert mod.__file__.startswith(sys.argv[1]), f"{mod.__name__} imported from {mod.__file__}"
    print(f"   {mod.__name__}: {mod.__file__}")
PYEOF

version=$("$py" -c 'import squall_conformance; print(squall_conformance.__version__)')
mapfile -t tools < <("$py" -c 'import sys, tomllib; print(*tomllib.load(open(sys.argv[1], "rb"))["project"]["scripts"], sep="\n")' \
  "$repo/pyproject.toml")
for tool in "${tools[@]}"; do
  step "$tool --version, --help"
  got=$("$tool" --version)
  [[ $got == "$tool $version" ]] || { echo "package-test: $tool --version printed '$got', not '$tool $version'" >&2; exit 1; }
  "$tool" --help | grep -q "^usage: $tool " || { echo "package-test: $tool --help printed no usage" >&2; exit 1; }
done

step "squall-conformance: loop and stream layers, reference and Tornado"
quietly "$work/layers.log" timeout -k 10 240 squall-conformance --impl reference,tornado --layers loop,stream \
  --gate reference --quiet --json "$work/layers.json"
step "squall-conformance: server cases over TLS, reference, Tornado and the installed Node.js programs"
quietly "$work/tls.log" timeout -k 10 240 squall-conformance --tls --impl reference,tornado,outside/node/node.toml \
  --case 'SYN-00*,FRM-00*' --gate reference --quiet --json "$work/tls.json"
"$py" - "$work/layers.json" "$work/tls.json" <<'PYEOF'
import json, sys
for path in sys.argv[1:]:
    report = json.load(open(path))
    verdicts = [r["verdict"] for c in report["cases"] for r in c["results"].values()]
    errors = [(c["id"], i, r["reason"]) for c in report["cases"] for i, r in c["results"].items()
              if r["verdict"] == "error"]
    assert verdicts and not errors, f"{path}: {len(verdicts)} results, errors {errors[:3]}"
    print(f"   {path.rsplit('/', 1)[1]}: {len(report['cases'])} cases, {len(verdicts)} results, no error")
PYEOF

step "squall-loadrun: the reference, plaintext, 1 s"
quietly "$work/load.log" timeout -k 10 120 squall-loadrun --impl reference --scenario plaintext --duration 1 \
  --warmup 0 --repeat 1 --no-plots --out "$work/load"
"$py" - "$work/load/results.json" <<'PYEOF'
import json, sys
(row,) = json.load(open(sys.argv[1]))["results"]
assert row["status"] == "ok" and row["requests"] > 0, row
print(f"   {row['impl']}/{row['scenario']}: {row['requests']} requests, {row['rps']:.0f}/s")
PYEOF
step "squall-wire: the reference and Tornado, 40 inputs"
quietly "$work/wire.log" timeout -k 10 180 squall-wire --impl reference,tornado --count 40 --seed 1 \
  --fail-on-boundary --quiet --out "$work/wire" --json "$work/wire.json"
"$py" - "$work/wire.json" <<'PYEOF'
import json, sys
report = json.load(open(sys.argv[1]))
inputs = report["meta"]["inputs"]
assert inputs >= 40, report["meta"]
print(f"   {inputs} inputs, {len(report['findings'])} findings kept")
PYEOF
step "passed"
