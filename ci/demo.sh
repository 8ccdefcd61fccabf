#!/usr/bin/env bash
# The main job: set up, build, then compare the reference with the peers —
#   1. the example echo server answering a request (the smallest end-to-end check);
#   2. conformance of the HTTP server layer, five ways: reference, Tornado, aiohttp,
#      nginx, h2o (each started on 127.0.0.1 with a free port, stopped by PID);
#   3. conformance of the loop, stream and client layers: reference and Tornado (and the
#      aiohttp and curl clients);
#   4. a short load comparison (2 s per scenario, four scenarios, five implementations).
# Tables are printed as it goes; the reports (HTML, JSON, JUnit, Markdown, PNG) land in
# build/report/.
set -euo pipefail
cd "$(dirname "$0")/.."

ci/setup.sh
ci/build.sh release
report=build/report
mkdir -p "$report"
PY=/usr/bin/python3

echo; echo "=== 1/4 echo example"
server=build/release/reference/squall-echo-server
log=$(mktemp)
"$server" --port 0 --address 127.0.0.1 >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
port=""
for _ in $(seq 1 100); do
  port=$(sed -n 's/^port=\([0-9]*\)$/\1/p' "$log")
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "echo server did not start:"; cat "$log"; exit 1; }
reply=$($PY - "$port" <<'PY'
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as s:
    s.sendall(b"hello, squall\n")
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
print(data.decode().rstrip("\n"))
PY
)
kill -TERM "$pid"
wait "$pid" && status=0 || status=$?
trap 'rm -f "$log"' EXIT
echo "echo server on 127.0.0.1:$port: sent 'hello, squall', received '$reply', exit status $status"
[ "$reply" = "hello, squall" ] && [ "$status" -eq 0 ]

echo; echo "=== 2/4 conformance, HTTP server layer: reference, tornado, aiohttp, nginx, h2o"
$PY conformance/run.py --impl reference,tornado,aiohttp,nginx,h2o --quiet \
  --html "$report/conformance.html" --json "$report/conformance.json" --junit "$report/conformance.xml"

echo; echo "=== 3/4 conformance, loop, stream and client layers: reference, tornado, aiohttp, curl"
$PY -m conformance.layers --impl reference,tornado,aiohttp,curl --quiet --json "$report/conformance-layers.json"

echo; echo "=== 4/4 load comparison (2 s per scenario)"
$PY load/run.py --impl reference,tornado,aiohttp,nginx,h2o --scenario plaintext,pipeline,json,connection_close \
  --duration 2 --warmup 1 --out "$report/load"

echo
echo "Reports: $report/conformance.html (server layer, request/response bytes per cell),"
echo "         $report/conformance-layers.json, $report/load/results.md and $report/load/*.png"
