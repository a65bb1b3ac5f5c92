"""`microk8s join` in the cluster stubs (tests/support/cluster_stubs.py), as join.py 1.32 asks
the seed's cluster-agent 1.32: the seed is another stub host (`ClusterHost(..., seed=...)`, its
SNAP_DATA in $SEED_SNAP_DATA); `issue_token` leaves there what `microk8s add-node` leaves."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

# A case of the microk8s stub. The token, as cluster-agent 1.32 checks it (pkg/util/token.go
# IsValidToken): "" is refused; the trimmed token against the trimmed first field of each element
# of the seed's cluster-tokens.txt split on "\n" (after its final newline comes "", which a
# whitespace-only token matches); the first match decides: `token|expiry` holds until it expires;
# one without is consumed (pkg/snap/snap.go ConsumeClusterToken), RemoveToken dropping the first
# line that starts with the token as sent; else join.py prints the agent's error and
# exits 1. Then the seed's kubelet args replace this node's, with --node-ip the address the seed saw
# (its LAN's here) and no --hostname-override (join.py store_base_kubelet_args,
# update_kubelet_node_ip, update_kubelet_hostname_override); a worker is marked clustered.lock (and
# no-k8s-dqlite), both kinds no-cert-reissue.
JOIN_STUB = """
  join) tok=${2#*/}; tok=${tok%%/*}; tokens=${SEED_SNAP_DATA:-/nonexistent}/credentials/cluster-tokens.txt
        trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; s=${s%"${s##*[![:space:]]}"}; printf '%s' "$s"; }
        ok=no; ttl=no
        if [ -n "$tok" ] && [ -r "$tokens" ]; then
          rest=$(cat "$tokens"; printf x); rest=${rest%x}; want=$(trim "$tok")
          while :; do
            line=$(trim "${rest%%$'\n'*}")
            if [ "${line%%|*}" = "$want" ]; then
              case $line in *"|"*) ttl=yes; [ "${line#*|}" -gt "$(date +%s)" ] 2>/dev/null && ok=yes;; *) ok=yes;; esac; break
            fi
            [ "${rest%%$'\n'*}" != "$rest" ] || break
            rest=${rest#*$'\n'}
          done
        fi
        if [ "$ok" = yes ] && [ "$ttl" = no ]; then
          rest=$(cat "$tokens"; printf x); rest=${rest%x}; kept=
          while :; do
            line=${rest%%$'\n'*}
            if [[ $line == "$tok"* ]]; then
              if [ "$line" = "$rest" ]; then printf '%s' "${kept%$'\n'}" > "$tokens"; else printf '%s' "$kept${rest#*$'\n'}" > "$tokens"; fi
              break
            fi
            [ "$line" != "$rest" ] || break
            kept+=$line$'\n'; rest=${rest#*$'\n'}
          done
        fi
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
