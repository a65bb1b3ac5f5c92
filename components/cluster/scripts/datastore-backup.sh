#!/usr/bin/env bash
# One snapshot of the cluster datastore (dqlite), run by the hybrid-ai-datastore-backup timer on
# the control plane: `microk8s dbctl backup`, then a copy to the backup host over SSH (a
# dedicated key; the receiving side's forced command stores it and prunes old ones), then
# optionally an upload to S3-compatible object storage (OpenStack Swift's S3 API or any S3),
# then the success timestamp for node-exporter (alert DatastoreBackupMissing). The snapshot's
# SHA-256 is recorded here, under the name the store confirmed, in BACKUP_DIGESTS (root-only,
# the newest 1000): datastore-restore.sh refuses a snapshot whose digest is not in it, so a
# store that changes one is caught.
# Parameters: BACKUP_WORK_DIR, BACKUP_TARGET (user@address), BACKUP_SSH_KEY, BACKUP_KNOWN_HOSTS,
# BACKUP_S3_URL ("" = no upload; https://endpoint/bucket), BACKUP_S3_REGION, BACKUP_S3_CREDENTIALS
# (s3cmd config file, root-only, holding access_key and secret_key: never on a command line),
# TEXTFILE_DIR, BACKUP_DIGESTS. The snapshot stays in BACKUP_WORK_DIR until the next run (one only).
set -euo pipefail
SCRIPT_NAME="datastore-backup"
: "${BACKUP_WORK_DIR:=/var/lib/hybrid-ai/datastore-backup}"
: "${BACKUP_TARGET:?BACKUP_TARGET must be set}"
: "${BACKUP_SSH_KEY:=/root/.ssh/hybrid-ai-backup}"
: "${BACKUP_KNOWN_HOSTS:=/etc/hybrid-ai/backup-known-hosts}"
: "${BACKUP_S3_URL:=}"
: "${BACKUP_S3_REGION:=us-east-1}"
: "${BACKUP_S3_CREDENTIALS:=/etc/hybrid-ai/backup-s3.cfg}"
: "${TEXTFILE_DIR:=/var/lib/node_exporter/textfile}"
: "${BACKUP_DIGESTS:=/var/lib/hybrid-ai/datastore-backup/digests}"
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
stored=$(grep -Ex 'stored backup-[0-9]{8}T[0-9]{6}Z\.tar\.gz' <<< "$reply" | tail -n 1) \
  || fail "$BACKUP_TARGET did not confirm storing $name.tar.gz; no success recorded"
digest=$(sha256sum < "$file"); digest=${digest%% *}
mkdir -p "$(dirname "$BACKUP_DIGESTS")"
{ [ ! -f "$BACKUP_DIGESTS" ] || tail -n 999 "$BACKUP_DIGESTS"; echo "$digest  ${stored#stored }"; } > "$BACKUP_DIGESTS.new"
mv "$BACKUP_DIGESTS.new" "$BACKUP_DIGESTS"

if [ -n "$BACKUP_S3_URL" ]; then
  [ -s "$BACKUP_S3_CREDENTIALS" ] || fail "no object storage credentials at $BACKUP_S3_CREDENTIALS (backup.objectStorage)"
  [[ $BACKUP_S3_URL =~ ^(https?)://([^/]+)/([a-z0-9][a-z0-9.-]+[a-z0-9])$ ]] \
    || fail "BACKUP_S3_URL must be https://<endpoint>/<bucket> (backup.objectStorage.url)"
  tls=--ssl; [ "${BASH_REMATCH[1]}" = https ] || tls=--no-ssl
  # S3 takes at most 10000 parts: 15 MiB ones (s3cmd's default) below 9000 MiB, then larger, so
  # any snapshot the store accepts (backup.maxSizeGb <= 1000) fits in fewer than 9000 parts.
  part_mib=$(( $(stat -c %s "$file") / 9000 / 1048576 + 15 ))
  # s3cmd, not curl --aws-sigv4: curl 7.81 (Ubuntu 22.04) signs an upload as an empty body and
  # sends no x-amz-content-sha256, which S3 requires; s3cmd signs the file's SHA-256
  # (docs/upstream.md). A host-bucket without %(bucket)s means path-style requests.
  s3cmd -c "$BACKUP_S3_CREDENTIALS" --host="${BASH_REMATCH[2]}" --host-bucket="${BASH_REMATCH[2]}" --region="$BACKUP_S3_REGION" \
    "$tls" --multipart-chunk-size-mb="$part_mib" --no-progress --no-preserve --no-mime-magic put "$file" "s3://${BASH_REMATCH[3]}/$name.tar.gz" >&2 \
    || fail "uploading $name.tar.gz to object storage failed"
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
