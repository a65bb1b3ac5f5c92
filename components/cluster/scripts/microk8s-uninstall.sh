#!/usr/bin/env bash
# `pulumi destroy` of a node's MicroK8s (after it left the cluster): remove the snap and
# everything it stored, and the launch configuration. On a mirrored site, the refresh holds
# go back to what they were before the install step held them ($HOLDS, see microk8s-install.sh):
# the system's auto-refresh hold as it was, a snap held before stays held, and snapd or a base
# installed or held by the install step is unheld (it stays installed: other snaps may use it), and
# snapd's store.access is put back.
# uses: snap-store.sh
set -euo pipefail
SCRIPT_NAME="microk8s"
: "${SNAP_COMMON:=/var/snap/microk8s/common}" "${HOLDS:=/var/lib/hybrid-ai/snap-holds}"
if snap list microk8s >/dev/null 2>&1; then
  retry snap remove microk8s --purge || fail "snap remove microk8s failed"
fi
rm -f "$SNAP_COMMON/.microk8s.yaml"
if [ -e "$HOLDS" ]; then
  while read -r name before; do
    case $name:$before in
      system:-) snap refresh --unhold >/dev/null || fail "snap refresh --unhold failed" ;;
      system:*) snap set system refresh.hold="$before" || fail "could not set refresh.hold back to $before" ;;
      store.access:*) store_restore "$before" ;;
      microk8s:* | *:held) ;;
      *) if snap list "$name" >/dev/null 2>&1; then snap refresh --unhold "$name" >/dev/null || fail "snap refresh --unhold $name failed"; fi ;;
    esac
  done < "$HOLDS"
  rm -f "$HOLDS"
  log "snap refresh holds put back as they were"
fi
log "MicroK8s removed"
