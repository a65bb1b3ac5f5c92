#!/usr/bin/env bash
# On the control plane, just before a node joins: make sure no other machine holds the
# node's name, and (re)register the stack's one join token with a fresh lifetime, so this
# node can join with it now, whenever it was added. The token arrives on stdin and is never
# printed (MicroK8s takes it only as an argument, so root can briefly see it in `ps`).
# Registrations for several nodes at once are serialised with a lock.
# On destroy, microk8s-remove-node.sh runs after the node has left.
# Parameters: NODE_NAME, NODE_IP, TOKEN_TTL_S.
set -euo pipefail
SCRIPT_NAME="register"
: "${NODE_NAME:?}" "${NODE_IP:?}" "${TOKEN_TTL_S:=3600}"
: "${SNAP_DATA:=/var/snap/microk8s/current}"
token=$(read_join_token)

ip=$(microk8s kubectl get node "$NODE_NAME" -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}' 2>/dev/null || true)
if [ -n "$ip" ] && [ "$ip" != "$NODE_IP" ]; then
  fail "a node named $NODE_NAME with address $ip is already in the cluster; remove it (microk8s remove-node $NODE_NAME) or rename the host"
fi
if [ "$ip" = "$NODE_IP" ]; then
  log "$NODE_NAME is already in the cluster"
  echo "node=$NODE_NAME"
  exit 0
fi
mkdir -p "$SNAP_DATA/var/lock"
retry flock --timeout 120 "$SNAP_DATA/var/lock/hybrid-ai-add-node.lock" \
  microk8s add-node --token "$token" --token-ttl "$TOKEN_TTL_S" >/dev/null 2>&1 \
  || fail "microk8s add-node failed; is MicroK8s running on the control plane?"
echo "node=$NODE_NAME"
