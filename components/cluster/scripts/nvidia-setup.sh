#!/usr/bin/env bash
# NVIDIA driver and container toolkit on a GPU host. Each part is skippable for machines
# that already have it (INSTALL_DRIVER=false, INSTALL_TOOLKIT=false). A fresh driver needs a
# reboot: it is scheduled a few seconds after this script ends, and the SSH listener is
# closed at once (open sessions, this one included, live on), so the next step cannot log in
# until the host is back; that step (gpu-check.sh) then waits, within a bound, for a boot ID
# other than the one printed here (`reboot_from_boot=<id>`).
# A working driver is never replaced here, so a changed nvidia.driverVersion cannot reinstall and
# reboot every GPU host at once: a working branch older than DRIVER_VERSION is accepted only while
# the driver roll is asked for (DRIVER_FROM, nvidia.fromDriverVersion), and the roll's own step
# (components/cluster/driver_upgrade.py) runs this script with REPLACE_DRIVER=true on one drained
# host at a time. A branch at or above DRIVER_VERSION is accepted: Ubuntu turns an end-of-life
# branch's nvidia-driver-N into a transitional package of a newer branch (docs/upstream.md).
# Parameters: HOST_NAME, INSTALL_DRIVER, DRIVER_VERSION (e.g. 535; empty: the distribution's
# recommended driver), DRIVER_FROM (the branch a pending roll starts from), REPLACE_DRIVER,
# INSTALL_TOOLKIT, TOOLKIT_VERSION (the Debian version of the toolkit and
# its companion packages, e.g. 1.20.0-1), REBOOT_DELAY_S; KEYRING and SOURCES default to the
# system paths (parameters only so that tests can point them elsewhere).
set -euo pipefail
SCRIPT_NAME="nvidia"
: "${INSTALL_DRIVER:=true}" "${DRIVER_VERSION:=}" "${INSTALL_TOOLKIT:=true}" "${REBOOT_DELAY_S:=5}" "${TOOLKIT_VERSION:?}"
: "${DRIVER_FROM:=}" "${REPLACE_DRIVER:=false}"
: "${BOOT_ID_FILE:=/proc/sys/kernel/random/boot_id}"
: "${KEYRING:=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg}"
: "${SOURCES:=/etc/apt/sources.list.d/nvidia-container-toolkit.list}"
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-o DPkg::Lock::Timeout=120)

driver_works() { command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; }
# The version whose behaviour the program relies on (drop-in default, runtime name `nvidia`);
# the companions are pinned with it, as NVIDIA's install guide does.
TOOLKIT_PACKAGES=(nvidia-container-toolkit nvidia-container-toolkit-base libnvidia-container-tools libnvidia-container1)
toolkit_pinned() { [ "$(dpkg-query -W -f='${Version}' nvidia-container-toolkit 2>/dev/null)" = "$TOOLKIT_VERSION" ]; }
driver_installed() { dpkg-query -W -f='${Package} ${Status}\n' 'nvidia-driver-*' 2>/dev/null | grep -q "install ok installed"; }

# Installing nvidia-driver-N over another branch removes that branch: each branch's components
# provide and conflict with the same virtual packages (nvidia-utils, nvidia-dkms-kernel, ...).
install_driver() {
  retry apt-get "${apt_opts[@]}" update -q || fail "apt-get update failed"
  if [ -n "$DRIVER_VERSION" ]; then
    retry apt-get "${apt_opts[@]}" install -y -q "nvidia-driver-$DRIVER_VERSION" || fail "could not install nvidia-driver-$DRIVER_VERSION"
  elif command -v ubuntu-drivers >/dev/null; then
    retry ubuntu-drivers install || fail "ubuntu-drivers could not install the recommended driver; set nvidia.driverVersion"
  else
    fail "no ubuntu-drivers on this host; set nvidia.driverVersion (e.g. 535) to install nvidia-driver-<version>"
  fi
}

reboot=no
want=${DRIVER_VERSION%%-*}
if driver_works; then
  running=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -n 1)
  log "driver works: $running"
  running=${running%%.*}
  if [ "$INSTALL_DRIVER" = true ] && [ -n "$want" ] && [ "$running" -lt "$want" ]; then
    if [ "$REPLACE_DRIVER" = true ]; then
      log "replacing driver branch $running with $DRIVER_VERSION"
      install_driver
      changed+=("driver")
      reboot=yes
    elif [ "$running" = "${DRIVER_FROM%%-*}" ]; then
      log "driver branch $running; the driver roll moves this host to $DRIVER_VERSION"
    else
      fail "driver branch $running runs here, nvidia.driverVersion is $DRIVER_VERSION: set nvidia.fromDriverVersion: '$running' on this host to roll the upgrade (drained and rebooted one GPU host at a time)"
    fi
  fi
elif [ "$INSTALL_DRIVER" != true ]; then
  fail "nvidia-smi does not work and nvidia.installDriver is false; install the driver on this host or set installDriver: true"
elif driver_installed; then
  log "driver installed but not loaded: reboot needed"
  reboot=yes
else
  install_driver
  changed+=("driver")
  reboot=yes
fi

if [ "$INSTALL_TOOLKIT" = true ] && ! toolkit_pinned; then
  if [ ! -s "$KEYRING" ] || [ ! -s "$SOURCES" ]; then
    key=$(mktemp)
    retry curl -fsSL -o "$key" https://nvidia.github.io/libnvidia-container/gpgkey \
      || fail "could not download NVIDIA's repository key"
    gpg --batch --yes --dearmor -o "$KEYRING" "$key"
    rm -f "$key"
    echo "deb [signed-by=$KEYRING] https://nvidia.github.io/libnvidia-container/stable/deb/\$(ARCH) /" > "$SOURCES"
    changed+=("toolkit-repo")
  fi
  retry apt-get "${apt_opts[@]}" update -q || fail "apt-get update failed"
  retry apt-get "${apt_opts[@]}" install -y -q --allow-downgrades "${TOOLKIT_PACKAGES[@]/%/=$TOOLKIT_VERSION}" \
    || fail "could not install nvidia-container-toolkit $TOOLKIT_VERSION (and its companion packages)"
  changed+=("toolkit")
fi

if [ "$reboot" = yes ]; then
  # Detached, so that this command can report back before the host goes down.
  systemd-run --on-active="$REBOOT_DELAY_S" --unit=hybrid-ai-nvidia-reboot --description="hybrid-ai: load the NVIDIA driver" \
    systemctl reboot >/dev/null
  # pulumi-command retries only its first dial: a session opened before the reboot would die
  # with it. New logins are refused from now until sshd starts again in the new boot.
  systemctl stop ssh.socket ssh.service >/dev/null 2>&1 || true
  echo "reboot_from_boot=$(cat "$BOOT_ID_FILE")"
  changed+=("reboot-scheduled")
fi
report
