"""Recording stubs of the NVIDIA tools (`nvidia-smi`, `ubuntu-drivers`, `nvidia-ctk`), with
state in files, as the driver and toolkit behave in the facts the scripts rely on
(docs/upstream.md). Part of the cluster stubs (`cluster_stubs.STUBS`)."""

from __future__ import annotations

NVIDIA_STUBS = {
    # The kernel module is the branch loaded at boot ($STATE/driver-branch: 535 unless a test
    # rebooted into another), the tools the newest installed nvidia-driver-<branch>'s; after an
    # upgrade, until the reboot loads the new module, NVML refuses them (a version mismatch).
    "nvidia-smi": """
[ -e "$STATE/driver-loaded" ] || { echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver" >&2; exit 9; }
loaded=$(cat "$STATE/driver-branch" 2>/dev/null || echo 535)
tools=$(find "$STATE/installed" -name 'nvidia-driver-[0-9]*' -printf '%f\\n' | sed 's/^nvidia-driver-\\([0-9]*\\).*/\\1/' | sort -n | tail -n 1)
[ -z "$tools" ] || [ "$tools" = "$loaded" ] || { echo "Failed to initialize NVML: Driver/library version mismatch"; exit 18; }
case $1 in
  -L) for i in $(seq 1 "$(cat "$STATE/driver-loaded")"); do echo "GPU $((i - 1)): NVIDIA GeForce RTX 3090 (UUID: GPU-$i)"; done;;
  *) echo "$loaded.183.01";;
esac""",
    "ubuntu-drivers": 'touch "$STATE/installed/nvidia-driver-535"',
    # nvidia-ctk runtime configure (toolkit >= 1.18): the runtime `nvidia` goes into a drop-in
    # (/etc/containerd/conf.d/99-nvidia.toml, imported from --config) unless --drop-in-config=''.
    "nvidia-ctk": """
[ "$1 $2" = "runtime configure" ] || exit 0
case $* in *--help*) echo '   --drop-in-config value  path to the NVIDIA-specific config file to create'; exit 0;; esac
config=/etc/containerd/config.toml; dropin=$STATE/etc/containerd/conf.d/99-nvidia.toml
for a in "$@"; do case $a in --config=*) config=${a#--config=};; --drop-in-config=*) dropin=${a#--drop-in-config=};; esac; done
section='[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]'
body='  runtime_type = "io.containerd.runc.v2"'
if [ -n "$dropin" ]; then
  mkdir -p "$(dirname "$dropin")"; printf '%s\\n%s\\n' "$section" "$body" > "$dropin"
  sed -i "1i imports = [\\"$dropin\\"]" "$config"
else
  printf '\\n%s\\n%s\\n' "$section" "$body" >> "$config"
fi""",
}
