#!/usr/bin/env bash
# Moves a tickwire canary through its rollout steps, and back. The canary Deployment
# (overlays/canary/deployment-canary.yaml) runs the candidate image on pods that sit behind the
# same Services as the stable ones, so its share of new clients is its share of the pods:
# for a fleet of N pods, step P runs ceil(N * P / 100) canary pods and the rest stable, and the
# fleet never shrinks during a step (the canary scales up and becomes ready before stable
# pods go; each pod that goes drains its clients to the others).
#
# Usage: deploy/k8s/canary.sh [options] COMMAND
#   start IMAGE     create the canary with IMAGE at 0 pods, then step 5
#   step PERCENT    5, 25, 50 or 100
#   promote [IMAGE] stable takes the canary's image (or IMAGE) on all N pods, then the
#                   canary goes to 0
#   rollback        stable back to N pods first, then the canary to 0
#   status          both Deployments and their pods
# Options:
#   -n NAMESPACE    kubectl namespace (default: kubectl's current one)
#   --fleet N       pods in all (default: the number recorded by `start`, which is the stable
#                   replicas at that time). Shares are multiples of 1/N: 5% needs N >= 20;
#                   a smaller fleet gets the nearest larger share, and the script says so
#   --dry-run       print the kubectl commands instead of running them (needs --fleet, and
#                   IMAGE for promote)
#   -h, --help      this text
set -euo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() {
  echo "canary.sh: $*" >&2
  exit 2
}

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STEPS=(5 25 50 100)
STABLE=deployment/tickwire
CANARY=deployment/tickwire-canary
FLEET_ANNOTATION=tickwire/fleet
TIMEOUT=10m

namespace=()
fleet=""
dry_run=0
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -n)
      [[ $# -ge 2 ]] || die "-n needs a namespace"
      namespace=(-n "$2")
      shift
      ;;
    --fleet)
      [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || die "--fleet needs a positive number"
      fleet="$2"
      shift
      ;;
    --dry-run) dry_run=1 ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) args+=("$1") ;;
  esac
  shift
done
[[ ${#args[@]} -ge 1 ]] || die "no command (see --help)"

# Runs kubectl, or prints the command with --dry-run.
k() {
  if [[ ${dry_run} -eq 1 ]]; then
    echo "kubectl ${namespace[*]:+${namespace[*]} }$*"
  else
    kubectl "${namespace[@]}" "$@"
  fi
}
# Sets $fleet from the canary's annotation unless --fleet gave it.
resolve_fleet() {
  if [[ -z "${fleet}" ]]; then
    [[ ${dry_run} -eq 0 ]] || die "--dry-run needs --fleet N"
    fleet="$(kubectl "${namespace[@]}" get "${CANARY}" \
      -o "jsonpath={.metadata.annotations.tickwire/fleet}")"
    [[ "${fleet}" =~ ^[1-9][0-9]*$ ]] || die "no fleet size recorded on ${CANARY}: use --fleet N"
  fi
}

# Canary pods for PERCENT of a fleet of N: ceil(N * P / 100), at least 1.
canary_pods() {
  local n="$1" p="$2"
  local c=$(((n * p + 99) / 100))
  ((c >= 1)) || c=1
  echo "${c}"
}

step() {
  local p="$1" n c s
  [[ " ${STEPS[*]} " == *" ${p} "* ]] || die "step must be one of ${STEPS[*]}"
  resolve_fleet
  n="${fleet}"
  c="$(canary_pods "${n}" "${p}")"
  s=$((n - c))
  echo "# step ${p}%: ${c} canary + ${s} stable = ${n} pods (canary share $((100 * c / n))%)"
  if ((100 * c > (p + 5) * n)); then
    echo "# note: a fleet of ${n} cannot give ${p}%; the nearest share is $((100 * c / n))%" >&2
  fi
  k scale "${CANARY}" --replicas="${c}"
  k rollout status "${CANARY}" --timeout="${TIMEOUT}"
  k scale "${STABLE}" --replicas="${s}"
  k rollout status "${STABLE}" --timeout="${TIMEOUT}"
}

case "${args[0]}" in
  start)
    [[ ${#args[@]} -eq 2 ]] || die "start needs IMAGE"
    image="${args[1]}"
    if [[ -z "${fleet}" ]]; then
      [[ ${dry_run} -eq 0 ]] || die "--dry-run needs --fleet N"
      fleet="$(kubectl "${namespace[@]}" get "${STABLE}" -o 'jsonpath={.spec.replicas}')"
    fi
    echo "# canary ${image} on a fleet of ${fleet} pods"
    manifest="${HERE}/overlays/canary/deployment-canary.yaml"
    if [[ ${dry_run} -eq 1 ]]; then
      printf '%s\n' "sed -e 's|^\( *\)image: .*|\1image: ${image}|' ${manifest} | kubectl ${namespace[*]:+${namespace[*]} }apply -f -"
    else
      sed -e "s|^\( *\)image: .*|\1image: ${image}|" "${manifest}" | kubectl "${namespace[@]}" apply -f -
    fi
    k annotate "${CANARY}" "${FLEET_ANNOTATION}=${fleet}" --overwrite
    step 5
    ;;
  step)
    [[ ${#args[@]} -eq 2 ]] || die "step needs PERCENT (${STEPS[*]})"
    step "${args[1]}"
    ;;
  promote)
    resolve_fleet
    n="${fleet}"
    if [[ ${#args[@]} -ge 2 ]]; then
      image="${args[1]}"
    else
      [[ ${dry_run} -eq 0 ]] || die "--dry-run needs the IMAGE to promote"
      image="$(kubectl "${namespace[@]}" get "${CANARY}" \
        -o 'jsonpath={.spec.template.spec.containers[0].image}')"
    fi
    echo "# promote ${image} to all ${n} stable pods, then remove the canary"
    k set image "${STABLE}" "tickwire=${image}"
    k scale "${STABLE}" --replicas="${n}"
    k rollout status "${STABLE}" --timeout="${TIMEOUT}"
    k scale "${CANARY}" --replicas=0
    ;;
  rollback)
    resolve_fleet
    n="${fleet}"
    echo "# rollback: ${n} stable pods first, then the canary's clients drain to them"
    k scale "${STABLE}" --replicas="${n}"
    k rollout status "${STABLE}" --timeout="${TIMEOUT}"
    k scale "${CANARY}" --replicas=0
    ;;
  status)
    k get deployments -l app.kubernetes.io/name=tickwire -L track -o wide
    k get pods -l app.kubernetes.io/name=tickwire -L track -o wide
    ;;
  *) die "unknown command '${args[0]}' (see --help)" ;;
esac
