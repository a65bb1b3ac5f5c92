#!/usr/bin/env bash
# Restore the cluster datastore from one snapshot (README: Restore the datastore). Run by hand
# on the control plane, as root, after copying the snapshot there from the backup host.
# Parameters: BACKUP_FILE (a backup-*.tar.gz made by datastore-backup.sh), READY_TIMEOUT.
# Checks the archive before anything changes: one top-level directory backup-<time> (the
# control plane's name; the backup host names the file by its own clock), no absolute or `..`
# paths. Then `microk8s dbctl restore` of a copy named like that directory (dbctl takes the
# directory name from the file name; the API server must be running), then waits for MicroK8s
# to be ready.
set -euo pipefail
SCRIPT_NAME="datastore-restore"
: "${BACKUP_FILE:?BACKUP_FILE must be set to the snapshot to restore}"
: "${READY_TIMEOUT:=600}"
[ -s "$BACKUP_FILE" ] || fail "no snapshot at $BACKUP_FILE; copy it from the backup host first"
[[ $BACKUP_FILE == *.tar.gz && $(basename "$BACKUP_FILE") =~ ^backup-[0-9A-Za-z-]+\.tar\.gz$ ]] || fail "$BACKUP_FILE is not a snapshot name (backup-<time>.tar.gz)"
entries=$(tar -tzf "$BACKUP_FILE" 2>/dev/null) || fail "$BACKUP_FILE is not a gzip tar"
base=$(head -n 1 <<< "$entries"); base=${base%%/*}
[[ $base =~ ^backup-[0-9A-Za-z-]+$ ]] || fail "$BACKUP_FILE holds $base, not a snapshot directory backup-<time>/; refusing it"
while IFS= read -r entry; do
  [[ $entry == "$base" || $entry == "$base/"* ]] || fail "$BACKUP_FILE holds $entry outside $base/; refusing it"
  [[ $entry != /* && $entry != *..* ]] || fail "$BACKUP_FILE holds an unsafe path $entry; refusing it"
done <<< "$entries"
microk8s status --wait-ready --timeout 120 >/dev/null || fail "MicroK8s is not running; dbctl restore needs the API server (snap start microk8s)"
work=$(mktemp -d /tmp/hybrid-ai-restore.XXXXXX)  # no spaces: dbctl splits its command on them
trap 'rm -rf "$work"' EXIT
cp "$BACKUP_FILE" "$work/$base.tar.gz"
log "restoring the datastore from $BACKUP_FILE ($base)"
microk8s dbctl restore "$work/$base.tar.gz" >&2 || fail "microk8s dbctl restore failed; the datastore is as it was before, see the output above"
microk8s status --wait-ready --timeout "$READY_TIMEOUT" >/dev/null || fail "MicroK8s not ready ${READY_TIMEOUT}s after the restore"
echo "restored $base"
