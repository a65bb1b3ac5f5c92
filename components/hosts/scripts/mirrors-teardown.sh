#!/usr/bin/env bash
# Undo mirrors.sh on `pulumi destroy`: the distribution's own apt sources come back, the mirrors'
# sources, keys and staged files go, and the snaps' auto-refresh hold mirrors.sh set on a host
# outside the cluster is put back as it was ($HOLDS; a cluster host's went back with MicroK8s, in
# microk8s-uninstall.sh), and so is snapd's store.access. A Snap Store Proxy setting stays (snaps may
# still use it). Where MicroK8s stays (a site moved to `mirrors: {}`), the registry folders this
# program wrote into its certs.d go and MicroK8s' own defaults come back.
# uses: registry-hosts.sh
# uses: snap-store.sh
set -euo pipefail
SCRIPT_NAME="mirrors"
: "${APT_DIR:=/etc/apt}" "${STAGED_CERTS_D:=/etc/hybrid-ai/certs.d}" "${STAGED_SNAPS:=/var/lib/hybrid-ai/snaps}"
: "${HOLDS:=/var/lib/hybrid-ai/snap-holds}"
: "${SNAP_DATA:=/var/snap/microk8s/current}" "${MICROK8S_DEFAULTS:=/snap/microk8s/current/default-args/certs.d}"
restore_holds "$HOLDS"
for file in "$APT_DIR/sources.list" "$APT_DIR/sources.list.d/ubuntu.sources" "$APT_DIR/sources.list.d/nvidia-container-toolkit.list"; do
  [ -e "$file.hybrid-ai-off" ] || continue
  # One written since it was set aside is the operator's: both stay, and the log says so.
  if [ -e "$file" ]; then log "$file was written since $file.hybrid-ai-off was set aside: both kept"; continue; fi
  mv "$file.hybrid-ai-off" "$file" && changed+=("restored-$(basename "$file")")
done
for file in "$APT_DIR/sources.list.d/hybrid-ai-mirrors.list" "$APT_DIR"/keyrings/hybrid-ai-*-mirror.asc "$STAGED_CERTS_D" "$STAGED_SNAPS"; do
  if [ -e "$file" ]; then rm -rf "$file"; changed+=("removed-$(basename "$file")"); fi
done
sync_registry_hosts
report
