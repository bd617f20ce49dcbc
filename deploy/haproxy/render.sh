#!/usr/bin/env bash
# Writes an HAProxy 2.6 configuration that balances TCP clients over tickwire instances: an L4
# (mode tcp) frontend, leastconn, PROXY protocol v2 to each instance so it sees the client's
# address, and a health check of each instance's /readyz on its metrics port, so an instance
# that drains (SIGTERM) leaves the rotation before it stops accepting. See README.md here.
#
# Usage: deploy/haproxy/render.sh [options] HOST:PORT:METRICS_PORT...
#   HOST:PORT:METRICS_PORT  one per instance: its stream address and its METRICS_ADDR port
#                           (IPv6: [2001:db8::5]:7878:9878)
#   -o FILE                 write the configuration to FILE (default: stdout)
#   --bind ADDR:PORT        where clients connect (default 0.0.0.0:7878)
#   --stats ADDR:PORT       stats page (/stats) and HAProxy's own Prometheus metrics (/metrics);
#                           keep it on loopback or a private network (default 127.0.0.1:8404)
#   --maxconn N             client connections HAProxy holds in all (default 200000)
#   --server-maxconn N      connections sent to one instance; at most its MAX_CONNECTIONS
#                           (default 100000, the server's default)
#   --timeout DURATION      idle time after which HAProxy closes a connection, either side;
#                           must be well above HEARTBEAT_TIMEOUT (default 90s)
#   --check-inter DURATION  time between /readyz checks of an instance (default 2s)
#   --fall N, --rise N      failed / passed checks that take an instance out / put it back
#                           (default 2 and 2)
#   --no-proxy-protocol     do not send PROXY v2 (instances run with PROXY_PROTOCOL=off and see
#                           HAProxy's address instead of the client's)
#   -h, --help              this text
set -euo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() {
  echo "render.sh: $*" >&2
  exit 2
}

out=""
bind="0.0.0.0:7878"
stats="127.0.0.1:8404"
maxconn=200000
server_maxconn=100000
timeout="90s"
check_inter="2s"
fall=2
rise=2
send_proxy=" send-proxy-v2"
instances=()

need_value() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    -o) need_value "$@"; out="$2"; shift ;;
    --bind) need_value "$@"; bind="$2"; shift ;;
    --stats) need_value "$@"; stats="$2"; shift ;;
    --maxconn) need_value "$@"; maxconn="$2"; shift ;;
    --server-maxconn) need_value "$@"; server_maxconn="$2"; shift ;;
    --timeout) need_value "$@"; timeout="$2"; shift ;;
    --check-inter) need_value "$@"; check_inter="$2"; shift ;;
    --fall) need_value "$@"; fall="$2"; shift ;;
    --rise) need_value "$@"; rise="$2"; shift ;;
    --no-proxy-protocol) send_proxy="" ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) instances+=("$1") ;;
  esac
  shift
done

[[ ${#instances[@]} -gt 0 ]] || die "no instances given (HOST:PORT:METRICS_PORT...; see --help)"
for n in "${maxconn}" "${server_maxconn}" "${fall}" "${rise}"; do
  [[ "${n}" =~ ^[1-9][0-9]*$ ]] || die "'${n}' is not a positive whole number"
done
for d in "${timeout}" "${check_inter}"; do
  [[ "${d}" =~ ^[1-9][0-9]*(ms|s|m|h)$ ]] || die "'${d}' is not a duration (500ms, 2s, 90s, 2m)"
done
port_ok() { [[ "$1" =~ ^[0-9]+$ ]] && ((10#$1 >= 1 && 10#$1 <= 65535)); }
for a in "${bind}" "${stats}"; do
  if ! port_ok "${a##*:}" || [[ "${a%:*}" == "${a}" || -z "${a%:*}" ]]; then
    die "'${a}' is not ADDR:PORT"
  fi
done

servers=""
i=0
for spec in "${instances[@]}"; do
  i=$((i + 1))
  metrics="${spec##*:}"
  addr="${spec%:*}"
  port="${addr##*:}"
  host="${addr%:*}"
  if [[ "${spec}" != *:*:* || -z "${host}" ]] || ! port_ok "${port}" || ! port_ok "${metrics}"; then
    die "'${spec}' is not HOST:PORT:METRICS_PORT"
  fi
  servers+="    server tickwire-${i} ${host}:${port} check port ${metrics}"$'\n'
done

config="# HAProxy configuration for ${#instances[@]} tickwire instance(s), written by
# deploy/haproxy/render.sh: change the command line and render again rather than editing.
# Check it with: haproxy -c -f <this file>

global
    # Runs in the foreground under its supervisor (systemd, a container runtime, a test).
    maxconn ${maxconn}
    log stdout format raw local0 info

defaults
    mode tcp
    log global
    option tcplog
    option dontlognull
    timeout connect 5s
    # A client heartbeats every HEARTBEAT_INTERVAL (15s) and the server closes it after
    # HEARTBEAT_TIMEOUT (20s) of silence; HAProxy must never be the one that gives up first.
    timeout client ${timeout}
    timeout server ${timeout}
    timeout queue 10s
    timeout check 2s
    # A connection refused by an instance (it stopped accepting) is retried on another one.
    retries 2
    option redispatch 1

frontend stats
    mode http
    bind ${stats}
    http-request use-service prometheus-exporter if { path /metrics }
    stats enable
    stats uri /stats
    stats refresh 10s

frontend tickwire
    bind ${bind}
    maxconn ${maxconn}
    # TCP keepalives keep idle flows alive in NAT and conntrack tables between heartbeats.
    option clitcpka
    default_backend tickwire

backend tickwire
    balance leastconn
    option srvtcpka
    # /readyz answers 200 only while the instance accepts and is not draining; it turns 503
    # at the start of a drain, so no new client is sent to an instance that is leaving.
    # Sessions already open stay (no on-marked-down shutdown-sessions): the instance tells
    # each client SERVER_DRAINING and the client reconnects through here to another one.
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter ${check_inter} fall ${fall} rise ${rise} maxconn ${server_maxconn}${send_proxy}
${servers}"

if [[ -n "${out}" ]]; then
  printf '%s' "${config}" >"${out}"
else
  printf '%s' "${config}"
fi
