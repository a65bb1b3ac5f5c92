"""`microk8s join` in the cluster stubs (tests/support/cluster_stubs.py), as join.py 1.32 asks
the seed's cluster-agent 1.32: the seed is another stub host (`ClusterHost(..., seed=...)`, its
SNAP_DATA in $SEED_SNAP_DATA); `issue_token` leaves there what `microk8s add-node` leaves."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

# A case of the microk8s stub. The token: the first line of the seed's cluster-tokens.txt with it
# decides; `token|expiry` holds until it expires, a token without one is consumed (pkg/util/token.go
# IsValidToken, pkg/snap/snap.go ConsumeClusterToken); else join.py prints the agent's error and
# exits 1. Then the seed's kubelet args replace this node's, with --node-ip the address the seed saw
# (its LAN's here) and no --hostname-override (join.py store_base_kubelet_args,
# update_kubelet_node_ip, update_kubelet_hostname_override); a worker is marked clustered.lock (and
# no-k8s-dqlite), both kinds no-cert-reissue.
JOIN_STUB = """
  join) tok=${2#*/}; tok=${tok%%/*}; tokens=${SEED_SNAP_DATA:-/nonexistent}/credentials/cluster-tokens.txt
        line=$(awk -F'|' -v t="$tok" '$1 == t { print; exit }' "$tokens" 2>/dev/null || true)
        case $line in
          "") ok=no;;
          *"|"*) ok=no; [ "${line#*|}" -gt "$(date +%s)" ] 2>/dev/null && ok=yes;;
          *) ok=yes; { grep -vxF -- "$tok" "$tokens" || true; } > "$tokens.new"; mv "$tokens.new" "$tokens";;
        esac
        [ "$ok" = yes ] || { echo "Connection failed. Invalid token (500)."; exit 1; }
        cp "$SEED_SNAP_DATA/args/kubelet" "$SNAP_DATA/args/kubelet" || exit 1
        sed -i -e "s|^--node-ip=.*|--node-ip=198.51.100.11|" -e "/^--hostname-override=/d" "$SNAP_DATA/args/kubelet"
        touch "$SNAP_DATA/var/lock/no-cert-reissue"
        if [ "${3:-}" = --worker ]; then touch "$SNAP_DATA/var/lock/clustered.lock" "$SNAP_DATA/var/lock/no-k8s-dqlite"; fi;;"""


def issue_token(snap_data: Path, ttl: int = 3600, token: str | None = None) -> str:
    """What `microk8s add-node --token-ttl TTL [--token T]` appends (add_token.py @ v1.32)."""
    token = token or secrets.token_hex(16)
    (snap_data / "credentials").mkdir(parents=True, exist_ok=True)
    with (snap_data / "credentials" / "cluster-tokens.txt").open("a") as f:
        f.write(f"{token}\n" if ttl == -1 else f"{token}|{int(time.time()) + ttl}\n")
    return token
