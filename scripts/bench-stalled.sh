#!/usr/bin/env bash
# Measures what one stalled consumer costs everyone else: `tickwire bench fanout` against a
# spawned server with SUBSCRIBERS reading consumers, alternating runs without and with STALLED
# consumers that subscribe and never read (the server drops them as slow consumers), ROUNDS
# times, so both variants see the same machine. Prints one JSON line per run, then the medians.
#
# Usage: scripts/bench-stalled.sh [ROUNDS] [SUBSCRIBERS] [DURATION] [RATE]
#   RATE: ticks/s to publish (0 = as fast as the consumers take them). Needs jq.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${1:-3}"
SUBS="${2:-10}"
DURATION="${3:-5s}"
RATE="${4:-0}"
STALLED="${STALLED:-1}"
B="${ROOT}/build/release/apps"
export STREAM_USER=bench STREAM_PASS=bench
results="$(mktemp)"
trap 'rm -f "${results}"' EXIT

run() {  # label stalled
  "${B}/cli/tickwire" bench fanout --spawn "${B}/server/tickwire-server" --subscribers "${SUBS}" \
    --duration "${DURATION}" --rate "${RATE}" --stalled "$2" --json |
    jq -c --arg v "$1" '{variant: $v, delivered_per_s, p50_us: .latency_us.p50,
      p99_us: .latency_us.p99, gaps, dups, lost, stalled_dropped}' | tee -a "${results}"
}

for ((r = 1; r <= ROUNDS; r++)); do
  run clean 0
  run stalled "${STALLED}"
done
echo "medians:"
for v in clean stalled; do
  jq -s -c --arg v "${v}" '[.[] | select(.variant == $v)] as $x
    | def med(f): ($x | map(f) | sort | .[(length - 1) / 2 | floor]);
    {variant: $v, delivered_per_s: med(.delivered_per_s), p99_us: med(.p99_us),
     p50_us: med(.p50_us)}' "${results}"
done
