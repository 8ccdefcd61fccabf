#!/usr/bin/env bash
# Runs every libFuzzer target built by fuzz/build.sh for SECONDS each (default 30), one
# at a time, and prints a table: target, executions, execs/s, coverage (cov = edges,
# ft = features, from libFuzzer's final stats line), corpus size (inputs), findings.
#
#   fuzz/run.sh [SECONDS] [TARGET...]      OUT=build/fuzz/out by default
#   RUNS=10000000 fuzz/run.sh 1800         stop each target at RUNS executions or SECONDS,
#                                          whichever comes first (long runs)
#
# Each target starts from a scratch copy of fuzz/corpus/<t>/ and fuzz/regressions/<t>/
# (the repository is never modified), with fuzz/http.dict and the flags of
# fuzz/options/<t>.options. Any crash-, leak-, timeout- or oom- file is a finding: it is
# copied to fuzz/findings/<t>/ (gitignored) and the script exits 1. The libFuzzer log of
# each target is kept in fuzz/findings/logs/<t>.log.
set -uo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)

seconds=${1:-30}
shift || true
OUT=${OUT:-$src/build/fuzz/out}
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for bin in "$OUT"/*_fuzzer; do
    [ -x "$bin" ] && targets+=("$(basename "${bin%_fuzzer}")")
  done
fi
[ ${#targets[@]} -gt 0 ] || { echo "run.sh: no fuzz targets in $OUT (run fuzz/build.sh)" >&2; exit 2; }

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p fuzz/findings/logs
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# options file ("[libfuzzer]" then "name = value" lines) -> -name=value flags
options_flags() {
  local file=$1
  [ -f "$file" ] || return 0
  sed -n 's/^[[:space:]]*\([a-z_]*\)[[:space:]]*=[[:space:]]*\(.*[^[:space:]]\)[[:space:]]*$/-\1=\2/p' "$file"
}

rows=()
total_findings=0
for t in "${targets[@]}"; do
  bin="$OUT/${t}_fuzzer"
  corpus="$scratch/$t/corpus"
  artifacts="$scratch/$t/artifacts"
  mkdir -p "$corpus" "$artifacts"
  cp -r fuzz/corpus/"$t"/. "$corpus"/ 2>/dev/null || true
  cp -r fuzz/regressions/"$t"/. "$corpus"/ 2>/dev/null || true
  rm -f "$corpus"/.keep
  log="fuzz/findings/logs/$t.log"
  mapfile -t extra < <(options_flags "fuzz/options/$t.options")
  runs_flag=()
  [ -n "${RUNS:-}" ] && runs_flag=(-runs="$RUNS")
  echo "== $t: ${seconds}s${RUNS:+ or $RUNS executions}" >&2
  "$bin" "$corpus" -max_total_time="$seconds" "${runs_flag[@]}" -dict=fuzz/http.dict -artifact_prefix="$artifacts/" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${extra[@]}" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
  ncorpus=$(find "$corpus" -type f | wc -l)
  findings=$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  if [ "$findings" -gt 0 ]; then
    mkdir -p "fuzz/findings/$t"
    cp "$artifacts"/* "fuzz/findings/$t/"
  elif [ "$rc" -ne 0 ]; then
    findings="rc=$rc"  # the fuzzer failed without an artifact: see the log
  fi
  [ "$findings" = "0" ] || total_findings=$((total_findings + 1))
  rows+=("$(printf '%-12s %14s %10s %8s %8s %8s %9s' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$ncorpus" "$findings")")
done

printf '%-12s %14s %10s %8s %8s %8s %9s\n' target executions execs/s cov ft corpus findings
for r in "${rows[@]}"; do echo "$r"; done
if [ "$total_findings" -gt 0 ]; then
  echo "run.sh: findings in $total_findings target(s): see fuzz/findings/ and fuzz/findings/logs/" >&2
  exit 1
fi
