#!/usr/bin/env bash
# On the control plane, on destroy, after the node ran `microk8s leave`: forget the node, by
# its name only and never with --force: remove-node looks a node up by the InternalIP its
# kubelet posts (a node sets its own), and --force removes the dqlite member at that address
# (remove_node.py @ v1.32). A node posting a control plane's address is refused here.
# Parameters: NODE_NAME, PLANES (the control planes' "name=vpn-address", space-separated).
set -euo pipefail
SCRIPT_NAME="remove-node"
: "${NODE_NAME:?}" "${PLANES:?}"
if [ "$NODE_NAME" = "$(hostname)" ]; then
  # The seed's own registration: it does not remove itself (its uninstall ends it).
  log "$NODE_NAME is this node; not removing it from its own cluster"
elif microk8s kubectl get node "$NODE_NAME" >/dev/null 2>&1; then
  ip=$(microk8s kubectl get node "$NODE_NAME" -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}' 2>/dev/null || true)
  for plane in $PLANES; do
    if [ "${plane%%=*}" != "$NODE_NAME" ] && [ "$ip" = "${plane#*=}" ]; then
      fail "node $NODE_NAME posts control plane ${plane%%=*}'s address $ip; not removing it (remove-node acts on that address): delete its Node by name (microk8s kubectl delete node $NODE_NAME) and check $NODE_NAME"
    fi
  done
  microk8s remove-node "$NODE_NAME" \
    || fail "microk8s remove-node $NODE_NAME failed; a control plane that is gone for good is removed by hand (microk8s remove-node $NODE_NAME --force)"
  log "removed $NODE_NAME from the cluster"
fi
