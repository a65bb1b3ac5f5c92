#!/usr/bin/env bash
# On a control plane, before MicroK8s listens: cluster-agent (TCP 25000) and dqlite (19001)
# only from the control planes' VPN addresses (CONTROL_PLANES) and the loopback; a joining
# node's address reaches cluster-agent alone (JOIN_PORTS), and only while its join runs. Every
# node holds the control plane's cluster-agent callback token (a join hands it over), and with it
# cluster-agent's /configure rewrites and restarts kube-apiserver: a worker must not reach that
# port. A worker's join talks to cluster-agent only; a joining control plane is in
# CONTROL_PLANES already. Dqlite stays shut to joiners: a join token also gets dqlite's cluster
# certificate (docs/security.md). Its own nftables table (`inet hybrid_ai_agent`), on every
# interface, public or not.
# cluster-agent 1.32 takes a whitespace-only token as valid (docs/upstream.md): this guard, not
# the token, keeps callers out. A pod here reaching another control plane's ports leaves
# masqueraded to this host's address (Calico's natOutgoing), which that host admits; the
# forward hook sees the pod's own address before the masquerade, so pods (POD_CIDR) are
# dropped there on their way out.
# The set `joiners` (addresses with a timeout) is filled by microk8s-register.sh and emptied by
# microk8s-node-ready.sh; a re-run here keeps its elements (the table is updated in place, the
# rules and `control_planes` rewritten in one transaction). Persisted for reboots by a oneshot
# unit loading RULES_FILE (without joiners: none is pending after a reboot; components/kit/scripts/nft.sh).
# Parameters: CONTROL_PLANES (space-separated IPv4), PORTS (space-separated), JOIN_PORTS (those of
# PORTS a joiner reaches), POD_CIDR (the pod network, IPv4 CIDR), RULES_FILE, UNIT_FILE.
# uses: nft.sh
set -euo pipefail
SCRIPT_NAME="agent-guard"
: "${CONTROL_PLANES:?}" "${PORTS:=25000 19001}" "${JOIN_PORTS:=25000}" "${POD_CIDR:?}"
: "${RULES_FILE:=/etc/hybrid-ai/agent-guard.nft}" "${UNIT_FILE:=/etc/systemd/system/hybrid-ai-agent-guard.service}"
read -ra planes <<< "$CONTROL_PLANES"
read -ra ports <<< "$PORTS"
read -ra join_ports <<< "$JOIN_PORTS"
for a in "${planes[@]}"; do [[ $a =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || fail "not an IPv4 address: '$a'"; done
for p in "${ports[@]}"; do [[ $p =~ ^[0-9]{1,5}$ ]] || fail "not a port: '$p'"; done
[[ $POD_CIDR =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$ ]] || fail "POD_CIDR is not an IPv4 CIDR: '$POD_CIDR'"
for p in "${join_ports[@]}"; do [[ " ${ports[*]} " == *" $p "* ]] || fail "JOIN_PORTS names $p, which is not among PORTS"; done

nft_install

# Before the host firewall's chain (priority filter): a drop here is final whatever it accepts.
rules=$(
  echo "# hybrid-ai: cluster-agent and dqlite from the control planes only, cluster-agent from joiners (written by the Pulumi program)"
  echo "table inet hybrid_ai_agent {"
  echo "  set control_planes { type ipv4_addr; }"
  echo "  set joiners { type ipv4_addr; flags timeout; }"
  echo "  chain input { type filter hook input priority filter - 10; policy accept; }"
  echo "  chain forward { type filter hook forward priority filter - 10; policy accept; }"
  echo "}"
  echo "flush set inet hybrid_ai_agent control_planes"
  echo "flush chain inet hybrid_ai_agent input"
  echo "flush chain inet hybrid_ai_agent forward"
  echo "add element inet hybrid_ai_agent control_planes { $(nft_join "${planes[@]}") }"
  echo "add rule inet hybrid_ai_agent input iifname \"lo\" accept"
  echo "add rule inet hybrid_ai_agent input tcp dport { $(nft_join "${ports[@]}") } ip saddr @control_planes accept"
  echo "add rule inet hybrid_ai_agent input tcp dport { $(nft_join "${join_ports[@]}") } ip saddr @joiners accept"
  echo "add rule inet hybrid_ai_agent input tcp dport { $(nft_join "${ports[@]}") } drop"
  echo "add rule inet hybrid_ai_agent forward ip saddr $POD_CIDR tcp dport { $(nft_join "${ports[@]}") } drop"
)
# What the program owns (the joiners' elements come and go with joins).
owned() {
  "$nft" list chain inet hybrid_ai_agent input 2>/dev/null; "$nft" list chain inet hybrid_ai_agent forward 2>/dev/null
  "$nft" list set inet hybrid_ai_agent control_planes 2>/dev/null; }
nft_load "$rules" owned
nft_persist "$rules" "hybrid-ai: cluster-agent and dqlite from the control planes only (nftables table inet hybrid_ai_agent)" \
  snap.microk8s.daemon-cluster-agent.service
report
