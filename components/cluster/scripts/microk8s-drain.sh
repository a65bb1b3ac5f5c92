#!/usr/bin/env bash
# On the control plane, on destroy, first: move the node's pods elsewhere.
# Parameters: NODE_NAME, DRAIN_TIMEOUT.
set -euo pipefail
SCRIPT_NAME="drain"
: "${NODE_NAME:?}" "${DRAIN_TIMEOUT:=300s}"
if microk8s kubectl get node "$NODE_NAME" >/dev/null 2>&1; then
  if ! microk8s kubectl drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data --timeout="$DRAIN_TIMEOUT"; then
    # Destroy goes on (the node leaves next); say plainly what may have been cut short.
    log "WARNING: drain of $NODE_NAME did not finish within $DRAIN_TIMEOUT (a PodDisruptionBudget?); continuing"
  fi
fi
