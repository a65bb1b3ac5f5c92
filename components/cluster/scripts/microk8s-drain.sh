#!/usr/bin/env bash
# On the control plane, on destroy or the node's removal, first: move the node's pods elsewhere,
# then delete a removed worker's Node. The node's own `microk8s leave` runs next, on the node,
# and the Node's deletion by its register step only after that succeeds: a hostile or
# unreachable workstation (the one case a removal must hold against) would fail its leave and
# keep its Node, its DaemonSet pods and their tokens. A worker is never a dqlite member, so
# deleting its Node is all remove-node would do for it (remove-node.sh). Its kubelet cannot
# register the Node again: the stack's known-nodes list no longer names it.
# Only a removed node's: Pulumi rewrites that list before any delete, and a step replaced (its
# old delete runs last, once the new one is done) leaves the name listed, so a live node keeps
# its Node (its kubelet registers only at its start). On destroy the list is unchanged: the
# seed's MicroK8s, removed last, takes the datastore with it.
# Parameters: NODE_NAME, WORKER (true or false), DRAIN_TIMEOUT; CONFIGMAP, NAMESPACE (the list).
# uses: known-nodes.sh
set -euo pipefail
SCRIPT_NAME="drain"
: "${NODE_NAME:?}" "${WORKER:?}" "${DRAIN_TIMEOUT:=300s}"
if microk8s kubectl get node "$NODE_NAME" >/dev/null 2>&1; then
  if ! microk8s kubectl drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data --timeout="$DRAIN_TIMEOUT"; then
    # Destroy goes on (the node leaves next); say plainly what may have been cut short.
    log "WARNING: drain of $NODE_NAME did not finish within $DRAIN_TIMEOUT (a PodDisruptionBudget?); continuing"
  fi
fi
if [ "$WORKER" = true ] && [ "$NODE_NAME" != "$(hostname)" ] && ! still_listed "$NODE_NAME"; then
  out=$(microk8s kubectl delete node "$NODE_NAME" --ignore-not-found 2>&1) \
    || fail "deleting the Node of $NODE_NAME failed: $out"
  if [ -n "$out" ]; then log "deleted the Node of $NODE_NAME"; fi
fi
