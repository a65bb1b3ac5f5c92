#!/usr/bin/env bash
# On the control plane, on destroy, after the node ran `microk8s leave`: forget the node, by
# its name only and never with --force. remove-node looks a node up by the InternalIP its
# kubelet posts (a node sets its own): with none it refuses ("not part of the cluster") before
# deleting the Node, and --force removes the dqlite member at that address (remove_node.py @
# v1.32). So a worker (never a dqlite member: all remove-node does for it is delete its Node)
# has its Node deleted by name, which a node cannot block; a control plane goes through
# remove-node, refused when it posts another control plane's address.
# A worker's Node only once the stack's known-nodes list no longer names it (its removal; the
# drain has usually deleted it already): a replaced register step's delete runs last, with the
# name still listed, and must not take a live node's Node (its kubelet registers only at its
# start). On destroy the list is unchanged: the seed's MicroK8s takes the datastore with it.
# Parameters: NODE_NAME, PLANES (the control planes' "name=vpn-address", space-separated);
# CONFIGMAP, NAMESPACE (the list).
# uses: known-nodes.sh
set -euo pipefail
SCRIPT_NAME="remove-node"
: "${NODE_NAME:?}" "${PLANES:?}"
plane=false
for p in $PLANES; do [ "${p%%=*}" != "$NODE_NAME" ] || plane=true; done
if [ "$NODE_NAME" = "$(hostname)" ]; then
  # The seed's own registration: it does not remove itself (its uninstall ends it).
  log "$NODE_NAME is this node; not removing it from its own cluster"
elif [ "$plane" = false ]; then
  if still_listed "$NODE_NAME"; then
    log "$NODE_NAME is still one of the stack's cluster hosts (a replaced step); its Node stays"
    exit 0
  fi
  out=$(microk8s kubectl delete node "$NODE_NAME" --ignore-not-found 2>&1) \
    || fail "deleting the Node of $NODE_NAME failed: $out"
  if [ -n "$out" ]; then log "removed $NODE_NAME from the cluster"; fi
elif microk8s kubectl get node "$NODE_NAME" >/dev/null 2>&1; then
  ip=$(microk8s kubectl get node "$NODE_NAME" -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}' 2>/dev/null || true)
  for p in $PLANES; do
    if [ "${p%%=*}" != "$NODE_NAME" ] && [ "$ip" = "${p#*=}" ]; then
      fail "control plane $NODE_NAME posts control plane ${p%%=*}'s address $ip; not removing it (remove-node acts on that address): check $NODE_NAME, then delete its Node by name (microk8s kubectl delete node $NODE_NAME)"
    fi
  done
  microk8s remove-node "$NODE_NAME" \
    || fail "microk8s remove-node $NODE_NAME failed; a control plane that is gone for good is removed by hand (microk8s remove-node $NODE_NAME --force)"
  log "removed $NODE_NAME from the cluster"
fi
