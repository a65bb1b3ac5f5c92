#!/usr/bin/env bash
# Undo agent-guard-apply.sh on `pulumi destroy`: its table, its unit and its rules file. No
# other table is touched. nftables stays installed (other software may use it).
# Parameters: RULES_FILE, UNIT_FILE (as for agent-guard-apply.sh).
# uses: nft.sh
set -euo pipefail
SCRIPT_NAME="agent-guard"
: "${RULES_FILE:=/etc/hybrid-ai/agent-guard.nft}" "${UNIT_FILE:=/etc/systemd/system/hybrid-ai-agent-guard.service}"
nft_remove hybrid_ai_agent
report
