#!/usr/bin/env bash
# snapd kept off the store on a site with snap files, composed after lib.sh into a script that has
# the line `# uses: snap-store.sh` (microk8s-install.sh on nodes, mirrors.sh on hosts outside the
# cluster; put back by microk8s-uninstall.sh and mirrors-teardown.sh).

# `snap set system store.access=offline`: snapd stops its background store contacts (catalog
# refresh, serial registration), which the refresh holds leave on. snapd 2.61 added the option
# (canonical/snapd overlord/configstate/configcore/store.go); an older snapd refuses it as an
# unsupported system option, so there it is skipped and logged. What it was goes into $1 (the
# snap-holds record, `store.access <value or ->`, the first record wins).
store_offline() {
  local holds=$1 before version
  before=$(snap get system store.access 2>/dev/null || true)
  [ "$before" != offline ] || return 0
  version=$(snap version 2>/dev/null | awk '$1 == "snapd" {print $2}')
  if ! printf '%s\n' 2.61 "${version:-0}" | sort -C -V; then
    log "snapd ${version:-?} has no store.access (2.61 added it): its background store contacts stay on"
    return 0
  fi
  grep -q '^store.access ' "$holds" 2>/dev/null || { mkdir -p "$(dirname "$holds")" && echo "store.access ${before:--}" >> "$holds"; }
  snap set system store.access=offline || fail "snap set system store.access=offline failed"
  changed+=("snap-store-offline")
}

# store.access back to $1, what store_offline recorded (`-`: unset).
store_restore() {
  if [ "$1" = - ]; then
    snap unset system store.access || fail "snap unset system store.access failed"
  else
    snap set system store.access="$1" || fail "could not set store.access back to $1"
  fi
}

# A host outside the cluster: the system's refresh.hold and store.access back to what $1 (the
# snap-holds record mirrors.sh wrote) says they were, and the record gone (mirrors-teardown.sh, and
# mirrors.sh where the site no longer has snap files).
restore_holds() {
  local holds=$1 before="" access=""
  [ ! -e "$holds" ] || before=$(sed -n 's/^system //p' "$holds" | head -n 1)
  if [ "$before" = - ]; then
    snap refresh --unhold >/dev/null || fail "snap refresh --unhold failed"
  elif [ -n "$before" ]; then
    snap set system refresh.hold="$before" || fail "could not set refresh.hold back to $before"
  fi
  [ ! -e "$holds" ] || access=$(sed -n 's/^store.access //p' "$holds" | head -n 1)
  [ -z "$access" ] || { store_restore "$access"; changed+=("store-access-restored"); }
  [ -z "$before" ] || changed+=("auto-refresh-hold-restored")
  [ -z "$before$access" ] || rm -f "$holds"
}
