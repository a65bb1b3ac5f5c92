#!/usr/bin/env bash
# `pulumi destroy`, last of the Netmaker steps: stop the server and remove its data.
set -euo pipefail
SCRIPT_NAME="netmaker-server"
: "${NM_DIR:=/opt/hybrid-ai/netmaker}"
if [ -f "$NM_DIR/docker-compose.yml" ]; then
  docker compose --project-directory "$NM_DIR" down --volumes
fi
rm -rf "$NM_DIR"
log "Netmaker server removed"
