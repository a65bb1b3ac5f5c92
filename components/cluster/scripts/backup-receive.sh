#!/usr/bin/env bash
# The forced command of the control plane's backup key on the backup host (authorized_keys
# `restrict,command=...`): the key can do nothing but hand over one snapshot on stdin. The
# client's requested command (SSH_ORIGINAL_COMMAND, entirely client-controlled) names nothing
# here: the file is named by this host's own clock, an existing file is never replaced, and
# pruning orders by those names, so a compromised control plane (or one whose clock jumped)
# cannot replace a stored snapshot or push real ones out with future-dated names. Uploads
# closer than BACKUP_MIN_INTERVAL_S to the newest stored one are refused, so a flood cannot push
# out the history faster than BACKUP_KEEP x that interval. The content must be a gzip tar no
# larger than BACKUP_MAX_BYTES. Prints `stored <name>` last, which the sender waits for.
# Parameters: BACKUP_STORE_DIR, BACKUP_KEEP, BACKUP_MAX_BYTES, BACKUP_MIN_INTERVAL_S.
set -euo pipefail
SCRIPT_NAME="backup-receive"
: "${BACKUP_STORE_DIR:=/var/lib/hybrid-ai/backups}"
: "${BACKUP_KEEP:=14}"
: "${BACKUP_MAX_BYTES:=10737418240}"
: "${BACKUP_MIN_INTERVAL_S:=600}"
now=$(date -u +%s)
name="backup-$(date -u -d "@$now" +%Y%m%dT%H%M%SZ).tar.gz"
stored() { find "$BACKUP_STORE_DIR" -maxdepth 1 -regextype posix-extended -regex '.*/backup-[0-9]{8}T[0-9]{6}Z\.tar\.gz' -printf '%f\n' | sort -r; }
newest=$(stored | sed -n 1p)
if [ -n "$newest" ]; then
  t=${newest#backup-}; t=${t%.tar.gz}
  last=$(date -u -d "${t:0:4}-${t:4:2}-${t:6:2} ${t:9:2}:${t:11:2}:${t:13:2}" +%s)
  [ $((now - last)) -ge "$BACKUP_MIN_INTERVAL_S" ] || fail "refusing: the last snapshot was stored less than ${BACKUP_MIN_INTERVAL_S}s ago"
fi
umask 077
tmp=$(mktemp "$BACKUP_STORE_DIR/.incoming.XXXXXX")
trap 'rm -f "$tmp"' EXIT
head -c "$((BACKUP_MAX_BYTES + 1))" > "$tmp"
[ "$(stat -c %s "$tmp")" -le "$BACKUP_MAX_BYTES" ] || fail "refusing: larger than $BACKUP_MAX_BYTES bytes"
tar -tzf "$tmp" >/dev/null 2>&1 || fail "refusing: not a gzip tar"
# link(2) fails when the name exists: never replaces a stored snapshot.
ln "$tmp" "$BACKUP_STORE_DIR/$name" 2>/dev/null || fail "refusing: $name exists already"
# This host's names sort by this host's time: drop all but the newest BACKUP_KEEP.
mapfile -t old < <(stored | tail -n "+$((BACKUP_KEEP + 1))")
for f in "${old[@]}"; do rm -f "$BACKUP_STORE_DIR/$f"; done
echo "stored $name"
