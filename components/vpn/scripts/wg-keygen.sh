#!/usr/bin/env bash
# Create this host's WireGuard key pair on the host; print only the public key.
# The private key never leaves the host: it is written with mode 0600 and never printed.
# Parameters: WG_IFACE, WG_KEY_EPOCH (vpn.keyEpoch; 0 when unset). Idempotent: an existing key
# is kept while the epoch recorded beside it equals WG_KEY_EPOCH; a different epoch makes a new
# key (rotation). The running tunnel keeps the old key until wg-apply.sh loads the new one.
set -euo pipefail
SCRIPT_NAME="wireguard"
: "${WG_IFACE:=wg0}"
: "${WG_KEY_EPOCH:=0}"
dir=/etc/wireguard
key="$dir/$WG_IFACE.key"
epoch_file="$dir/$WG_IFACE.key-epoch"

[[ $WG_KEY_EPOCH =~ ^[0-9]{1,7}$ ]] || fail "WG_KEY_EPOCH must be a whole number (vpn.keyEpoch)"
command -v wg >/dev/null || fail "wg not found on this host; install wireguard-tools (the base bootstrap does)"
umask 077
mkdir -p "$dir"
# A key made before epochs existed counts as epoch 0.
current=0
[ ! -s "$epoch_file" ] || current=$(cat "$epoch_file")
if [ ! -s "$key" ] || [ "$current" != "$WG_KEY_EPOCH" ]; then
  wg genkey > "$key.new"
  chmod 600 "$key.new"
  mv "$key.new" "$key"
  log "created $key (key epoch $WG_KEY_EPOCH)"
fi
if [ "$current" != "$WG_KEY_EPOCH" ] || [ ! -e "$epoch_file" ]; then
  printf '%s\n' "$WG_KEY_EPOCH" > "$epoch_file.new"
  mv "$epoch_file.new" "$epoch_file"
fi
chmod 600 "$key"
wg pubkey < "$key"
