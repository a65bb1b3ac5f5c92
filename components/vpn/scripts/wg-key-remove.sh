#!/usr/bin/env bash
# `pulumi destroy` of a host's WireGuard key: remove the private key file.
set -euo pipefail
SCRIPT_NAME="wireguard"
: "${WG_IFACE:=wg0}"
rm -f "/etc/wireguard/$WG_IFACE.key" "/etc/wireguard/$WG_IFACE.key.new" "/etc/wireguard/$WG_IFACE.key-epoch" "/etc/wireguard/$WG_IFACE.key-epoch.new"
