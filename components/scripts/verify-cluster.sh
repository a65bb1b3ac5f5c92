#!/usr/bin/env bash
# On the control plane, at the end of `pulumi up`: check the deployment does its job, within
# a bound, and fail naming everything that is missing.
#  - every node Ready, on its VPN address          (EXPECTED_NODES: "name=ip ...")
#  - each GPU node advertises GPUs x replicas      (EXPECTED_GPUS: "name=count ...")
#  - the receipt API answers through the ingress   (PROBE_URL, INGRESS_ADDRESS; optional)
# Parameters: EXPECTED_NODES, EXPECTED_GPUS, PROBE_URL, INGRESS_ADDRESS, WAIT_S.
set -euo pipefail
SCRIPT_NAME="verify"
: "${EXPECTED_NODES:?}" "${EXPECTED_GPUS:=}" "${PROBE_URL:=}" "${INGRESS_ADDRESS:=}" "${WAIT_S:=600}"

kubectl() { microk8s kubectl "$@"; }
field() { kubectl get node "$1" -o jsonpath="$2" 2>/dev/null || true; }

problems() {
  local name want
  for pair in $EXPECTED_NODES; do
    name=${pair%%=*} want=${pair#*=}
    [ "$(field "$name" '{.status.conditions[?(@.type=="Ready")].status}')" = True ] || echo "node $name is not Ready"
    ip=$(field "$name" '{.status.addresses[?(@.type=="InternalIP")].address}')
    [ "$ip" = "$want" ] || echo "node $name has address '${ip:-none}', not its VPN address $want"
  done
  for pair in $EXPECTED_GPUS; do
    name=${pair%%=*} want=${pair#*=}
    have=$(field "$name" '{.status.allocatable.nvidia\.com/gpu}')
    [ "${have:-0}" = "$want" ] || echo "node $name advertises ${have:-0} nvidia.com/gpu, expected $want (GPUs x time-slicing replicas)"
  done
  if [ -n "$PROBE_URL" ]; then
    host=${PROBE_URL#*://} host=${host%%/*}
    port=443; case $PROBE_URL in http://*) port=80;; esac
    curl -fsS -o /dev/null --max-time 10 --resolve "$host:$port:$INGRESS_ADDRESS" "$PROBE_URL" \
      || echo "$PROBE_URL does not answer through the ingress at $INGRESS_ADDRESS"
  fi
}

tries=$((WAIT_S / 10))
while :; do
  found=$(problems)
  [ -z "$found" ] && break
  tries=$((tries - 1))
  if [ "$tries" -le 0 ]; then
    log "the deployment is not working after ${WAIT_S}s:"
    printf '  - %s\n' "$found" >&2
    fail "verification failed (see above); fix it and run pulumi up again"
  fi
  sleep 10
done
echo "verified: nodes=$(echo "$EXPECTED_NODES" | wc -w) gpu_nodes=$(echo "$EXPECTED_GPUS" | wc -w) probe=${PROBE_URL:-none}"
