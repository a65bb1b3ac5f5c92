#!/usr/bin/env bash
# On the control plane: wait, within a bound, until the node is Ready with its VPN address.
# Parameters: NODE_NAME, NODE_IP, WAIT_S.
set -euo pipefail
SCRIPT_NAME="node-ready"
: "${NODE_NAME:?}" "${NODE_IP:?}" "${WAIT_S:=600}"
tries=$((WAIT_S / 5))
while :; do
  ready=$(microk8s kubectl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)
  ip=$(microk8s kubectl get node "$NODE_NAME" -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}' 2>/dev/null || true)
  [ "$ready" = True ] && [ "$ip" = "$NODE_IP" ] && break
  tries=$((tries - 1))
  [ "$tries" -gt 0 ] || fail "node $NODE_NAME not Ready on $NODE_IP after ${WAIT_S}s (Ready=${ready:-unknown}, InternalIP=${ip:-none})"
  sleep 5
done
echo "node=$NODE_NAME"
