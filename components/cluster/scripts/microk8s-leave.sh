#!/usr/bin/env bash
# On destroy (after the control plane drained this node): leave the cluster. A joined worker
# or control plane has var/lock/no-cert-reissue (join.py marks both; leave removes it).
set -euo pipefail
SCRIPT_NAME="leave"
: "${SNAP_DATA:=/var/snap/microk8s/current}"
if [ -e "$SNAP_DATA/var/lock/no-cert-reissue" ]; then
  microk8s leave
  log "left the cluster"
fi
