#!/usr/bin/env bash
# `pulumi destroy` of a node's MicroK8s (after it left the cluster): remove the snap and
# everything it stored, and the launch configuration.
set -euo pipefail
SCRIPT_NAME="microk8s"
: "${SNAP_COMMON:=/var/snap/microk8s/common}"
if snap list microk8s >/dev/null 2>&1; then
  retry snap remove microk8s --purge || fail "snap remove microk8s failed"
fi
rm -f "$SNAP_COMMON/.microk8s.yaml"
log "MicroK8s removed"
