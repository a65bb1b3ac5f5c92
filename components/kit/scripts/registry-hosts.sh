#!/usr/bin/env bash
# MicroK8s' containerd registry configuration, composed after lib.sh into a script that has the
# line `# uses: registry-hosts.sh`: mirrors.sh (every change of the mirrors reaches containerd in
# the same step), mirrors-teardown.sh (destroy) and microk8s-install.sh (right after the install).
# containerd reads $SNAP_DATA/args/certs.d on every pull, so nothing restarts (docs/upstream.md).

# sync_registry_hosts: each folder mirrors.sh staged under $STAGED_CERTS_D into MicroK8s' certs.d;
# a folder we wrote (its hosts.toml's first line `# hybrid-ai:`) whose registry is no longer staged
# goes, and MicroK8s' own default for that registry (from the snap's default-args) comes back.
# Folders MicroK8s or the operator wrote stay. Nothing when MicroK8s is not installed.
# Files are replaced by rename, so a pull never reads half a file. Needs STAGED_CERTS_D, SNAP_DATA
# and MICROK8S_DEFAULTS (the snap's default-args/certs.d).
sync_registry_hosts() {
  local dir name
  [ -d "$SNAP_DATA/args" ] || return 0
  for dir in "$STAGED_CERTS_D"/*/; do
    [ -d "$dir" ] || continue
    name=$(basename "$dir")
    same_folder "$dir" "$SNAP_DATA/args/certs.d/$name" || changed+=("containerd-registry-$name")
  done
  for dir in "$SNAP_DATA/args/certs.d"/*/; do
    name=$(basename "$dir")
    if [ ! -d "$dir" ] || [ -d "$STAGED_CERTS_D/$name" ]; then continue; fi
    head -n 1 "$dir/hosts.toml" 2>/dev/null | grep -q '^# hybrid-ai:' || continue
    if [ -d "$MICROK8S_DEFAULTS/$name" ]; then
      same_folder "$MICROK8S_DEFAULTS/$name" "$dir" || true
    else
      rm -rf "$dir"
    fi
    changed+=("containerd-registry-removed-$name")
  done
}

# same_folder FROM TO: TO holds exactly FROM's files (each replaced by rename); false when it changed.
same_folder() {
  local from=${1%/} to=${2%/} file same=0
  mkdir -p "$to"
  for file in "$from"/*; do
    [ -f "$file" ] || continue
    cmp -s "$file" "$to/$(basename "$file")" && continue
    if ! { cp -p "$file" "$to/.$(basename "$file").new" && mv -f "$to/.$(basename "$file").new" "$to/$(basename "$file")"; }; then
      fail "cannot write $to/$(basename "$file")"
    fi
    same=1
  done
  for file in "$to"/*; do
    [ -e "$file" ] || continue
    [ -e "$from/$(basename "$file")" ] || { rm -rf "$file"; same=1; }
  done
  return "$same"
}
