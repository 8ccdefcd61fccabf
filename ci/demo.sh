#!/usr/bin/env bash
# The main job: set up, build, then compare the reference with the peers —
#   1. the example echo server answering a request (the smallest end-to-end check);
#   2. conformance, all four layers in one run and one report: the HTTP server layer
#      against the reference, Tornado, aiohttp, nginx and h2o; the loop and stream layers
#      against the reference and Tornado; the client layer against the reference, Tornado,
#      aiohttp and curl (each started on 127.0.0.1 with a free port, stopped by PID;
#      a peer without a layer is n/a there);
#   3. the server layer again over TLS (run.py --tls) against every peer that serves
#      HTTPS: the reference, Tornado, aiohttp, nginx and h2o, with a test certificate;
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

echo; echo "=== 2/4 conformance, server/loop/stream/client layers: reference, tornado, aiohttp, curl, nginx, h2o"
$PY conformance/run.py --impl reference,tornado,aiohttp,curl,nginx,h2o --layers server,loop,stream,client \
  --gate reference,tornado --quiet \
  --html "$report/conformance.html" --json "$report/conformance.json" --junit "$report/conformance.xml"

echo; echo "=== 3/4 conformance, server layer over TLS: reference, tornado, aiohttp, nginx, h2o"
$PY conformance/run.py --tls --impl reference,tornado,aiohttp,nginx,h2o --layers server \
  --gate reference,tornado --quiet \
  --html "$report/conformance-tls.html" --json "$report/conformance-tls.json" --junit "$report/conformance-tls.xml"

echo; echo "=== 4/4 load comparison (2 s per scenario)"
$PY -m squall_load --impl reference,tornado,aiohttp,nginx,h2o --scenario plaintext,pipeline,json,connection_close \
  --duration 2 --warmup 1 --out "$report/load"

echo
echo "Reports: $report/conformance.html (one section per layer; the bytes or transcript behind every cell),"
echo "         $report/conformance-tls.html (the server layer over TLS), $report/conformance{,-tls}.{json,xml},"
echo "         $report/load/results.md and $report/load/*.png"
