#!/usr/bin/env bash
# Install the scheduled datastore snapshot on the control plane: its SSH key (made here; only
# the public key is printed, last), the backup host's pinned SSH host key, the runner (the
# composed datastore-backup.sh), and a systemd service + timer. Object storage credentials, if
# any, arrive on stdin ("ACCESS:SECRET") and go to a root-only s3cmd config file; s3cmd is
# installed then (and only then; removed on destroy only if this script installed it).
# Parameters: BACKUP_RUNNER (without its shebang: written here), BACKUP_SCHEDULE (systemd OnCalendar), BACKUP_KNOWN_HOSTS_LINE,
# BACKUP_SSH_KEY, BACKUP_S3 (yes/no). Idempotent: unchanged files are not rewritten and the
# timer is only restarted when a unit changed.
set -euo pipefail
SCRIPT_NAME="datastore-backup"
: "${BACKUP_RUNNER:?BACKUP_RUNNER must be set}"
: "${BACKUP_SCHEDULE:?BACKUP_SCHEDULE must be set}"
: "${BACKUP_KNOWN_HOSTS_LINE:?BACKUP_KNOWN_HOSTS_LINE must be set}"
: "${BACKUP_SSH_KEY:=/root/.ssh/hybrid-ai-backup}"
: "${BACKUP_S3:=no}"
: "${BACKUP_ETC:=/etc/hybrid-ai}"
: "${BACKUP_LIB:=/usr/local/lib/hybrid-ai}"
: "${UNIT_DIR:=/etc/systemd/system}"
[[ $BACKUP_SCHEDULE =~ ^[A-Za-z0-9*:,./~-]+( [A-Za-z0-9*:,./~-]+){0,3}$ ]] || fail "BACKUP_SCHEDULE is not a calendar expression (backup.schedule)"
unit=hybrid-ai-datastore-backup
umask 077
mkdir -p "$BACKUP_ETC" "$BACKUP_LIB" "$(dirname "$BACKUP_SSH_KEY")" "$UNIT_DIR"
credentials=$(cat)

changed=()
put() {  # put FILE MODE CONTENT: write only when different
  if ! printf '%s\n' "$3" | cmp -s - "$1"; then
    printf '%s\n' "$3" > "$1.new" && chmod "$2" "$1.new" && mv "$1.new" "$1"
    changed+=("$(basename "$1")")
  fi
}
if [ ! -s "$BACKUP_SSH_KEY" ]; then
  ssh-keygen -q -t ed25519 -N "" -C "hybrid-ai datastore backup" -f "$BACKUP_SSH_KEY" >/dev/null
  changed+=("key")
fi
put "$BACKUP_ETC/backup-known-hosts" 600 "$BACKUP_KNOWN_HOSTS_LINE"
put "$BACKUP_LIB/datastore-backup" 700 "#!/usr/bin/env bash
$BACKUP_RUNNER"
if [ "$BACKUP_S3" = yes ]; then
  [[ $credentials =~ ^[^:\"\\[:space:]]+:[^\"\\[:space:]]+$ ]] || fail "object storage credentials must be ACCESS:SECRET (backup.objectStorage)"
  if ! installed s3cmd; then
    export DEBIAN_FRONTEND=noninteractive
    retry apt-get -o DPkg::Lock::Timeout=120 update -q >&2 || fail "apt-get update failed; check the host's package mirrors"
    retry apt-get -o DPkg::Lock::Timeout=120 install -y -q --no-install-recommends s3cmd >&2 || fail "could not install s3cmd (backup.objectStorage)"
    touch "$BACKUP_LIB/s3cmd.installed-by-hybrid-ai"
    changed+=("s3cmd")
  fi
  put "$BACKUP_ETC/backup-s3.cfg" 600 "[default]
access_key = ${credentials%%:*}
secret_key = ${credentials#*:}"
else
  rm -f "$BACKUP_ETC/backup-s3.cfg"
fi
rm -f "$BACKUP_ETC/backup-s3.curl"  # the curl config of earlier versions
units_before=${#changed[@]}
put "$UNIT_DIR/$unit.service" 644 "[Unit]
Description=hybrid-ai: snapshot the cluster datastore and store it off the control plane
After=snap.microk8s.daemon-kubelite.service

[Service]
Type=oneshot
# microk8s lives in /snap/bin, which is not on the PATH systemd gives services by itself.
Environment=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/snap/bin
ExecStart=$BACKUP_LIB/datastore-backup
TimeoutStartSec=1h"
put "$UNIT_DIR/$unit.timer" 644 "[Unit]
Description=hybrid-ai: scheduled datastore snapshot

[Timer]
OnCalendar=$BACKUP_SCHEDULE
RandomizedDelaySec=5min
Persistent=true

[Install]
WantedBy=timers.target"
if [ "${#changed[@]}" -gt "$units_before" ]; then
  systemctl daemon-reload
  systemctl enable "$unit.timer" >/dev/null 2>&1
  systemctl restart "$unit.timer"
fi
log "changed=${changed[*]:-none}"
# The public key is the only output: the backup host authorises it.
cut -d' ' -f1,2 "$BACKUP_SSH_KEY.pub"
