#!/usr/bin/env bash
# On a control plane, before MicroK8s listens: cluster-agent (TCP 25000) and dqlite (19001)
# only from the control planes' VPN addresses (CONTROL_PLANES), the loopback, and a joining
# node's address while its join runs. Every node holds the control plane's cluster-agent
# callback token (a join hands it over), and with it cluster-agent's /configure rewrites and
# restarts kube-apiserver: a worker must not reach that port. Its own nftables table
# (`inet hybrid_ai_agent`), on every interface, public or not.
# The set `joiners` (addresses with a timeout) is filled by microk8s-register.sh and emptied by
# microk8s-node-ready.sh; a re-run here keeps its elements (the table is updated in place, the
# rules and `control_planes` rewritten in one transaction). Persisted for reboots by a oneshot
# unit loading RULES_FILE (without joiners: none is pending after a reboot).
# Parameters: CONTROL_PLANES (space-separated IPv4), PORTS (space-separated), RULES_FILE, UNIT_FILE.
set -euo pipefail
SCRIPT_NAME="agent-guard"
: "${CONTROL_PLANES:?}" "${PORTS:=25000 19001}"
: "${RULES_FILE:=/etc/hybrid-ai/agent-guard.nft}" "${UNIT_FILE:=/etc/systemd/system/hybrid-ai-agent-guard.service}"
read -ra planes <<< "$CONTROL_PLANES"
read -ra ports <<< "$PORTS"
for a in "${planes[@]}"; do [[ $a =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || fail "not an IPv4 address: '$a'"; done
for p in "${ports[@]}"; do [[ $p =~ ^[0-9]{1,5}$ ]] || fail "not a port: '$p'"; done

if ! installed nftables; then
  export DEBIAN_FRONTEND=noninteractive
  retry apt-get -o DPkg::Lock::Timeout=120 update -q || fail "apt-get update failed; check the host's package mirrors"
  retry apt-get -o DPkg::Lock::Timeout=120 install -y -q --no-install-recommends nftables || fail "could not install nftables"
  changed+=("nftables")
fi
nft=$(command -v nft) || fail "nft not found after installing nftables"

join() { local IFS=,; echo "$*"; }
# Before the host firewall's chain (priority filter): a drop here is final whatever it accepts.
rules=$(
  echo "# hybrid-ai: cluster-agent and dqlite from the control planes only (written by the Pulumi program)"
  echo "table inet hybrid_ai_agent {"
  echo "  set control_planes { type ipv4_addr; }"
  echo "  set joiners { type ipv4_addr; flags timeout; }"
  echo "  chain input { type filter hook input priority filter - 10; policy accept; }"
  echo "}"
  echo "flush set inet hybrid_ai_agent control_planes"
  echo "flush chain inet hybrid_ai_agent input"
  echo "add element inet hybrid_ai_agent control_planes { $(join "${planes[@]}") }"
  echo "add rule inet hybrid_ai_agent input iifname \"lo\" accept"
  echo "add rule inet hybrid_ai_agent input tcp dport { $(join "${ports[@]}") } ip saddr @control_planes accept"
  echo "add rule inet hybrid_ai_agent input tcp dport { $(join "${ports[@]}") } ip saddr @joiners accept"
  echo "add rule inet hybrid_ai_agent input tcp dport { $(join "${ports[@]}") } drop"
)
unit="[Unit]
Description=hybrid-ai: cluster-agent and dqlite from the control planes only (nftables table inet hybrid_ai_agent)
DefaultDependencies=no
Wants=network-pre.target
Before=network-pre.target shutdown.target snap.microk8s.daemon-cluster-agent.service
After=nftables.service
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=$nft -f $RULES_FILE

[Install]
WantedBy=sysinit.target"

printf '%s\n' "$rules" | "$nft" -c -f - || fail "nft refused the generated ruleset (see above)"
# What the program owns (the joiners' elements come and go with joins).
owned() { "$nft" list chain inet hybrid_ai_agent input 2>/dev/null; "$nft" list set inet hybrid_ai_agent control_planes 2>/dev/null; }
before=$(owned || true)
printf '%s\n' "$rules" | "$nft" -f - || fail "could not load the ruleset"
[ "$before" = "$(owned)" ] || changed+=("ruleset")

if [ "$(cat "$RULES_FILE" 2>/dev/null)" != "$rules" ]; then
  mkdir -p "$(dirname "$RULES_FILE")"
  printf '%s\n' "$rules" > "$RULES_FILE"
  changed+=("rules-file")
fi
if [ "$(cat "$UNIT_FILE" 2>/dev/null)" != "$unit" ]; then
  mkdir -p "$(dirname "$UNIT_FILE")"
  printf '%s\n' "$unit" > "$UNIT_FILE"
  systemctl daemon-reload
  changed+=("unit")
fi
unit_name=$(basename "$UNIT_FILE")
if ! systemctl is-enabled --quiet "$unit_name"; then
  systemctl enable "$unit_name"
  changed+=("enabled")
fi
report
