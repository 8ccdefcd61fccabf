# shellcheck shell=bash
# Sourced by the CI scripts to run steps that mostly wait (on sockets, timers, or at low
# priority for idle CPU) beside others, each one's output kept apart and printed in one piece
# when it is waited for, so logs read as if the steps had run one after the other.
#   background NAME CMD...   starts CMD, its stdout and stderr in a file of its own
#   finish NAME              waits for it, prints its output, returns its exit status
# At exit, also after a failure, the sourcing script waits for what still runs, so nothing
# it started outlives it, then removes the output files.
background_outputs=$(mktemp -d "${TMPDIR:-/tmp}/squall-ci.XXXXXX")
trap 'wait; rm -rf "$background_outputs"' EXIT
declare -A background_pid

background() {
  local name=$1
  shift
  "$@" >"$background_outputs/$name" 2>&1 &
  background_pid[$name]=$!
}

finish() {
  local status=0
  wait "${background_pid[$1]}" || status=$?
  cat "$background_outputs/$1"
  return "$status"
}
