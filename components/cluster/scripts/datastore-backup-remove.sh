#!/usr/bin/env bash
# `pulumi destroy` of the scheduled snapshot: timer, units, runner, key and credentials go;
# snapshots already stored on the backup host stay (they are the point).
set -euo pipefail
SCRIPT_NAME="datastore-backup"
: "${BACKUP_SSH_KEY:=/root/.ssh/hybrid-ai-backup}"
unit=hybrid-ai-datastore-backup
systemctl disable --now "$unit.timer" >/dev/null 2>&1 || true
rm -f "/etc/systemd/system/$unit.service" "/etc/systemd/system/$unit.timer" /usr/local/lib/hybrid-ai/datastore-backup \
  /etc/hybrid-ai/backup-known-hosts /etc/hybrid-ai/backup-s3.cfg /etc/hybrid-ai/backup-s3.curl "$BACKUP_SSH_KEY" "$BACKUP_SSH_KEY.pub" \
  /var/lib/node_exporter/textfile/datastore-backup.prom
rm -rf /var/lib/hybrid-ai/datastore-backup
# s3cmd goes only if the install put it there (another user of it keeps it).
if [ -e /usr/local/lib/hybrid-ai/s3cmd.installed-by-hybrid-ai ]; then
  export DEBIAN_FRONTEND=noninteractive
  retry apt-get -o DPkg::Lock::Timeout=120 remove -y -q s3cmd >&2 || fail "could not remove s3cmd; run destroy again"
  rm -f /usr/local/lib/hybrid-ai/s3cmd.installed-by-hybrid-ai
fi
systemctl daemon-reload
