#!/usr/bin/env bash
# THE run command: installs dependencies, builds the release server and CLI, starts
# tickwire-server and a demo feed (`tickwire pub --demo`: random-walk prices for a handful of
# symbols), and prints the demo credentials with a ready-to-paste command that shows live bars.
# Ctrl-C stops the server; the feed is stopped with it.
#
# Environment (all optional):
#   LISTEN_ADDR   where the server listens (default 127.0.0.1:7878)
#   STREAM_USER   demo username (default demo)
#   STREAM_PASS   demo password (default demo-pass; DEMO_RANDOM_PASS=1 generates one)
#   DEMO_FEED     1 (default) starts the demo feed, 0 runs the server alone
#   DEMO_SYMBOLS  comma-separated symbols for the feed (default: the feed's own list)
#   DEMO_RATE     feed ticks per second over all symbols (default 40)
#   DEMO_WEB      1 (default) also builds and serves the live chart page (web/, needs npm and,
#                 the first time, the npm registry): http://127.0.0.1:9878/chart/; 0 skips it
#   WS_LISTEN_ADDR  the WebSocket endpoint the page connects to (default 127.0.0.1:7879)
#   TICKWIRE_JOBS build parallelism (default: number of CPUs)
# Any arguments are passed on to tickwire-server (e.g. --log-level debug).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"

"${ROOT}/scripts/setup.sh"

echo "==== building the release server and CLI ===="
cmake --preset release >/dev/null
cmake --build --preset release --parallel "${TICKWIRE_JOBS:-$(nproc)}" \
  --target apps/server/tickwire-server apps/cli/tickwire

SERVER="${ROOT}/build/release/apps/server/tickwire-server"
CLI="build/release/apps/cli/tickwire"
[[ -x "${SERVER}" ]] || { echo "run-demo: ${SERVER} was not built" >&2; exit 1; }
[[ -x "${ROOT}/${CLI}" ]] || { echo "run-demo: ${ROOT}/${CLI} was not built" >&2; exit 1; }

# The live chart page: the browser build of clients/js and the page bundled into web/dist,
# served by the server at /chart/ (WEB_ROOT), talking to its WebSocket endpoint. Optional: a
# failed build (no npm, no registry) leaves the demo running without it.
chart_url=""
if [[ "${DEMO_WEB:-1}" != "0" ]]; then
  echo "==== building the chart page (web/) ===="
  if command -v npm >/dev/null 2>&1 &&
    (cd clients/js && npm ci --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error &&
      npm run --silent build) &&
    (cd web && npm ci --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error &&
      npm run --silent build); then
    export WEB_ROOT="${ROOT}/web/dist"
    export WS_LISTEN_ADDR="${WS_LISTEN_ADDR:-127.0.0.1:7879}"
    export METRICS_ADDR="${METRICS_ADDR:-127.0.0.1:9878}"
    chart_url="http://${METRICS_ADDR}/chart/"
  else
    echo "run-demo: the chart page was not built (npm missing or the registry unreachable); going on without it" >&2
  fi
fi

export LISTEN_ADDR="${LISTEN_ADDR:-127.0.0.1:7878}"
export STREAM_USER="${STREAM_USER:-demo}"
if [[ -z "${STREAM_PASS:-}" ]]; then
  if [[ "${DEMO_RANDOM_PASS:-0}" == "1" ]]; then
    STREAM_PASS="demo-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  else
    STREAM_PASS="demo-pass"
  fi
fi
export STREAM_PASS

# The server reports the port it bound (LISTEN_ADDR may ask for port 0) in a private file.
RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tickwire-demo.XXXXXX")"
PORT_FILE="${RUN_DIR}/port"
server_pid=""
feed_pid=""
cleanup() {
  # Only the two processes this script started, by PID.
  if [[ -n "${feed_pid}" ]] && kill -0 "${feed_pid}" 2>/dev/null; then
    kill -TERM "${feed_pid}" 2>/dev/null || true
    wait "${feed_pid}" 2>/dev/null || true
  fi
  if [[ -n "${server_pid}" ]] && kill -0 "${server_pid}" 2>/dev/null; then
    kill -TERM "${server_pid}" 2>/dev/null || true
    wait "${server_pid}" 2>/dev/null || true
  fi
  rm -rf "${RUN_DIR}"
}
trap cleanup EXIT
# Ctrl-C reaches the whole foreground group; stop the server by PID here too (a signal sent to
# the script alone, e.g. by a supervisor, must also stop it) and let the wait below return.
trap 'if [[ -n "${server_pid}" ]]; then kill -TERM "${server_pid}" 2>/dev/null || true; fi' INT TERM

PORT_FILE="${PORT_FILE}" "${SERVER}" "$@" &
server_pid=$!

port=""
for _ in $(seq 1 300); do  # up to 30 s
  if [[ -s "${PORT_FILE}" ]]; then
    port="$(cat "${PORT_FILE}")"
    break
  fi
  if ! kill -0 "${server_pid}" 2>/dev/null; then break; fi
  sleep 0.1
done
if [[ -z "${port}" ]]; then
  echo "run-demo: tickwire-server did not start listening (see its output above)" >&2
  wait "${server_pid}" 2>/dev/null || true
  server_pid=""
  exit 1
fi

# The CLI takes host:port; a wildcard listen address is reached through loopback.
host="${LISTEN_ADDR%:*}"
case "${host}" in
  0.0.0.0 | "") host="127.0.0.1" ;;
  "[::]") host="[::1]" ;;
esac
client_addr="${host}:${port}"
addr_flag=""
if [[ "${client_addr}" != "127.0.0.1:7878" ]]; then addr_flag=" --addr ${client_addr}"; fi

if [[ "${DEMO_FEED:-1}" != "0" ]]; then
  feed_args=(pub --demo --addr "${client_addr}" --rate "${DEMO_RATE:-40}")
  if [[ -n "${DEMO_SYMBOLS:-}" ]]; then feed_args+=(--symbols "${DEMO_SYMBOLS}"); fi
  "${ROOT}/${CLI}" "${feed_args[@]}" &
  feed_pid=$!
fi

cat <<INFO

==== tickwire demo ====
  listening on  ${host}:${port}
  STREAM_USER=${STREAM_USER}
  STREAM_PASS=${STREAM_PASS}
  demo feed     $([[ -n "${feed_pid}" ]] && echo "running (pid ${feed_pid})" || echo "off (DEMO_FEED=0)")

In another terminal (from ${ROOT}), watch live one-second bars of every symbol:

  export STREAM_USER='${STREAM_USER}' STREAM_PASS='${STREAM_PASS}'
  ${CLI} sub${addr_flag} --mode second '*'

Raw ticks: --mode tick; one-minute bars: --mode minute; JSON lines: --json.
Publish your own:

  ${CLI} pub${addr_flag} AAPL 187.25 100

$(if [[ -n "${chart_url}" ]]; then
  echo "Live candles in a browser: open ${chart_url}"
  echo "(stream URL ws://${WS_LISTEN_ADDR}/, user ${STREAM_USER}, the password above)."
  echo
fi)Stop the server (and the feed) with Ctrl-C.
=======================

INFO

# Until the server exits (a trapped signal interrupts wait; wait again for the real exit).
rc=0
while true; do
  wait "${server_pid}" && rc=0 || rc=$?
  kill -0 "${server_pid}" 2>/dev/null || break
done
server_pid=""
exit "${rc}"
