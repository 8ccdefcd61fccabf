#!/usr/bin/env bash
# The main job at this stage of the project: set up, build, start the example echo
# server on 127.0.0.1 with a free port, show a request answered, stop it by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

ci/setup.sh
ci/build.sh release

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
echo "== echo server pid $pid listening on 127.0.0.1:$port"

reply=$(/usr/bin/python3 - "$port" <<'PY'
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
echo "sent:     hello, squall"
echo "received: $reply"
kill -TERM "$pid"
wait "$pid" && status=0 || status=$?
trap 'rm -f "$log"' EXIT
echo "== server exited with status $status"
[ "$reply" = "hello, squall" ] && [ "$status" -eq 0 ]
