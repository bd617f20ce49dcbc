#!/usr/bin/env bash
# THE test command. Installs dependencies (scripts/setup.sh), then for each stage configures,
# builds and tests one CMake preset:
#   release  all unit + integration tests, RelWithDebInfo, including the ones that wait for a
#            UTC minute to close (ctest label slow), and the deploy/ checks (promtool
#            check/test rules, amtool check-config, the Grafana dashboard, a real Prometheus,
#            HAProxy in front of two servers, the image's runtime files run from a chroot, the
#            Kubernetes manifests, the Dockerfile and the runbook's settings table), the
#            multi-instance tests (tests/cluster/: nats-server, three servers, HAProxy), and the
#            Python and JavaScript clients' suites against the real server (clients/python with
#            pytest, clients/js with `npm ci` and node's test runner; ctest label clients)
#   asan     the same suite under AddressSanitizer + UndefinedBehaviorSanitizer, without the
#            minute-long waits (ctest label slow), the deploy checks and the clients' suites
#   tsan     the same suite under ThreadSanitizer (the threaded core: workers, fan-out), without
#            the load-generator runs (ctest label bench) and the minute-long waits (label slow)
#   fuzz     every libFuzzer target for a fixed time, starting from fuzz/corpus/<target>/, as
#            many at once as there are build jobs
# Stops at the first failure with a non-zero exit.
#
# Usage: scripts/test.sh [--quick] [--stage NAME]... [--fuzz-time SECONDS] [--no-setup]
#   --quick          release stage only
#   --stage NAME     run only this stage (release, asan, tsan, fuzz); repeatable
#   --fuzz-time S    seconds per fuzz target (default 20, or $TICKWIRE_FUZZ_TIME)
#   --no-setup       skip scripts/setup.sh
# Environment: TICKWIRE_JOBS (build parallelism, default: number of CPUs);
#   TICKWIRE_SOAK_SECONDS (length of the fault soak, tests/soak/: default 90 in the release
#   stage, 30 under the sanitizers); TICKWIRE_REFERENCE_SECONDS (publishing time of the
#   reference consumer test, tests/soak/: default 18, 10 under the sanitizers).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"

JOBS="${TICKWIRE_JOBS:-$(nproc)}"
FUZZ_TIME="${TICKWIRE_FUZZ_TIME:-20}"
RUN_SETUP=1
STAGES=()

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) STAGES=(release) ;;
    --stage)
      [[ $# -ge 2 ]] || { echo "test.sh: --stage needs a name" >&2; exit 2; }
      STAGES+=("$2")
      shift
      ;;
    --stage=*) STAGES+=("${1#--stage=}") ;;
    --fuzz-time)
      [[ $# -ge 2 ]] || { echo "test.sh: --fuzz-time needs seconds" >&2; exit 2; }
      FUZZ_TIME="$2"
      shift
      ;;
    --fuzz-time=*) FUZZ_TIME="${1#--fuzz-time=}" ;;
    --no-setup) RUN_SETUP=0 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "test.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [[ ${#STAGES[@]} -eq 0 ]]; then STAGES=(release asan tsan fuzz); fi
for s in "${STAGES[@]}"; do
  case "${s}" in
    release | asan | tsan | fuzz) ;;
    *) echo "test.sh: unknown stage '${s}' (release, asan, tsan, fuzz)" >&2; exit 2 ;;
  esac
done
[[ "${FUZZ_TIME}" =~ ^[0-9]+$ ]] || { echo "test.sh: --fuzz-time must be whole seconds" >&2; exit 2; }

START_ALL=${SECONDS}
CURRENT_STAGE=""
STAGE_START=0

banner() { printf '\n==== %s ====\n' "$*"; }

begin_stage() {
  CURRENT_STAGE="$1"
  STAGE_START=${SECONDS}
  banner "stage ${CURRENT_STAGE}: $2"
}

end_stage() {
  printf '==== stage %s passed in %ds ====\n' "${CURRENT_STAGE}" $((SECONDS - STAGE_START))
  CURRENT_STAGE=""
}

on_exit() {
  local rc=$?
  if [[ ${rc} -ne 0 && -n "${CURRENT_STAGE}" ]]; then
    printf '\n==== stage %s FAILED after %ds (exit %d) ====\n' "${CURRENT_STAGE}" \
      $((SECONDS - STAGE_START)) "${rc}" >&2
  fi
}
trap on_exit EXIT

# configure + build + ctest for one preset; $3: fault soak seconds unless TICKWIRE_SOAK_SECONDS;
# further arguments go to ctest.
ctest_stage() {
  local preset="$1"
  begin_stage "${preset}" "$2"
  cmake --preset "${preset}"
  cmake --build --preset "${preset}" --parallel "${JOBS}"
  TICKWIRE_SOAK_SECONDS="${TICKWIRE_SOAK_SECONDS:-$3}" \
    ctest --preset "${preset}" -j2 --output-on-failure --timeout 300 "${@:4}"
  end_stage
}

fuzz_stage() {
  begin_stage fuzz "every fuzz target for ${FUZZ_TIME}s (libFuzzer, ASan+UBSan), ${JOBS} at a time"
  cmake --preset fuzz
  cmake --build --preset fuzz --parallel "${JOBS}" --target tickwire_fuzzers
  local build="${ROOT}/build/fuzz"
  local list="${build}/fuzz/fuzzers.txt"
  [[ -s "${list}" ]] || { echo "fuzz: no fuzz targets listed in ${list}" >&2; return 1; }
  local work="${build}/fuzz-run"
  mkdir -p "${work}/artifacts" "${work}/logs" "${work}/status"
  rm -f "${work}/status/"*
  local targets=()
  local target
  while read -r target; do
    [[ -n "${target}" ]] && targets+=("${target}")
  done <"${list}"
  # Each target runs single-threaded for FUZZ_TIME; JOBS of them at once use the machine's cores.
  local running=0
  for target in "${targets[@]}"; do
    if [[ ${running} -ge ${JOBS} ]]; then
      wait -n || true
      running=$((running - 1))
    fi
    fuzz_one "${target}" &
    running=$((running + 1))
  done
  wait || true
  local failed=0
  for target in "${targets[@]}"; do
    local log="${work}/logs/${target}.log"
    local rc
    rc=$(cat "${work}/status/${target}" 2>/dev/null || echo 99)
    echo "-- ${target}: exit ${rc}, log ${log#"${ROOT}"/}"
    if [[ "${rc}" != 0 ]]; then
      tail -n 80 "${log}" >&2 || true
      echo "fuzz: ${target} FAILED (exit ${rc}); reproducer in ${work}/artifacts/, rerun with:" >&2
      echo "  ${build}/fuzz/${target} <artifact>" >&2
      failed=1
      continue
    fi
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "${log}" | sed 's/^/   /' || true
  done
  [[ ${failed} -eq 0 ]] || return 1
  end_stage
}

# One fuzz target for FUZZ_TIME seconds; its exit code goes to fuzz-run/status/<target>.
fuzz_one() {
  local target="$1"
  local build="${ROOT}/build/fuzz"
  local work="${build}/fuzz-run"
  local seeds="${ROOT}/fuzz/corpus/${target}"
  local corpus="${work}/corpus/${target}"  # grows across runs; the committed seeds stay as they are
  local log="${work}/logs/${target}.log"
  mkdir -p "${corpus}"
  local dirs=("${corpus}")
  if [[ -d "${seeds}" ]]; then dirs+=("${seeds}"); else echo "fuzz: warning: no seed corpus ${seeds}"; fi
  local rc=0
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
    "${build}/fuzz/${target}" -max_total_time="${FUZZ_TIME}" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -dict="${ROOT}/fuzz/tickwire.dict" \
    -artifact_prefix="${work}/artifacts/${target}-" "${dirs[@]}" >"${log}" 2>&1 || rc=$?
  echo "${rc}" >"${work}/status/${target}"
}

banner "tickwire tests: stages ${STAGES[*]} (jobs ${JOBS})"
if [[ ${RUN_SETUP} -eq 1 ]]; then
  begin_stage setup "Debian packages"
  "${ROOT}/scripts/setup.sh"
  end_stage
fi

for stage in "${STAGES[@]}"; do
  case "${stage}" in
    release) ctest_stage release "unit + integration tests (RelWithDebInfo)" 90 ;;
    # The slow tests wait for a UTC minute to close; the release stage covers them.
    asan)
      TICKWIRE_REFERENCE_SECONDS="${TICKWIRE_REFERENCE_SECONDS:-10}" \
        ctest_stage asan "unit + integration tests under ASan + UBSan" 30 -LE slow
      ;;
    # The bench tests drive libnats, whose threads TSan cannot see synchronise: not under TSan.
    tsan)
      TICKWIRE_REFERENCE_SECONDS="${TICKWIRE_REFERENCE_SECONDS:-10}" \
        ctest_stage tsan "unit + integration tests under TSan" 30 -LE 'bench|slow'
      ;;
    fuzz) fuzz_stage ;;
  esac
done

banner "all stages passed (${STAGES[*]}) in $((SECONDS - START_ALL))s"
