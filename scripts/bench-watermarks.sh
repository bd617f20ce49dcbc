#!/usr/bin/env bash
# Measures what completeness watermarks cost: `tickwire bench bars` against a spawned server
# with WATERMARKS=true and WATERMARKS=false, alternating the two ROUNDS times so that both see
# the same machine. Prints one line per run (server CPU, bar delay p50/p99, watermarks received
# and out of order), then the medians of each variant. Extra arguments go to `bench bars`
# (e.g. --topics 1000 --subscribers 200).
#
# Usage: scripts/bench-watermarks.sh [ROUNDS] [DURATION] [bench bars args...]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${1:-3}"
DURATION="${2:-10s}"
shift $(($# >= 2 ? 2 : $#))
B="${ROOT}/build/release/apps"
export STREAM_USER=bench STREAM_PASS=bench
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

run() {  # label WATERMARKS-value
  local label="$1" value="$2"
  local out
  out=$("${B}/cli/tickwire" bench bars --spawn "${B}/server/tickwire-server" \
    --server-env "WATERMARKS=${value}" --duration "${DURATION}" --json "${EXTRA[@]}") || true
  local line
  line="$(jq -c --arg v "${label}" '{variant: $v, server_cpu_s, publish_seconds,
    server_cpu_pct: ((.server_cpu_s * 100 / .publish_seconds) * 10 | floor / 10),
    p50_ms: .delay_ms.p50, p99_ms: .delay_ms.p99, bars_delivered, missing, watermarks,
    watermark_violations, watermark_p99_ms: .watermark_delay_ms.p99}' <<<"${out}" 2>/dev/null ||
    echo "${out}")"
  printf '%s %s\n' "${label}" "${line}"
  if [[ "${line}" == "{"* ]]; then echo "${line}" >>"${work}/results"; fi
}

EXTRA=("$@")
for ((r = 1; r <= ROUNDS; r++)); do
  run on true
  run off false
done
echo "medians:"
for v in on off; do
  jq -s -c --arg v "${v}" '[.[] | select(.variant == $v)] as $x | select($x | length > 0)
    | def med(f): ($x | map(f) | sort | .[(length - 1) / 2 | floor]);
    {variant: $v, runs: ($x | length), server_cpu_pct: med(.server_cpu_pct),
     p50_ms: med(.p50_ms), p99_ms: med(.p99_ms), watermark_p99_ms: med(.watermark_p99_ms)}' \
    "${work}/results"
done
