#!/usr/bin/env bash
# The forced command of the control plane's backup key on the backup host (authorized_keys
# `restrict,command=...`): the key can do nothing but hand over one snapshot on stdin. The
# name comes from SSH_ORIGINAL_COMMAND and must be a snapshot name; the content must be a
# gzip tar no larger than BACKUP_MAX_BYTES. Keeps the newest BACKUP_KEEP snapshots.
# Parameters: BACKUP_STORE_DIR, BACKUP_KEEP, BACKUP_MAX_BYTES.
set -euo pipefail
SCRIPT_NAME="backup-receive"
: "${BACKUP_STORE_DIR:=/var/lib/hybrid-ai/backups}"
: "${BACKUP_KEEP:=14}"
: "${BACKUP_MAX_BYTES:=10737418240}"
name=${SSH_ORIGINAL_COMMAND:-}
[[ $name =~ ^backup-[0-9]{8}T[0-9]{6}Z\.tar\.gz$ ]] || fail "refusing: not a snapshot name"
umask 077
tmp=$(mktemp "$BACKUP_STORE_DIR/.incoming.XXXXXX")
trap 'rm -f "$tmp"' EXIT
head -c "$((BACKUP_MAX_BYTES + 1))" > "$tmp"
[ "$(stat -c %s "$tmp")" -le "$BACKUP_MAX_BYTES" ] || fail "refusing: larger than $BACKUP_MAX_BYTES bytes"
tar -tzf "$tmp" >/dev/null 2>&1 || fail "refusing: not a gzip tar"
mv "$tmp" "$BACKUP_STORE_DIR/$name"
# Names sort by time; drop all but the newest BACKUP_KEEP.
mapfile -t old < <(find "$BACKUP_STORE_DIR" -maxdepth 1 -name 'backup-*.tar.gz' -printf '%f\n' | sort -r | tail -n "+$((BACKUP_KEEP + 1))")
for f in "${old[@]}"; do rm -f "$BACKUP_STORE_DIR/$f"; done
echo "stored $name"
