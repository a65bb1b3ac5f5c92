#!/usr/bin/env bash
# Base OS set-up for every host, run in parallel on all hosts before anything else.
# Idempotent: each step checks its goal first, and a second run changes nothing
# (the last line reports what changed: "changed: none" on a re-run).
# Parameters: HOST_NAME, PACKAGES (space-separated), CLOUD_INIT_WAIT_S; the file paths
# default to the system's and are parameters only so that tests can point them elsewhere.
# Helpers (log, fail, retry, report, installed) come from lib.sh, needs_chrony from timesync.sh.
# uses: timesync.sh
set -euo pipefail
SCRIPT_NAME="base"

: "${HOST_NAME:?HOST_NAME must be set}"
: "${PACKAGES:=wireguard-tools iproute2 iptables ca-certificates curl}"
: "${CLOUD_INIT_WAIT_S:=900}"
: "${SYSCTL_FILE:=/etc/sysctl.d/90-hybrid-ai.conf}"
: "${MODULES_FILE:=/etc/modules-load.d/hybrid-ai.conf}"
: "${BRIDGE_NF_SYSCTL:=/proc/sys/net/bridge/bridge-nf-call-iptables}"
: "${CLOUD_INIT_RUN_DIR:=/run/cloud-init}"
: "${CLOUD_INIT_DONE:=/var/lib/cloud/instance/boot-finished}"


# 1. Let cloud-init finish first (VMs), so apt does not race it. Hosts where cloud-init
#    did not run this boot skip this.
if [ -d "$CLOUD_INIT_RUN_DIR" ] && [ ! -e "$CLOUD_INIT_DONE" ] && command -v cloud-init >/dev/null; then
  log "waiting up to ${CLOUD_INIT_WAIT_S}s for cloud-init"
  rc=0
  timeout "$CLOUD_INIT_WAIT_S" cloud-init status --wait >/dev/null || rc=$?
  # 2 means "finished with recoverable errors"; anything else but 0 is a failure.
  [ "$rc" -eq 0 ] || [ "$rc" -eq 2 ] || fail "cloud-init did not finish cleanly (exit $rc); see /var/log/cloud-init-output.log"
fi

# 2. Packages the later steps need; apt runs only when one is missing.
missing=()
for pkg in $PACKAGES; do
  installed "$pkg" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  retry apt-get -o DPkg::Lock::Timeout=120 update -q || fail "apt-get update failed; check the host's package mirrors"
  retry apt-get -o DPkg::Lock::Timeout=120 install -y -q --no-install-recommends "${missing[@]}" \
    || fail "could not install ${missing[*]}"
  changed+=("packages")
fi

# 3. Kernel module for bridged pod traffic; persisted for reboots, loaded only when absent.
want_modules="br_netfilter"
if [ "$(cat "$MODULES_FILE" 2>/dev/null)" != "$want_modules" ]; then
  mkdir -p "$(dirname "$MODULES_FILE")"
  printf '%s\n' "$want_modules" > "$MODULES_FILE"
  changed+=("modules-file")
fi
# (Checked through its sysctl: the module may be built into the kernel.)
if [ ! -e "$BRIDGE_NF_SYSCTL" ]; then
  modprobe br_netfilter || fail "cannot load br_netfilter; Kubernetes networking needs it"
  changed+=("br_netfilter")
fi

# 4. Forwarding (the VPN hub routes between sites; pods route between nodes) and bridge
#    netfilter. Persisted in a file of ours; applied only where the live value differs.
sysctls="net.ipv4.ip_forward=1
net.ipv4.conf.all.src_valid_mark=1
net.bridge.bridge-nf-call-iptables=1
net.bridge.bridge-nf-call-ip6tables=1"
if [ "$(cat "$SYSCTL_FILE" 2>/dev/null)" != "$sysctls" ]; then
  mkdir -p "$(dirname "$SYSCTL_FILE")"
  printf '%s\n' "$sysctls" > "$SYSCTL_FILE"
  changed+=("sysctl-file")
fi
while IFS='=' read -r key value; do
  if [ "$(sysctl -n "$key")" != "$value" ]; then
    sysctl -q -w "$key=$value" >/dev/null
    changed+=("$key")
  fi
done <<< "$sysctls"

# 5. Time sync: Kubernetes certificates and WireGuard handshakes need a sane clock.
#    (A mirrored site's preflight checks chrony on the mirror by the same needs_chrony.)
if needs_chrony; then
  retry apt-get -o DPkg::Lock::Timeout=120 install -y -q chrony || fail "could not install chrony for time sync"
  systemctl enable --now chrony
  changed+=("time-sync")
elif ! systemctl is-active --quiet systemd-timesyncd && ! systemctl is-active --quiet chrony; then
  systemctl enable --now systemd-timesyncd
  changed+=("time-sync")
fi

report
