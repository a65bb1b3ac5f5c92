#!/usr/bin/env bash
# `pulumi destroy` on a host: leave the Netmaker network (the package stays).
set -euo pipefail
SCRIPT_NAME="netclient"
: "${NETWORK:?}"
# `netclient list` prints JSON; match the network's name exactly.
if command -v netclient >/dev/null && netclient list 2>/dev/null | grep -Fq "\"network\": \"$NETWORK\""; then
  netclient leave -n "$NETWORK"
  log "left $NETWORK"
fi
