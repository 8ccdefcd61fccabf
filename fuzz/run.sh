#!/usr/bin/env bash
# Runs every libFuzzer target built by fuzz/build.sh for SECONDS each (default 30), JOBS
# targets at a time (default nproc: a libFuzzer process uses one core), and prints a table
# in the order of the targets: target, executions, execs/s, coverage (cov = edges, ft =
# features, from libFuzzer's final stats line), corpus size (inputs), findings.
#
#   fuzz/run.sh [SECONDS] [TARGET...]      OUT=build/fuzz/out by default
#   RUNS=10000000 fuzz/run.sh 1800         stop each target at RUNS executions or SECONDS,
#                                          whichever comes first (long runs)
#   JOBS=1 fuzz/run.sh 60                  one target at a time (e.g. to compare execs/s)
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

row() { printf '%-12s %14s %10s %8s %8s %8s %9s\n' "$@"; }

# fuzz_one TARGET: fuzzes it, then writes its table row to $scratch/TARGET/row and "1" to
# $scratch/TARGET/failed if it found something (run in the background: files, not variables).
fuzz_one() {
  local t=$1
  local bin="$OUT/${t}_fuzzer"
  local corpus="$scratch/$t/corpus"
  local artifacts="$scratch/$t/artifacts"
  mkdir -p "$corpus" "$artifacts"
  cp -r fuzz/corpus/"$t"/. "$corpus"/ 2>/dev/null || true
  cp -r fuzz/regressions/"$t"/. "$corpus"/ 2>/dev/null || true
  rm -f "$corpus"/.keep
  local log="fuzz/findings/logs/$t.log"
  local extra runs_flag=()
  mapfile -t extra < <(options_flags "fuzz/options/$t.options")
  [ -n "${RUNS:-}" ] && runs_flag=(-runs="$RUNS")
  echo "== $t: ${seconds}s${RUNS:+ or $RUNS executions}" >&2
  "$bin" "$corpus" -max_total_time="$seconds" "${runs_flag[@]}" -dict=fuzz/http.dict -artifact_prefix="$artifacts/" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${extra[@]}" >"$log" 2>&1
  local rc=$?
  local execs rate last cov ft ncorpus findings
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
  [ "$findings" = "0" ] || echo 1 >"$scratch/$t/failed"
  row "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$ncorpus" "$findings" >"$scratch/$t/row"
}

# At most JOBS targets at once: before starting another, wait for one to end.
jobs=${JOBS:-$(nproc)}
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
  fuzz_one "$t" &
  running=$((running + 1))
done
wait

row target executions execs/s cov ft corpus findings
total_findings=0
for t in "${targets[@]}"; do
  # No row: its run ended before writing one, which counts as a finding.
  cat "$scratch/$t/row" 2>/dev/null || row "$t" '?' '?' '?' '?' '?' 'no result'
  [ -f "$scratch/$t/row" ] && [ ! -f "$scratch/$t/failed" ] || total_findings=$((total_findings + 1))
done
if [ "$total_findings" -gt 0 ]; then
  echo "run.sh: findings in $total_findings target(s): see fuzz/findings/ and fuzz/findings/logs/" >&2
  exit 1
fi
