#!/usr/bin/env bash
# On the control plane, on destroy, after the node ran `microk8s leave`: forget the node
# (forcefully if it can no longer be reached).
# Parameters: NODE_NAME.
set -euo pipefail
SCRIPT_NAME="remove-node"
: "${NODE_NAME:?}"
if [ "$NODE_NAME" = "$(hostname)" ]; then
  # The seed's own registration: it does not remove itself (its uninstall ends it).
  log "$NODE_NAME is this node; not removing it from its own cluster"
elif microk8s kubectl get node "$NODE_NAME" >/dev/null 2>&1; then
  microk8s remove-node "$NODE_NAME" || microk8s remove-node "$NODE_NAME" --force
  log "removed $NODE_NAME from the cluster"
fi
