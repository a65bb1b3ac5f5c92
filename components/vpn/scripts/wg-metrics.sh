#!/usr/bin/env bash
# WireGuard per-peer handshake time and transfer for node-exporter's textfile collector. Run
# by hybrid-ai-wg-metrics.timer (installed by wg-metrics-install.sh); VPN_IFACE and
# TEXTFILE_DIR come from the unit. The file is replaced atomically, so node-exporter never
# reads half of it; when `wg` fails the old file stays and its age shows on the mesh dashboard.
set -euo pipefail
interface=${VPN_IFACE:-wg0}
dir=${TEXTFILE_DIR:-/var/lib/node_exporter/textfile}

# `wg show <if> dump`: an interface line, then per peer (tab-separated) public-key,
# preshared-key, endpoint, allowed-ips, latest-handshake, transfer-rx, transfer-tx, keepalive.
dump=$(wg show "$interface" dump)
peers=$(printf '%s\n' "$dump" | tail -n +2)

family() {  # NAME TYPE HELP FIELD: one metric family, a sample per peer
  local name=$1 type=$2 help=$3 field=$4
  printf '# HELP %s %s\n# TYPE %s %s\n' "$name" "$help" "$name" "$type"
  [ -n "$peers" ] || return 0
  printf '%s\n' "$peers" | awk -F '\t' -v name="$name" -v iface="$interface" -v f="$field" \
    '{ printf "%s{interface=\"%s\",public_key=\"%s\",allowed_ips=\"%s\"} %s\n", name, iface, $1, $4, $f }'
}

mkdir -p "$dir"
tmp=$(mktemp "$dir/.wireguard.prom.XXXXXX")
trap 'rm -f "$tmp"' EXIT
{
  family hybridai_wireguard_peer_last_handshake_seconds gauge "Unix time of the peer's latest handshake (0: never)." 5
  family hybridai_wireguard_peer_receive_bytes_total counter "Bytes received from the peer." 6
  family hybridai_wireguard_peer_transmit_bytes_total counter "Bytes sent to the peer." 7
} > "$tmp"
chmod 0644 "$tmp"
mv "$tmp" "$dir/wireguard.prom"
trap - EXIT
