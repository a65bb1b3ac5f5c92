#!/usr/bin/env bash
# After the NVIDIA set-up (and any reboot it scheduled): when set-up reported a reboot, wait,
# within a bound, until the host runs a boot other than the one set-up ran in; then wait,
# within a bound, until the driver answers, and check the host shows the GPUs the config
# says it has.
# Parameters: HOST_NAME, GPU_COUNT, WAIT_S, SETUP_REPORT (nvidia-setup.sh's output), BOOT_WAIT_S.
set -euo pipefail
SCRIPT_NAME="gpu-check"
: "${GPU_COUNT:=1}" "${WAIT_S:=300}" "${SETUP_REPORT:=}" "${BOOT_WAIT_S:=600}"
: "${BOOT_ID_FILE:=/proc/sys/kernel/random/boot_id}"

# Strict: the report is `changed=...` lines and at most one `reboot_from_boot=<uuid>`.
uuid='[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
[ -z "$SETUP_REPORT" ] || ! grep -qvxE "changed=[a-z -]*|reboot_from_boot=$uuid" <<<"$SETUP_REPORT" \
  || fail "the NVIDIA set-up step's report is not in the expected format; re-run it"
old_boot=$(grep -oxE "reboot_from_boot=$uuid" <<<"$SETUP_REPORT" | cut -d= -f2 || true)
if [ -n "$old_boot" ]; then
  rebooted() { [ "$(cat "$BOOT_ID_FILE")" != "$old_boot" ]; }
  wait_for $((BOOT_WAIT_S / 5)) 5 rebooted \
    || fail "the host still runs boot $old_boot ${BOOT_WAIT_S}s after the NVIDIA set-up scheduled a reboot; reboot it"
fi

driver_answers() { command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; }
wait_for $((WAIT_S / 5)) 5 driver_answers \
  || fail "nvidia-smi still fails after ${WAIT_S}s; check 'dmesg | grep -i nvidia' (Secure Boot may block the module)"
found=$(nvidia-smi -L | grep -c '^GPU ')
[ "$found" -ge "$GPU_COUNT" ] || fail "nvidia-smi shows $found GPU(s), the config says gpu.count=$GPU_COUNT"
echo "gpus=$found"
echo "driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -n 1)"
