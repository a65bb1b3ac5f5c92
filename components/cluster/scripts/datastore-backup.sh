#!/usr/bin/env bash
# One snapshot of the cluster datastore (dqlite), run by the hybrid-ai-datastore-backup timer on
# the control plane: `microk8s dbctl backup`, then a copy to the backup host over SSH (a
# dedicated key; the receiving side's forced command stores it and prunes old ones), then
# optionally an upload to S3-compatible object storage (OpenStack Swift's S3 API or any S3),
# then the success timestamp for node-exporter (alert DatastoreBackupMissing).
# Parameters: BACKUP_WORK_DIR, BACKUP_TARGET (user@address), BACKUP_SSH_KEY, BACKUP_KNOWN_HOSTS,
# BACKUP_S3_URL ("" = no upload; https://endpoint/bucket), BACKUP_S3_REGION, BACKUP_S3_CREDENTIALS
# (curl config file, root-only, holding `user = "ACCESS:SECRET"`: never on a command line),
# TEXTFILE_DIR. The snapshot stays in BACKUP_WORK_DIR until the next run (one only).
set -euo pipefail
SCRIPT_NAME="datastore-backup"
: "${BACKUP_WORK_DIR:=/var/lib/hybrid-ai/datastore-backup}"
: "${BACKUP_TARGET:?BACKUP_TARGET must be set}"
: "${BACKUP_SSH_KEY:=/root/.ssh/hybrid-ai-backup}"
: "${BACKUP_KNOWN_HOSTS:=/etc/hybrid-ai/backup-known-hosts}"
: "${BACKUP_S3_URL:=}"
: "${BACKUP_S3_REGION:=us-east-1}"
: "${BACKUP_S3_CREDENTIALS:=/etc/hybrid-ai/backup-s3.curl}"
: "${TEXTFILE_DIR:=/var/lib/node_exporter/textfile}"
METRIC=hybridai_datastore_backup_last_success_timestamp_seconds

umask 077
mkdir -p "$BACKUP_WORK_DIR"
name="backup-$(date -u +%Y%m%dT%H%M%SZ)"
# dbctl splits its command on spaces and appends .tar.gz to the name it is given.
case $BACKUP_WORK_DIR in *[[:space:]]*) fail "BACKUP_WORK_DIR must not contain spaces";; esac
rm -f "$BACKUP_WORK_DIR"/backup-*.tar.gz
microk8s dbctl backup -o "$BACKUP_WORK_DIR/$name" >&2 || fail "microk8s dbctl backup failed; is the API server running?"
file="$BACKUP_WORK_DIR/$name.tar.gz"
{ [ -s "$file" ] && tar -tzf "$file" >/dev/null; } || fail "the snapshot $file is missing or not a gzip tar; nothing was copied"

# The forced command on the backup host names the file by its own clock (the name sent is
# informational only) and confirms with `stored <name>` once the file is in place.
reply=$(ssh -i "$BACKUP_SSH_KEY" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
  -o UserKnownHostsFile="$BACKUP_KNOWN_HOSTS" -o ConnectTimeout=20 -o ServerAliveInterval=15 \
  "$BACKUP_TARGET" "$name.tar.gz" < "$file") || fail "copying $name.tar.gz to $BACKUP_TARGET failed"
grep -Eqx 'stored backup-[0-9]{8}T[0-9]{6}Z\.tar\.gz' <<< "$reply" \
  || fail "$BACKUP_TARGET did not confirm storing $name.tar.gz; no success recorded"

if [ -n "$BACKUP_S3_URL" ]; then
  [ -s "$BACKUP_S3_CREDENTIALS" ] || fail "no object storage credentials at $BACKUP_S3_CREDENTIALS (backup.objectStorage)"
  curl -fsS --retry 3 --max-time 900 --aws-sigv4 "aws:amz:$BACKUP_S3_REGION:s3" -K "$BACKUP_S3_CREDENTIALS" \
    -T "$file" "$BACKUP_S3_URL/$name.tar.gz" >&2 || fail "uploading $name.tar.gz to object storage failed"
fi

# Written last, so the alert fires whenever any step above failed for 26 hours.
mkdir -p "$TEXTFILE_DIR"
tmp=$(mktemp "$TEXTFILE_DIR/.datastore-backup.prom.XXXXXX")
{
  echo "# HELP $METRIC Time of the last datastore snapshot stored off the control plane."
  echo "# TYPE $METRIC gauge"
  echo "$METRIC $(date -u +%s)"
} > "$tmp"
chmod 644 "$tmp"
mv "$tmp" "$TEXTFILE_DIR/datastore-backup.prom"
log "stored $name.tar.gz"
