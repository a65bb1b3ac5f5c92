#!/usr/bin/env bash
# Make this host the datastore's backup store: a system user that owns the store, the receive
# script, and the control plane's backup key authorised for that script only
# (`restrict,from=<control plane>,command=...`: no shell, no forwarding, no other source).
# Parameters: BACKUP_RECEIVER (the composed backup-receive.sh, without its shebang: written here), BACKUP_PUBLIC_KEY, BACKUP_FROM
# (the control plane's overlay address), BACKUP_STORE_DIR, BACKUP_RECEIVER_PATH. Idempotent.
set -euo pipefail
SCRIPT_NAME="backup-receive"
: "${BACKUP_RECEIVER:?BACKUP_RECEIVER must be set}"
: "${BACKUP_PUBLIC_KEY:?BACKUP_PUBLIC_KEY must be set}"
: "${BACKUP_FROM:?BACKUP_FROM must be set}"
: "${BACKUP_STORE_DIR:=/var/lib/hybrid-ai/backups}"
user=hybridai-backup
receiver=${BACKUP_RECEIVER_PATH:-/usr/local/lib/hybrid-ai/backup-receive}
[[ $BACKUP_PUBLIC_KEY =~ ^ssh-ed25519\ AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43}$ ]] || fail "the control plane printed no ed25519 public key; refusing to authorise it"
[[ $BACKUP_FROM =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || fail "BACKUP_FROM must be an IPv4 address"
changed=()
# sshd runs the forced command with the user's shell (`shell -c command`), so the user keeps
# one; its password is locked so nothing but the authorised key can ever log in as it (sshd
# with UsePAM, Ubuntu's default, still accepts the key of a password-locked account).
if ! id -u "$user" >/dev/null 2>&1; then
  useradd --system --home-dir "$BACKUP_STORE_DIR" --shell /bin/bash "$user"
  changed+=("user")
fi
if [ "$(passwd --status "$user" | awk '{print $2}')" != L ]; then
  usermod --lock "$user"
  changed+=("locked")
fi
mkdir -p "$BACKUP_STORE_DIR" "$(dirname "$receiver")" "$BACKUP_STORE_DIR/.ssh"
chown "$user:" "$BACKUP_STORE_DIR"
chmod 700 "$BACKUP_STORE_DIR"
put() {  # put FILE MODE CONTENT: write only when different
  if ! printf '%s\n' "$3" | cmp -s - "$1"; then
    printf '%s\n' "$3" > "$1.new" && chmod "$2" "$1.new" && mv "$1.new" "$1"
    changed+=("$(basename "$1")")
  fi
}
put "$receiver" 755 "#!/usr/bin/env bash
$BACKUP_RECEIVER"
# Root owns the key file so the backup user cannot widen its own authorisation.
put "$BACKUP_STORE_DIR/.ssh/authorized_keys" 644 "restrict,from=\"$BACKUP_FROM\",command=\"$receiver\" $BACKUP_PUBLIC_KEY"
chmod 755 "$BACKUP_STORE_DIR/.ssh"
echo "changed=${changed[*]:-none}"
