#!/usr/bin/env bash
# Runs the reference scenarios against tickwire-server, nats-server and redis-server in one go and
# prints them side by side, with the ratio of tickwire to the better of the two peers:
#   fanout   1 publisher of 64-byte messages, 1 / 10 / 100 subscribers: delivered msgs/s
#   ingest   1 publisher, 1 subscriber: msgs/s (tickwire: `bench ingest --check`, acked PUBLISH
#            frames of 100 ticks over 1000 topics; plus 1 and 4 producers without a subscriber)
#   latency  50,000 msgs/s to 10 subscribers: p50 / p90 / p99 / p99.9 (tickwire also with
#            BATCH_WINDOW_MS=0)
#   conns    idle authenticated connections with keepalives: server RSS per connection
# Each server runs on 127.0.0.1 on a free port, pinned to core 0 (taskset), the load generator to
# core 1; the conns scenario gets a freshly started server. Writes bench-compare.json (every
# run's report), bench-compare.md (the tables) and two gnuplot PNGs (delivered rate vs
# subscribers, latency percentiles) to the output directory. Stops only the servers it started,
# by PID; every run is bounded by `timeout`. Exits 1 when a run's checks failed.
#
# Usage: scripts/bench-compare.sh [--quick] [--duration D] [--out DIR] [--build DIR]
#   --quick          3 s per run, 2,000 connections held 5 s (a smoke run, about 2 minutes)
#   --duration D     measured time per run (default 10s; each run adds 1 s of warm-up)
#   --out DIR        where the results go (default docs/perf)
#   --build DIR      the build with the binaries (default build/release; built if missing)
#   --conns N        idle connections (default 10000), held for --conns-hold (default 20s)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DURATION=10s
CONNS=10000
CONNS_HOLD=20s
OUT="${ROOT}/docs/perf"
BUILD="${ROOT}/build/release"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) DURATION=3s; CONNS=2000; CONNS_HOLD=5s ;;
    --duration) DURATION="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    --build) BUILD="$2"; shift ;;
    --conns) CONNS="$2"; shift ;;
    --conns-hold) CONNS_HOLD="$2"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench-compare: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

CLI="${BUILD}/apps/cli/tickwire"
SERVER="${BUILD}/apps/server/tickwire-server"
NATS_BENCH="${BUILD}/bench/peers/tickwire-nats-bench"
REDIS_BENCH="${BUILD}/bench/peers/tickwire-redis-bench"
NATS_SERVER="$(command -v nats-server || echo /usr/sbin/nats-server)"
REDIS_SERVER="$(command -v redis-server || echo /usr/bin/redis-server)"
for tool in python3 gnuplot taskset "${NATS_SERVER}" "${REDIS_SERVER}"; do
  command -v "${tool}" >/dev/null || { echo "bench-compare: ${tool} missing (scripts/setup.sh)" >&2; exit 1; }
done
if [[ ! -x "${CLI}" || ! -x "${SERVER}" || ! -x "${NATS_BENCH}" || ! -x "${REDIS_BENCH}" ]]; then
  echo "bench-compare: building the binaries in ${BUILD}"
  cmake --build "${BUILD}" --parallel 2 --target tickwire tickwire-server tickwire-nats-bench \
    tickwire-redis-bench
fi

# Pinning: server on core 0, load generator on core 1 (when there are two).
if [[ $(nproc) -ge 2 ]]; then
  ON_SERVER_CORE=(taskset -c 0)
  ON_BENCH_CORE=(taskset -c 1)
else
  ON_SERVER_CORE=()
  ON_BENCH_CORE=()
fi
ulimit -n "$(ulimit -Hn)"  # thousands of sockets, inherited by servers and generators
mkdir -p "${OUT}"
WORK="$(mktemp -d /tmp/bench-compare-XXXXXX)"
RESULTS="${WORK}/results.jsonl"
: >"${RESULTS}"
SERVER_PID=""

stop_server() {
  if [[ -n "${SERVER_PID}" ]] && kill -0 "${SERVER_PID}" 2>/dev/null; then
    kill -TERM "${SERVER_PID}" 2>/dev/null || true
    for _ in $(seq 1 100); do  # at most 10 s, then SIGKILL
      kill -0 "${SERVER_PID}" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "${SERVER_PID}" 2>/dev/null || true
    wait "${SERVER_PID}" 2>/dev/null || true
  fi
  SERVER_PID=""
}
cleanup() {
  stop_server
  rm -rf "${WORK}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits (10 s at most) until something accepts on 127.0.0.1:$1.
wait_listening() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "${SERVER_PID}" 2>/dev/null || { echo "bench-compare: server exited" >&2; return 1; }
    sleep 0.1
  done
  echo "bench-compare: nothing listening on port $1 after 10 s" >&2
  return 1
}

# start_server SYSTEM [K=V ...]: starts one server on core 0, sets SERVER_PID and PORT.
start_server() {
  local system="$1"
  shift
  PORT="$(free_port)"
  local log="${WORK}/${system}-${PORT}.log"
  case "${system}" in
    tickwire)
      env STREAM_USER=bench STREAM_PASS=bench LISTEN_ADDR="127.0.0.1:${PORT}" \
        METRICS_ADDR="127.0.0.1:$(free_port)" MAX_UNAUTH_CONNECTIONS=20000 \
        MAX_CONNECTIONS=100000 "$@" "${ON_SERVER_CORE[@]}" "${SERVER}" >"${log}" 2>&1 &
      ;;
    nats)
      "${ON_SERVER_CORE[@]}" "${NATS_SERVER}" -a 127.0.0.1 -p "${PORT}" --user bench \
        --pass bench >"${log}" 2>&1 &
      ;;
    redis)
      "${ON_SERVER_CORE[@]}" "${REDIS_SERVER}" --bind 127.0.0.1 --port "${PORT}" --save '' \
        --appendonly no --requirepass bench --maxclients $((CONNS + 1000)) >"${log}" 2>&1 &
      ;;
  esac
  SERVER_PID=$!
  wait_listening "${PORT}"
}

# run LABEL SYSTEM SCENARIO [ARGS...]: one bench run against the running server; its JSON report,
# tagged with LABEL, is appended to ${RESULTS}. Bounded by `timeout`.
run() {
  local label="$1" system="$2" scenario="$3"
  shift 3
  local cmd
  case "${system}" in
    tickwire) cmd=("${CLI}" bench "${scenario}" --user bench --pass bench) ;;
    nats) cmd=("${NATS_BENCH}" "${scenario}") ;;
    redis) cmd=("${REDIS_BENCH}" "${scenario}") ;;
  esac
  echo "== ${label}: ${system} ${scenario} $*"
  local out="${WORK}/run.json"
  local rc=0
  timeout --signal=INT --kill-after=10 600 "${ON_BENCH_CORE[@]}" "${cmd[@]}" \
    --addr "127.0.0.1:${PORT}" --server-pid "${SERVER_PID}" --json "$@" >"${out}" || rc=$?
  if [[ ${rc} -ne 0 ]]; then echo "bench-compare: ${label} ${system} exited ${rc}" >&2; fi
  python3 - "${label}" "${out}" >>"${RESULTS}" <<'EOF'
import json, sys
label, path = sys.argv[1], sys.argv[2]
for line in open(path):
    if line.startswith('{"system"'):
        r = json.loads(line)
        r["label"] = label
        print(json.dumps(r))
EOF
}

flow_runs() {  # flow_runs SYSTEM: fanout 1/10/100, ingest, latency against the running server
  local system="$1"
  local common=(--duration "${DURATION}" --warmup 1s)
  # tickwire's producer waits for its slowest consumer when it is this many ticks ahead (the
  # peers' publishers do not wait at all): enough for the run to measure the server.
  local lead=()
  [[ "${system}" == tickwire ]] && lead=(--max-inflight 20000)
  for n in 1 10 100; do
    run "fanout-${n}" "${system}" fanout --subscribers "${n}" "${lead[@]}" "${common[@]}"
  done
  if [[ "${system}" == tickwire ]]; then
    run ingest tickwire ingest --producers 1 --check "${common[@]}"
    run ingest-1p tickwire ingest --producers 1 "${common[@]}"
    run ingest-4p tickwire ingest --producers 4 "${common[@]}"
  else
    run ingest "${system}" ingest "${common[@]}"
  fi
  run latency "${system}" latency --rate 50000 --subscribers 10 "${common[@]}"
}

conns_run() {  # conns_run SYSTEM: a fresh server, CONNS idle connections
  start_server "$1"
  run conns "$1" conns --connections "${CONNS}" --heartbeat 15s --duration "${CONNS_HOLD}" \
    --concurrency 200
  stop_server
}

START=${SECONDS}
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
for system in tickwire nats redis; do
  start_server "${system}"
  flow_runs "${system}"
  stop_server
  conns_run "${system}"
done
start_server tickwire BATCH_WINDOW_MS=0
run latency-w0 tickwire latency --rate 50000 --subscribers 10 --duration "${DURATION}" --warmup 1s
stop_server

python3 "${ROOT}/scripts/bench-compare-report.py" --results "${RESULTS}" --out "${OUT}" \
  --machine "$(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1), load average at start ${LOAD_START}" \
  --settings "duration ${DURATION} per run, ${CONNS} connections held ${CONNS_HOLD}"
echo "bench-compare: done in $((SECONDS - START)) s; results in ${OUT}"
