#!/usr/bin/env bash
# MicroK8s' containerd registry configuration, composed after lib.sh into a script that has the
# line `# uses: registry-hosts.sh`: mirrors.sh (every change of the mirrors reaches containerd in
# the same step), mirrors-teardown.sh (destroy) and microk8s-install.sh (right after the install).
# containerd reads $SNAP_DATA/args/certs.d on every pull, so nothing restarts (docs/upstream.md).

# sync_registry_hosts: each folder mirrors.sh staged under $STAGED_CERTS_D into MicroK8s' certs.d;
# a folder we wrote (its hosts.toml's first line `# hybrid-ai:`) whose registry is no longer staged
# goes, and MicroK8s' own default for that registry (from the snap's default-args) comes back.
# Folders MicroK8s or the operator wrote stay; one the operator wrote for a registry we then mirror
# (not ours, not MicroK8s' default) is kept aside in certs.d-before (next to $HOLDS) and comes back,
# in preference to the default, when we stop mirroring it. Nothing when MicroK8s is not installed.
# Files are replaced by rename and a new folder appears whole (built under a hidden name, then
# renamed), so a pull never reads half a file or a folder without its hosts.toml. Needs
# STAGED_CERTS_D, SNAP_DATA, MICROK8S_DEFAULTS (the snap's default-args/certs.d) and HOLDS.
sync_registry_hosts() {
  local dir name target before=${HOLDS%/*}/certs.d-before
  [ -d "$SNAP_DATA/args" ] || return 0
  for dir in "$STAGED_CERTS_D"/*/; do
    [ -d "$dir" ] || continue
    name=$(basename "$dir") target=$SNAP_DATA/args/certs.d/$(basename "$dir")
    if [ -d "$target" ] && [ ! -e "$before/$name" ] && ! head -n 1 "$target/hosts.toml" 2>/dev/null | grep -q '^# hybrid-ai:' \
        && ! diff -rq "$MICROK8S_DEFAULTS/$name" "$target" >/dev/null 2>&1; then
      { mkdir -p "$before" && cp -a "$target" "$before/$name"; } || fail "cannot keep $target aside in $before"
      log "kept the operator's own $target aside in $before/$name (it comes back when $name is no longer mirrored)"
    fi
    same_folder "$dir" "$target" || changed+=("containerd-registry-$name")
  done
  for dir in "$SNAP_DATA/args/certs.d"/*/; do
    name=$(basename "$dir")
    if [ ! -d "$dir" ] || [ -d "$STAGED_CERTS_D/$name" ]; then continue; fi
    head -n 1 "$dir/hosts.toml" 2>/dev/null | grep -q '^# hybrid-ai:' || continue
    if [ -d "$before/$name" ]; then
      same_folder "$before/$name" "$dir" || true
      rm -rf "${before:?}/$name"
    elif [ -d "$MICROK8S_DEFAULTS/$name" ]; then
      same_folder "$MICROK8S_DEFAULTS/$name" "$dir" || true
    else
      rm -rf "$dir"
    fi
    changed+=("containerd-registry-removed-$name")
  done
}

# same_folder FROM TO: TO holds exactly FROM's files (each replaced by rename); false when it changed.
same_folder() {
  local from=${1%/} to=${2%/} file same=0 new
  if [ ! -e "$to" ]; then
    new=$(dirname "$to")/.$(basename "$to").new
    { rm -rf "$new" && mkdir -p "$new"; } || fail "cannot write $new"
    for file in "$from"/*; do [ ! -f "$file" ] || cp -p "$file" "$new/" || fail "cannot write $new/$(basename "$file")"; done
    mv -T "$new" "$to" || fail "cannot write $to"
    return 1
  fi
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
