#!/usr/bin/env bash
# Load smoke test: every scenario for 1 s against the reference and Tornado (the memory
# scenario with 200 idle connections), then the TLS scenarios (wrk over HTTPS) against the
# reference and nginx, then -- when $SQUALL_BIN/squall-bare-server exists -- the canned-reply
# floor `bare` (load/implementations/bare.toml) on its scenarios; checks that the outputs are
# well-formed (JSON with the expected fields, every implementation's version and description,
# no NaN, Markdown table, PNG plots) and error-free. Then the runner's unit tests
# (load/tests: a description the suite never saw and a --url server measured beside the
# reference; squall-load against a server with a known stall, every framing, TLS, and a
# two-step --curve run; a Locust master and two workers measuring the reference through
# python3 -m squall_load --engine locust). Exits non-zero on any failed run or malformed output.
# Takes about two and a half minutes.
#
#   ci/load-smoke.sh                   # expects build/release/reference/squall-contract-app
#   SQUALL_BIN=build/asan/reference ci/load-smoke.sh   # Squall's programs from another build
#   SQUALL_LOAD_SMOKE_IMPLS=tornado ci/load-smoke.sh   # another set of implementations
set -euo pipefail
cd "$(dirname "$0")/.."

PY=/usr/bin/python3
impls=${SQUALL_LOAD_SMOKE_IMPLS:-reference,tornado}
bin=${SQUALL_BIN:-build/release/reference}
out=$(mktemp -d /tmp/squall-load-smoke.XXXXXX)
trap 'rm -rf "$out"' EXIT

if [[ ",$impls," == *,reference,* && ! -x $bin/squall-contract-app ]]; then
  echo "load-smoke: $bin/squall-contract-app is missing (ci/build.sh release)" >&2
  exit 1
fi
if [[ -z "${SQUALL_LOAD_SMOKE_IMPLS:-}" && ! -x $bin/squall-load ]]; then
  echo "load-smoke: $bin/squall-load is missing (ci/build.sh release)" >&2
  exit 1
fi
if [[ -z "${SQUALL_LOAD_SMOKE_IMPLS:-}" && ! -x /usr/bin/locust ]]; then
  echo "load-smoke: /usr/bin/locust is missing (ci/setup.sh installs python3-locust)" >&2
  exit 1
fi

# smoke IMPLS GROUP DIR: runs the scenario group ("all" or "tls") and checks the outputs.
smoke() {
  local impls=$1 group=$2 dir=$3 status=0
  mkdir -p "$dir"
  echo "== load smoke: $impls, $group scenarios, 1 s each -> $dir"
  timeout 180 "$PY" -m squall_load --impl "$impls" --scenario "$group" --duration 1 --warmup 1 --repeat 1 \
    --idle-connections 200 --squall-bin "$bin" --out "$dir" >"$dir/stdout.md" 2>"$dir/stderr.log" || status=$?
  cat "$dir/stderr.log" >&2
  check "$dir" "$impls" "$status" "$group"
}

check() {
"$PY" - "$@" <<'PYEOF'
import json, os, re, sys
out, impls, status, group = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), sys.argv[4]
from squall_load.scenarios import SCENARIOS, TLS_SCENARIOS
from squall_load.impls import resolve, unserved  # scenarios a description declares n/a up front (bare's)
SCENARIOS = TLS_SCENARIOS if group == "tls" else SCENARIOS
problems = []
try:
    data = json.load(open(os.path.join(out, "results.json")))
except Exception as e:
    print(f"load-smoke: results.json unreadable: {e}", file=sys.stderr); sys.exit(1)
meta = data.get("meta", {})
for key in ("date", "cpu_model", "impls", "baseline", "duration_s", "wrk", "implementations", "engines"):
    if key not in meta:
        problems.append(f"meta lacks {key}")
for impl in impls:
    info = meta.get("implementations", {}).get(impl, {})
    if not info.get("version") or not info.get("description"):
        problems.append(f"{impl}: no version or description file in meta.implementations")
rows = {(r["impl"], r["scenario"]): r for r in data.get("results", [])}
for impl in impls:
    desc = resolve(impl)
    for sc in SCENARIOS:
        r = rows.get((impl, sc.name))
        if r is None:
            problems.append(f"{impl}/{sc.name}: no result"); continue
        if unserved(desc, sc):
            if r["status"] != "n/a" or not r.get("reason"):
                problems.append(f"{impl}/{sc.name}: {r['status']}, expected n/a with a reason")
            continue
        if r["status"] != "ok":
            problems.append(f"{impl}/{sc.name}: {r['status']}: {r.get('reason')}"); continue
        if sc.name == "memory":
            if r["opened"] != r["connections"] or not isinstance(r["rss_per_connection_kb"], (int, float)):
                problems.append(f"{impl}/memory: malformed {r}")
            continue
        if r.get("engine") != "wrk" or not (r.get("pinned") or {}).get("pids"):
            problems.append(f"{impl}/{sc.name}: engine or pinned process tree missing")
        for key in ("rps", "transfer_bytes_per_s", "errors", "server_cpu_s", "peak_rss_kb",
                    "rps_per_server_cpu_s", "client_cpu_util", "client_bound"):
            if r.get(key) is None:
                problems.append(f"{impl}/{sc.name}: lacks {key}")
        if not r.get("requests"):
            problems.append(f"{impl}/{sc.name}: no requests")
        if any(r["errors"].values()):
            problems.append(f"{impl}/{sc.name}: errors {r['errors']}")
        lat = r.get("latency_us")
        if sc.latency_meaningful and (not lat or not all(k in lat for k in ("p50", "p90", "p99", "p99.9"))):
            problems.append(f"{impl}/{sc.name}: latency percentiles missing")
md = open(os.path.join(out, "results.md")).read() if os.path.exists(os.path.join(out, "results.md")) else ""
if "| scenario |" not in md or "## Implementations" not in md:
    problems.append("results.md has no table or no Implementations section")
for name in ("results.json", "results.md", "stdout.md", "stderr.log"):
    text = open(os.path.join(out, name)).read() if os.path.exists(os.path.join(out, name)) else ""
    if re.search(r"\bnan\b", text, re.IGNORECASE):
        problems.append(f"{name} prints NaN (a figure that was not measured must be n/a with a reason)")
for png in ("throughput.png", "latency.png"):
    p = os.path.join(out, png)
    if not os.path.exists(p) or open(p, "rb").read(8) != b"\x89PNG\r\n\x1a\n":
        problems.append(f"{png} missing or not a PNG")
if status != 0:
    problems.append(f"the load runner exited {status}")
if problems:
    print("load-smoke: FAILED", file=sys.stderr)
    for p in problems:
        print("  - " + p, file=sys.stderr)
    sys.exit(1)
print(f"load-smoke: ok ({group}: {len(rows)} results, outputs well-formed, no errors)")
PYEOF
}

smoke "$impls" all "$out/plain"
if [[ -z "${SQUALL_LOAD_SMOKE_IMPLS:-}" ]]; then
  smoke reference,nginx tls "$out/tls"
  if [[ -x $bin/squall-bare-server ]]; then
    smoke bare all "$out/bare"   # measured on 4 scenarios, the others must be n/a
  fi
  echo "== load runner unit tests (load/tests)"
  SQUALL_BIN=$bin timeout 300 "$PY" -m unittest discover -s load/tests
fi
