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

# wg-quick runs PreUp/PostUp/PreDown/PostDown lines as root: refuse any line but those the
# mesh writes (the same grammar as components/vpn/wireguard_check.py), so that whatever another
# host printed can never become a command here, even if the program let it through.
LC_ALL=C  # the character ranges below are ASCII ranges
wg_key='[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]='
octet='(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])'
cidr="($octet\.){3}$octet/(3[0-2]|[12]?[0-9])"
endpoint_host="(($octet\.){3}$octet|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)"
number='[0-9]{1,5}'
comment='^#[ -~]*$'
valid_line() {
  case $1 in "" | "[Interface]" | "[Peer]" | "Table = off") return 0 ;; esac
  [[ $1 =~ $comment || $1 =~ ^Address\ =\ $cidr$ || $1 =~ ^(ListenPort|MTU|PersistentKeepalive)\ =\ $number$ ||
     $1 =~ ^PublicKey\ =\ $wg_key$ || $1 =~ ^AllowedIPs\ =\ $cidr(,\ $cidr)*$ || $1 =~ ^Endpoint\ =\ $endpoint_host:$number$ ]]
}
# WireGuard keeps one peer per key: a second [Peer] with a key replaces the first one's
# AllowedIPs, so a key given twice (or this host's own) would cut a peer out.
n=0 interfaces=0
declare -A keys=()
while IFS= read -r line || [ -n "$line" ]; do
  n=$((n + 1))
  valid_line "$line" || fail "line $n of the mesh config is not a line the mesh writes; refusing the config"
  [ "$line" != "[Interface]" ] || interfaces=$((interfaces + 1))
  if [[ $line == "PublicKey = "* ]]; then
    [ -z "${keys[$line]:-}" ] || fail "line $n of the mesh config gives the same PublicKey twice; refusing the config"
    keys[$line]=$n
  fi
done <<< "$WG_CONFIG"
[ "$interfaces" -eq 1 ] || fail "the mesh config must have exactly one [Interface] section; refusing it"

for tool in wg wg-quick; do
  command -v "$tool" >/dev/null || fail "$tool not found on this host; install wireguard-tools (the base bootstrap does)"
done
[ -s "$key" ] || fail "no private key at $key; the key step must run first"
# wg reads the private key on stdin, never from a command line.
own="PublicKey = $(wg pubkey < "$key")"
[ -z "${keys[$own]:-}" ] || fail "line ${keys[$own]} of the mesh config gives this host's own key to a peer; refusing the config"

umask 077
new=$(mktemp "$dir/.$WG_IFACE.conf.XXXXXX")
trap 'rm -f "$new"' EXIT
# The private key goes in right below [Interface]; awk reads it from the file, so it never
# appears on a command line.
printf '%s\n' "$WG_CONFIG" | awk -v keyfile="$key" '
  { print }
  /^\[Interface\]$/ && !done { getline k < keyfile; print "PrivateKey = " k; done = 1 }
' > "$new"

# What needs a restart: the [Interface] lines wg-quick itself applies (address, MTU, port).
# A new PrivateKey (key rotation) does not: `wg syncconf` sets it and keeps the peers, so the
# tunnels come back as soon as each side knows the other's new key.
interface_section() { awk '/^\[Peer\]/ { exit } /^#/ || /^PrivateKey = / { next } { print }' "$1"; }
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
