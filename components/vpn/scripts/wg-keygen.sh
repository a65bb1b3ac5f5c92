#!/usr/bin/env bash
# Create this host's WireGuard key pair on the host, once; print only the public key.
# The private key never leaves the host: it is written with mode 0600 and never printed.
# Parameters: WG_IFACE. Idempotent: an existing key is kept.
set -euo pipefail
SCRIPT_NAME="wireguard"
: "${WG_IFACE:=wg0}"
dir=/etc/wireguard
key="$dir/$WG_IFACE.key"

command -v wg >/dev/null || fail "wg not found on this host; install wireguard-tools (the base bootstrap does)"
umask 077
mkdir -p "$dir"
if [ ! -s "$key" ]; then
  wg genkey > "$key.new"
  mv "$key.new" "$key"
  log "created $key"
fi
chmod 600 "$key"
wg pubkey < "$key"
