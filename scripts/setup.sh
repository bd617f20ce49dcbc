#!/usr/bin/env bash
# Installs every Debian 12 package tickwire needs to build, test, benchmark and run its cluster
# tests. Idempotent: when everything is already installed it only runs dpkg-query and exits.
# Runs apt-get as root directly, or through sudo when not root.
set -euo pipefail

PACKAGES=(
  # Toolchains and build tools (gcc for release/asan, clang 14 + compiler-rt for fuzz/tsan).
  build-essential cmake ninja-build clang clang-format lld libclang-rt-14-dev pkg-config
  # Libraries.
  libboost1.81-dev libprotobuf-dev protobuf-compiler libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev libssl-dev prometheus-cpp-dev libnats-dev
  libhiredis-dev
  # Services the cluster and load-balancer tests start themselves.
  nats-server haproxy redis-server
  # Observability tests: a real Prometheus (promtool, alert rules), amtool for the Alertmanager
  # example config.
  prometheus prometheus-alertmanager
  # Tools used by scripts and benchmarks (gnuplot-nox: gnuplot without the Qt/X11 front ends;
  # jq: scripts/bench-stalled.sh reads the JSON results).
  gnuplot-nox openssl procps python3 jq
  # Deployment checks: tests/deploy/check_deploy.py reads the Kubernetes manifests (python3-yaml),
  # shellcheck checks the scripts in deploy/.
  python3-yaml shellcheck
  # TLS scanner run by .ci/run against a TLS listener (scripts/testssl.sh).
  testssl.sh
  # The Python client (clients/python) and its tests: protobuf runtime (matches protoc 3.21),
  # pytest, pandas for the DataFrame helper (with numpy: about 11 MB of downloads, 65 MB
  # installed), venv + pip + setuptools + wheel for the offline `pip install` test, and
  # pytest-timeout so that a test that hangs fails alone, with every thread's stack.
  python3-protobuf python3-pytest python3-pytest-timeout python3-pandas python3-venv python3-pip
  python3-setuptools python3-wheel
  # The chart page's browser test (web/test/chart_page_test.py drives headless Chromium over
  # its DevTools protocol with Python's standard library; no WebDriver needed).
  chromium
)
# The JavaScript client (clients/js) and its tests: Node 18 or later and npm. Debian's nodejs
# (18) and npm, unless a node is already installed (e.g. NodeSource's, which includes npm).
if ! command -v node >/dev/null 2>&1; then PACKAGES+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then PACKAGES+=(npm); fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null || true)
  if [[ "${status}" != "install ok installed" ]]; then
    missing+=("${pkg}")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup: all ${#PACKAGES[@]} packages are installed"
  exit 0
fi

echo "setup: installing ${#missing[@]} missing package(s): ${missing[*]}"

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "setup: not root and sudo is not available; install as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  SUDO=(sudo)
fi
APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Use-Pty=0)

# In a container without an init system, keep package scripts from starting redis, haproxy or
# nats as daemons: tests start their own instances on their own ports.
policy_rc=/usr/sbin/policy-rc.d
remove_policy=0
if [[ ! -e "${policy_rc}" && ! -d /run/systemd/system ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "${policy_rc}" >/dev/null
  "${SUDO[@]}" chmod 755 "${policy_rc}"
  remove_policy=1
fi
cleanup() {
  if [[ ${remove_policy} -eq 1 ]]; then "${SUDO[@]}" rm -f "${policy_rc}"; fi
}
trap cleanup EXIT

"${APT[@]}" update
"${APT[@]}" install --no-install-recommends "${missing[@]}"
echo "setup: done"
