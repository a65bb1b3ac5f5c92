#!/usr/bin/env bash
# On the control plane, on destroy or the node's removal, first: move the node's pods elsewhere,
# then delete a worker's Node. The node's own `microk8s leave` runs next, on the node, and the
# Node's deletion by its register step only after that succeeds: a hostile or unreachable
# workstation (the one case a removal must hold against) would fail its leave and keep its Node,
# its DaemonSet pods and their tokens. A worker is never a dqlite member, so deleting its Node is
# all remove-node would do for it (remove-node.sh). Its kubelet cannot register the Node again:
# the stack's known-nodes list (written before any delete) no longer names it.
# Parameters: NODE_NAME, WORKER (true or false), DRAIN_TIMEOUT.
set -euo pipefail
SCRIPT_NAME="drain"
: "${NODE_NAME:?}" "${WORKER:?}" "${DRAIN_TIMEOUT:=300s}"
if microk8s kubectl get node "$NODE_NAME" >/dev/null 2>&1; then
  if ! microk8s kubectl drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data --timeout="$DRAIN_TIMEOUT"; then
    # Destroy goes on (the node leaves next); say plainly what may have been cut short.
    log "WARNING: drain of $NODE_NAME did not finish within $DRAIN_TIMEOUT (a PodDisruptionBudget?); continuing"
  fi
fi
if [ "$WORKER" = true ] && [ "$NODE_NAME" != "$(hostname)" ]; then
  out=$(microk8s kubectl delete node "$NODE_NAME" --ignore-not-found 2>&1) \
    || fail "deleting the Node of $NODE_NAME failed: $out"
  if [ -n "$out" ]; then log "deleted the Node of $NODE_NAME"; fi
fi
