#!/usr/bin/env bash
# Measures what metrics cost: `tickwire bench fanout` against a spawned server with the
# operations endpoint off (METRICS_ADDR empty; the counters are still kept) and on while being
# scraped every SCRAPE_INTERVAL seconds, alternating the two ROUNDS times so that both see the
# same machine. Optionally also a BASELINE server binary built without any metrics code.
# Prints one line per run, then the medians of each variant.
#
# Usage: scripts/bench-metrics.sh [ROUNDS] [SUBSCRIBERS] [DURATION]
# Environment: BASELINE=/path/to/tickwire-server (optional), SCRAPE_INTERVAL (default 1).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${1:-3}"
SUBS="${2:-10}"
DURATION="${3:-10s}"
SCRAPE_INTERVAL="${SCRAPE_INTERVAL:-1}"
B="${ROOT}/build/release/apps"
export STREAM_USER=bench STREAM_PASS=bench
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

run() {  # label server-binary extra-args...
  local label="$1" server="$2"
  shift 2
  local out
  out=$("${B}/cli/tickwire" bench fanout --spawn "${server}" --subscribers "${SUBS}" \
    --duration "${DURATION}" --json "$@")
  local line
  line="$(jq -c --arg v "${label}" '{variant: $v, delivered_per_s, p50_us: .latency_us.p50, p99_us: .latency_us.p99, server_cpu_s, server_cpu_ns_per_record: ((.server_cpu_s * 1e9 / .delivered) | floor)}' <<<"${out}" 2>/dev/null || echo "${out}")"
  printf '%s %s\n' "${label}" "${line}"
  if [[ "${line}" == "{"* ]]; then echo "${line}" >>"${work}/results"; fi
}

for ((r = 1; r <= ROUNDS; r++)); do
  if [[ -n "${BASELINE:-}" ]]; then run baseline "${BASELINE}"; fi
  run off "${B}/server/tickwire-server" --server-env METRICS_ADDR=
  rm -f "${work}/mport"
  (
    while [[ ! -s "${work}/mport" ]]; do sleep 0.05; done
    port=$(cat "${work}/mport")
    while curl -sf "http://127.0.0.1:${port}/metrics" -o /dev/null; do sleep "${SCRAPE_INTERVAL}"; done
  ) &
  scraper=$!
  run on "${B}/server/tickwire-server" --server-env METRICS_ADDR=127.0.0.1:0 \
    --server-env "METRICS_PORT_FILE=${work}/mport"
  kill "${scraper}" 2>/dev/null || true
  wait "${scraper}" 2>/dev/null || true
done
echo "medians:"
for v in baseline off on; do
  jq -s -c --arg v "${v}" '[.[] | select(.variant == $v)] as $x | select($x | length > 0)
    | def med(f): ($x | map(f) | sort | .[(length - 1) / 2 | floor]);
    {variant: $v, runs: ($x | length), delivered_per_s: med(.delivered_per_s),
     p50_us: med(.p50_us), p99_us: med(.p99_us),
     server_cpu_ns_per_record: med(.server_cpu_ns_per_record)}' "${work}/results"
done
