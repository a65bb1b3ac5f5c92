#!/usr/bin/env bash
# Join this node to the cluster through the control plane's VPN address, with this node's
# join token read from stdin. `microk8s join` takes the token only inside its one argument
# (join.py's CONNECTION; cluster-agent's launch-config join runs the same command): that
# call, and its retries (up to 5 attempts, 5+10+20+40 s apart), is the one place it is on a
# command line, visible in `ps` while it runs (docs/security.md). MicroK8s rewrites the kubelet's node IP while joining: it is pinned
# back to this node's VPN address afterwards.
# A control plane joins without --worker: join.py then takes the cluster's CA and dqlite
# certificates and restarts k8s-dqlite with the current voters (update_dqlite); dqlite makes
# it a voter once there are three. Membership: a worker join leaves var/lock/clustered.lock,
# both kinds leave var/lock/no-cert-reissue ("part of a cluster"; `microk8s leave` removes it).
# Parameters: HOST_NAME, CONTROL_PLANE (the seed's VPN address; this node's own on the seed),
# NODE_IP, WORKER (true|false).
set -euo pipefail
SCRIPT_NAME="join"
: "${CONTROL_PLANE:?}" "${NODE_IP:?}" "${WORKER:=true}"
: "${SNAP_DATA:=/var/snap/microk8s/current}"
token=$(read_join_token)

marker=$SNAP_DATA/var/lock/no-cert-reissue
[ "$WORKER" = true ] && marker=$SNAP_DATA/var/lock/clustered.lock
if [ -e "$marker" ]; then
  log "already part of the cluster"
elif [ "$CONTROL_PLANE" = "$NODE_IP" ]; then
  # The seed: it formed the cluster. (A promoted seed was joined before: the marker is there.)
  log "the seed: it formed the cluster and joins nobody"
else
  flags=()
  [ "$WORKER" = true ] && flags+=(--worker)
  retry microk8s join "$CONTROL_PLANE:25000/$token" "${flags[@]}" >/dev/null 2>&1 \
    || fail "could not join through $CONTROL_PLANE:25000; check the VPN, and if the token expired (cluster.joinTokenTtlSeconds) re-run with --replace on this node's register step"
  changed+=("joined")
fi
if ensure_arg "$SNAP_DATA/args/kubelet" --node-ip "$NODE_IP"; then
  snap restart microk8s.daemon-kubelite
  changed+=("node-ip")
fi
report
