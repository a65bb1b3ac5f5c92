#!/usr/bin/env bash
# On destroy (after the control plane drained this node): leave the cluster.
set -euo pipefail
SCRIPT_NAME="leave"
: "${SNAP_DATA:=/var/snap/microk8s/current}"
if [ -e "$SNAP_DATA/var/lock/clustered.lock" ]; then
  microk8s leave
  log "left the cluster"
fi
