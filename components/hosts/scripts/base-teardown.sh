#!/usr/bin/env bash
# Undo base-bootstrap.sh's files on `pulumi destroy`. Packages stay: other software may
# use them. Live sysctls return to the distribution's values at the next boot.
set -euo pipefail
SCRIPT_NAME="base"
rm -f /etc/sysctl.d/90-hybrid-ai.conf /etc/modules-load.d/hybrid-ai.conf
log "removed hybrid-ai sysctl and module files"
