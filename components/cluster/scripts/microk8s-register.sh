#!/usr/bin/env bash
# On the control plane, once a node is installed: make sure no other machine holds the
# node's name, then have MicroK8s generate a join token for this node alone, valid for
# TOKEN_TTL_S seconds, and print it (the program keeps it secret and hands it to the node's
# join step on stdin). A token of its own per node: cluster-agent stops at the first line of
# its tokens file that matches, expired or not, so a shared token re-registered later would
# never be accepted again. `add-node` generates the token itself: it is on no command line.
# While the join runs, the node may reach cluster-agent (and dqlite) here: its address goes into
# the agent guard's `joiners` set (agent-guard-apply.sh) for the token's lifetime; the ready
# step takes it out. Without the guard's table this fails: the ports would be open to every node.
# Registrations for several nodes at once are serialised with a lock, taken on a file
# descriptor. On destroy, microk8s-remove-node.sh runs after the node has left.
# Parameters: NODE_NAME, NODE_IP, TOKEN_TTL_S, LOCK_WAIT_S.
set -euo pipefail
SCRIPT_NAME="register"
: "${NODE_NAME:?}" "${NODE_IP:?}" "${TOKEN_TTL_S:=3600}" "${LOCK_WAIT_S:=120}"
: "${SNAP_DATA:=/var/snap/microk8s/current}"

ip=$(microk8s kubectl get node "$NODE_NAME" -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}' 2>/dev/null || true)
if [ -n "$ip" ] && [ "$ip" != "$NODE_IP" ]; then
  fail "a node named $NODE_NAME with address $ip is already in the cluster; remove it (microk8s remove-node $NODE_NAME) or rename the host"
fi
mkdir -p "$SNAP_DATA/var/lock"
exec {lock}>"$SNAP_DATA/var/lock/hybrid-ai-add-node.lock"
flock -w "$LOCK_WAIT_S" "$lock" || fail "another registration held the add-node lock for ${LOCK_WAIT_S}s"
token=$(retry microk8s add-node --token-ttl "$TOKEN_TTL_S" --format token 2>/dev/null) \
  || fail "microk8s add-node failed; is MicroK8s running on the control plane?"
exec {lock}>&-
# Strict: exactly one token of 32 hex characters (what add_token.py's token_hex(16) prints).
[[ "$token" =~ ^[0-9a-f]{32}$ ]] || fail "microk8s add-node printed something other than one 32-hex-character token for $NODE_NAME; not passing it on"
[[ $NODE_IP =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || fail "not an IPv4 address: '$NODE_IP'"
nft list table inet hybrid_ai_agent >/dev/null 2>&1 \
  || fail "the agent guard (nftables table inet hybrid_ai_agent) is missing on this control plane; run pulumi up again to restore it"
nft add element inet hybrid_ai_agent joiners "{ $NODE_IP timeout ${TOKEN_TTL_S}s }" || fail "could not let $NODE_IP reach cluster-agent for its join"
printf '%s\n' "$token"
