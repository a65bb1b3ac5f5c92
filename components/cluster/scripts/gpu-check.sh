#!/usr/bin/env bash
# After the NVIDIA set-up (and any reboot it scheduled): when set-up reported a reboot, wait,
# within a bound, until the host runs a boot other than the one set-up ran in; then wait,
# within a bound, until the driver answers, and check the host shows the GPUs the config
# says it has.
# In the driver roll (DRIVER_BRANCH set) the driver must answer on that branch or a newer one
# (Ubuntu's transitional packages), and the check prints `back_at=<epoch>` (this host's clock,
# which its kubelet stamps heartbeats with) for the roll's last step.
# Parameters: HOST_NAME, GPU_COUNT, WAIT_S, SETUP_REPORT (nvidia-setup.sh's output), BOOT_WAIT_S,
# DRIVER_BRANCH (e.g. 550; empty: any), ROLL (the roll in words, for messages; empty: none).
set -euo pipefail
SCRIPT_NAME="gpu-check"
: "${GPU_COUNT:=1}" "${WAIT_S:=300}" "${SETUP_REPORT:=}" "${BOOT_WAIT_S:=600}" "${DRIVER_BRANCH:=}" "${ROLL:=}"
[[ -z $DRIVER_BRANCH || $DRIVER_BRANCH =~ ^[0-9]+$ ]] || fail "DRIVER_BRANCH must be a branch number, e.g. 550"
stopped=${ROLL:+$ROLL stopped at $HOST_NAME: }
: "${BOOT_ID_FILE:=/proc/sys/kernel/random/boot_id}"

# Strict: the report is `changed=...` lines and at most one `reboot_from_boot=<uuid>`.
uuid='[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
[ -z "$SETUP_REPORT" ] || ! grep -qvxE "changed=[a-z -]*|reboot_from_boot=$uuid" <<<"$SETUP_REPORT" \
  || fail "the NVIDIA set-up step's report is not in the expected format; re-run it"
old_boot=$(grep -oxE "reboot_from_boot=$uuid" <<<"$SETUP_REPORT" | cut -d= -f2 || true)
if [ -n "$old_boot" ]; then
  rebooted() { [ "$(cat "$BOOT_ID_FILE")" != "$old_boot" ]; }
  wait_for $((BOOT_WAIT_S / 5)) 5 rebooted \
    || fail "${stopped}the host still runs boot $old_boot ${BOOT_WAIT_S}s after the NVIDIA set-up scheduled a reboot; reboot it"
fi

# What the driver says (its error, when NVML refuses); never fails, so a message can quote it.
version() { { nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null || true; } | head -n 1; }
driver_answers() {
  command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 || return 1
  [ -z "$DRIVER_BRANCH" ] || { local v; v=$(version); [ "${v%%.*}" -ge "$DRIVER_BRANCH" ]; }
}
if ! wait_for $((WAIT_S / 5)) 5 driver_answers; then
  branch=""
  [ -z "$DRIVER_BRANCH" ] || branch=" to answer on branch $DRIVER_BRANCH or newer (it says '$(version)')"
  fail "${stopped}nvidia-smi still fails${branch} after ${WAIT_S}s; check 'dmesg | grep -i nvidia' (Secure Boot may block the module)"
fi
found=$(nvidia-smi -L | grep -c '^GPU ')
[ "$found" -ge "$GPU_COUNT" ] || fail "${stopped}nvidia-smi shows $found GPU(s), the config says gpu.count=$GPU_COUNT"
echo "gpus=$found"
echo "driver=$(version)"
[ -z "$DRIVER_BRANCH" ] || echo "back_at=$(date -u +%s)"
