#!/usr/bin/env bash
# THE run command: installs dependencies, builds the release server and CLI, prints the demo
# credentials with ready-to-paste client commands, then runs tickwire-server in the foreground
# (Ctrl-C stops it).
#
# Environment (all optional):
#   LISTEN_ADDR   where the server listens (default 127.0.0.1:7878)
#   STREAM_USER   demo username (default demo)
#   STREAM_PASS   demo password (default demo-pass; DEMO_RANDOM_PASS=1 generates one)
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

# The CLI takes host:port; a wildcard listen address is reached through loopback.
client_addr="${LISTEN_ADDR}"
case "${client_addr}" in
  0.0.0.0:*) client_addr="127.0.0.1:${client_addr#0.0.0.0:}" ;;
  "[::]:"*) client_addr="[::1]:${client_addr#\[::\]:}" ;;
esac
addr_flag=""
if [[ "${client_addr}" != "127.0.0.1:7878" ]]; then addr_flag=" --addr ${client_addr}"; fi

cat <<INFO

==== tickwire demo ====
  listening on  ${LISTEN_ADDR}
  STREAM_USER=${STREAM_USER}
  STREAM_PASS=${STREAM_PASS}

In another terminal (from ${ROOT}), subscribe to every topic:

  export STREAM_USER='${STREAM_USER}' STREAM_PASS='${STREAM_PASS}'
  ${CLI} sub${addr_flag} --mode tick '*'

and in a third, publish:

  export STREAM_USER='${STREAM_USER}' STREAM_PASS='${STREAM_PASS}'
  ${CLI} pub${addr_flag} AAPL 187.25 100

Stop the server with Ctrl-C.
=======================

INFO

exec "${SERVER}" "$@"
