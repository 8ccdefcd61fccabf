#!/bin/bash
# User-space instructions per request of the reference, as load/performance.md counts them:
# squall-contract-app under callgrind while `wrk -t1 -c64 -d8` sends requests, then
# (the program's instructions - its start-up and shutdown) / the requests wrk completed.
#   load/profiling/callgrind_requests.sh BIN_DIR [PATH] [WRK_LUA] [OUT]
# Environment: CONNS (wrk's connections, 64), CALLGRIND_OPTS (more valgrind options, e.g.
# "--cache-sim=yes --D1=49152,12,64 --LL=4194304,16,64" for L1/L2 misses per function;
# with --dump-instr=yes it also prints the code's footprint per request, hot_pages.py).
#   e.g. load/profiling/callgrind_requests.sh build/release/reference /plaintext
#        load/profiling/callgrind_requests.sh build/release/reference /plaintext load/profiling/browser_headers.lua
#        load/profiling/callgrind_requests.sh build/release/reference /plaintext load/scenarios/pipeline.lua
# Run it from the clone's root (the pipeline script loads load/scenarios/common.lua from
# there). Only ratios measured in one sitting compare: the per-iteration costs spread over
# more or fewer requests as the rate under callgrind varies. Needs valgrind, wrk, curl.
set -euo pipefail
bin=${1:?BIN_DIR holding squall-contract-app}
path=${2:-/plaintext}
script=${3:-}
out=${4:-$(mktemp /tmp/callgrind.XXXXXX)}
startup=10000000  # instructions of start-up and shutdown alone (measured with no request)
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
valgrind --tool=callgrind ${CALLGRIND_OPTS:-} --callgrind-out-file="$out" "$bin/squall-contract-app" --port "$port" \
  --log-level warning >/dev/null 2>"$out.log" &
server=$!
trap 'kill -INT $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$port/plaintext" && break
  sleep 0.2
done
echo "callgrind: wrk -t1 -c${CONNS:-64} -d8 ${script:+-s $script }$path" >&2
requests=$(wrk -t1 -c${CONNS:-64} -d8 ${script:+-s "$script"} "http://127.0.0.1:$port$path" | awk '/requests in/ {print $1}')
kill -INT $server
wait $server || true
trap - EXIT
total=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "requests $requests, instructions per request $(( (total - startup) / requests )) ($out)"
if [[ " ${CALLGRIND_OPTS:-} " == *" --dump-instr=yes "* ]]; then
  /usr/bin/python3 "$(dirname "$0")/hot_pages.py" "$out" "$requests"
fi
