#!/usr/bin/env bash
# `pulumi destroy` of a host's mesh membership: take the interface down, stop it from
# coming back at boot, and remove its config. The key is removed by its own step.
set -euo pipefail
SCRIPT_NAME="wireguard"
: "${WG_IFACE:=wg0}"
unit="wg-quick@$WG_IFACE"
if systemctl is-enabled --quiet "$unit" 2>/dev/null; then
  systemctl disable "$unit" >/dev/null 2>&1 || true
fi
if ip link show dev "$WG_IFACE" >/dev/null 2>&1; then
  systemctl stop "$unit" || wg-quick down "$WG_IFACE"
fi
rm -f "/etc/wireguard/$WG_IFACE.conf"
log "$WG_IFACE removed"
