#!/usr/bin/env bash
# Undo agent-guard-apply.sh on `pulumi destroy`: its table, its unit and its rules file. No
# other table is touched. nftables stays installed (other software may use it).
# Parameters: RULES_FILE, UNIT_FILE (as for agent-guard-apply.sh).
set -euo pipefail
SCRIPT_NAME="agent-guard"
: "${RULES_FILE:=/etc/hybrid-ai/agent-guard.nft}" "${UNIT_FILE:=/etc/systemd/system/hybrid-ai-agent-guard.service}"
unit_name=$(basename "$UNIT_FILE")
if command -v nft >/dev/null && nft list table inet hybrid_ai_agent >/dev/null 2>&1; then
  nft delete table inet hybrid_ai_agent
  changed+=("ruleset")
fi
if systemctl is-enabled --quiet "$unit_name" 2>/dev/null; then
  systemctl disable "$unit_name"
  changed+=("enabled")
fi
if [ -e "$UNIT_FILE" ]; then
  rm -f "$UNIT_FILE"
  systemctl daemon-reload
  changed+=("unit")
fi
if [ -e "$RULES_FILE" ]; then
  rm -f "$RULES_FILE"
  changed+=("rules-file")
fi
report
