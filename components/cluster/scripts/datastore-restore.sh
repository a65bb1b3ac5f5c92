#!/usr/bin/env bash
# Restore the cluster datastore from one snapshot (docs/operations.md: Restore the datastore). Run by hand
# on the control plane, as root, after copying the snapshot there from the backup host.
# Parameters: BACKUP_FILE (a backup-*.tar.gz made by datastore-backup.sh), READY_TIMEOUT,
# BACKUP_DIGESTS (the SHA-256 list datastore-backup.sh keeps on this control plane),
# BACKUP_SHA256 (the snapshot's digest, given by hand when this host has no list: a new control plane).
# The backup store is not trusted with the control plane: a copy in a private directory is
# checked before anything changes. Its SHA-256 must be one recorded when a snapshot was taken
# (a store that changed one is caught). `dbctl restore` (1.32) extracts with Python's tarfile
# after checking member names only, so a symlink or hard link member would let a later member
# write anywhere: the archive must hold exactly what dbctl backup writes, one directory
# backup-<time> (the control plane's name; the backup host names the file by its own clock) of
# regular files <i>.key / <i>.data, nothing else. Then `microk8s dbctl restore` of the copy,
# named like that directory (dbctl takes the directory name from the file name; the API server
# must be running), then waits for MicroK8s to be ready.
set -euo pipefail
SCRIPT_NAME="datastore-restore"
: "${BACKUP_FILE:?BACKUP_FILE must be set to the snapshot to restore}"
: "${READY_TIMEOUT:=600}"
: "${BACKUP_DIGESTS:=/var/lib/hybrid-ai/datastore-backup/digests}"
: "${BACKUP_SHA256:=}"
[ -s "$BACKUP_FILE" ] || fail "no snapshot at $BACKUP_FILE; copy it from the backup host first"
[[ $BACKUP_FILE == *.tar.gz && $(basename "$BACKUP_FILE") =~ ^backup-[0-9A-Za-z-]+\.tar\.gz$ ]] || fail "$BACKUP_FILE is not a snapshot name (backup-<time>.tar.gz)"
work=$(mktemp -d /tmp/hybrid-ai-restore.XXXXXX)  # no spaces: dbctl splits its command on them
trap 'rm -rf "$work"' EXIT
cp "$BACKUP_FILE" "$work/snapshot"  # checked and restored from this copy only

digest=$(sha256sum < "$work/snapshot"); digest=${digest%% *}
if [ -n "$BACKUP_SHA256" ]; then
  [ "$digest" = "$BACKUP_SHA256" ] || fail "$BACKUP_FILE has SHA-256 $digest, not BACKUP_SHA256; refusing it"
else
  [ -s "$BACKUP_DIGESTS" ] || fail "no digest list at $BACKUP_DIGESTS (a new control plane?); pass BACKUP_SHA256=<the digest recorded when the snapshot was taken>"
  awk -v d="$digest" '$1 == d { found = 1 } END { exit !found }' "$BACKUP_DIGESTS" \
    || fail "$BACKUP_FILE has SHA-256 $digest, not one the control plane recorded when it took a snapshot (changed in the store?); refusing it"
fi

entries=$(tar -tzf "$work/snapshot" 2>/dev/null) || fail "$BACKUP_FILE is not a gzip tar; refusing it"
# GNU tar's verbose listing: one line per member (names escaped), the type first: - file, d dir.
types=$(tar -tvzf "$work/snapshot" 2>/dev/null | cut -c1) || fail "$BACKUP_FILE is not a gzip tar; refusing it"
[ "$(wc -l <<< "$types")" = "$(wc -l <<< "$entries")" ] || fail "$BACKUP_FILE lists its members inconsistently; refusing it"
base=$(head -n 1 <<< "$entries"); base=${base%%/*}
[[ $base =~ ^backup-[0-9A-Za-z-]+$ ]] || fail "$BACKUP_FILE holds $base, not a snapshot directory backup-<time>/; refusing it"
while IFS= read -r entry && IFS= read -r type <&3; do
  [[ $entry != /* && $entry != *..* ]] || fail "$BACKUP_FILE holds an unsafe path $entry; refusing it"
  if [[ $entry == "$base" || $entry == "$base/" ]]; then
    [ "$type" = d ] || fail "$BACKUP_FILE holds $entry as something other than a directory; refusing it"
  elif [[ $entry =~ ^$base/[0-9]+\.(key|data)$ ]]; then
    [ "$type" = - ] || fail "$BACKUP_FILE holds $entry as a link, device or other special file; refusing it"
  else
    fail "$BACKUP_FILE holds $entry, which is not a datastore file under $base/; refusing it"
  fi
done < <(printf '%s\n' "$entries") 3< <(printf '%s\n' "$types")

microk8s status --wait-ready --timeout 120 >/dev/null || fail "MicroK8s is not running; dbctl restore needs the API server (snap start microk8s)"
mv "$work/snapshot" "$work/$base.tar.gz"
log "restoring the datastore from $BACKUP_FILE ($base, SHA-256 $digest)"
microk8s dbctl restore "$work/$base.tar.gz" >&2 || fail "microk8s dbctl restore failed; the datastore is as it was before, see the output above"
microk8s status --wait-ready --timeout "$READY_TIMEOUT" >/dev/null || fail "MicroK8s not ready ${READY_TIMEOUT}s after the restore"
echo "restored $base"
