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
# The kernel module comes signed by Canonical whenever the archive has it for the host's kernel:
# the driver goes in through `ubuntu-drivers install nvidia:<branch>`, which adds the prebuilt
# linux-modules-nvidia-<branch>-<flavour>; `apt-get install nvidia-driver-<branch>` alone would
# build the module with DKMS (a hard Depends), signed only by a local key. Under Secure Boot the
# firmware rejects that module, so where DKMS would be the only way the script refuses, before
# changing anything, and a pending roll is refused in this set-up step, before the roll drains.
# Parameters: HOST_NAME, INSTALL_DRIVER, DRIVER_VERSION (e.g. 535; empty: the distribution's
# recommended driver), DRIVER_FROM (the branch a pending roll starts from), REPLACE_DRIVER,
# INSTALL_TOOLKIT, TOOLKIT_REPO_URL and TOOLKIT_KEY_URL (NVIDIA's repository and key; empty where the
# mirror step configured a mirror of it), TOOLKIT_VERSION (the Debian version of the toolkit and
# its companion packages, e.g. 1.20.0-1), REBOOT_DELAY_S; KEYRING, SOURCES and EFIVARS default to
# the system paths (parameters only so that tests can point them elsewhere).
set -euo pipefail
SCRIPT_NAME="nvidia"
: "${INSTALL_DRIVER:=true}" "${DRIVER_VERSION:=}" "${INSTALL_TOOLKIT:=true}" "${REBOOT_DELAY_S:=5}" "${TOOLKIT_VERSION:?}"
: "${DRIVER_FROM:=}" "${REPLACE_DRIVER:=false}" "${TOOLKIT_REPO_URL:=}" "${TOOLKIT_KEY_URL:=}"
: "${BOOT_ID_FILE:=/proc/sys/kernel/random/boot_id}"
: "${KEYRING:=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg}"
: "${SOURCES:=/etc/apt/sources.list.d/nvidia-container-toolkit.list}"
: "${EFIVARS:=/sys/firmware/efi/efivars}"
[[ -z $DRIVER_VERSION || $DRIVER_VERSION =~ ^[0-9]+(-[a-z]+)*$ ]] || fail "DRIVER_VERSION must be a branch, e.g. 550 or 550-server"
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-o DPkg::Lock::Timeout=120)

driver_works() { command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; }
# The version whose behaviour the program relies on (drop-in default, runtime name `nvidia`);
# the companions are pinned with it, as NVIDIA's install guide does.
TOOLKIT_PACKAGES=(nvidia-container-toolkit nvidia-container-toolkit-base libnvidia-container-tools libnvidia-container1)
toolkit_pinned() { [ "$(dpkg-query -W -f='${Version}' nvidia-container-toolkit 2>/dev/null)" = "$TOOLKIT_VERSION" ]; }
driver_installed() { installed 'nvidia-driver-*'; }

# Secure Boot checking module signatures. mokutil says "SecureBoot enabled", followed by "SecureBoot
# validation is disabled in shim" when shim lets unsigned modules in; without mokutil, the
# firmware's variable (efivarfs: 4 attribute bytes, then the value; none on a BIOS boot).
secure_boot() {
  local state
  if command -v mokutil >/dev/null; then
    state=$(mokutil --sb-state 2>/dev/null || true)
    grep -qx "SecureBoot enabled" <<<"$state" && ! grep -qx "SecureBoot validation is disabled in shim" <<<"$state"
  else
    [ "$(od -An -tu1 -j4 -N1 "$EFIVARS/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c" 2>/dev/null | tr -d ' ')" = 1 ]
  fi
}
# The signed module package ubuntu-drivers would install with nvidia-driver-<$1> (a branch, or a
# pattern), from its `list` line "nvidia-driver-550, (kernel modules provided by
# linux-modules-nvidia-550-generic)"; empty when only DKMS could build the module (no
# ubuntu-drivers, no linux-modules-nvidia for this kernel: `list` then leaves the driver out).
signed_modules() {
  command -v ubuntu-drivers >/dev/null || return 0
  { ubuntu-drivers list 2>/dev/null || true; } \
    | sed -n "s/^nvidia-driver-$1, (kernel modules provided by \(linux-modules-nvidia-[^)]*\))\$/\1/p" | head -n 1
}
# One line, before anything changes: the module DKMS would build is signed with a local key the
# firmware does not trust, so the host would come back without GPUs and need its console.
refuse_dkms() {
  local node=""
  [ "$REPLACE_DRIVER" != true ] || node="; $HOST_NAME stays cordoned on its working driver: \`microk8s kubectl uncordon $HOST_NAME\` puts it back to work"
  fail "$1: Secure Boot is on and the archive has no Canonical-signed linux-modules-nvidia for $2 on this kernel (\`ubuntu-drivers list\`), so the module would be a DKMS build the firmware rejects, and the host would come back without GPUs; nothing was changed$node. Set nvidia.driverVersion to a branch \`ubuntu-drivers list\` shows with 'kernel modules provided by linux-modules-nvidia-...', or turn Secure Boot off, then run again"
}

# Installing another branch removes the one installed: each branch's components provide and
# conflict with the same virtual packages (nvidia-utils, nvidia-dkms-kernel, ...).
# ubuntu-drivers exits 0 even when its apt-get failed: what it installed is checked instead. It
# passes over a driver already installed (a DKMS-only one here): then only the modules are added.
ubuntu_drivers_install() {
  if installed "nvidia-driver-$DRIVER_VERSION"; then
    apt-get "${apt_opts[@]}" install -y -q "$1"
  else
    ubuntu_drivers install "nvidia:$DRIVER_VERSION"
  fi && installed "nvidia-driver-$DRIVER_VERSION" && installed "$1"
}
# ubuntu-drivers runs its own `apt-get install` without our lock wait (a fresh workstation's
# unattended-upgrades holds the lock for minutes): the same wait, through APT_CONFIG, a file
# every apt tool reads first, in addition to /etc/apt (apt.conf(5)).
ubuntu_drivers() {
  local conf rc=0
  conf=$(mktemp)
  printf 'DPkg::Lock::Timeout "120";\n' > "$conf"
  APT_CONFIG=$conf ubuntu-drivers "$@" || rc=$?
  rm -f "$conf"
  return "$rc"
}
install_driver() {
  local modules
  retry apt-get "${apt_opts[@]}" update -q || fail "apt-get update failed"
  if [ -z "$DRIVER_VERSION" ]; then
    command -v ubuntu-drivers >/dev/null || fail "no ubuntu-drivers on this host; set nvidia.driverVersion (e.g. 535) to install nvidia-driver-<version>"
    [ "$sb" = off ] || [ -n "$(signed_modules '[^,]*')" ] || refuse_dkms "the recommended driver" "any branch"
    # Without Secure Boot a DKMS-only driver is fine, and without --include-dkms ubuntu-drivers
    # would skip it where the archive has no signed modules for this kernel, and install nothing.
    dkms=()
    [ "$sb" = on ] || dkms=(--include-dkms)
    retry ubuntu_drivers install "${dkms[@]}" || fail "ubuntu-drivers could not install the recommended driver; set nvidia.driverVersion"
    # It exits 0 when it installed nothing: no reboot for a driver that is not there.
    driver_installed || fail "ubuntu-drivers installed no NVIDIA driver (\`ubuntu-drivers list\` offers none for this GPU and kernel): no reboot was scheduled; set nvidia.driverVersion (e.g. 550) and run again"
    [ "$sb" = off ] || signed_installed \
      || fail "Secure Boot is on and the driver ubuntu-drivers installed has no Canonical-signed linux-modules-nvidia, so the firmware would reject its DKMS module: no reboot was scheduled; set nvidia.driverVersion to a branch \`ubuntu-drivers list\` shows with 'kernel modules provided by linux-modules-nvidia-...', or turn Secure Boot off, then run again"
    return
  fi
  modules=$(signed_modules "$DRIVER_VERSION")
  if [ -n "$modules" ]; then
    retry ubuntu_drivers_install "$modules" || fail "ubuntu-drivers did not install nvidia-driver-$DRIVER_VERSION with $modules (its apt-get output is above)"
  else
    [ "$sb" = off ] || refuse_dkms "nvidia-driver-$DRIVER_VERSION" "branch $DRIVER_VERSION"
    retry apt-get "${apt_opts[@]}" install -y -q "nvidia-driver-$DRIVER_VERSION" || fail "could not install nvidia-driver-$DRIVER_VERSION"
  fi
}
signed_installed() { installed 'linux-modules-nvidia-*'; }

reboot=no
want=${DRIVER_VERSION%%-*}
sb=off
[ "$INSTALL_DRIVER" != true ] || ! secure_boot || sb=on
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
      # Checked here, as every GPU host's set-up runs before the roll drains its first node.
      [ "$sb" = off ] || [ -n "$(signed_modules "$DRIVER_VERSION")" ] \
        || refuse_dkms "the driver roll to $DRIVER_VERSION stops before draining $HOST_NAME" "branch $DRIVER_VERSION"
      log "driver branch $running; the driver roll moves this host to $DRIVER_VERSION"
    else
      fail "driver branch $running runs here, nvidia.driverVersion is $DRIVER_VERSION: set nvidia.fromDriverVersion: '$running' on this host to roll the upgrade (drained and rebooted one GPU host at a time)"
    fi
  fi
elif [ "$INSTALL_DRIVER" != true ]; then
  fail "nvidia-smi does not work and nvidia.installDriver is false; install the driver on this host or set installDriver: true"
# Under Secure Boot an installed driver without signed modules (DKMS only: by hand, or an older
# run) would not load after a reboot either: it is installed again, the signed way or not at all.
elif driver_installed && { [ "$sb" = off ] || signed_installed; }; then
  log "driver installed but not loaded: reboot needed"
  reboot=yes
else
  install_driver
  changed+=("driver")
  reboot=yes
fi

if [ "$INSTALL_TOOLKIT" = true ] && ! toolkit_pinned; then
  # (No TOOLKIT_REPO_URL: the host's mirror step set the repository up from a given key.)
  if [ -n "$TOOLKIT_REPO_URL" ] && { [ ! -s "$KEYRING" ] || [ ! -s "$SOURCES" ]; }; then
    key=$(mktemp)
    retry curl -fsSL -o "$key" "$TOOLKIT_KEY_URL" || fail "could not download NVIDIA's repository key"
    gpg --batch --yes --dearmor -o "$KEYRING" "$key"
    rm -f "$key"
    echo "deb [signed-by=$KEYRING] $TOOLKIT_REPO_URL/\$(ARCH) /" > "$SOURCES"
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
