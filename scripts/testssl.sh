#!/usr/bin/env bash
# Scans a TLS listener of tickwire-server with testssl.sh (Debian package testssl.sh) and fails
# on any finding of severity HIGH or above. The certificate chain is made here, for this run only
# (a throw-away CA that testssl is told to trust), and the server is stopped afterwards.
#
# Usage: scripts/testssl.sh [SERVER_BINARY]   (default: build/release/apps/server/tickwire-server)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVER="${1:-${ROOT}/build/release/apps/server/tickwire-server}"
[[ -x "${SERVER}" ]] || { echo "testssl: no server binary at ${SERVER}" >&2; exit 2; }
SERVER="$(realpath "${SERVER}")"  # the scan runs from a scratch directory
command -v testssl >/dev/null || { echo "testssl: testssl.sh is not installed (scripts/setup.sh)" >&2; exit 2; }

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [[ -n "${SERVER_PID}" ]]; then kill "${SERVER_PID}" 2>/dev/null || true; wait "${SERVER_PID}" 2>/dev/null || true; fi
  rm -rf "${WORK}"
}
trap cleanup EXIT
cd "${WORK}"

# A CA and a server certificate for 127.0.0.1 (valid a year, so expiry is no finding; with a CRL
# distribution point, as a CA-issued certificate has, so its absence is no finding either).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
  -keyout ca.key -out ca.crt -subj /CN=tickwire-testssl-ca \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key \
  -out server.csr -subj /CN=127.0.0.1 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\ncrlDistributionPoints=URI:http://127.0.0.1/tickwire-testssl-ca.crl\n' >server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
  -days 365 -extfile server.ext -out server.crt 2>/dev/null
cat server.crt ca.crt >chain.crt

STREAM_USER=testssl STREAM_PASS="$(openssl rand -hex 16)" LISTEN_ADDR=127.0.0.1:0 \
  PORT_FILE="${WORK}/port" TLS_CERT_PATH="${WORK}/chain.crt" TLS_KEY_PATH="${WORK}/server.key" \
  WORKERS=1 LOG_LEVEL=warn "${SERVER}" >server.log 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do [[ -s port ]] && break; sleep 0.1; done
[[ -s port ]] || { echo "testssl: the server did not start:" >&2; cat server.log >&2; exit 1; }
PORT="$(tr -d '[:space:]' <port)"
echo "testssl: scanning 127.0.0.1:${PORT}"

rc=0
testssl --quiet --color 0 --warnings off --add-ca "${WORK}/ca.crt" --jsonfile "${WORK}/findings.json" \
  --connect-timeout 5 --openssl-timeout 5 "127.0.0.1:${PORT}" >scan.log 2>&1 || rc=$?
if [[ ! -s findings.json ]]; then
  echo "testssl: no findings file (exit ${rc}); output:" >&2
  tail -n 60 scan.log >&2
  exit 1
fi
python3 - findings.json <<'PY'
import json, sys
findings = json.load(open(sys.argv[1]))
bad = [f for f in findings if f.get("severity") in ("HIGH", "CRITICAL")]
for f in findings:
    if f.get("severity") in ("MEDIUM", "HIGH", "CRITICAL"):
        print(f"  {f['severity']:8} {f['id']}: {f['finding']}")
print(f"testssl: {len(findings)} findings, {len(bad)} of severity HIGH or above")
sys.exit(1 if bad else 0)
PY
