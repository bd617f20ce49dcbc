#!/usr/bin/env bash
# Multi-instance cost: the fanout and bars scenarios through two tickwire instances sharing one
# nats-server (JetStream), the producer on instance A and the consumers on instance B, against
# the same scenarios on one embedded process, in one run. The servers (nats-server and the
# tickwire instances) share core 0, the load generator runs on core 1, as in bench-compare.sh.
#
# Usage: scripts/bench-cluster.sh [--duration 10s] [--subscribers 10] [--out DIR]
#   --build DIR   the release build (default build/release)
# Prints one table and writes DIR/bench-cluster.md (default docs/perf).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${ROOT}/build/release"
DURATION=10s
SUBS=10
OUT="${ROOT}/docs/perf"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) DURATION="$2"; shift ;;
    --subscribers) SUBS="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    --build) BUILD="$2"; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "bench-cluster.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
SERVER="${BUILD}/apps/server/tickwire-server"
CLI="${BUILD}/apps/cli/tickwire"
for tool in "${SERVER}" "${CLI}"; do [[ -x "${tool}" ]] || { echo "bench-cluster.sh: ${tool} missing (build first)" >&2; exit 2; }; done
command -v nats-server >/dev/null || { echo "bench-cluster.sh: nats-server missing (scripts/setup.sh)" >&2; exit 2; }
command -v jq >/dev/null || { echo "bench-cluster.sh: jq missing (scripts/setup.sh)" >&2; exit 2; }

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "${p}" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "${p}" 2>/dev/null || true; done
  rm -rf "${WORK}"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() {  # metrics port
  for _ in $(seq 1 300); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/readyz")" == 200 ]] && return 0
    sleep 0.05
  done
  echo "bench-cluster.sh: an instance did not become ready" >&2
  exit 1
}
export STREAM_USER=bench STREAM_PASS=bench

# One run of a scenario: $1 label, then the bench arguments.
run() {
  local label="$1"; shift
  timeout 300 taskset -c 1 "${CLI}" bench "$@" --user bench --pass bench --json >"${WORK}/${label}.json"
}

start_embedded() {
  local port metrics
  port="$(free_port)"; metrics="$(free_port)"
  LISTEN_ADDR="127.0.0.1:${port}" METRICS_ADDR="127.0.0.1:${metrics}" LOG_LEVEL=warn \
    taskset -c 0 "${SERVER}" >"${WORK}/embedded.log" 2>&1 &
  PIDS+=($!)
  wait_ready "${metrics}"
  EMBEDDED_PID=$!
  EMBEDDED_ADDR="127.0.0.1:${port}"
}

start_cluster() {
  local nats_port
  nats_port="$(free_port)"
  taskset -c 0 nats-server -js -sd "${WORK}/js" -a 127.0.0.1 -p "${nats_port}" >"${WORK}/nats.log" 2>&1 &
  PIDS+=($!)
  for name in a b; do
    local port metrics
    port="$(free_port)"; metrics="$(free_port)"
    NATS_URL="nats://127.0.0.1:${nats_port}" INSTANCE_ID="${name}" LISTEN_ADDR="127.0.0.1:${port}" \
      METRICS_ADDR="127.0.0.1:${metrics}" LOG_LEVEL=warn \
      taskset -c 0 "${SERVER}" >"${WORK}/${name}.log" 2>&1 &
    PIDS+=($!)
    wait_ready "${metrics}"
    if [[ "${name}" == a ]]; then ADDR_A="127.0.0.1:${port}"; else ADDR_B="127.0.0.1:${port}"; PID_B=$!; fi
  done
}

stop_all() {
  for p in "${PIDS[@]}"; do kill "${p}" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "${p}" 2>/dev/null || true; done
  PIDS=()
}

echo "bench-cluster: embedded" >&2
start_embedded
run embedded-fanout fanout --addr "${EMBEDDED_ADDR}" --subscribers "${SUBS}" --duration "${DURATION}" \
  --max-inflight 20000 --server-pid "${EMBEDDED_PID}"
run embedded-bars bars --addr "${EMBEDDED_ADDR}" --duration "${DURATION}"
stop_all

echo "bench-cluster: two instances on one nats-server" >&2
start_cluster
run cluster-fanout fanout --addr "${ADDR_B}" --pub-addr "${ADDR_A}" --subscribers "${SUBS}" \
  --duration "${DURATION}" --max-inflight 20000 --server-pid "${PID_B}"
stop_all
start_cluster
run cluster-bars bars --addr "${ADDR_B}" --pub-addr "${ADDR_A}" --duration "${DURATION}"
stop_all

mkdir -p "${OUT}"
python3 - "${WORK}" "${OUT}/bench-cluster.md" "${SUBS}" "${DURATION}" <<'PY'
import json, os, sys
work, out, subs, duration = sys.argv[1:5]
def load(name):
    return json.load(open(os.path.join(work, name + ".json")))
def pick(d, *keys):
    for k in keys:
        cur = d
        ok = True
        for part in k.split("."):
            if isinstance(cur, dict) and part in cur:
                cur = cur[part]
            else:
                ok = False
                break
        if ok:
            return cur
    return None
ef, cf = load("embedded-fanout"), load("cluster-fanout")
eb, cb = load("embedded-bars"), load("cluster-bars")
def rate(d): return pick(d, "delivered_per_s", "delivered_records_per_s", "rates.delivered")
def p99(d): return pick(d, "latency_us.p99", "latency.p99_us")
def bp(d, k): return pick(d, "delay_ms." + k, "delay." + k + "_ms")
rows = [
    (f"fanout, {subs} subscribers: delivered records/s", rate(ef), rate(cf)),
    (f"fanout, {subs} subscribers: p99 latency µs", p99(ef), p99(cf)),
    ("bars (10,000 topics, 100 consumers of '*'): p50 delay ms", bp(eb, "p50"), bp(cb, "p50")),
    ("bars: p99 delay ms", bp(eb, "p99"), bp(cb, "p99")),
]
lines = [f"# One embedded process against two instances on one nats-server ({duration} per run)", "",
         "Producer on instance A, consumers on instance B; the servers share core 0, the load generator runs on core 1.", "",
         "| figure | embedded | two instances | two / embedded |", "|---|---:|---:|---:|"]
for name, e, c in rows:
    ratio = f"{c / e:.2f}" if isinstance(e, (int, float)) and isinstance(c, (int, float)) and e else "-"
    fmt = lambda v: f"{v:,.0f}" if isinstance(v, (int, float)) and v >= 100 else (f"{v:.1f}" if isinstance(v, (int, float)) else "-")
    lines.append(f"| {name} | {fmt(e)} | {fmt(c)} | {ratio} |")
fan_ok = all(d.get("passed") for d in (ef, cf))
bars_ok = all(d.get("missing") == 0 and d.get("duplicates") == 0 and d.get("errors") == 0 and
              d.get("count_mismatches") == 0 for d in (eb, cb))
lines += ["", f"Checks: fanout every record once and in order: {'passed' if fan_ok else 'FAILED'}; "
          f"bars none missing, duplicated or miscounted: {'passed' if bars_ok else 'FAILED'}."]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
sys.exit(0 if fan_ok and bars_ok else 1)
PY
