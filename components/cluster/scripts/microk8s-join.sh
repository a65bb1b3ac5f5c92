#!/usr/bin/env bash
# Join this node to the cluster through the control plane's VPN address, with this node's
# join token read from stdin. `microk8s join` takes the token only inside its one argument
# (join.py's CONNECTION; cluster-agent's launch-config join runs the same command): that
# call, and its retries (up to 5 attempts, 5+10+20+40 s apart), is the one place it is on a
# command line, visible in `ps` while it runs (docs/security.md). A join replaces this node's
# kubelet args with the seed's, then sets the node IP to the address the seed saw
# (join.py store_base_kubelet_args, update_kubelet_node_ip): this node's own kubelet flags
# (KUBELET_ARGS, its launch configuration's) are put back afterwards, on every run.
# A control plane joins without --worker: join.py then takes the cluster's CA and dqlite
# certificates and restarts k8s-dqlite with the current voters (update_dqlite); dqlite makes
# it a voter once there are three. Membership: a worker join leaves var/lock/clustered.lock,
# both kinds leave var/lock/no-cert-reissue ("part of a cluster"; `microk8s leave` removes it).
# Parameters: HOST_NAME, CONTROL_PLANE (the seed's VPN address; this node's own on the seed),
# NODE_IP, WORKER (true|false), KUBELET_ARGS (space-separated --flag=value).
set -euo pipefail
SCRIPT_NAME="join"
: "${CONTROL_PLANE:?}" "${NODE_IP:?}" "${WORKER:=true}" "${KUBELET_ARGS:=--node-ip=$NODE_IP}"
: "${SNAP_DATA:=/var/snap/microk8s/current}"
read -ra pins <<< "$KUBELET_ARGS"
for pin in "${pins[@]}"; do [[ $pin =~ ^--[a-z0-9-]+=[A-Za-z0-9.:/,-]+$ ]] || fail "not a kubelet flag: '$pin'"; done
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
restart=no
for pin in "${pins[@]}"; do
  flag=${pin%%=*}
  if ensure_arg "$SNAP_DATA/args/kubelet" "$flag" "${pin#*=}"; then changed+=("${flag#--}"); restart=yes; fi
done
if [ "$restart" = yes ]; then snap restart microk8s.daemon-kubelite; fi
report
