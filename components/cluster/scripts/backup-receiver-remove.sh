#!/usr/bin/env bash
# `pulumi destroy` of the backup store's access: the key and the receive script go; the stored
# snapshots and their user stay (delete /var/lib/hybrid-ai/backups by hand once not needed).
set -euo pipefail
SCRIPT_NAME="backup-receive"
: "${BACKUP_STORE_DIR:=/var/lib/hybrid-ai/backups}"
rm -f "$BACKUP_STORE_DIR/.ssh/authorized_keys" /usr/local/lib/hybrid-ai/backup-receive
