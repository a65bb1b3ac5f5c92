#!/usr/bin/env bash
# On destroy (after the control plane drained this node): leave the cluster, decided by what
# the node is, not by var/lock/no-cert-reissue alone: cluster-agent 1.32 also writes that marker
# on the control plane every join goes through (pkg/api/v2/join.go), and `microk8s leave` there
# resets its datastore, stopping the API server (leave.py reset_current_dqlite_installation).
# - the seed (CONTROL_PLANE = NODE_IP): never leaves; its uninstall removes MicroK8s.
# - a worker: leaves if joined (join.py marks it var/lock/clustered.lock).
# - a joined control plane: leaves if joined (no-cert-reissue, which its join wrote), so that
#   the seed can then remove it from dqlite without --force.
# Parameters: CONTROL_PLANE (the seed's VPN address), NODE_IP, WORKER (true|false).
set -euo pipefail
SCRIPT_NAME="leave"
: "${CONTROL_PLANE:?}" "${NODE_IP:?}" "${WORKER:?}"
: "${SNAP_DATA:=/var/snap/microk8s/current}"
marker=$SNAP_DATA/var/lock/no-cert-reissue
[ "$WORKER" = true ] && marker=$SNAP_DATA/var/lock/clustered.lock
if [ "$WORKER" != true ] && [ "$CONTROL_PLANE" = "$NODE_IP" ]; then
  log "the seed: it does not leave its own cluster (its uninstall ends it)"
elif [ -e "$marker" ]; then
  microk8s leave
  log "left the cluster"
fi
