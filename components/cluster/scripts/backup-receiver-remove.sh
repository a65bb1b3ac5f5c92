#!/usr/bin/env bash
# `pulumi destroy` of the backup store's access: the key, the receive script and the store's
# user go; the stored snapshots stay (delete /var/lib/hybrid-ai/backups by hand once not
# needed), handed to root first so no later user that gets the freed UID can read them.
# Idempotent.
set -euo pipefail
SCRIPT_NAME="backup-receive"
: "${BACKUP_STORE_DIR:=/var/lib/hybrid-ai/backups}"
user=hybridai-backup
rm -f "$BACKUP_STORE_DIR/.ssh/authorized_keys" /usr/local/lib/hybrid-ai/backup-receive
if [ -d "$BACKUP_STORE_DIR" ]; then
  chown -R root:root "$BACKUP_STORE_DIR"
  chmod 700 "$BACKUP_STORE_DIR"
fi
if id -u "$user" >/dev/null 2>&1; then
  # Without --remove: the home directory is the store, kept above.
  userdel "$user" || fail "could not remove the user $user (an upload still running?); run destroy again"
fi
