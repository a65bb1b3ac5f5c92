#!/usr/bin/env bash
# After the NVIDIA set-up (and any reboot it scheduled): wait, within a bound, until the
# driver answers, and check the host shows the GPUs the config says it has.
# Parameters: HOST_NAME, GPU_COUNT, WAIT_S.
set -euo pipefail
SCRIPT_NAME="gpu-check"
: "${GPU_COUNT:=1}" "${WAIT_S:=300}"

driver_answers() { command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; }
wait_for $((WAIT_S / 5)) 5 driver_answers \
  || fail "nvidia-smi still fails after ${WAIT_S}s; check 'dmesg | grep -i nvidia' (Secure Boot may block the module)"
found=$(nvidia-smi -L | grep -c '^GPU ')
[ "$found" -ge "$GPU_COUNT" ] || fail "nvidia-smi shows $found GPU(s), the config says gpu.count=$GPU_COUNT"
echo "gpus=$found"
echo "driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -n 1)"
