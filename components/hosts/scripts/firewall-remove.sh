#!/usr/bin/env bash
# Undo firewall-apply.sh on `pulumi destroy`: its table, its unit and its rules file. No
# other table is touched. nftables stays installed (other software may use it).
# Parameters: RULES_FILE, UNIT_FILE (as for firewall-apply.sh).
# uses: nft.sh
set -euo pipefail
SCRIPT_NAME="firewall"
: "${RULES_FILE:=/etc/hybrid-ai/firewall.nft}" "${UNIT_FILE:=/etc/systemd/system/hybrid-ai-firewall.service}"
nft_remove hybrid_ai
# The program's config folder, once no file of its own is left in it.
rmdir "$(dirname "$RULES_FILE")" 2>/dev/null || true
report
