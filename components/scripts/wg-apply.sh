#!/usr/bin/env bash
# Install this host's WireGuard config and bring the tunnel to it without dropping live
# tunnels: peer changes go through `wg syncconf`; only [Interface] changes (address, MTU,
# port) restart the interface. The config survives reboots as the wg-quick@ unit.
# Parameters: WG_IFACE, WG_CONFIG (the config without its private key: that is added here,
# on the host, from the key file). Idempotent: a re-run with the same config changes nothing.
set -euo pipefail
SCRIPT_NAME="wireguard"
: "${WG_IFACE:=wg0}"
: "${WG_CONFIG:?WG_CONFIG must be set}"
dir=/etc/wireguard
conf="$dir/$WG_IFACE.conf"
key="$dir/$WG_IFACE.key"
unit="wg-quick@$WG_IFACE"

for tool in wg wg-quick; do
  command -v "$tool" >/dev/null || fail "$tool not found on this host; install wireguard-tools (the base bootstrap does)"
done
[ -s "$key" ] || fail "no private key at $key; the key step must run first"

umask 077
new=$(mktemp "$dir/.$WG_IFACE.conf.XXXXXX")
trap 'rm -f "$new"' EXIT
# The private key goes in right below [Interface]; awk reads it from the file, so it never
# appears on a command line.
printf '%s\n' "$WG_CONFIG" | awk -v keyfile="$key" '
  { print }
  /^\[Interface\]$/ && !done { getline k < keyfile; print "PrivateKey = " k; done = 1 }
' > "$new"

interface_section() { awk '/^\[Peer\]/ { exit } { print }' "$1"; }
is_up() { ip link show dev "$WG_IFACE" >/dev/null 2>&1; }

changed=()
if ! cmp -s "$new" "$conf"; then
  restart=no
  if [ -f "$conf" ] && [ "$(interface_section "$new")" != "$(interface_section "$conf")" ]; then
    restart=yes
  fi
  mv "$new" "$conf"
  chmod 600 "$conf"
  changed+=("config")
  if is_up; then
    if [ "$restart" = yes ]; then
      systemctl restart "$unit"
      changed+=("restarted")
    else
      wg syncconf "$WG_IFACE" <(wg-quick strip "$WG_IFACE")
      changed+=("peers-synced")
    fi
  fi
fi
if ! systemctl is-enabled --quiet "$unit"; then
  systemctl enable "$unit" >/dev/null 2>&1
  changed+=("enabled")
fi
if ! is_up; then
  systemctl start "$unit"
  changed+=("started")
fi
echo "changed=${changed[*]:-none}"
