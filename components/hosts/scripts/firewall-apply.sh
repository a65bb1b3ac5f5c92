#!/usr/bin/env bash
# The host firewall of a host with a public address: one nftables table of its own
# (`inet hybrid_ai`), so no other rule on the host is read, changed or flushed.
# From outside the overlay only SSH, the VPN's UDP ports (VPN_PORT), PUBLIC_TCP (80/443 on ingress hosts) and,
# from ADMIN_CIDRS, API_PORT (control planes) are reachable; traffic on the loopback, the VPN
# interface and Calico's interfaces (cali*, vxlan.calico) passes untouched, and so does any
# packet of a connection already open (the SSH session running this script included).
# Forwarded traffic from outside that was DNAT'd (hostPorts, NodePorts) or is addressed to
# CLUSTER_CIDRS (pods, services) is dropped, but for the original ports PUBLIC_TCP.
# Applied atomically (`nft -f` of "create, delete, define" in one transaction); a second run
# with the same parameters leaves the same ruleset and reports changed=none.
# Persisted for reboots by a oneshot unit that loads RULES_FILE (components/kit/scripts/nft.sh).
# Parameters: SSH_PORT, VPN_PORT (UDP ports or ranges low-high), VPN_INTERFACE, PUBLIC_TCP, API_PORT, ADMIN_CIDRS,
# CLUSTER_CIDRS (lists space-separated; API_PORT empty on other hosts), RULES_FILE, UNIT_FILE.
# uses: nft.sh
set -euo pipefail
SCRIPT_NAME="firewall"
: "${SSH_PORT:?}" "${VPN_PORT:?}" "${VPN_INTERFACE:?}" "${PUBLIC_TCP:=}" "${API_PORT:=}" "${ADMIN_CIDRS:=}" "${CLUSTER_CIDRS:=}"
: "${RULES_FILE:=/etc/hybrid-ai/firewall.nft}" "${UNIT_FILE:=/etc/systemd/system/hybrid-ai-firewall.service}"

port_re='^[0-9]{1,5}$'
cidr_re='^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$'
read -ra public_tcp <<< "$PUBLIC_TCP"
read -ra vpn_ports <<< "$VPN_PORT"
read -ra admin_cidrs <<< "$ADMIN_CIDRS"
read -ra cluster_cidrs <<< "$CLUSTER_CIDRS"
is_port() { [[ $1 =~ $port_re ]] && [ "$1" -ge 1 ] && [ "$1" -le 65535 ]; }
for p in "$SSH_PORT" "${public_tcp[@]}" ${API_PORT:+"$API_PORT"}; do is_port "$p" || fail "not a port: '$p'"; done
[ "${#vpn_ports[@]}" -gt 0 ] || fail "no VPN port"
for p in "${vpn_ports[@]}"; do
  low=${p%-*} high=${p#*-}
  if ! { is_port "$low" && is_port "$high" && [ "$low" -le "$high" ]; }; then fail "not a port or range low-high: '$p'"; fi
done
for c in "${admin_cidrs[@]}" "${cluster_cidrs[@]}"; do [[ $c =~ $cidr_re ]] || fail "not an IPv4 CIDR: '$c'"; done
[[ $VPN_INTERFACE =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || fail "not an interface name: '$VPN_INTERFACE'"

nft_install

# The interfaces whose traffic is the cluster's own: never filtered.
inside="\"lo\", \"$VPN_INTERFACE\", \"vxlan.calico\", \"vxlan-v6.calico\""
overlay="\"$VPN_INTERFACE\", \"vxlan.calico\", \"vxlan-v6.calico\""
rules=$(
  echo "# hybrid-ai host firewall (written by the Pulumi program; a re-run rewrites it)"
  echo "table inet hybrid_ai"
  echo "delete table inet hybrid_ai"
  echo "table inet hybrid_ai {"
  echo "  chain input {"
  echo "    type filter hook input priority filter; policy accept;"
  echo "    ct state established,related accept"
  echo "    iifname { $inside } accept"
  echo "    iifname \"cali*\" accept"
  echo "    meta l4proto { icmp, ipv6-icmp } accept"
  echo "    tcp dport $SSH_PORT accept"
  echo "    udp dport { $(nft_join "${vpn_ports[@]}") } accept"
  [ -z "$PUBLIC_TCP" ] || echo "    tcp dport { $(nft_join "${public_tcp[@]}") } accept"
  [ -z "$API_PORT" ] || [ -z "$ADMIN_CIDRS" ] || echo "    ip saddr { $(nft_join "${admin_cidrs[@]}") } tcp dport $API_PORT accept"
  echo "    drop"
  echo "  }"
  echo "  chain forward {"
  echo "    type filter hook forward priority filter; policy accept;"
  echo "    ct state established,related accept"
  echo "    iifname { $overlay } accept"
  echo "    iifname \"cali*\" accept"
  # One rule per port: nft 1.0.6 lists a set of `ct original proto-dst` as "[invalid type]".
  for p in "${public_tcp[@]}"; do echo "    ct status dnat meta l4proto tcp ct original proto-dst $p accept"; done
  echo "    ct status dnat drop"
  [ -z "$CLUSTER_CIDRS" ] || echo "    ip daddr { $(nft_join "${cluster_cidrs[@]}") } drop"
  echo "  }"
  echo "}"
)
owned() { "$nft" list table inet hybrid_ai; }
nft_load "$rules" owned
nft_persist "$rules" "hybrid-ai host firewall (nftables table inet hybrid_ai)"
report
